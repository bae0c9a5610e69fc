"""Making provenance records: from a notebook, the runs it read, and its environment.

One builder, :func:`build_record`, serves every way of recording:

- interactive (``%provenance save``, in the kernel): the notebook file as saved,
  the kernel's own context (:func:`scandeck.provenance.context.current`) and an
  environment captured in the kernel — :func:`locate_notebook`,
  :func:`record_interactive`, :func:`preview`;
- batch (``scandeck run``, ``papermill --engine scandeck``, reruns): the executed
  notebook in the papermill process, with the inputs and environment fetched from
  the kernel at the end of execution through :func:`kernel_report` (see
  :mod:`scandeck.provenance.engine`).

The record's ``notebook_sha256`` is set by the store when it saves the notebook,
and the notebook carries the record in ``nb.metadata.scandeck``. A hash cannot
cover itself, so the copy inside the notebook has ``notebook_sha256 == ""``;
everything else equals the stored record.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ScandeckError

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from .record import Environment, ErrorInfo, InputRef, OutputRef, ProvenanceRecord
    from .store import ProvStore

# Module level imports are stdlib only: ``%load_ext scandeck`` imports this module
# (for the ExecutionClock), and pydantic, nbformat and the store load on first use.

__all__ = [
    "ExecutionClock",
    "NotebookNotFound",
    "build_record",
    "kernel_name_of",
    "kernel_report",
    "kernel_report_expression",
    "locate_notebook",
    "preview",
    "record_interactive",
]

Kind = Literal["interactive", "batch", "rerun"]

#: Seconds the end-of-run report waits for each live derived run (``to_run``) to end.
FINISH_PIPELINES = 30.0


class NotebookNotFound(ScandeckError):
    """The notebook to record cannot be found or is not saved."""


# -- the one builder --------------------------------------------------------------------------


def build_record(
    nb: NotebookNode,
    *,
    kind: Kind,
    environment: Environment | Mapping[str, Any],
    name: str | None = None,
    inputs: Iterable[InputRef | Mapping[str, Any]] = (),
    outputs: Iterable[OutputRef | Mapping[str, Any]] = (),
    tags: Iterable[str] = (),
    parent: str | None = None,
    target_scan: str | None = None,
    duration: float | None = None,
    notebook_path: str | Path | None = None,
    error: ErrorInfo | None = None,
    record_id: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> ProvenanceRecord:
    """A record of ``nb`` (not yet stored, ``notebook_sha256`` empty).

    ``parameters`` come from :func:`~scandeck.provenance.notebooks.parameters_of`.
    ``status`` is "failed" when ``error`` is given or the notebook holds an error
    output (:func:`~scandeck.provenance.notebooks.failure_of`), else "ok".
    ``name`` defaults to the notebook's file stem. ``inputs`` are context notes
    (dicts as :meth:`ProvenanceContext.inputs` gives them) or :class:`InputRef`.
    ``values``: what the notebook glued (:meth:`ProvenanceContext.values`).
    """
    from .notebooks import failure_of, parameters_of
    from .record import Environment, InputRef, OutputRef, ProvenanceRecord

    if error is None:
        error = failure_of(nb)
    path = str(notebook_path) if notebook_path else ""
    if not name:
        name = Path(path).stem if path else "notebook"
    env = environment if isinstance(environment, Environment) else Environment.model_validate(environment)
    ident: dict[str, Any] = {"id": record_id} if record_id else {}  # else the model's fresh id
    return ProvenanceRecord(
        **ident,
        name=name,
        kind=kind,
        tags=_unique(tags),
        parent=parent,
        notebook_path=path,
        parameters=parameters_of(nb),
        target_scan=target_scan,
        inputs=[i if isinstance(i, InputRef) else InputRef.model_validate(i) for i in inputs],
        outputs=[o if isinstance(o, OutputRef) else OutputRef.model_validate(o) for o in outputs],
        values=dict(values or {}),
        environment=env,
        status="failed" if error is not None else "ok",
        error=error,
        duration=duration,
    )


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def save_stamped(store: ProvStore, record: ProvenanceRecord, nb: NotebookNode) -> ProvenanceRecord:
    """Stamp ``nb`` with ``record`` and store both; return the stored record.

    The stamp is written before saving, so the stored notebook carries the record
    (with ``notebook_sha256 == ""``: the hash is of the stamped notebook).
    """
    from .notebooks import stamp

    stamp(nb, record.model_copy(update={"notebook_sha256": ""}))
    return store.save(record, nb)


# -- batch: what the engine asks the kernel for ----------------------------------------------


def kernel_report(kernel_name: str = "", notebook_path: str | None = None) -> str:
    """Run in the kernel: its context's inputs, glued values and environment, as one JSON string.

    The papermill engine evaluates this as a user expression of a silent execute
    request after the last cell (see :func:`kernel_report_expression`), so the
    record gets the runs the *kernel* read and the packages the *kernel* imports
    from. Environment capture failing is reported, not raised.
    """
    from .context import current, peek_pending_record_id

    live_runs = sys.modules.get("scandeck.derived_live.node")  # never imported: no pipeline wrote a run
    if live_runs is not None:
        live_runs.finish_all(FINISH_PIPELINES)  # the derived runs complete before they are listed
    report: dict[str, Any] = {
        "inputs": current().inputs(),
        "values": current().values(),
        "outputs": derived_outputs(),
        "record_id": peek_pending_record_id(),
    }
    try:
        from .environment import capture

        env = capture(kernel_name=kernel_name, notebook_path=notebook_path)
        report["environment"] = env.model_dump(mode="json")
    except Exception as err:  # noqa: BLE001 - any failure here only loses the environment
        report["environment_error"] = f"{type(err).__name__}: {err}"
    return json.dumps(report)


def derived_outputs() -> list[dict[str, Any]]:
    """Runs this process wrote with :func:`scandeck.derive` (none if it never derived)."""
    derived = sys.modules.get("scandeck.derived")  # never imported: nothing was derived
    return derived.written() if derived is not None else []


def kernel_report_expression(kernel_name: str = "", notebook_path: str | None = None) -> str:
    """The user expression that calls :func:`kernel_report` in a kernel."""
    return (
        f"__import__('scandeck.provenance.recording', fromlist=['kernel_report'])"
        f".kernel_report({kernel_name!r}, {notebook_path!r})"
    )


# -- interactive: inside the kernel -----------------------------------------------------------


class ExecutionClock:
    """When the shell last finished executing a cell (IPython ``post_run_cell``).

    ``%provenance save`` compares it with the notebook file's modification time:
    a file older than the last finished cell does not hold what the user sees.
    """

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, result: Any = None) -> None:
        self.times.append(time.time())
        del self.times[:-2]

    def last_before_current(self) -> float | None:
        """End time of the cell before the one executing now (None if unknown)."""
        return self.times[-1] if self.times else None

    @classmethod
    def install(cls, shell: Any) -> ExecutionClock:
        """The shell's clock, registered on first use."""
        clock = getattr(shell, "_scandeck_execution_clock", None)
        if clock is None:
            clock = cls()
            shell.events.register("post_run_cell", clock)
            shell._scandeck_execution_clock = clock
        return clock


def _session_name(shell: Any) -> str:
    return os.environ.get("JPY_SESSION_NAME") or str(
        (getattr(shell, "user_ns", None) or {}).get("__session__") or ""
    )


def _resolve_session(session: str) -> Path | None:
    """The file a Jupyter session name names: absolute, or relative to the server root.

    The server starts the kernel in the notebook's directory, and the root is one
    of its ancestors: prefer the ancestor that puts the file in the kernel's
    working directory, else the nearest under which the file exists.
    """
    path = Path(session).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    cwd = Path.cwd().resolve()
    found = []
    for base in (cwd, *cwd.parents):
        candidate = base / path
        if candidate.is_file():
            if candidate.parent.resolve() == cwd:
                return candidate
            found.append(candidate)
    return found[0] if found else None


def locate_notebook(shell: Any, path: str | Path | None = None) -> Path:
    """The notebook file this kernel runs (or ``path``), absolute.

    Without ``path``: ``$JPY_SESSION_NAME`` (set by jupyter_server), else
    ``__session__`` in the user namespace (IPython 8+ sets it from that variable).
    Raises :class:`NotebookNotFound` with what to do when there is no file.
    """
    if path is not None and str(path).strip():
        given = Path(str(path).strip()).expanduser()
        if not given.is_absolute():
            given = Path.cwd() / given
        if not given.is_file():
            raise NotebookNotFound(f"no notebook at {given}: give the path of a saved .ipynb file")
        return given
    session = _session_name(shell)
    if not session:
        raise NotebookNotFound(
            "this kernel was not started for a notebook file (no $JPY_SESSION_NAME): pass --path NOTEBOOK.ipynb"
        )
    found = _resolve_session(session)
    if found is None:
        raise NotebookNotFound(
            f"the notebook {session} is not on disk (not saved yet, or renamed): "
            "save it first, or pass --path NOTEBOOK.ipynb"
        )
    return found


#: Seconds a notebook file may predate the end of the last cell and still count as saved
#: after it (file system timestamps are coarser than the clock, and a save is not instant).
SAVE_TOLERANCE = 1.0


def check_saved(path: Path, shell: Any) -> float | None:
    """Seconds by which ``path`` is older than the last finished cell (None: up to date)."""
    clock = getattr(shell, "_scandeck_execution_clock", None)
    last = clock.last_before_current() if clock is not None else None
    if last is None:
        return None
    age = last - path.stat().st_mtime
    return age if age > SAVE_TOLERANCE else None


def kernel_name_of(shell: Any = None) -> str:
    """The kernel spec name of this kernel ("" when unknown).

    jupyter_client writes it into the connection file; ``$SCANDECK_KERNEL_NAME``
    overrides (for launchers that do not).
    """
    name = os.environ.get("SCANDECK_KERNEL_NAME", "")
    if name:
        return name
    connection_file = ""
    app = getattr(getattr(shell, "kernel", None), "parent", None)
    connection_file = str(getattr(app, "abs_connection_file", "") or getattr(app, "connection_file", "") or "")
    if not connection_file:
        try:
            from ipykernel.connect import get_connection_file

            connection_file = get_connection_file()
        except Exception:  # noqa: BLE001 - not in an ipykernel app
            return ""
    try:
        with open(connection_file, encoding="utf-8") as f:
            return str(json.load(f).get("kernel_name", "") or "")
    except (OSError, ValueError):
        return ""


def _capture(kernel_name: str, notebook_path: Path | None) -> Environment:
    from .environment import capture

    return capture(kernel_name=kernel_name, notebook_path=notebook_path)


def record_interactive(
    shell: Any,
    *,
    path: str | Path | None = None,
    name: str | None = None,
    tags: Iterable[str] = (),
    store: ProvStore | None = None,
) -> tuple[ProvenanceRecord, str]:
    """Record the notebook as saved, with this kernel's inputs and environment.

    Returns the stored record and a note for the user ("" or a caution).
    """
    import nbformat

    from .context import current, peek_pending_record_id, settle_pending_record_id

    explicit = path is not None and str(path).strip() != ""
    nb_path = locate_notebook(shell, path)
    note = ""
    stale = check_saved(nb_path, shell)
    if stale is not None and not explicit:
        # JupyterLab with scandeck's extension saves it when asked (as the panel's button does).
        from .frontend import FrontEnd

        if FrontEnd.of(shell).save(lambda: check_saved(nb_path, shell) is None):
            stale = None
    if stale is not None:
        if not explicit:
            raise NotebookNotFound(
                f"{nb_path.name} was saved {stale:.0f} s before the last cell ran: save the notebook "
                "first (Ctrl+S), then run %provenance save again"
            )
        note = f"note: {nb_path.name} was saved before the last cell ran; recording the file as saved"
    nb = nbformat.reads(nb_path.read_text(encoding="utf-8"), as_version=4)
    record = build_record(
        nb,
        kind="interactive",
        name=name or None,
        notebook_path=nb_path,
        tags=tags,
        inputs=current().inputs(),
        outputs=derived_outputs(),
        values=current().values(),
        environment=_capture(kernel_name_of(shell), nb_path),
        record_id=peek_pending_record_id(),
    )
    if store is None:
        from .store import open_store

        store = open_store()
    saved = save_stamped(store, record, nb)
    settle_pending_record_id()
    return saved, note


class Preview:
    """What ``%provenance save`` would record, for display (HTML and text)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def _rows(self) -> list[tuple[str, str]]:
        f = self.fields
        env = f["environment"]
        env_text = ", ".join(
            x
            for x in (
                f"Python {env.get('python', '?')}",
                env.get("platform", ""),
                f"kernel {env['kernel_name']}" if env.get("kernel_name") else "",
                f"{len(env.get('packages') or {})} packages",
                f"scandeck {env['packages']['scandeck']}" if "scandeck" in (env.get("packages") or {}) else "",
                f"git {str(env['git_commit'])[:10]}{' (dirty)' if env.get('git_dirty') else ''}"
                if env.get("git_commit")
                else "",
                env.get("error", ""),
            )
            if x
        )
        params = ", ".join(f"{k}={v!r}" for k, v in f["parameters"].items()) or "none"
        glued = ", ".join(f"{k}={_short(repr(v))}" for k, v in f.get("values", {}).items()) or "none"
        return [
            ("name", f["name"]),
            ("notebook", f["notebook"]),
            ("parameters", params),
            ("values", glued),
            ("inputs", f"{len(f['inputs'])} run(s)"),
            ("environment", env_text),
        ]

    def __repr__(self) -> str:
        lines = ["provenance (what %provenance save records)"]
        lines += [f"  {k:<12}{v}" for k, v in self._rows()]
        for i in self.fields["inputs"]:
            lines.append(f"    {_input_line(i)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(v)}</td></tr>"
            for k, v in self._rows()
        )
        inputs = self.fields["inputs"]
        table = ""
        if inputs:
            head = "".join(f"<th>{h}</th>" for h in ("uid", "scan_id", "catalog", "streams", "fields"))
            body = "".join(
                "<tr>"
                + "".join(
                    f"<td>{esc(str(v))}</td>"
                    for v in (
                        i["uid"][:8],
                        "" if i.get("scan_id") is None else i["scan_id"],
                        i.get("catalog", ""),
                        ", ".join(i.get("streams", [])),
                        ", ".join(i.get("fields", [])),
                    )
                )
                + "</tr>"
                for i in inputs
            )
            table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return (
            f"<div class='scandeck-provenance'><b>provenance</b> (what <code>%provenance save</code> "
            f"records)<table>{rows}</table>{table}</div>"
        )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _input_line(i: Mapping[str, Any]) -> str:
    scan = f"scan {i['scan_id']}" if i.get("scan_id") is not None else "no scan_id"
    streams = ",".join(i.get("streams", [])) or "-"
    fields = ",".join(i.get("fields", [])) or "-"
    return f"{i['uid'][:8]}  {scan}  streams {streams}  fields {fields}  {i.get('catalog', '')}".rstrip()


def preview(shell: Any, *, path: str | Path | None = None, name: str | None = None) -> Preview:
    """What ``%provenance save`` would record now; a missing notebook is shown, not raised."""
    import nbformat

    from .context import current
    from .notebooks import parameters_of

    parameters: dict[str, Any] = {}
    nb_path: Path | None = None
    try:
        nb_path = locate_notebook(shell, path)
        where = str(nb_path)
        stale = check_saved(nb_path, shell)
        if stale is not None:
            where += "  (saved before the last cell ran: save it before recording)"
        parameters = parameters_of(nbformat.reads(nb_path.read_text(encoding="utf-8"), as_version=4))
    except NotebookNotFound as err:
        where = f"not found: {err}"
    except (OSError, ValueError) as err:
        where = f"{nb_path}: unreadable ({err})"
    try:
        env = _capture(kernel_name_of(shell), nb_path).model_dump(mode="json")
    except Exception as err:  # noqa: BLE001 - show what failed instead of nothing
        env = {"error": f"environment capture failed: {type(err).__name__}: {err}"}
    return Preview(
        {
            "name": name or (nb_path.stem if nb_path else "notebook"),
            "notebook": where,
            "parameters": parameters,
            "values": current().values(),
            "inputs": current().inputs(),
            "environment": env,
        }
    )
