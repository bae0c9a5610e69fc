"""The panel's preview of a watched run: its newest file, as an image or as lines.

A watched run's streams hold one event per file, so the preview a scan gets (a
line of scalar numbers against the scan's motor) says nothing of it. Its preview
is the newest file of a stream (of the stream the newest file went to, unless one
is asked for), read through the run's own handler (:class:`scandeck.files.handler.
FileHandler`: the original when it still holds the recorded bytes, else a verified
copy):

* the stream's first data key of two dimensions or more is an image: the API's
  ``map`` of kind ``grid`` (pixel columns across, rows up, at most
  :data:`~scandeck.server.preview.MAX_GRID_SIDE` cells a side; a stack shows its
  first frame);
* else its keys of one dimension are lines, the first the x axis (two_theta
  against intensity for a CSV pattern);
* else (opaque bytes, scalars) nothing to plot.

``file`` names the file shown (its relative path); a file that cannot be had
or read gives an empty preview with ``skipped`` saying why, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import ScandeckError, StreamNotFound
from ..external.paths import resource_path
from ..files.layout import FILE_KEY, META_KEYS
from ..safe_text import printable
from .preview import MAX_FALLBACK_Y, MAX_GRID_SIDE, downsample, streams_of
from .serialize import jsonable
from .watched_runs import TAIL, newest_event, path_of

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import Entry, RunSummary, Source

__all__ = ["watched_preview"]


def _file_docs(source: Source, uid: str, event: Entry) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The resource and datum of the event's file: written just before it, so read backwards from it."""
    datum_id = (event.doc.get("data") or {}).get(FILE_KEY)
    if isinstance(datum_id, list):  # an event page
        datum_id = datum_id[-1] if datum_id else None
    if not isinstance(datum_id, str):
        return None
    stop, window = event.pos, TAIL
    datum: dict[str, Any] | None = None
    while stop > 0:
        start = max(0, stop - window)
        resources: dict[str, dict[str, Any]] = {}
        for entry in source.documents(uid, start=start, names=["resource", "datum"]):
            if entry.pos >= event.pos:
                break
            if entry.name == "resource":
                resources[entry.doc.get("uid", "")] = entry.doc
            elif entry.doc.get("datum_id") == datum_id:
                datum = entry.doc
        if datum is not None and datum.get("resource") in resources:
            return resources[datum["resource"]], datum
        stop, window = start, window * 2
    return None


def _empty(stream: str, count: int, path: str | None, reason: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stream": stream,
        "x": {"name": "seq_num", "values": []},
        "y": [],
        "num_events": count,
        "file": path,
    }
    if reason is not None:
        out["skipped"] = [{"name": FILE_KEY, "reason": printable(reason)}]
    return out


def _image(name: str, array: Any) -> dict[str, Any]:
    import numpy as np

    image = np.asarray(array, dtype=float)
    while image.ndim > 2:
        image = image[0]  # a stack: its first frame
    rows, cols = image.shape
    iy, ix = downsample(rows, MAX_GRID_SIDE), downsample(cols, MAX_GRID_SIDE)
    cells = image[np.ix_(iy, ix)]
    return {
        "kind": "grid",
        "x": {"name": "column (px)", "values": ix},
        "y": {"name": "row (px)", "values": iy},
        "z": {"name": name, "values": jsonable(np.where(np.isfinite(cells), cells, np.nan))},
        "shape": [rows, cols],
    }


def watched_preview(cat: Catalog, summary: RunSummary, stream: str | None, max_points: int) -> dict[str, Any]:
    """The API's preview of a watched run: its newest file (of ``stream``, when given)."""
    source = cat.source
    streams = streams_of(source, summary.uid)
    if stream is not None and stream not in streams:
        raise StreamNotFound(
            printable(
                f"run {summary.uid[:8]} has no stream {stream[:60]!r}; "
                f"its streams: {', '.join(streams) or 'none yet'}"
            )
        )
    by_descriptor = {d["uid"]: name for name, descs in streams.items() for d in descs}
    wanted = None if stream is None else [d["uid"] for d in streams[stream]]
    event = newest_event(source, summary.uid, max(summary.num_documents, 1), descriptors=wanted)
    if event is None:
        return _empty(stream or next(iter(streams), "primary"), 0, None, None)
    stream = by_descriptor.get(event.doc.get("descriptor", ""), stream or "")
    counts = source.stream_counts(summary.uid)
    count = sum(counts.get(d["uid"], 0) for d in streams.get(stream, []))
    shown = path_of(event.name, event.doc)
    keys: dict[str, Mapping[str, Any]] = {}
    for desc in streams.get(stream, []):
        keys.update(desc.get("data_keys") or {})
    arrays = {
        k: info
        for k, info in keys.items()
        if k != FILE_KEY and k not in META_KEYS and info.get("external") and len(info.get("shape") or []) >= 1
    }
    images = [k for k, info in arrays.items() if len(info["shape"]) >= 2]
    lines = [k for k, info in arrays.items() if len(info["shape"]) == 1]
    if not images and not lines:
        return _empty(stream, count, shown, None)
    docs = _file_docs(source, summary.uid, event)
    if docs is None:
        return _empty(stream, count, shown, "the file's resource is not in the run")
    resource, _datum = docs
    try:
        from ..files.handler import FileHandler

        handler = FileHandler(resource_path(resource), **(resource.get("resource_kwargs") or {}))
        if images:
            out = _empty(stream, count, shown, None)
            out["map"] = _image(images[0], handler(key=images[0]))
            return out
        import numpy as np

        values = {k: np.asarray(handler(key=k), dtype=float).ravel() for k in lines[: MAX_FALLBACK_Y + 1]}
    except (ScandeckError, OSError, TypeError, ValueError) as err:
        return _empty(stream, count, shown, f"{shown or 'the newest file'}: {err}")
    names = list(values)
    x = names[0] if len(names) > 1 else None
    ys = names[1:] if x else names
    n = min(len(v) for v in values.values())
    picked = downsample(n, max_points)
    return {
        "stream": stream,
        "x": {"name": x or "index", "values": jsonable(values[x][picked] if x else picked)},
        "y": [{"name": y, "values": jsonable(values[y][picked])} for y in ys],
        "num_events": count,
        "file": shown,
    }
