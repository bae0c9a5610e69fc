"""A run's detail and a small plot's worth of one stream, read straight from the source.

Nothing here goes through :class:`~scandeck.catalog.Run` lookups or stream reads,
which note the run as read for provenance: the server reads for the panel, not for
a notebook, and must not grow a per-process list of every run it showed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..documents import is_scalar
from ..exceptions import AmbiguousUID, FillError, RunNotFound, StreamNotFound
from ..safe_text import printable
from .serialize import jsonable, run_summary

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary, Source

__all__ = ["choose_fields", "downsample", "lookup", "preview", "run_detail", "streams_of"]

#: Detector fields shown when the descriptors hint none.
MAX_FALLBACK_Y = 4


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
    candidates = [s for s in candidates if cat.query.matches(s.start, s.stop)]
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
    dims: list[str] = []
    hints = start.get("hints")
    for entry in (hints.get("dimensions") if isinstance(hints, Mapping) else None) or []:
        try:
            fields, dim_stream = entry
        except (TypeError, ValueError):
            continue
        if dim_stream == stream and isinstance(fields, (list, tuple)):
            dims += [f for f in fields if isinstance(f, str)]
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
    wanted = ([x] if x else []) + ys
    uids = {d["uid"] for d in descriptors}
    keys = _data_keys(descriptors)
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
            wanted = ([x] if x else []) + ys
    if rows is None:
        rows = _event_rows(source, summary.uid, uids, wanted)
    picked = [rows[i] for i in downsample(len(rows), max_points)]
    x_values = [row[1][0] for row in picked] if x else [row[0] for row in picked]
    offset = 1 if x else 0
    out = {
        "stream": stream,
        "x": {"name": x or "seq_num", "values": jsonable(x_values)},
        "y": [{"name": y, "values": jsonable([row[1][offset + j] for row in picked])} for j, y in enumerate(ys)],
        "num_events": len(rows),
    }
    if skipped:
        out["skipped"] = skipped
    return out


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
