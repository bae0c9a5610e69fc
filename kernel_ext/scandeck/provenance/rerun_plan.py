"""Planning a rerun: everything decided before a kernel starts.

The record and its executed notebook, the targets (every scan resolved first: a
scan that is not in the catalog stops the batch with
:class:`~scandeck.exceptions.RunNotFound` naming it, and nothing runs), the
parameters (the record's, the caller's overrides, the scan parameter set to each
target's uid) and one task per target. :mod:`.rerun` executes a plan.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import AmbiguousUID, RerunSetupError, RunNotFound
from ..sources.matching import keep_matching
from .batch import DEFAULT_SCAN_PARAMETER, SCAN_PARAMETER_ENV

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from ..catalog import Catalog
    from .record import ProvenanceRecord
    from .store import ProvStore


__all__ = [
    "CATALOG_PARAMETER",
    "DEFAULT_SCAN_PARAMETER",
    "LOCAL_EXECUTORS",
    "RerunPlan",
    "Target",
    "fresh_notebook",
    "parameter_names",
    "plan",
    "record_catalog",
    "resolve_targets",
    "safe_name",
    "scan_parameter_of",
]

#: Executors whose kernels start on this machine: the kernel is checked before anything runs.
LOCAL_EXECUTORS = ("local", "local-cold")
#: The parameter set to ``catalog`` when given, if the notebook's parameters cell defines it
#: (the convention of ``scandeck run --catalog``).
CATALOG_PARAMETER = "catalog"


@dataclass(frozen=True)
class Target:
    """A scan to rerun on."""

    uid: str
    scan_id: int | None = None

    @property
    def file_name(self) -> str:
        """``<scan_id>-<uid8>.ipynb`` (``noscan-<uid8>`` when the run has no scan_id)."""
        return f"{'noscan' if self.scan_id is None else self.scan_id}-{self.uid[:8]}.ipynb"


@dataclass
class RerunPlan:
    """Everything decided before a kernel starts: the record, the targets, the tasks."""

    record: ProvenanceRecord
    scan_parameter: str
    parameters: dict[str, Any]
    targets: list[Target]
    output_dir: Path
    tasks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: What every task shares (the notebook, kernel, store...): :meth:`task_for` adds a target.
    template: dict[str, Any] = field(default_factory=dict)

    def task_for(self, target: Target) -> dict[str, Any]:
        """The task that reruns the notebook on ``target`` (for targets found after planning)."""
        return {
            **self.template,
            "parameters": {**self.parameters, self.scan_parameter: target.uid},
            "output_path": str(self.output_dir / target.file_name),
            "uid": target.uid,
            "scan_id": target.scan_id,
        }


# -- targets -------------------------------------------------------------------------------------


def _lookup(catalog: Catalog, ident: str) -> Target:
    """The one run ``ident`` (uid or uid prefix) names; without noting it as read."""
    source = catalog.source
    try:
        summary = source.get(ident)
    except RunNotFound:
        candidates = source.find_prefix(ident, limit=50)
        candidates = keep_matching(source, catalog.query, candidates)
        if len(candidates) > 1:
            raise AmbiguousUID(ident, [c.uid for c in candidates]) from None
        if not candidates:
            raise RunNotFound(ident) from None
        summary = candidates[0]
    return Target(summary.uid, summary.scan_id)


def resolve_targets(catalog: Catalog, scans: Iterable[str] = (), query: str | None = None) -> list[Target]:
    """The runs to rerun on: ``scans`` (uids or uid prefixes) then the runs matching ``query``.

    Duplicates are dropped (first occurrence kept). Every scan is looked up before
    anything raises, so one error names *all* the scans that are missing or
    ambiguous.

    Raises
    ------
    RunNotFound
        Some scans are not in the catalog, or an ambiguous prefix (the message lists them).
    RerunSetupError
        Neither scans nor a query were given, or they select no run.
    """
    from ..queries import parse

    scans = [s for s in scans if s is not None]
    if not scans and not query:
        raise RerunSetupError("no scans to rerun on: give --scan UID (repeatable) and/or --query Q")
    targets: list[Target] = []
    missing: list[str] = []
    ambiguous: list[str] = []
    for ident in scans:
        try:
            targets.append(_lookup(catalog, str(ident)))
        except AmbiguousUID as err:
            ambiguous.append(f"{ident!r} ({len(err.matches)} runs)")
        except RunNotFound:
            missing.append(repr(str(ident)))
    if missing or ambiguous:
        parts = []
        if missing:
            parts.append(f"{'scan' if len(missing) == 1 else 'scans'} {', '.join(missing)} not in {catalog.name}")
        if ambiguous:
            parts.append(f"ambiguous uid prefix {', '.join(ambiguous)}: give more characters")
        raise RunNotFound("; ".join(parts) + "; nothing was run")
    if query:
        matched = catalog.search(parse(query)).summaries()
        targets += [Target(s.uid, s.scan_id) for s in reversed(matched)]  # oldest first: scan order
        if not matched and not scans:
            raise RerunSetupError(f"no run in {catalog.name} matches the query {query!r}; nothing was run")
    unique: dict[str, Target] = {}
    for target in targets:
        unique.setdefault(target.uid, target)
    return list(unique.values())


# -- the notebook ----------------------------------------------------------------------------------


def scan_parameter_of(nb: NotebookNode) -> str:
    """The parameter that takes the scan's uid: ``nb.metadata.scandeck.scan_parameter``, else scan_uid."""
    meta = nb.get("metadata", {}).get("scandeck", {}) or {}
    name = meta.get("scan_parameter") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name.isidentifier() else DEFAULT_SCAN_PARAMETER


def parameter_names(nb: NotebookNode) -> set[str]:
    """Names assigned at the top level of the cells tagged ``parameters`` (any value)."""
    names: set[str] = set()
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = "\n".join(line for line in _source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
    return names


def fresh_notebook(nb: NotebookNode) -> NotebookNode:
    """``nb`` ready to execute again: outputs, execution counts and old stamps cleared.

    A rerun that stops at a failing cell must not show the original run's outputs
    in the cells after it.
    """
    import copy

    from .notebooks import ERROR_MARKER_TAG

    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if ERROR_MARKER_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    meta = nb.setdefault("metadata", {}).get("scandeck")
    if isinstance(meta, Mapping) and "scan_parameter" in meta:
        nb["metadata"]["scandeck"] = {"scan_parameter": meta["scan_parameter"]}
    else:
        nb["metadata"].pop("scandeck", None)
    return nb


def _source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (the JSON file may hold it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _kernel(nb: NotebookNode, kernel_name: str | None, required: bool = True) -> tuple[str | None, dict[str, Any]]:
    """The kernel to use and how to start it; raises if it is ``required`` and not installed here."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ..exceptions import UnknownKernel
    from .notebooks import choose_kernel

    try:  # a cluster's workers may have kernels this machine lacks: not required then
        name, _ = choose_kernel(nb, kernel_name, required=required)
    except UnknownKernel as err:
        raise RerunSetupError(str(err)) from None
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return name, {}
    if not any("ipykernel" in part for part in spec.argv):
        return name, {}
    # At each start and stop ipykernel logs (unencrypted TCP, the interrupt before shutdown):
    # noise times N in a batch. Errors that matter reach the rerun's result as exceptions.
    options: dict[str, Any] = {"extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}
    if os.name == "posix":
        options["transport"] = "ipc"
    return name, options


# -- planning ----------------------------------------------------------------------------------------


def record_catalog(record: ProvenanceRecord) -> Catalog | None:
    """The catalog the record's first input was read from, if it still opens as a store path or URI.

    A ``memory://`` catalog lived in the recording process only; a store path that is
    gone is not created again; a catalog-file name is not trusted (it may name
    another catalog now) unless it is a store directory here.
    """
    from ..opening import catalog_name, open_catalog

    for inp in record.inputs:
        where = inp.catalog
        if not where:
            continue
        name = catalog_name(where)
        if name.kind == "uri" and where.startswith("memory://"):
            continue  # lives in the recording process only
        try:
            path = name.store_path
            if name.kind == "uri" or (path is not None and path.exists()):
                return open_catalog(where)
        except Exception:  # noqa: BLE001 - a stale catalog is only a guess gone wrong
            continue
    return None


def plan(
    record_id: str,
    *,
    catalog: Catalog,
    store: ProvStore,
    scans: Iterable[str] = (),
    query: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    kernel_name: str | None = None,
    catalog_target: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
    check_kernel: bool = True,
    targets: list[Target] | None = None,
) -> RerunPlan:
    """Check everything and build the tasks, without starting a kernel or writing a file.

    ``catalog_target`` (the ``--catalog`` text) is exported to the kernels as
    ``$SCANDECK_CATALOG`` and set as the ``catalog`` parameter when the notebook
    defines one and ``parameters`` do not set it.
    """
    from ..opening import catalog_name

    record = store.get(record_id)
    # Plain JSON, not nbformat: importing nbformat costs ~1 s here (jsonschema's format checkers),
    # and the workers read and validate the notebook anyway.
    nb = fresh_notebook(json.loads(store.notebook_bytes(record)))
    scan_param = scan_parameter_of(nb)
    defined = parameter_names(nb) | set(record.parameters)
    if scan_param not in defined:
        raise RerunSetupError(
            f"the notebook of record {record.id[:8]} has no parameter {scan_param!r}, so a rerun cannot "
            "point it at another scan; define it in a cell tagged 'parameters' (or name the parameter in "
            "nb.metadata.scandeck.scan_parameter) and record the notebook again"
        )
    if targets is None:
        targets = resolve_targets(catalog, scans, query)
    kernel, options = _kernel(nb, kernel_name, required=check_kernel)

    params = dict(record.parameters)
    env: dict[str, str] = {}
    if scan_param != DEFAULT_SCAN_PARAMETER:  # the kernel's entry points read the run it names
        env[SCAN_PARAMETER_ENV] = scan_param
    notes: list[str] = []
    if catalog_target:
        value = catalog_name(catalog_target).portable()  # the kernels run in another directory
        env["SCANDECK_CATALOG"] = value
        if CATALOG_PARAMETER in defined and CATALOG_PARAMETER not in (parameters or {}):
            params[CATALOG_PARAMETER] = value
    params.update(parameters or {})
    unknown = sorted(set(parameters or {}) - defined)
    if unknown:
        notes.append(
            f"note: the notebook's parameters cell does not define {', '.join(unknown)}; "
            "papermill injects them anyway"
        )
    if scan_param in (parameters or {}):
        notes.append(f"note: -p {scan_param} is replaced by each target's uid")

    default = Path("reruns") / f"{safe_name(record.name)}-{record.id[:8]}"
    out = Path(output_dir) if output_dir is not None else default
    out = out.expanduser().absolute()
    cwd = None
    if record.notebook_path and Path(record.notebook_path).parent.is_dir():
        cwd = str(Path(record.notebook_path).parent)  # relative paths in the notebook keep working
    template = {
        "notebook": _notebook_text(nb),
        "name": record.name,
        "parent": record.id,
        "tags": list(tags),
        "store": str(store.directory),
        "kernel_name": kernel,
        "extra_arguments": options.get("extra_arguments", []),
        "transport": options.get("transport", "tcp"),
        "cwd": cwd,
        "env": env,
        "timeout": timeout,
    }
    the_plan = RerunPlan(record, scan_param, params, targets, out, [], notes, template)
    the_plan.tasks = [the_plan.task_for(target) for target in targets]
    return the_plan


def safe_name(name: str) -> str:
    """A record name made safe as a directory name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return cleaned or "notebook"


def _notebook_text(nb: NotebookNode) -> str:
    return json.dumps(nb, ensure_ascii=False)
