"""``%scans --columns``: the run table's extra columns as HTML cells, states marked.

The rows come from :func:`scandeck.runtable.rows.table_rows` (as ``scandeck ls
--columns`` and the panel's table); here a stale value is shown in italics, a
failed cell as a warning sign whose tooltip carries the error, a value computed
while the run ran and one not computed yet in grey, each with a tooltip saying so.
Every value is escaped (run values are user input).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..runtable.marks import LEGEND, extra_columns, value_text
from ..runtable.rows import ColumnRef, TableCell, resolve_columns, table_rows
from ..safe_text import printable

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..listing import ExtraColumn
    from ..sources.protocol import RunSummary

__all__ = ["ColumnCells", "cell_html", "column_cells"]

#: What a live listing calls on each read: the extra columns of these runs, and a footer line.
ColumnCells = Callable[[Sequence["RunSummary"]], tuple[list["ExtraColumn"], str]]


def _e(text: object) -> str:
    return html.escape(printable(str(text)), quote=True)


def cell_html(ref: ColumnRef, tc: TableCell) -> str:
    """One cell's HTML: its value escaped, its state as a class and a tooltip."""
    text = value_text(ref, tc.value)
    full = value_text(ref, tc.value, width=10_000)
    tip = f' title="{_e(full)}"' if full != text else ""
    if tc.state == "ok":
        return f"<span{tip}>{_e(text)}</span>" if tip else _e(text)
    if tc.state == "failed":
        return f'<span class="sd-failed" title="{_e("failed: " + (tc.error or "no message"))}">&#9888;</span>'
    if tc.state == "stale":
        why = (
            LEGEND["stale"]
            + (f"; last error: {tc.error}" if tc.error else "")
            + (f"; value: {full}" if tip else "")
        )
        shown = _e(text) if text or not tc.error else "&#9888;"  # a failure by the old code
        return f'<span class="sd-stale" title="{_e(why)}">{shown}</span>'
    if tc.state == "missing":
        return ""
    return f'<span class="sd-pending" title="{_e(LEGEND[tc.state])}">{_e(text) if text else "&hellip;"}</span>'


def column_cells(cat: Catalog, names: str | Sequence[str]) -> ColumnCells:
    """The extra columns ``names`` of ``cat``'s runs, resolved now (an unknown name raises now)."""
    refs = resolve_columns(cat, names)

    def cells(summaries: Sequence[RunSummary]) -> tuple[list[ExtraColumn], str]:
        rows = table_rows(cat, summaries, refs)
        used = [s for s in ("stale", "failed") if any(c.state == s for r in rows for c in r.cells.values())]
        marks = {"stale": "italic: stale (its code changed)", "failed": "\u26a0 failed (hover for the error)"}
        return extra_columns(refs, rows, cell_html), " · ".join(marks[s] for s in used)

    return cells
