"""``GET table.csv``: a search's runs and columns as CSV, read and written a page at a time.

Values are text a spreadsheet shows as they are: numbers as numbers, and text that a
spreadsheet would run as a formula (starting with ``= + - @``) quoted first. A cell that
is not a fresh value (stale, failed, running, pending) is named in the last column,
``cell_notes``, so an export never passes an old or missing value off as a current one.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..runtable.rows import ColumnRef, TableCell, resolve_columns, table_rows
from .cells import specs_of
from .handlers_runs import search_page
from .serialize import iso

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary
    from .catalogs import CatalogPool

__all__ = ["CSV_PAGE", "CsvExport", "csv_filename", "csv_header", "csv_rows", "csv_text"]

#: Runs read per page while a CSV is written (each page one search, one cells and one facts read).
CSV_PAGE = 500
#: Spreadsheets run a cell starting with one of these as a formula: such text gets a quote first.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: The columns every export starts with.
FIXED = ("uid", "scan_id", "time", "plan_name", "status")


def csv_text(value: Any) -> str:
    """A value as a CSV field: text a spreadsheet shows as is, never runs as a formula.

    Numbers stay numbers (``-0.5`` is not quoted); text starting with ``= + - @``, a tab
    or a carriage return gets a ``'`` first, as OWASP advises; lists (tags) are joined
    with ``"; "``.

    Examples
    --------
    >>> [csv_text(v) for v in (-0.5, "=1+1", ["Ni", "redo"], None, True, float("-inf"))]
    ['-0.5', "'=1+1", 'Ni; redo', '', 'true', "'-inf"]
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # inf, nan as words; -inf gets its quote (a spreadsheet would take it for a formula)
        return repr(value) if math.isfinite(value) else csv_text(repr(value))
    if isinstance(value, (list, tuple)):
        # Only a field's start makes a formula: the joined text is checked once, below.
        text = "; ".join(v if isinstance(v, str) else csv_text(v) for v in value)
    else:
        item = getattr(value, "tolist", None)  # numpy scalars, without importing numpy
        if callable(item) and not isinstance(value, str):
            return csv_text(item())
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _note(name: str, cell: TableCell) -> str | None:
    if cell.state == "failed":
        return f"{name}: failed ({cell.error})"
    if cell.state in ("stale", "running", "pending"):
        return f"{name}: {cell.state}"
    return None


def csv_header(refs: Sequence[ColumnRef]) -> list[str]:
    """The CSV's first row: the run's identity, the picked columns (with units), then ``cell_notes``."""
    return [*FIXED, *(r.header for r in refs if r.name not in FIXED), "cell_notes"]


def csv_rows(cat: Catalog, summaries: Sequence[RunSummary], refs: Sequence[ColumnRef]) -> list[list[str]]:
    """CSV rows of runs: values as text (:func:`csv_text`); ``cell_notes`` names every cell that
    is not a fresh value (stale, failed with its error, running, pending)."""
    picked = [r for r in refs if r.name not in FIXED]
    rows = table_rows(cat, summaries, picked) if picked else []
    by_uid = {row.uid: row for row in rows}
    out = []
    for s in summaries:
        plan = (s.start or {}).get("plan_name")
        line = [csv_text(s.uid), csv_text(s.scan_id), iso(s.time) or "", csv_text(plan), csv_text(s.status)]
        notes = []
        cells = by_uid[s.uid].cells if s.uid in by_uid else {}
        for ref in picked:
            cell = cells[ref.name]
            value = iso(cell.value) if ref.name == "time" else cell.value
            line.append(csv_text(value))
            note = _note(ref.name, cell)
            if note:
                notes.append(note)
        line.append(csv_text("; ".join(notes)))
        out.append(line)
    return out


def _csv_chunk(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


class CsvExport:
    """The pages of a CSV export, read one at a time (each in the server's thread pool)."""

    def __init__(self, pool: CatalogPool, name: str, q: str, columns: list[str]) -> None:
        self.pool, self.name, self.q, self.columns = pool, name, q, columns
        self.before: tuple[float, int] | None = None
        self.done = False
        self.rows = 0

    def first(self) -> str:
        """The header and the first page; raises the search's or the columns' errors (a 4xx)."""
        view, *_ = search_page(self.pool, self.name, self.q, 1, None)
        self.view = view
        self.refs = resolve_columns(view, self.columns, specs_of(view)) if self.columns else []
        return _csv_chunk([csv_header(self.refs)]) + self.next()

    def next(self) -> str:
        """The next page's rows ("" once done)."""
        if self.done:
            return ""
        view = self.view
        page = view.source.search(view.query, limit=CSV_PAGE + 1, before=self.before)
        more = len(page) > CSV_PAGE
        page = page[:CSV_PAGE]
        if page:
            last = page[-1]
            self.before = (float(last.time), int(last.seq))
        self.done = not more
        self.rows += len(page)
        return _csv_chunk(csv_rows(view, page, self.refs))


def csv_filename(name: str) -> str:
    """The export's file name: the catalog's name (safe characters only) and the time, UTC."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "default"
    return f"scandeck-{stem}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}.csv"
