"""The run table's columns and cells as the API answers them (``GET columns``, ``GET table``, the detail).

Cells come from :func:`scandeck.runtable.rows.table_rows`, the one function every output
of the table uses (``Catalog.table``, ``scandeck ls --columns``, ``%scans``), so a column
name and a cell's state mean the same here as there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ScandeckError
from ..runtable.model import is_published
from ..runtable.rows import ColumnRef, published_columns, resolve_columns, table_rows
from ..sources.protocol import FieldIndex, RunFacts
from .errors import ApiError

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary

__all__ = ["MAX_COLUMNS", "cells_of", "column_info", "names_arg", "offered_columns", "run_cells", "specs_of"]

#: Most columns one table asks for.
MAX_COLUMNS = 100
#: Start fields the picker offers at most (a store's field index may know thousands).
MAX_FIELDS = 500
#: Runs whose data summaries tell which ``data.<key>`` columns to offer.
DATA_KEYS_FROM = 50
#: Stop-document fields every finished run has.
STOP_FIELDS = ("stop.exit_status", "stop.reason")


def _kind(ref: ColumnRef) -> str:
    if ref.kind == "computed":
        return "builtin" if getattr(ref.spec, "builtin", False) else "computed"
    if ref.kind in ("tags", "comments"):
        return "annotation"
    return ref.kind


def column_info(ref: ColumnRef) -> dict[str, Any]:
    """The API's COLUMN: ``{"name", "title", "units", "kind"}``."""
    return {"name": ref.name, "title": ref.title, "units": ref.units, "kind": _kind(ref)}


def names_arg(text: str) -> list[str]:
    """The column names of a ``columns=a,b`` argument; 400 ``BadParameter`` for too many."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) > MAX_COLUMNS:
        raise ApiError(400, "BadParameter", f"columns names {len(names)} columns; at most {MAX_COLUMNS}")
    return names


def specs_of(cat: Catalog) -> Mapping[str, Any]:
    """The catalog's computed columns by name (``ColumnsFileError`` when its file does not load)."""
    from ..runtable.columns import columns_for

    return columns_for(cat)


def offered_columns(cat: Catalog) -> dict[str, Any]:
    """``GET columns``: every column the picker offers for ``cat``, and its default columns."""
    source = cat.source
    facts = isinstance(source, RunFacts)
    specs = specs_of(cat)
    out: list[dict[str, Any]] = []
    for spec in specs.values():
        kind = "builtin" if spec.builtin else "computed"
        out.append({"name": spec.name, "title": spec.title or spec.name, "units": spec.units, "kind": kind})
    if facts:
        out += [{"name": n, "title": n, "units": None, "kind": "published"} for n in published_columns(source)]
        out += [{"name": n, "title": n, "units": None, "kind": "annotation"} for n in ("tags", "comments")]
    out += [{"name": n, "title": n, "units": None, "kind": "run"} for n in ("scan_id", "time", "status", "uid")]
    if isinstance(source, FieldIndex):
        fields = sorted(f for f in source.fields() if f not in ("uid", "time", "scan_id"))[:MAX_FIELDS]
        out += [{"name": f, "title": f, "units": None, "kind": "start"} for f in fields]
    out += [{"name": n, "title": n, "units": None, "kind": "stop"} for n in STOP_FIELDS]
    if isinstance(source, RunFacts):
        keys: set[str] = set()
        recent = [s.uid for s in cat.summaries(limit=DATA_KEYS_FROM)]
        for doc in source.facts(recent).values():
            keys.update(doc.get("data", {}))
        for key in sorted(keys):
            out += [
                {"name": f"data.{key}.{b}", "title": f"{key} {b}", "units": None, "kind": "data"}
                for b in ("min", "max")
            ]
    default = [s.name for s in specs.values() if not s.builtin] + (["tags"] if facts else [])
    return {"columns": out, "facts": facts, "default": default}


def cells_of(cat: Catalog, summaries: Sequence[RunSummary], refs: Sequence[ColumnRef]) -> dict[str, Any]:
    """``{uid: {column: CELL}}`` of these runs, CELL ``{"value", "state", "error"}``."""
    if not refs or not summaries:
        return {}
    return {
        row.uid: {name: cell.to_dict() for name, cell in row.cells.items()}
        for row in table_rows(cat, summaries, refs)
    }


def run_cells(cat: Catalog, summary: RunSummary) -> dict[str, Any] | None:
    """The run's cells of every computed column, then of every value reruns published for it
    (the detail's Computed section and peak marks).

    None when the store keeps no cells or the columns file does not load (the table says why).
    """
    if not isinstance(cat.source, RunFacts):
        return None
    try:
        specs = specs_of(cat)
        refs = resolve_columns(cat, list(specs), specs, check_fields=False)
        held = cat.source.cells([summary.uid]).get(summary.uid, {})
        refs += [ColumnRef(n, "published", (n,), n) for n in sorted(held) if is_published(n)]
        return cells_of(cat, [summary], refs).get(summary.uid, {})
    except ScandeckError:
        return None
