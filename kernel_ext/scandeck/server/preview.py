"""A run's detail and a small plot's worth of one stream, read straight from the source.

Nothing here goes through :class:`~scandeck.catalog.Run` lookups or stream reads,
which note the run as read for provenance: the server reads for the panel, not for
a notebook, and must not grow a per-process list of every run it showed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

from ..documents import is_scalar
from ..exceptions import AmbiguousUID, FillError, NotAGrid, RunNotFound, StreamNotFound
from ..grid import Grid, dimensions, grid_of
from ..safe_text import printable
from ..sources.matching import keep_matching
from .serialize import jsonable, run_summary

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary, Source

__all__ = ["choose_fields", "choose_map", "downsample", "lookup", "preview", "run_detail", "streams_of"]

#: Detector fields shown when the descriptors hint none.
MAX_FALLBACK_Y = 4
#: Cells along each axis of a grid preview at most (a finer grid is shown at every n-th setpoint).
MAX_GRID_SIDE = 100


def lookup(cat: Catalog, ident: str) -> RunSummary:
    """The run with uid ``ident``, else the one run whose uid starts with it.

    Raises
    ------
    RunNotFound, AmbiguousUID
    """
    source = cat.source
    try:
        summary = source.get(ident)
        candidates = [summary]
    except RunNotFound:
        candidates = source.find_prefix(ident, limit=50)
    candidates = keep_matching(source, cat.query, candidates)
    if not candidates:
        raise RunNotFound(f"no run with uid or uid prefix {ident[:80]!r} in {cat.name}")
    if len(candidates) > 1:
        raise AmbiguousUID(ident, [s.uid for s in candidates])
    return candidates[0]


def streams_of(source: Source, uid: str) -> dict[str, list[dict[str, Any]]]:
    """The run's descriptors by stream name, in the order the streams appeared."""
    streams: dict[str, list[dict[str, Any]]] = {}
    for desc in source.descriptors(uid):
        streams.setdefault(desc.get("name", "primary"), []).append(desc)
    return streams


def _data_keys(descriptors: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = {}
    for desc in descriptors:
        for key, info in desc.get("data_keys", {}).items():
            keys.setdefault(key, dict(info))
    return keys


def run_detail(cat: Catalog, summary: RunSummary) -> dict[str, Any]:
    """``{"run", "start", "stop", "streams"}`` of the API's run detail (without ``code``)."""
    source = cat.source
    docs = {e.name: e.doc for e in source.documents(summary.uid, names=["start", "stop"])}
    counts = source.stream_counts(summary.uid)
    streams = []
    for name, descriptors in streams_of(source, summary.uid).items():
        keys = [
            {
                "key": key,
                "dtype": info.get("dtype"),
                "shape": list(info.get("shape") or []),
                "units": info.get("units") or None,
                "source": info.get("source"),
                "external": bool(info.get("external")),
            }
            for key, info in _data_keys(descriptors).items()
        ]
        streams.append(
            {"name": name, "num_events": sum(counts.get(d["uid"], 0) for d in descriptors), "data_keys": keys}
        )
    return {
        "run": run_summary(summary),
        "start": jsonable(docs.get("start", summary.start)),
        "stop": jsonable(docs.get("stop")),
        "streams": streams,
    }


# -- preview ---------------------------------------------------------------------------------------


def _scalar_number(info: Mapping[str, Any]) -> bool:
    """One number per event: internal, or external (read from its file) of shape [] or [1]."""
    return info.get("dtype") in ("number", "integer") and is_scalar(info)


def choose_fields(
    start: Mapping[str, Any], descriptors: Sequence[Mapping[str, Any]], stream: str
) -> tuple[str | None, list[str]]:
    """``(x, ys)`` to plot: x the stream's first hinted dimension field when it is a scalar
    number (else None, meaning ``seq_num``); ys the hinted fields of the descriptors that
    are scalar numbers and not dimensions, else up to :data:`MAX_FALLBACK_Y` other scalar numbers.

    Examples
    --------
    >>> desc = {"data_keys": {"det": {"dtype": "number", "shape": []},
    ...                       "motor": {"dtype": "number", "shape": []}},
    ...         "hints": {"det": {"fields": ["det"]}, "motor": {"fields": ["motor"]}}}
    >>> choose_fields({"hints": {"dimensions": [[["motor"], "primary"]]}}, [desc], "primary")
    ('motor', ['det'])
    """
    keys = _data_keys(descriptors)
    dims = [f for fields in dimensions(start, stream) for f in fields]
    x = dims[0] if dims and dims[0] in keys and _scalar_number(keys[dims[0]]) else None
    hinted: list[str] = []
    for desc in descriptors:
        for obj in (desc.get("hints") or {}).values():
            for field in (obj.get("fields") or []) if isinstance(obj, Mapping) else []:
                if isinstance(field, str) and field not in hinted:
                    hinted.append(field)
    # A scanned device's other fields (motor_setpoint next to motor) are positions, not signals.
    positions = set(dims)
    for desc in descriptors:
        for fields in (desc.get("object_keys") or {}).values():
            if isinstance(fields, list) and positions.intersection(fields):
                positions.update(f for f in fields if isinstance(f, str))
    ys = [f for f in hinted if f not in positions and f in keys and _scalar_number(keys[f])]
    if not ys:
        ys = [k for k, info in keys.items() if k != x and k not in positions and _scalar_number(info)]
        ys = ys[:MAX_FALLBACK_Y]
    return x, ys


def downsample(n: int, max_points: int) -> list[int]:
    """Indices of at most ``max_points`` rows of ``n``, evenly spread, first and last kept.

    Examples
    --------
    >>> downsample(10, 4), downsample(3, 5)
    ([0, 3, 6, 9], [0, 1, 2])
    """
    if n <= max_points:
        return list(range(n))
    if max_points == 1:
        return [n - 1]
    return [round(i * (n - 1) / (max_points - 1)) for i in range(max_points)]


def preview(cat: Catalog, summary: RunSummary, stream: str, max_points: int) -> dict[str, Any]:
    """The API's preview of one stream: x, the ys, downsampled to ``max_points`` rows."""
    source = cat.source
    streams = streams_of(source, summary.uid)
    descriptors = streams.get(stream)
    if descriptors is None:
        raise StreamNotFound(
            printable(
                f"run {summary.uid[:8]} has no stream {stream[:60]!r}; "
                f"its streams: {', '.join(streams) or 'none yet'}"
            )
        )
    x, ys = choose_fields(summary.start, descriptors, stream)
    keys = _data_keys(descriptors)
    chosen = choose_map(summary.start, keys, stream, ys)
    line = ([x] if x else []) + ys
    wanted = line + ([f for f in chosen[1:] if f not in line] if chosen else [])
    uids = {d["uid"] for d in descriptors}
    skipped: list[dict[str, str]] = []
    rows: list[tuple[int, list[Any]]] | None = None
    if any(keys[k].get("external") for k in wanted):
        try:
            rows = _filled_rows(source, summary.uid, uids, wanted)
        except FillError as err:  # a file gone or unreadable: plot what the documents hold
            external = [k for k in wanted if keys[k].get("external")]
            skipped = [{"name": k, "reason": printable(str(err))} for k in external]
            x = None if x in external else x
            ys = [y for y in ys if y not in external]
            chosen = None if chosen and any(f in external for f in chosen[1:]) else chosen
            wanted = [k for k in wanted if k not in external]
    if rows is None:
        rows = _event_rows(source, summary.uid, uids, wanted)
    column = {name: i for i, name in enumerate(wanted)}
    picked = [rows[i] for i in downsample(len(rows), max_points)]
    x_values = [row[1][column[x]] for row in picked] if x else [row[0] for row in picked]
    out: dict[str, Any] = {
        "stream": stream,
        "x": {"name": x or "seq_num", "values": jsonable(x_values)},
        "y": [{"name": y, "values": jsonable([row[1][column[y]] for row in picked])} for y in ys],
        "num_events": len(rows),
    }
    if chosen:
        out["map"] = _map(chosen, rows, column, max_points)
    if skipped:
        out["skipped"] = skipped
    return out


def choose_map(
    start: Mapping[str, Any], keys: Mapping[str, Mapping[str, Any]], stream: str, ys: Sequence[str]
) -> tuple[Grid | None, str, str, str] | None:
    """``(grid, x, y, z)`` of a 2-D preview, or None when a line it is.

    A scan of two dimensions or more (``hints.dimensions``; motors moving together
    are one) whose first fields are scalar numbers is a map of the first detector
    ``z`` of ``ys``: x the fast motor, y the slow one (as bluesky's LiveGrid and
    LiveScatter draw them). ``grid`` is the
    rectilinear grid of a ``grid_scan`` (a heatmap), None for a scatter.

    Examples
    --------
    >>> keys = {k: {"dtype": "number", "shape": []} for k in ("m1", "m2", "det")}
    >>> start = {"hints": {"dimensions": [[["m1"], "primary"], [["m2"], "primary"]]}}
    >>> choose_map(start, keys, "primary", ["det"])
    (None, 'm2', 'm1', 'det')
    """
    dims = [fields[0] for fields in dimensions(start, stream)]
    if len(dims) < 2 or not ys or not all(d in keys and _scalar_number(keys[d]) for d in dims[:2]):
        return None
    try:
        grid: Grid | None = grid_of(start, stream)
    except NotAGrid:
        grid = None
    if grid is not None and (len(grid.shape) != 2 or grid.dims != tuple(dims[:2])):
        grid = None  # a 3-D grid (or one naming other fields): its points as a scatter of the first two
    return grid, dims[1], dims[0], ys[0]


def _map(
    chosen: tuple[Grid | None, str, str, str],
    rows: list[tuple[int, list[Any]]],
    column: dict[str, int],
    max_points: int,
) -> dict[str, Any]:
    """The API's ``map``: a grid's cells (``z`` rows of ``y``, null where unmeasured) or scattered points."""
    grid, x, y, z = chosen
    if grid is not None:
        try:
            rows_at, cols_at = grid.cells([row[0] for row in rows])
        except NotAGrid:  # more rows than points: show them where they were measured
            grid = None
        else:
            import numpy as np

            slow, fast = grid.coords()
            iy = downsample(len(slow), MAX_GRID_SIDE)
            ix = downsample(len(fast), MAX_GRID_SIDE)
            # Only the shown cells are made (never the whole grid): a row's place among them, or -1.
            shown_y, shown_x = np.full(len(slow), -1), np.full(len(fast), -1)
            shown_y[iy], shown_x[ix] = np.arange(len(iy)), np.arange(len(ix))
            cells = np.full((len(iy), len(ix)), np.nan)
            for row, i, j in zip(rows, shown_y[rows_at], shown_x[cols_at], strict=True):
                value = _number(row[1][column[z]])
                if i >= 0 and j >= 0 and value is not None:
                    cells[i, j] = value
            return {
                "kind": "grid",
                "x": {"name": x, "values": jsonable(fast[ix])},
                "y": {"name": y, "values": jsonable(slow[iy])},
                "z": {"name": z, "values": jsonable(cells)},
                "shape": list(grid.shape),
            }
    picked = [rows[i] for i in downsample(len(rows), max_points)]
    return {
        "kind": "scatter",
        **{
            axis: {"name": name, "values": jsonable([row[1][column[name]] for row in picked])}
            for axis, name in (("x", x), ("y", y), ("z", z))
        },
    }


def _number(value: Any) -> float | None:
    """A cell's value: a number, else None (NaN on the grid)."""
    return float(value) if isinstance(value, Real) and not isinstance(value, bool) else None


def _event_rows(source: Source, uid: str, uids: set[str], wanted: list[str]) -> list[tuple[int, list[Any]]]:
    """``(seq_num, values)`` of the stream's events, read straight from the documents."""
    rows: list[tuple[int, list[Any]]] = []
    for _, name, doc in source.documents(uid, names=("event", "event_page"), descriptors=uids):
        if doc.get("descriptor") not in uids:
            continue
        data = doc["data"]
        if name == "event":
            rows.append((doc["seq_num"], [data.get(k) for k in wanted]))
        else:
            columns = [data.get(k) or [None] * len(doc["seq_num"]) for k in wanted]
            rows.extend((seq, [col[i] for col in columns]) for i, seq in enumerate(doc["seq_num"]))
    rows.sort(key=lambda row: row[0])
    return rows


def _filled_rows(source: Source, uid: str, uids: set[str], wanted: list[str]) -> list[tuple[int, list[Any]]]:
    """Rows of a stream with external scalars, read through their files as ``read()`` does."""
    from ..reading import STREAM_DOCUMENTS, collect, columns

    table = collect(source.documents(uid, names=STREAM_DOCUMENTS, descriptors=uids), uids, fill=wanted)
    _, seq, cols = columns(table)
    values = [cols[k].tolist() for k in wanted]
    return [(int(s), [col[i] for col in values]) for i, s in enumerate(seq.tolist())]
