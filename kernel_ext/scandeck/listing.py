"""What a run listing shows, shared by ``scandeck ls`` and the notebook's HTML tables.

Pure helpers (no store access, no heavy imports) that decide which runs come
first, which optional metadata columns appear, and how a value becomes short
cell text; plus :func:`list_runs`, which reads the index rows of a listing from
a catalog; and :func:`render_table`, the text table of ``scandeck ls`` and of
the provenance and rerun summaries. :mod:`scandeck.cli.format` renders runs as
text, and :mod:`scandeck.notebook.display` as HTML.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .safe_text import printable

if TYPE_CHECKING:
    from .catalog import Catalog
    from .sources.protocol import RunSummary

__all__ = [
    "DATA_KEY_HEADER",
    "MAX_CELL",
    "ExtraColumn",
    "OPTIONAL_COLUMNS",
    "cell",
    "compact",
    "cut",
    "data_key_rows",
    "finite",
    "list_runs",
    "local_time",
    "local_time_offset",
    "num_points",
    "optional_columns",
    "render_table",
    "running_first",
    "shape_text",
]

#: Longest cell in a listing; longer values are cut with "..." so a row fits a terminal.
MAX_CELL = 28
#: Start-document keys shown as their own listing column when any listed run has them.
OPTIONAL_COLUMNS = ("sample", "operator", "purpose")
#: How many stale-looking open runs :func:`list_runs` examines to lift running runs to the top.
OPEN_RUNS_LOOKED_AT = 200


def local_time(t: float | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the local time zone, or ``-`` when unknown.

    Examples
    --------
    >>> local_time(None)
    '-'
    """
    if t is None or isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def local_time_offset(t: float | None) -> str:
    """:func:`local_time` with its UTC offset (``2026-12-06 03:20:23 UTC-03:00``), for a tooltip.

    Examples
    --------
    >>> local_time_offset(None)
    '-'
    """
    text = local_time(t)
    if text == "-":
        return text
    assert t is not None  # local_time said "-" otherwise
    offset = datetime.fromtimestamp(t).astimezone().strftime("%z")  # +0100, the offset at that moment
    return f"{text} UTC{offset[:3]}:{offset[3:5]}"


def cut(text: str, width: int = MAX_CELL) -> str:
    """``text`` cut to ``width`` characters, ending in "..." when it was longer."""
    return text if len(text) <= width else text[: width - 3] + "..."


def cell(value: Any, width: int = MAX_CELL) -> str:
    """One metadata value as short table text, control characters escaped (:func:`printable`).

    A sample is often a dict (``{"name": "Ni", ...}``): its name stands for it.
    Longer than ``width`` characters, it is cut (ending in "...").

    Examples
    --------
    >>> cell({"name": "Ni", "composition": "Ni"}), cell(None), cell(["a", "b"])
    ('Ni', '', 'a, b')
    >>> cell("\\x1b[2J")
    '\\\\u001b[2J'
    """
    if value is None:
        return ""
    if isinstance(value, Mapping):
        name = value.get("name")
        text = str(name) if name is not None else compact(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value)
    return cut(printable(text), width)


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


# -- which runs, which columns ---------------------------------------------------------------


def optional_columns(summaries: Iterable[RunSummary]) -> list[str]:
    """The :data:`OPTIONAL_COLUMNS` some listed run has (in that order).

    A store without operators does not waste a column on blanks.
    """
    summaries = list(summaries)
    return [k for k in OPTIONAL_COLUMNS if any(s.start.get(k) is not None for s in summaries)]


class ExtraColumn(NamedTuple):
    """A column added to a run table (``--columns``): its heading and each run's cell text."""

    header: str
    cell: Callable[[RunSummary], str]
    numeric: bool = False


class RunCells(NamedTuple):
    """How one kind of run table (terminal text, notebook HTML) writes each cell."""

    scan_id: Callable[[int | None], str]
    uid: Callable[[str], str]
    meta: Callable[[Any], str]
    status: Callable[[str], str]
    events: Callable[[RunSummary], str]
    time: Callable[[float], str]


def run_table(
    summaries: Sequence[RunSummary], cells: RunCells, columns: Sequence[ExtraColumn] = ()
) -> tuple[list[str], list[list[str]], set[int]]:
    """Header, rows and right-aligned column indices of a run table (``scandeck ls``, ``%scans``).

    Optional metadata columns appear only when some listed run has that key, so
    a store without operators does not waste a column on blanks. ``columns``
    (``--columns``) come after them, before the status.
    """
    asked = {c.header for c in columns}
    extra = [k for k in optional_columns(summaries) if k not in asked]  # --columns sample: shown once
    header = ["scan_id", "uid", "plan", *extra, *(c.header for c in columns), "status", "events", "start time"]
    rows = [
        [
            cells.scan_id(s.scan_id),
            cells.uid(s.uid),
            cells.meta(s.start.get("plan_name")),
            *(cells.meta(s.start.get(k)) for k in extra),
            *(c.cell(s) for c in columns),
            cells.status(s.status),
            cells.events(s),
            cells.time(s.time),
        ]
        for s in summaries
    ]
    first = 3 + len(extra)
    numeric = {first + i for i, c in enumerate(columns) if c.numeric}
    return header, rows, {0, len(header) - 2, *numeric}


def running_first(summaries: Iterable[RunSummary]) -> list[RunSummary]:
    """Running runs first, then the rest; each group newest first (start time, then seq)."""
    return sorted(summaries, key=lambda s: (s.status != "running", -_time(s.time), -s.seq))


def _time(t: Any) -> float:
    if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
        return float(t)
    return -math.inf


def num_points(start: Mapping[str, Any]) -> int | None:
    """The run's planned number of points (``start["num_points"]``) when it is a usable count."""
    n = start.get("num_points")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        return None
    return n


def list_runs(cat: Catalog, limit: int | None) -> list[RunSummary]:
    """The rows of a listing: running runs first, then the newest; index rows only (no events).

    A run still being written is what a user looks for first, even when an
    older one (a long scan) is still going while newer runs finished.
    """
    from .query import Key

    unstopped = ~Key("stop.exit_status").in_(["success", "abort", "fail"])
    running = [s for s in cat.search(unstopped).summaries(limit=OPEN_RUNS_LOOKED_AT) if s.status == "running"]
    if limit is not None:
        running = running[:limit]
    lifted = {s.uid for s in running}
    # The `limit` newest rows hold at most len(running) lifted ones: enough to fill up.
    rest = [s for s in cat.summaries(limit=limit) if s.uid not in lifted]
    rows = running + rest
    return rows if limit is None else rows[:limit]


# -- data keys -------------------------------------------------------------------------------


def shape_text(shape: Any) -> str:
    """A data key's shape as ``scalar`` or ``512 x 512``."""
    if not shape:
        return "scalar"
    if isinstance(shape, (list, tuple)):
        return " x ".join(str(n) for n in shape)
    return str(shape)


def external_kind(external: object) -> str:
    """A data key's ``external`` as one label: ophyd writes ``FILESTORE:``, other devices ``FILESTORE``.

    Examples
    --------
    >>> external_kind("FILESTORE:"), external_kind("FILESTORE"), external_kind("STREAM:")
    ('FILESTORE', 'FILESTORE', 'STREAM')
    """
    return str(external).removesuffix(":")


#: Column names of :func:`data_key_rows`.
DATA_KEY_HEADER = ("key", "dtype", "shape", "units", "source", "external")


def data_key_rows(data_keys: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row of :data:`DATA_KEY_HEADER` text per data key of a descriptor."""
    rows = []
    for key, info in data_keys.items():
        dtype = str(info.get("dtype", "?"))
        if info.get("dtype_numpy"):
            dtype += f" ({info['dtype_numpy']})"
        external = info.get("external")
        rows.append(
            [
                key,
                dtype,
                shape_text(info.get("shape")),
                str(info.get("units") or "-"),
                str(info.get("source") or "-"),
                f"yes ({external_kind(external)})" if external else "no",
            ]
        )
    return rows


def render_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Collection[int] = ()) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks.

    Cells are escaped with :func:`~scandeck.safe_text.printable` (run values are user input).

    Examples
    --------
    >>> print(render_table(["id", "n"], [["a", "1"], ["bb", "10"]], right={1}))
    id   n
    a    1
    bb  10
    """
    header = [printable(h) for h in header]
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
