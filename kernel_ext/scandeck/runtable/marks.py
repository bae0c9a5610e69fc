"""How a table cell's value and state are shown in ``scandeck ls`` and ``%scans``.

A terminal has no tooltip: a stale value ends in ``*``, a failed cell is ``!``, a
value computed while its run was running ends in ``~``, a value not computed yet is
``?``; a legend line under the table explains the marks it used. The notebook's
HTML table marks them with classes and puts the error in a tooltip
(:mod:`scandeck.notebook.display`). Both build their extra columns here, from the
rows of :func:`scandeck.runtable.rows.table_rows`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..listing import ExtraColumn, cell
from ..safe_text import printable
from .rows import ColumnRef, TableCell, TableRow

__all__ = ["LEGEND", "MARKS", "extra_columns", "legend", "text_cell", "value_text"]

#: The mark each state adds to a cell's text (``ok`` and ``missing`` add none).
MARKS = {"stale": "*", "failed": "!", "running": "~", "pending": "?"}
#: What each mark means, for the legend line.
LEGEND = {
    "stale": "stale: the column's code changed since (being recomputed)",
    "failed": "failed: the column's code raised or timed out",
    "running": "computed while the run was running",
    "pending": "not computed yet ('scandeck columns serve' or the Jupyter server computes them)",
}


def value_text(ref: ColumnRef, value: Any, width: int = 28) -> str:
    """A cell's value as short text: numbers to 6 significant digits, tags comma-separated,
    comments one after another (``|`` between them); escaped and cut to ``width``.

    Examples
    --------
    >>> value_text(ColumnRef("cen", "computed", ("cen",), "cen"), 0.123456789)
    '0.123457'
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, ".6g")
    if ref.kind == "comments" and isinstance(value, str):
        value = " | ".join(value.splitlines())
    return cell(value, width)


def text_cell(ref: ColumnRef, tc: TableCell) -> str:
    """The terminal text of a cell: its value and its state's mark."""
    mark = MARKS.get(tc.state, "")
    if tc.state == "failed":
        return mark
    if tc.state == "stale" and tc.value is None and tc.error:
        return MARKS["failed"] + mark  # failed, by code that has changed since
    return value_text(ref, tc.value) + mark


def _numeric(ref: ColumnRef, rows: Sequence[TableRow]) -> bool:
    values = [r.cells[ref.name].value for r in rows]
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def extra_columns(
    refs: Sequence[ColumnRef], rows: Sequence[TableRow], render: Callable[[ColumnRef, TableCell], str]
) -> list[ExtraColumn]:
    """The ``--columns`` of a run table: each column's header and its cells as ``render`` writes them."""
    by_uid: Mapping[str, TableRow] = {r.uid: r for r in rows}

    def column(ref: ColumnRef) -> ExtraColumn:
        return ExtraColumn(
            ref.header,
            lambda s: render(ref, by_uid[s.uid].cells[ref.name]) if s.uid in by_uid else "",
            _numeric(ref, rows),
        )

    return [column(ref) for ref in refs]


def legend(rows: Sequence[TableRow], *, errors: int = 3) -> list[str]:
    """Lines under a terminal table: the marks used, and the first few distinct errors."""
    used = {c.state for r in rows for c in r.cells.values()}
    marks = [f"{MARKS[s]} {LEGEND[s]}" for s in MARKS if s in used]
    lines = ["   ".join(marks)] if marks else []
    seen: dict[str, str] = {}
    for r in rows:
        for name, c in r.cells.items():
            if c.state == "failed" and c.error and c.error not in seen and len(seen) < errors:
                seen[c.error] = f"! {name} of run {r.uid[:8]}: {c.error}"
    lines += [printable(line) for line in seen.values()]
    return lines
