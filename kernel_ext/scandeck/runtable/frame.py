"""``Catalog.table()``: the run table as a pandas DataFrame, read page by page.

The rows come from :func:`scandeck.runtable.rows.table_rows` (as every other view of
the table); this module only pages through the search, asks the column service to
compute what is missing, and builds the DataFrame. pandas is imported when a table
is asked for, not before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidQuery
from ..sources.protocol import RunFacts, RunSummary
from .model import Cell
from .rows import ColumnRef, ColumnSpecLike, TableRow, cell_state, column_specs, resolve_columns, table_rows

if TYPE_CHECKING:
    import pandas

    from ..catalog import Catalog

__all__ = ["PAGE", "catalog_table", "default_columns", "pages"]

#: Runs read (and their cells and facts asked for) per page.
PAGE = 500


def default_columns(catalog: Catalog, specs: Mapping[str, ColumnSpecLike]) -> list[str]:
    """``scan_id, time, plan_name, status``, the catalog's computed columns, then ``tags``.

    On a store without facts, only the computed columns read from the index row
    (``duration``, ``events``) and no tags.
    """
    facts = isinstance(catalog.source, RunFacts)
    computed = [n for n, s in specs.items() if n != "status" and (facts or s.summary_only)]
    return ["scan_id", "time", "plan_name", "status", *computed, *(["tags"] if facts else [])]


def pages(catalog: Catalog, limit: int | None) -> Iterator[list[RunSummary]]:
    """The catalog's runs, newest first, in pages of at most :data:`PAGE` (``limit`` in all)."""
    before = None
    left = limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = catalog.source.search(catalog.query, limit=size, before=before)
        if page:
            yield page
        if len(page) < size:
            return
        before = (page[-1].time, page[-1].seq)
        if left is not None:
            left -= len(page)


def _pending_ended(rows: list[TableRow]) -> dict[str, list[str]]:
    """Per run uid, the computed columns of ended runs still pending, or computed while the run ran
    (a value of part of its data): what ``compute`` computes, as a column service would."""
    pending = {
        row.uid: [name for name, c in row.cells.items() if c.state in ("pending", "running")]
        for row in rows
        if row.summary.status != "running"
    }
    return {uid: names for uid, names in pending.items() if names}


def _compute_pending(catalog: Catalog, rows: list[TableRow], refs: Sequence[ColumnRef]) -> None:
    """Fill the cells pending or not final on ended runs (no column service computed them): computed
    now, in worker processes, stored when the store can, and shown as computed even when it cannot."""
    from .service import compute_now

    by_names: dict[tuple[str, ...], list[str]] = {}
    for uid, pending in _pending_ended(rows).items():
        by_names.setdefault(tuple(pending), []).append(uid)
    got: dict[str, dict[str, Cell]] = {}
    for names, uids in by_names.items():
        got.update(compute_now(catalog, uids, names))
    specs = {ref.name: ref.spec for ref in refs if ref.kind == "computed"}
    for row in rows:
        for name, cell in got.get(row.uid, {}).items():
            spec = specs.get(name)
            if spec is not None:
                row.cells[name] = cell_state(cell, spec)


def catalog_table(
    catalog: Catalog,
    columns: Sequence[str] | str | None = None,
    *,
    limit: int | None = None,
    compute: bool = True,
) -> pandas.DataFrame:
    """The runs of ``catalog`` as a DataFrame; see :meth:`scandeck.catalog.Catalog.table`."""
    import pandas as pd

    from ..timestamps import local_datetimes

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidQuery(f"limit must be a whole number of runs (0 or more), not {limit!r}")
    specs = column_specs(catalog)
    if columns is None:
        refs = resolve_columns(catalog, default_columns(catalog, specs), specs, check_fields=False)
    else:
        refs = resolve_columns(catalog, columns, specs)
    rows: list[TableRow] = []
    for page in pages(catalog, limit):
        page_rows = table_rows(catalog, page, refs)
        if compute:
            _compute_pending(catalog, page_rows, refs)
        rows += page_rows
    index = pd.Index([r.uid for r in rows], name="uid", dtype=object)
    names = [r.name for r in refs]

    def values(ref: ColumnRef) -> Any:
        found = [row.cells[ref.name].value for row in rows]
        if ref.kind == "run" and ref.name == "time":
            return pd.Series(local_datetimes([float("nan") if v is None else v for v in found]), index=index)
        return pd.Series(found, index=index, dtype=object).infer_objects()

    df = pd.DataFrame({name: values(ref) for name, ref in zip(names, refs, strict=True)}, index=index)
    df.columns = pd.Index(names, dtype=object)
    df.attrs["states"] = pd.DataFrame(
        {name: [row.cells[name].state for row in rows] for name in names}, index=index, columns=names
    )
    df.attrs["errors"] = pd.DataFrame(
        {name: [row.cells[name].error for row in rows] for name in names}, index=index, columns=names, dtype=object
    )
    df.attrs["units"] = {ref.name: ref.units for ref in refs if ref.units}
    return df
