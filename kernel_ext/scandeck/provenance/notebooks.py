"""Reading provenance out of notebooks, and writing it into them.

Helpers shared by ``%provenance``, ``scandeck run``, the papermill engine and
reruns. They take and change ``nbformat`` notebooks (``NotebookNode``) and never
import a kernel.

- :func:`parameters_of`: the parameter values a notebook ran with.
- :func:`failure_of`: where an executed notebook failed, as papermill sees it.
- :func:`stamp`: put a record into ``nb.metadata.scandeck``.
- :func:`choose_kernel`: the kernel and language a notebook runs in.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .record import ErrorInfo

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from .record import ProvenanceRecord

__all__ = [
    "ERROR_MARKER_TAG",
    "choose_kernel",
    "describe_failure",
    "failure_of",
    "first_lines",
    "literal_assignments",
    "parameters_of",
    "read_notebook",
    "stamp",
]

#: Tag of the markdown cells papermill inserts to point at a failure (papermill.execute).
ERROR_MARKER_TAG = "papermill-error-cell-tag"
#: How much of a failing cell's source goes into the record.
SOURCE_LINES = 5
SOURCE_CHARS = 500


def read_notebook(path: str | Path) -> NotebookNode:
    """The notebook at ``path``, as nbformat v4."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


# -- kernel -----------------------------------------------------------------------------------


def choose_kernel(
    nb: NotebookNode, kernel_name: str | None = None, language: str | None = None, *, required: bool = True
) -> tuple[str, str]:
    """The Jupyter kernel and the language to run ``nb`` in: ``(kernelspec name, language)``.

    The kernel is ``kernel_name``, else the notebook's ``metadata.kernelspec.name``,
    else (a notebook from ``nbformat.v4.new_notebook()``, jupytext or a script has
    none) a kernelspec for its language: ``python3``, the Python kernel scandeck runs
    in, for Python, which is also what a notebook that names no language gets; the
    first installed kernelspec of that language otherwise. The language is
    ``language``, else the notebook's (``language_info``, ``kernelspec``), else the
    kernelspec's. papermill needs both and raises a bare ValueError without them.

    Raises
    ------
    UnknownKernel
        The kernel is not installed here (only when ``required``: the workers of a
        cluster may have kernels this machine lacks), or no kernelspec runs the
        language; the message lists the kernelspecs that are installed.

    Examples
    --------
    >>> choose_kernel(nbformat.v4.new_notebook())       # doctest: +SKIP
    ('python3', 'python')
    """
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager, NoSuchKernel

    from ..exceptions import UnknownKernel

    meta = nb.get("metadata", {}) or {}
    spec_meta = meta.get("kernelspec") or {}
    nb_language = (meta.get("language_info") or {}).get("name") or spec_meta.get("language") or None
    wanted = language or nb_language
    ksm = KernelSpecManager()
    name = kernel_name or spec_meta.get("name") or None
    if name is None:
        wanted_lower = (wanted or "python").lower()
        if wanted_lower == "python":
            name = NATIVE_KERNEL_NAME
        else:
            specs = ksm.get_all_specs()
            matching = sorted(
                name for name, spec in specs.items() if spec["spec"].get("language", "").lower() == wanted_lower
            )
            if not matching:
                said = "--language" if language else "the notebook's metadata"
                raise UnknownKernel(
                    f"no installed Jupyter kernel runs {wanted!r} (the language {said} gives, and the "
                    f"notebook names no kernelspec); available kernelspecs: {_kernelspecs(specs)}; "
                    "pick one with --kernel"
                )
            name = matching[0]
    try:
        spec = ksm.get_kernel_spec(name)
    except NoSuchKernel:
        if required:
            raise UnknownKernel(
                f"no Jupyter kernel named {name!r} here; available kernelspecs: "
                f"{_kernelspecs(ksm.get_all_specs())}; pick one with --kernel"
            ) from None
        return name, wanted or "python"
    return name, wanted or spec.language or "python"


def _kernelspecs(specs: dict[str, Any]) -> str:
    """``python3 (python), ir (R)``: installed kernelspecs with their languages."""
    if not specs:
        return "none (pip install ipykernel adds python3)"
    return ", ".join(f"{name} ({spec['spec'].get('language', '?')})" for name, spec in sorted(specs.items()))


# -- parameters -------------------------------------------------------------------------------


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _parse(source: str) -> ast.Module | None:
    """Parse a cell, dropping IPython lines (``%magic``, ``!shell``) if plain Python fails."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    kept = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(kept))
    except SyntaxError:
        return None


def _json_safe(value: Any) -> tuple[bool, Any]:
    """(True, value as JSON) for literals a record can hold; (False, None) for the rest."""
    if isinstance(value, tuple):
        value = list(value)
    try:
        return True, json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return False, None


def literal_assignments(source: str) -> dict[str, Any]:
    """The names a cell assigns to literals, in order: ``{"scan_uid": None, "n": 3}``.

    Each top-level assignment is evaluated on its own with ``ast.literal_eval``, so a
    value that is not a literal (``x = np.arange(3)``) is skipped without losing the
    others, and nothing in the cell is executed. Handles ``a = b = 1``,
    ``a, b = 1, 2`` and ``a: int = 1``. Values that JSON cannot hold (sets, bytes,
    complex numbers) are skipped; tuples become lists.
    """
    tree = _parse(source)
    found: dict[str, Any] = {}
    if tree is None:
        return found
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            pairs: list[tuple[ast.expr, ast.expr]]
            if isinstance(target, ast.Name):
                pairs = [(target, value)]
            elif (
                isinstance(target, (ast.Tuple, ast.List))
                and isinstance(value, (ast.Tuple, ast.List))
                and len(target.elts) == len(value.elts)
            ):
                pairs = list(zip(target.elts, value.elts, strict=True))
            else:
                continue
            for name, expr in pairs:
                if not isinstance(name, ast.Name):
                    continue
                try:
                    literal = ast.literal_eval(expr)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue
                ok, safe = _json_safe(literal)
                if ok:
                    found[name.id] = safe
    return found


def parameters_of(nb: NotebookNode) -> dict[str, Any]:
    """The parameter values ``nb`` ran (or will run) with.

    The literal defaults of the cell tagged ``parameters``, overridden by the
    cell papermill injected (tagged ``injected-parameters``), overridden by
    ``nb.metadata.papermill.parameters`` when papermill recorded them (the
    values exactly as passed, including non-literal JSON that the injected
    source may not round-trip).
    """
    params: dict[str, Any] = {}
    injected: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tags = _tags(cell)
        if "parameters" in tags:
            params.update(literal_assignments(cell.source))
        if "injected-parameters" in tags:
            injected.update(literal_assignments(cell.source))
    params.update(injected)
    recorded = nb.get("metadata", {}).get("papermill", {}).get("parameters")
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            ok, safe = _json_safe(value)
            if ok:
                params[key] = safe
    return params


# -- failures ---------------------------------------------------------------------------------


def first_lines(source: str) -> str:
    """The first lines of a cell's source, as a record keeps them."""
    lines = source.splitlines()
    text = "\n".join(lines[:SOURCE_LINES])
    if len(text) > SOURCE_CHARS:
        text = text[:SOURCE_CHARS].rstrip() + " …"
    elif len(lines) > SOURCE_LINES:
        text += "\n…"
    return text


def failure_of(nb: NotebookNode) -> ErrorInfo | None:
    """Where ``nb`` failed: the first code cell with an error output, else None.

    Follows papermill's ``raise_for_execution_errors``: ``SystemExit`` with no
    code or code 0 is not a failure, and a cell papermill marked as raising
    without an error output (``metadata.papermill.exception``) is one
    (``CellExecutionError``). ``cell_index`` counts the cells of the executed
    notebook, including papermill's injected-parameters cell but not the
    error-marker cells papermill adds to the output file after a failure, so it is
    the same index whether ``nb`` is read before or after papermill wrote them.
    """
    index = -1
    for cell in nb.cells:
        if ERROR_MARKER_TAG in _tags(cell):
            continue
        index += 1
        if cell.get("cell_type") != "code":
            continue
        clean_exit = False
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            ename, evalue = output.get("ename", ""), output.get("evalue", "")
            if ename == "SystemExit" and evalue in ("", "0"):
                clean_exit = True
                continue
            return ErrorInfo(cell_index=index, cell_source=first_lines(cell.source), ename=ename, evalue=evalue)
        marked = cell.get("metadata", {}).get("papermill", {}).get("exception") is True
        if marked and not clean_exit:
            return ErrorInfo(
                cell_index=index, cell_source=first_lines(cell.source), ename="CellExecutionError", evalue=""
            )
    return None


def describe_failure(error: ErrorInfo, nb: NotebookNode | None = None) -> str:
    """One line for people: ``cell 4 (In [3]) raised ZeroDivisionError: division by zero (in: 1/0)``.

    With the executed notebook ``nb``, the cell's execution count is named too, as
    papermill's error banner does (the index counts papermill's injected cell).
    """
    where = f"cell {error.cell_index}" if error.cell_index is not None else "the notebook"
    if nb is not None and error.cell_index is not None:
        cells = [c for c in nb.cells if ERROR_MARKER_TAG not in _tags(c)]
        if error.cell_index < len(cells) and cells[error.cell_index].get("execution_count") is not None:
            where += f" (In [{cells[error.cell_index].execution_count}])"
    evalue = error.evalue.strip().splitlines()[0] if error.evalue.strip() else ""
    what = f"{error.ename}: {evalue}" if evalue else (error.ename or "an error")
    first = error.cell_source.splitlines()[0].strip() if error.cell_source.strip() else ""
    return f"{where} raised {what}" + (f" (in: {first})" if first else "")


# -- stamping ---------------------------------------------------------------------------------


def stamp(nb: NotebookNode, record: ProvenanceRecord) -> NotebookNode:
    """Write ``record`` into ``nb.metadata.scandeck`` (beside ``nb.metadata.papermill``); return nb.

    Keys there that are not record fields (``scan_parameter``, set by the notebook's
    author for reruns) are kept.
    """
    from nbformat import from_dict

    old = nb.metadata.get("scandeck")
    fields = type(record).model_fields
    kept = {k: v for k, v in old.items() if k not in fields} if isinstance(old, dict) else {}
    nb.metadata["scandeck"] = from_dict({**kept, **record.to_metadata()})
    return nb
