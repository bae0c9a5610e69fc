"""The one place that turns runs and column names into table rows.

``Catalog.table``, ``scandeck ls --columns``, ``%scans --columns`` and the panel's
table all call :func:`resolve_columns` then :func:`table_rows`, so a column name
means the same thing everywhere and a stale or failed value is marked the same way.

A column is one of:

- a computed column of the catalog (``peak_cen``, a built-in such as ``duration``),
  also spelled ``columns.peak_cen``;
- a value a notebook published for the run (``scandeck.glue`` in a rerun pointed at it):
  ``<record name>.<value name>`` (``peak-fit.cen``), also spelled ``columns.peak-fit.cen``;
  the store's runs tell which there are (:func:`published_columns`);
- ``tags`` (the run's current tags, a list) or ``comments`` (every comment's text,
  one per line);
- a run column: ``uid``, ``scan_id``, ``time`` (start time, epoch seconds), ``status``;
- a start-document field (``plan_name``, ``md.sample``, also spelled ``start.plan_name``)
  or a stop-document field (``stop.exit_status``);
- a data summary: ``data.<key>.min`` or ``data.<key>.max`` over the run's streams.

Each cell has a *state*: ``ok``; ``stale`` (computed by code that has changed since:
the old value is kept); ``failed`` (the column's code raised or timed out: ``error``
says how, the value is None); ``running`` (computed while the run was running);
``pending`` (not computed yet, or a stop field of a running run); ``missing`` (the
run has no such field). A published value is ``ok`` or ``missing``: it has no code to
go stale, and only a rerun on the run makes it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..exceptions import InvalidQuery
from ..safe_text import printable
from ..sources.protocol import FactNames, FieldIndex, RunFacts, RunSummary, Source
from .model import Cell, is_published

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = [
    "RUN_COLUMNS",
    "STATES",
    "ColumnRef",
    "ColumnSpecLike",
    "TableCell",
    "TableRow",
    "cell_state",
    "column_specs",
    "published_columns",
    "resolve_columns",
    "table_rows",
]

#: The states of a table cell (see the module docstring).
STATES = ("ok", "stale", "failed", "running", "pending", "missing")
#: Columns every run has, read from its index row.
RUN_COLUMNS = ("uid", "scan_id", "time", "status")

State = Literal["ok", "stale", "failed", "running", "pending", "missing"]
Kind = Literal["computed", "published", "tags", "comments", "run", "start", "stop", "data"]
_MISSING = object()


class ColumnSpecLike(Protocol):
    """What a table needs of a computed column's spec (:class:`scandeck.runtable.columns.ColumnSpec`)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def units(self) -> str | None: ...
    @property
    def code_hash(self) -> str: ...
    @property
    def summary_only(self) -> bool: ...
    @property
    def func(self) -> Callable[[Any], Any]: ...


@dataclass(frozen=True)
class ColumnRef:
    """A resolved column: its canonical ``name`` (the key of :attr:`TableRow.cells`), what it reads.

    ``path`` is the field's path in its document (``("md", "sample")``), the data key
    and bound (``("theta", "min")``), or ``(name,)``.
    """

    name: str
    kind: Kind
    path: tuple[str, ...]
    title: str
    units: str | None = None
    spec: ColumnSpecLike | None = field(default=None, compare=False, repr=False)

    @property
    def header(self) -> str:
        """The column's heading: its name, with its units when it has some (``peak_cen (mm)``)."""
        return f"{self.name} ({self.units})" if self.units else self.name


@dataclass(frozen=True)
class TableCell:
    """One cell: its value, its state (:data:`STATES`), and the error of a failed one."""

    value: Any
    state: State = "ok"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "state": self.state, "error": self.error}


@dataclass(frozen=True)
class TableRow:
    """One run's row: its uid, index row, and a :class:`TableCell` per column name."""

    uid: str
    summary: RunSummary
    cells: dict[str, TableCell]


def column_specs(catalog: Catalog) -> Mapping[str, ColumnSpecLike]:
    """The catalog's computed columns (built-ins and its columns file's), by name."""
    from .columns import columns_for

    specs: Mapping[str, ColumnSpecLike] = columns_for(catalog)
    return specs


def published_columns(source: Source) -> list[str]:
    """The published-value columns (``<record name>.<value name>``) the store's runs have, sorted.

    One distinct query of the store's cell names (:class:`~scandeck.sources.protocol.FactNames`);
    none for a store that keeps no cells.
    """
    if not isinstance(source, FactNames):
        return []
    return sorted(name for name in source.cell_names() if is_published(name))


class _Published:
    """The published columns of a catalog, read from the store once, when a name needs them."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._names: set[str] | None = None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not is_published(name):
            return False
        if self._names is None:
            self._names = set(published_columns(self.source))
        return name in self._names


def _unknown(name: str, known: Collection[str], why: str = "") -> InvalidQuery:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return InvalidQuery(printable(f"no column {name}{hint}{why}"))


def _resolve(
    name: str,
    specs: Mapping[str, ColumnSpecLike],
    fields: set[str] | None,
    known: Collection[str],
    published: Container[str] = (),
) -> ColumnRef:
    if not isinstance(name, str) or not name.strip():
        raise InvalidQuery(f"a column name is a non-empty string, not {name!r}")
    name = name.strip()
    head, _, rest = name.partition(".")
    if name in ("tags", "comments"):
        return ColumnRef(name, name, (name,), name)  # type: ignore[arg-type]  # a Kind, checked above
    if name in RUN_COLUMNS:
        return ColumnRef(name, "run", (name,), name)
    if head == "columns" and rest not in specs and rest in published:
        return ColumnRef(rest, "published", (rest,), rest)
    if head == "columns" or (not rest and name in specs):
        col = rest if head == "columns" else name
        spec = specs.get(col)
        if spec is None:
            raise _unknown(name, known, "; computed columns: " + (", ".join(sorted(specs)) or "none"))
        return ColumnRef(col, "computed", (col,), spec.title or col, spec.units, spec)
    if head == "data":
        key, _, bound = rest.rpartition(".")
        if not key or bound not in ("min", "max"):
            raise InvalidQuery(printable(f"{name}: a data column is data.<key>.min or data.<key>.max"))
        return ColumnRef(name, "data", (key, bound), name)
    if head == "stop":
        if not rest:
            raise InvalidQuery("stop: name a field of the stop document, e.g. stop.exit_status")
        return ColumnRef(name, "stop", tuple(rest.split(".")), name)
    path = rest if head == "start" and rest else name
    if head != "start" and (fields is None or path not in fields) and name in published:
        return ColumnRef(name, "published", (name,), name)  # a start field of that name wins
    if fields is not None and path not in fields:
        raise _unknown(name, known)
    return ColumnRef(path, "start", tuple(path.split(".")), path)


def resolve_columns(
    catalog: Catalog,
    names: Sequence[str] | str,
    specs: Mapping[str, ColumnSpecLike] | None = None,
    *,
    check_fields: bool = True,
) -> list[ColumnRef]:
    """The columns ``names`` name, in order (see the module docstring for the forms).

    ``names``: a list, or one comma-separated text (``"peak_cen,tags"``).
    ``specs``: the computed columns (default: :func:`column_specs`). A start field
    that no stored run has is refused when the store keeps a field index
    (:class:`~scandeck.sources.protocol.FieldIndex`) and ``check_fields``: it is
    most likely a typo.

    Raises
    ------
    InvalidQuery
        An unknown column, naming it and suggesting the closest known name; the
        same column twice.

    Examples
    --------
    >>> [c.name for c in resolve_columns(cat, ["scan_id", "columns.peak_cen", "md.sample"])]  # doctest: +SKIP
    ['scan_id', 'peak_cen', 'md.sample']
    """
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    specs = column_specs(catalog) if specs is None else specs
    source = catalog.source
    fields = source.fields() if check_fields and isinstance(source, FieldIndex) else None
    known = {*specs, *(f"columns.{n}" for n in specs), "tags", "comments", *RUN_COLUMNS, *(fields or ())}
    published = _Published(source)
    refs = [_resolve(n, specs, fields, known, published) for n in names]
    seen: set[str] = set()
    for ref in refs:
        if ref.name in seen:
            raise InvalidQuery(printable(f"the column {ref.name} is asked for twice"))
        seen.add(ref.name)
    return refs


def _walk(doc: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    node: Any = doc
    for seg in path:
        if not isinstance(node, Mapping) or seg not in node:
            return _MISSING
        node = node[seg]
    return node


def cell_state(cell: Cell, spec: ColumnSpecLike) -> TableCell:
    """A stored cell as a table cell: failed, stale (other code), running (not final) or ok."""
    failed = cell.status != "ok"
    error = None
    if failed:
        error = cell.error or (f"timed out ({cell.status})" if cell.status == "timeout" else cell.status)
    value = None if failed else cell.value
    if cell.code_hash != spec.code_hash:
        return TableCell(value, "stale", error)
    if failed:
        return TableCell(None, "failed", error)
    if not cell.final:
        return TableCell(value, "running")
    return TableCell(value, "ok")


def _in_process(spec: ColumnSpecLike, catalog: Catalog, summary: RunSummary) -> TableCell:
    """A summary-only built-in computed here, from the index row (no document read)."""
    try:
        return TableCell(spec.func(catalog.run_of(summary)))
    except Exception as err:  # noqa: BLE001 - a failing column is a failed cell, never a failed table
        return TableCell(None, "failed", f"{type(err).__name__}: {err}")


def _computed(ref: ColumnRef, catalog: Catalog, summary: RunSummary, cells: Mapping[str, Cell]) -> TableCell:
    spec = ref.spec
    assert spec is not None  # resolve_columns gives every computed column its spec
    cell = cells.get(ref.name)
    if cell is not None:
        return cell_state(cell, spec)
    if spec.summary_only:
        return _in_process(spec, catalog, summary)
    return TableCell(None, "pending")


def _published(ref: ColumnRef, cells: Mapping[str, Cell]) -> TableCell:
    cell = cells.get(ref.name)
    if cell is None:
        return TableCell(None, "missing")
    if cell.status != "ok":
        return TableCell(None, "failed", cell.error or cell.status)
    return TableCell(cell.value)


def _plain(ref: ColumnRef, summary: RunSummary, facts: Mapping[str, Any]) -> TableCell:
    if ref.kind == "run":
        attr = {"uid": summary.uid, "scan_id": summary.scan_id, "time": summary.time, "status": summary.status}
        return TableCell(attr[ref.name])
    if ref.kind in ("tags", "comments"):
        return TableCell(facts.get(ref.kind, [] if ref.kind == "tags" else ""))
    if ref.kind == "data":
        value = _walk(facts.get("data"), ref.path)
    elif ref.kind == "stop":
        if summary.stop is None:
            return TableCell(None, "pending" if summary.status == "running" else "missing")
        value = _walk(summary.stop, ref.path)
    else:
        value = _walk(summary.start, ref.path)
    return TableCell(None, "missing") if value is _MISSING else TableCell(value)


def table_rows(
    catalog: Catalog,
    summaries: Sequence[RunSummary],
    columns: Sequence[str] | Sequence[ColumnRef],
    *,
    specs: Mapping[str, ColumnSpecLike] | None = None,
) -> list[TableRow]:
    """One :class:`TableRow` per run of ``summaries``, in order, with a cell per column.

    Reads the page's cells and facts with one ``source.cells`` and one
    ``source.facts`` call (only when a column needs them), never per run.

    Parameters
    ----------
    catalog
        The catalog the runs are in.
    summaries
        The runs' index rows (a page of a search).
    columns
        Column names (:func:`resolve_columns` resolves them) or resolved columns.
    specs
        The computed columns, when ``columns`` are names (default: :func:`column_specs`).

    Raises
    ------
    FactsNotSupported
        A column needs facts (tags, comments, data summaries, a stored computed
        column) and the store keeps none.
    """
    if isinstance(columns, str):
        columns = [n for n in columns.split(",") if n.strip()]
    names = [c for c in columns if isinstance(c, str)]
    resolved = iter(resolve_columns(catalog, names, specs) if names else [])
    refs = [c if isinstance(c, ColumnRef) else next(resolved) for c in columns]
    uids = [s.uid for s in summaries]
    stored = [r.name for r in refs if r.kind in ("computed", "published")]
    wants_facts = any(r.kind in ("tags", "comments", "data") for r in refs)
    needs_store = wants_facts or any(
        r.kind == "published" or (r.spec is not None and not r.spec.summary_only) for r in refs
    )
    source = catalog.source
    cells: dict[str, dict[str, Cell]] = {}
    facts: dict[str, dict[str, Any]] = {}
    if isinstance(source, RunFacts):
        if stored and uids:
            cells = source.cells(uids, stored)
        if wants_facts and uids:
            facts = source.facts(uids)
    elif needs_store:
        from .annotate import facts_of

        facts_of(source)  # raises FactsNotSupported, naming the store
    rows = []
    for s in summaries:
        run_cells, run_facts = cells.get(s.uid, {}), facts.get(s.uid, {})
        row = {
            r.name: _computed(r, catalog, s, run_cells)
            if r.kind == "computed"
            else _published(r, run_cells)
            if r.kind == "published"
            else _plain(r, s, run_facts)
            for r in refs
        }
        rows.append(TableRow(s.uid, s, row))
    return rows
