"""Text rendering for the ``scandeck`` command line: run tables, run details, JSON rows.

Kept apart from :mod:`scandeck.cli` so that the parser and the error handling
stay readable, and so that the rendering can be tested without a store.
Nothing here reads events: a listing works from index rows
(:class:`~scandeck.sources.protocol.RunSummary`) alone.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import Run
    from .sources.protocol import RunSummary

__all__ = ["local_time", "render_table", "run_json", "run_rows", "show_run"]

#: Longest cell in a listing; longer values are cut with "..." so a row fits a terminal.
MAX_CELL = 28
#: Lines a metadata value may take in ``scandeck show`` before it is cut.
MAX_VALUE_LINES = 4
#: Start-document keys shown as their own ``ls`` column when any listed run has them.
OPTIONAL_COLUMNS = ("sample", "operator", "purpose")


def local_time(t: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the local time zone, or ``-`` when unknown.

    Examples
    --------
    >>> local_time(None)
    '-'
    """
    if t is None or not isinstance(t, (int, float)) or not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str, width: int = MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cell(value: Any) -> str:
    """One metadata value as short table text.

    A sample is often a dict (``{"name": "Ni", ...}``): its name stands for it.

    Examples
    --------
    >>> cell({"name": "Ni", "composition": "Ni"}), cell(None), cell(["a", "b"])
    ('Ni', '', 'a, b')
    """
    if value is None:
        return ""
    if isinstance(value, Mapping):
        name = value.get("name")
        return _cut(str(name)) if name is not None else _cut(compact(value))
    if isinstance(value, (list, tuple)):
        return _cut(", ".join(str(v) for v in value))
    return _cut(str(value))


def compact(value: Any) -> str:
    """A value as one line of JSON (strings bare); non-JSON values fall back to ``str``."""
    if isinstance(value, str):
        return value
    return json.dumps(finite(value), default=str, ensure_ascii=False)


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as ``None``, so its JSON is strict (``jq`` rejects NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


# -- listing --------------------------------------------------------------------------------


def run_rows(summaries: Sequence[RunSummary]) -> tuple[list[str], list[list[str]], set[int]]:
    """Header, rows and right-aligned column indices for ``scandeck ls``.

    Optional metadata columns appear only when some listed run has that key, so
    a store without operators does not waste a column on blanks.
    """
    extra = [k for k in OPTIONAL_COLUMNS if any(s.start.get(k) is not None for s in summaries)]
    header = ["scan_id", "uid", "plan", *extra, "status", "events", "start time"]
    rows = []
    for s in summaries:
        rows.append([
            "" if s.scan_id is None else str(s.scan_id),
            s.uid[:8],
            cell(s.start.get("plan_name")),
            *(cell(s.start.get(k)) for k in extra),
            s.status,
            str(s.num_events),
            local_time(s.time),
        ])
    numeric = {0, len(header) - 2}
    return header, rows, numeric


def render_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], right: Collection[int] = ()
) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    rows = [list(r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def run_json(s: RunSummary) -> str:
    """One run as a line of strict JSON, for ``scandeck ls --json``."""
    return json.dumps(
        finite({
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
        }),
        default=str,
        ensure_ascii=False,
    )


# -- one run ----------------------------------------------------------------------------------


def _fields(doc: Mapping[str, Any], keys: Iterable[str], indent: str = "  ") -> list[str]:
    """``key  value`` lines; long values wrap under the value column."""
    keys = list(keys)
    if not keys:
        return []
    width = max(len(k) for k in keys)
    lines = []
    for key in keys:
        value = doc.get(key)
        text = compact(value)
        if key == "time" and isinstance(value, (int, float)):
            text = f"{value!r}  ({local_time(value)})"
        lead = f"{indent}{key.ljust(width)}  "
        wrapped = textwrap.wrap(text, 100 - len(lead), break_on_hyphens=False) or [""]
        if len(wrapped) > MAX_VALUE_LINES:
            # plan_args often hold device reprs with whole arrays: the gist is enough here.
            cut = sum(len(w) for w in wrapped[MAX_VALUE_LINES:])
            wrapped = [*wrapped[:MAX_VALUE_LINES], f"... ({cut} more characters)"]
        lines.append((lead + wrapped[0]).rstrip())
        lines.extend(" " * len(lead) + more for more in wrapped[1:])
    return lines


def _shape(shape: Any) -> str:
    if not shape:
        return "scalar"
    if isinstance(shape, (list, tuple)):
        return " x ".join(str(n) for n in shape)
    return str(shape)


def _data_key_rows(data_keys: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for key, info in data_keys.items():
        dtype = str(info.get("dtype", "?"))
        if info.get("dtype_numpy"):
            dtype += f" ({info['dtype_numpy']})"
        external = info.get("external")
        rows.append([
            key,
            dtype,
            _shape(info.get("shape")),
            str(info.get("units") or "-"),
            str(info.get("source") or "-"),
            f"yes ({external})" if external else "no",
        ])
    return rows


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
        header = ["key", "dtype", "shape", "units", "source", "external"]
        table = render_table(header, _data_key_rows(stream.data_keys))
        out += ["    " + line for line in table.splitlines()]
    return "\n".join(out)
