"""Text rendering for ``scandeck ls`` and ``scandeck show``: run tables, run details, JSON rows.

Kept apart from the commands so that the rendering can be tested without a
store. Nothing here reads events: a listing works from index rows
(:class:`~scandeck.sources.protocol.RunSummary`) alone. Which columns a listing
has, how a value becomes cell text and how a table is laid out are shared with
the notebook's HTML tables and the provenance commands (:mod:`scandeck.listing`).
Every text shown passes through :func:`~scandeck.safe_text.printable`: metadata
never reaches the terminal as control sequences.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..listing import (
    DATA_KEY_HEADER,
    RunCells,
    cell,
    compact,
    data_key_rows,
    finite,
    local_time,
    render_table,
    run_table,
)
from ..safe_text import printable

if TYPE_CHECKING:
    from ..catalog import Run
    from ..runtable.rows import ColumnRef, TableRow
    from ..sources.protocol import RunSummary

__all__ = ["MAX_VALUE_LINES", "run_json", "run_rows", "show_run"]

#: Lines a metadata value may take in ``scandeck show`` before it is cut.
MAX_VALUE_LINES = 4


# -- listing --------------------------------------------------------------------------------


#: The cells of ``scandeck ls``: plain text, run values escaped by :func:`cell`.
TEXT_CELLS = RunCells(
    scan_id=lambda scan_id: "" if scan_id is None else str(scan_id),
    uid=lambda uid: uid[:8],
    meta=cell,
    status=str,
    events=lambda s: str(s.num_events),
    time=local_time,
)


def run_rows(
    summaries: Sequence[RunSummary], columns: Sequence[ColumnRef] = (), rows: Sequence[TableRow] = ()
) -> tuple[list[str], list[list[str]], set[int]]:
    """Header, rows and right-aligned column indices for ``scandeck ls`` (``--columns``: ``columns``
    and their ``rows``, from :func:`scandeck.runtable.rows.table_rows`; states marked)."""
    if not columns:
        return run_table(summaries, TEXT_CELLS)
    from ..runtable.marks import extra_columns, text_cell

    return run_table(summaries, TEXT_CELLS, extra_columns(columns, rows, text_cell))


def run_json(s: RunSummary, columns: Mapping[str, Any] | None = None) -> str:
    """One run as a line of strict JSON, for ``scandeck ls --json``.

    ``columns`` (``--columns``): each column's ``{"value", "state", "error"}``.
    C1 controls, bidi overrides and lone surrogates are ``\\uXXXX`` escapes too (JSON
    escapes only C0 ones), so the line is safe on a terminal and parses the same.
    """
    return printable(
        json.dumps(
            finite(
                {
                    "uid": s.uid,
                    "scan_id": s.scan_id,
                    "plan_name": s.start.get("plan_name"),
                    "status": s.status,
                    "num_events": s.num_events,
                    "num_documents": s.num_documents,
                    "time": s.time,
                    "start_time": local_time(s.time),
                    "start": s.start,
                    "stop": s.stop,
                    **({"columns": columns} if columns is not None else {}),
                }
            ),
            default=str,
            ensure_ascii=False,
        )
    )


# -- one run ----------------------------------------------------------------------------------


def _fields(doc: Mapping[str, Any], keys: Iterable[str], indent: str = "  ") -> list[str]:
    """``key  value`` lines; long values wrap under the value column."""
    keys = list(keys)
    if not keys:
        return []
    width = max(len(printable(k)) for k in keys)
    lines = []
    for key in keys:
        value = doc.get(key)
        text = printable(compact(value))
        if key == "time" and isinstance(value, (int, float)):
            text = f"{value!r}  ({local_time(value)})"
        lead = f"{indent}{printable(key).ljust(width)}  "
        wrapped = textwrap.wrap(text, 100 - len(lead), break_on_hyphens=False) or [""]
        if len(wrapped) > MAX_VALUE_LINES:
            # plan_args often hold device reprs with whole arrays: the gist is enough here.
            cut = sum(len(w) for w in wrapped[MAX_VALUE_LINES:])
            wrapped = [*wrapped[:MAX_VALUE_LINES], f"... ({cut} more characters)"]
        lines.append((lead + wrapped[0]).rstrip())
        lines.extend(" " * len(lead) + more for more in wrapped[1:])
    return lines


def show_run(run: Run, note: str = "") -> str:
    """Everything ``scandeck show`` prints about one run (reads descriptors, not events)."""
    summary = run.refresh()
    start, stop = run.start, run.stop
    out = [f"run {run.uid}"]
    if note:
        out.append(f"  ({note})")
    overview = {
        "scan_id": summary.scan_id,
        "status": summary.status,
        "plan": start.get("plan_name"),
        "start time": local_time(start.get("time")),
        "stop time": "-",
        "events": summary.num_events,
        "documents": summary.num_documents,
    }
    if stop is not None:
        took = stop.get("time", 0) - start.get("time", 0)
        overview["stop time"] = f"{local_time(stop.get('time'))}  ({took:.1f} s)"
    out += _fields(overview, overview)

    out += ["", "start document"]
    out += _fields(start, sorted(start))

    out += ["", "stop document"]
    if stop is None:
        why = {
            "running": "none yet: the run is still being written",
            "incomplete": "none: the writer went away without one",
        }
        out.append(f"  {why.get(summary.status, 'none')}")
    else:
        out += _fields(stop, [k for k in ("exit_status", "reason", "num_events") if k in stop])

    out += ["", "streams"]
    names = list(run)
    if not names:
        out.append("  none yet")
    for name in names:
        stream = run[name]
        n = len(stream)
        out.append(f"  {name}: {n} event{'s' if n != 1 else ''}")
        table = render_table(DATA_KEY_HEADER, data_key_rows(stream.data_keys))
        out += ["    " + line for line in table.splitlines()]
    # The uid, the note and stream names are run values too.
    return "\n".join(printable(line) for line in out)
