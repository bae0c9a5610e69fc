"""A Tiled run's streams read by column and slice, straight from what TiledWriter stored.

bluesky-tiled-plugins' ``TiledWriter`` keeps each stream as a composite node: the
scalars of its events in one table, ``internal`` (columns ``seq_num``, ``time``,
each key and its ``ts_`` timestamp), and every other key as an array beside it,
rows first. Arrays of external data (ophyd-async's stream_resource/stream_datum,
and old-style resource/datum, which TiledWriter converts) are registered on the
server as data sources over the detector's files, so the *server* reads them: a
client without the files reads them all the same.

Here those nodes become a :class:`scandeck.reading.Table` (so ``to_xarray``,
``to_pandas`` and ``to_grid`` work unchanged), a lazy array per key, and row
counts. ``node`` is what ``container[uid]`` gives on a container client: the
plugin's ``BlueskyRunV3`` or a plain Tiled ``Container``.

Rows and events: row ``i`` of every part of a stream is the event with
``seq_num == i + 1`` (TiledWriter writes them in seq_num order from 1); an array
whose first axis holds several frames per event (``collections_per_event``) is
regrouped to one row per event, the shape the descriptor declares.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...documents import is_scalar, normalize, pack
from ...exceptions import StoreError, StreamNotFound, UnknownName
from ...safe_text import printable
from .connect import server_detail

if TYPE_CHECKING:
    import numpy as np

    from ...reading import Table

__all__ = [
    "INTERNAL",
    "ArrayPart",
    "StreamLayout",
    "descriptors_of",
    "owner",
    "resource_uid",
    "TiledArray",
    "reference",
    "run_container",
    "start_uid",
    "stream_array",
    "stream_lengths",
    "layout_of",
    "stream_layout",
    "stream_nodes",
    "stream_table",
]

#: The table of a stream's scalars (and the seq_num / time of its events).
INTERNAL = "internal"
_ROW_COLUMNS = ("seq_num", "time")
_TS = "ts_"


def run_container(node: Any) -> Any:
    """The run as a plain Tiled container (the plugin's ``BlueskyRunV3`` hides its parts)."""
    return getattr(node, "base", node)


def start_uid(metadata: Any) -> str | None:
    """The uid of the run's start document, from the run node's metadata (None before it is stored)."""
    return (metadata.get("start") or {}).get("uid")


def stream_nodes(node: Any) -> dict[str, Any]:
    """``{stream name: stream client}`` of a run, listed in one request (metadata included).

    The older layout with an intermediate ``streams`` node is followed too.
    """
    container = run_container(node)
    streams = dict(container.items())
    inner = streams.get("streams")
    if inner is not None and "BlueskyEventStream" not in {s.name for s in getattr(inner, "specs", ())}:
        streams = dict(run_container(inner).items())
    return streams


def _stream(node: Any, stream: str) -> Any:
    streams = stream_nodes(node)
    try:
        return streams[stream]
    except KeyError:
        have = ", ".join(printable(s) for s in sorted(streams)) or "none"
        shown = printable(stream)
        raise StreamNotFound(f"the run has no stream {shown!r} in Tiled; its streams: {have}") from None


def reference(resource_uid: str, index: int) -> str:
    """The reference of one event's external data: ``"{stream_resource uid}/{index}"``."""
    return f"{resource_uid}/{index}"


def resource_uid(descriptor_uid: str, key: str) -> str:
    """The synthetic stream_resource uid of an external key (TiledWriter keeps no resource uids)."""
    return f"sr-{descriptor_uid}-{key}"


@dataclass
class ArrayPart:
    """One array part of a stream, with how its rows map onto events."""

    key: str
    client: Any
    shape: tuple[int, ...]  # as stored
    event_shape: tuple[int, ...]  # one event's value
    per_event: int  # rows of the stored array per event (frames per event when concatenated)

    @property
    def events(self) -> int:
        """Complete events stored so far."""
        return self.shape[0] // self.per_event if self.shape else 0


@dataclass
class StreamLayout:
    """What a stream holds in Tiled: its metadata, table and arrays (one listing request)."""

    name: str
    metadata: dict[str, Any]
    table: Any | None  # the ``internal`` table client, or None (a stream of external data alone)
    arrays: dict[str, ArrayPart]
    parts: Any  # the stream's composite node as a plain container

    @property
    def data_keys(self) -> dict[str, dict[str, Any]]:
        return dict(self.metadata.get("data_keys") or {})

    @property
    def descriptor_uid(self) -> str:
        """The uid of the stream's first descriptor (its metadata's)."""
        return str(self.metadata.get("uid", ""))

    def table_rows(self) -> int:
        """Rows of the table so far: one request (the server counts them)."""
        if self.table is None:
            return 0
        return int(self.parts[f"{INTERNAL}/seq_num"].shape[0])

    def events(self) -> int:
        """Events stored so far: the table's rows, or (no table: a fly scan) the rows all arrays have."""
        if self.table is not None:
            return len(self.frame(["seq_num"]))  # not the server's count: a retried append repeats rows
        return min((p.events for p in self.arrays.values()), default=0)

    def frame(self, columns: list[str] | None = None) -> Any:
        """The table's rows (``columns`` only, with ``seq_num``), one per seq_num, in seq_num order.

        TiledWriter retries an append the server may have taken already ("the rows
        may be duplicated", it warns): a row repeated with the same values is kept
        once; rows of one seq_num that differ raise a StoreError naming it.
        """
        if self.table is None:
            raise StoreError(f"stream {printable(self.name)!r} has no table of events in Tiled")
        if columns is not None and "seq_num" not in columns:
            columns = ["seq_num", *columns]
        frame = self.table.read(columns=columns).sort_values("seq_num", kind="stable")
        repeated = frame["seq_num"].duplicated(keep=False)
        if not repeated.any():
            return frame
        for seq, rows in frame[repeated].groupby("seq_num"):
            packed = {pack(row) for row in rows.to_dict("records")}
            if len(packed) > 1:
                raise StoreError(
                    f"stream {printable(self.name)!r} holds {len(rows)} different rows of seq_num {seq} in Tiled; "
                    "which one the event had cannot be told"
                )
        return frame[~frame["seq_num"].duplicated(keep="first")]


def _event_geometry(
    key: str, shape: tuple[int, ...], info: dict[str, Any], stream: str
) -> tuple[tuple[int, ...], int]:
    """``(event shape, stored rows per event)`` of an array part, or a StoreError naming both shapes."""
    declared = tuple(int(n) for n in (info.get("shape") or []) if n is not None)
    event_shape: tuple[int, ...] = () if is_scalar(info) else declared
    if tuple(shape[1:]) == event_shape:
        return event_shape, 1
    # Concatenated frames: the descriptor's first axis counts frames per event.
    if event_shape and tuple(shape[1:]) == event_shape[1:] and event_shape[0] > 0:
        return event_shape, event_shape[0]
    if not event_shape and len(shape) == 2 and shape[1] == 1:  # a [1] scalar stored as (n, 1): squeezed
        return (), 1
    raise StoreError(
        f"the array {printable(key)!r} of stream {printable(stream)!r} in Tiled has shape {list(shape)}, "
        f"which does not hold events of the declared shape {list(declared)}; the run was written inconsistently"
    )


def stream_layout(node: Any, stream: str) -> StreamLayout:
    """The parts of ``stream``: its table and its arrays with their current shapes."""
    return layout_of(_stream(node, stream), stream)


def layout_of(client: Any, stream: str) -> StreamLayout:
    """The parts of a stream client (one of :func:`stream_nodes`), listed in one request."""
    metadata = dict(client.metadata)
    parts = getattr(client, "base", client)
    data_keys = metadata.get("data_keys") or {}
    table = None
    arrays: dict[str, ArrayPart] = {}
    for key, part in parts.items():
        if key == INTERNAL:
            table = part
            continue
        if getattr(part, "shape", None) is None:  # bytes, awkward, ...: what TiledWriter made of an unknown spec
            family = getattr(part, "structure_family", type(part).__name__)
            raise StoreError(
                printable(
                    f"key {key!r} of stream {stream!r} is stored in Tiled as {family}, not as an array; "
                    "its detector's files are in a format (spec) Tiled's server does not read as arrays"
                )
            )
        shape = tuple(int(n) for n in part.shape)
        event_shape, per_event = _event_geometry(key, shape, data_keys.get(key) or {}, stream)
        arrays[key] = ArrayPart(key, part, shape, event_shape, per_event)
    return StreamLayout(stream, metadata, table, arrays, parts)


class TiledArray:
    """One key of a stream, rows first, read from Tiled only by the slices asked for.

    ``dask.array.from_array(TiledArray(...), chunks=...)`` reads chunk by chunk.
    Frames stored concatenated (several per event) are regrouped per event.
    """

    def __init__(self, part: ArrayPart, rows: int | None = None) -> None:
        self._part = part
        self._rows = part.events if rows is None else rows
        self.shape: tuple[int, ...] = (self._rows, *part.event_shape)
        self.ndim: int = len(self.shape)
        self.dtype: Any = part.client.dtype

    def __len__(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        return f"<TiledArray {printable(self._part.key)!r} shape={self.shape} dtype={self.dtype}>"

    def __getitem__(self, index: Any) -> Any:
        import numpy as np

        index = index if isinstance(index, tuple) else (index,)
        first, rest = (index[0], index[1:]) if index else (slice(None), ())
        if isinstance(first, (int, np.integer)):
            i = int(first) + self._rows if int(first) < 0 else int(first)
            if not 0 <= i < self._rows:
                raise IndexError(f"row {int(first)} of {printable(self._part.key)!r}, which has {self._rows} rows")
            return self._read(i, i + 1)[0][rest]
        if isinstance(first, slice):
            start, stop, step = first.indices(self._rows)
            if step < 0:
                return self[(slice(None), *rest)][first]
            rows = self._read(start, max(start, stop))
            return rows[(slice(None, None, step), *rest)]
        return self._read(0, self._rows)[index]  # fancy indexing: read all rows, index locally

    def _read(self, start: int, stop: int) -> np.ndarray:
        import numpy as np

        part = self._part
        if stop <= start:
            return np.empty((0, *part.event_shape), dtype=self.dtype)
        f = part.per_event
        import httpx

        try:
            raw = np.asarray(part.client[start * f : stop * f])
        except httpx.HTTPError as err:  # read lazily (dask), outside the source's error mapping
            status = getattr(getattr(err, "response", None), "status_code", None)
            said = f"HTTP {status}: {server_detail(err)}" if status else type(err).__name__
            raise StoreError(
                f"Tiled could not read rows {start} to {stop - 1} of {printable(part.key)!r} ({said}); "
                "for detector data the server reads the files: are they still where the run says?"
            ) from None
        return raw.reshape((stop - start, *part.event_shape))


def stream_array(node: Any, stream: str, key: str) -> TiledArray:
    """One key of ``stream`` as a lazy array (rows first), for dask and slicing.

    A scalar key of the table is served from its column (``stream[key]``).

    Raises
    ------
    StreamNotFound
        The run has no such stream.
    UnknownName
        The stream has no such key (the message lists its keys); a ``KeyError``.
    """
    layout = stream_layout(node, stream)
    if key in layout.arrays:
        return TiledArray(layout.arrays[key])
    if key in layout.data_keys and layout.table is not None:
        column = layout.parts[f"{INTERNAL}/{key}"]
        shape = tuple(int(n) for n in column.shape)
        return TiledArray(ArrayPart(key, column, shape, shape[1:], 1))
    raise _unknown_key(layout, [key])


def _unknown_key(layout: StreamLayout, keys: Collection[str]) -> UnknownName:
    have = ", ".join(printable(k) for k in sorted(layout.data_keys))[:400] or "none"
    missing = ", ".join(printable(k) for k in keys)[:200]
    return UnknownName(f"stream {printable(layout.name)!r} has no key {missing}; its keys: {have}")


def _running(node: Any) -> bool:
    return not (run_container(node).metadata.get("stop") or {})


def stream_table(
    node: Any, stream: str, *, keys: Collection[str] | None = None, fill: bool | Collection[str] = True
) -> Table:
    """The rows of ``stream`` so far as a :class:`scandeck.reading.Table`, reading only the ``keys`` asked.

    Scalars come from one request to the stream's table (only the asked columns,
    plus ``seq_num`` and ``time``); array keys from their arrays, read through
    Tiled (the server reads external files). ``fill`` as in
    :func:`scandeck.reading.collect`: an external key not filled holds the
    references :func:`~.documents.canonical_documents` gives,
    ``"{stream_resource uid}/{index}"``.

    Rows are complete events only: while the run is being written its table and
    arrays may hold different numbers of rows (TiledWriter writes them
    separately), and the read is cut to the rows all asked keys have, so values
    never land on the wrong event. A *stopped* run whose parts disagree raises a
    :class:`~scandeck.exceptions.StoreError` naming both counts instead: it will
    not complete itself.

    Examples
    --------
    >>> from scandeck.reading import to_xarray
    >>> to_xarray(stream_table(client[uid], "primary", keys=["det"]))["det"]  # doctest: +SKIP
    """
    from ...reading import Table

    layout = stream_layout(node, stream)
    data_keys = layout.data_keys
    wanted = list(data_keys) if keys is None else list(dict.fromkeys([keys] if isinstance(keys, str) else keys))
    missing = [k for k in wanted if k not in data_keys]
    if missing:
        raise _unknown_key(layout, missing)
    if isinstance(fill, str):
        fill = {fill}
    fill_keys = set(wanted) if fill is True else set(fill or ())
    array_keys = [k for k in wanted if k in layout.arrays]
    column_keys = [k for k in wanted if k not in layout.arrays]
    frame = None
    if layout.table is not None:
        frame = layout.frame([*_ROW_COLUMNS, *column_keys])
    counts = {INTERNAL: len(frame)} if frame is not None else {}
    counts.update({k: layout.arrays[k].events for k in array_keys})
    if not counts:  # no table and no array asked: the rows the arrays have in common
        counts = {k: p.events for k, p in layout.arrays.items()}
    rows = min(counts.values(), default=0)
    if len(set(counts.values())) > 1 and not _running(node):
        shown = ", ".join(f"{printable(k)}: {n}" for k, n in counts.items())
        raise StoreError(
            f"stream {printable(stream)!r} of a stopped run holds parts of different lengths in Tiled ({shown}); "
            "its rows cannot be matched to events (TiledWriter did not finish writing it). Each key still reads "
            "alone, rows first, without times: stream_array (to_dask)"
        )
    table = Table(data_keys={k: dict(data_keys[k]) for k in wanted})
    if frame is not None:
        table.seq_num = [int(s) for s in frame["seq_num"].to_numpy()[:rows]]
        table.time = frame["time"].to_numpy(dtype=float)[:rows].tolist()
        for key in column_keys:
            table.data[key] = _values(frame[key].to_numpy()[:rows])
    else:
        table.seq_num = list(range(1, rows + 1))
        table.timed = False  # a stream of external data alone has no event times (as scandeck's own read)
        for key in column_keys:
            table.data[key] = [None] * rows
    for key in array_keys:
        part = layout.arrays[key]
        if data_keys[key].get("external") and key not in fill_keys:
            sres = resource_uid(layout.descriptor_uid, key)
            table.data[key] = [reference(sres, i) for i in range(rows)]
        else:
            table.data[key] = _values(TiledArray(part, rows)[0:rows])
    return table


def _values(arr: Any) -> list[Any]:
    """A column as the list a :class:`Table` holds: Python scalars, or one array per row."""
    if getattr(arr, "ndim", 1) == 1 and arr.dtype != object:
        return list(arr.tolist())
    return list(arr)


def stream_lengths(node: Any) -> dict[str, int]:
    """``{descriptor uid: events stored so far}``: two requests per stream (its parts, its table's rows).

    A stream whose configuration changed mid-run has several descriptors; its
    rows are shared out by time (each row belongs to the newest descriptor not
    younger than it), which reads the stream's ``time`` column with its rows.
    """
    out: dict[str, int] = {}
    run_start = start_uid(run_container(node).metadata)
    for name, client in stream_nodes(node).items():
        layout = layout_of(client, name)
        docs = descriptors_of(layout.metadata, name, run_start)
        counts = dict.fromkeys((d["uid"] for d in docs), 0)
        if len(docs) == 1 or layout.table is None:
            # One descriptor; or stream data only (no event table): the stream's count is right,
            # its split by descriptor unknown (no times to share rows out by).
            counts[docs[0]["uid"]] = layout.events()
        else:  # the same deduplicated rows events() counts, read once with their times
            for t in layout.frame(["time"])["time"].to_numpy(dtype=float).tolist():
                counts[owner(docs, t)["uid"]] += 1
        out.update(counts)
    return out


def descriptors_of(metadata: dict[str, Any], stream: str, run_start: str | None) -> list[dict[str, Any]]:
    """The descriptor documents of one stream, rebuilt from its node's metadata.

    bluesky-tiled-plugins' own helper does it (the same one its clients and its
    document exporter use), so scandeck's descriptors are theirs: the stream's
    metadata plus ``name``, ``run_start`` and ``object_keys``, and one more
    descriptor per configuration update, each validated against event-model's schema.
    """
    from bluesky_tiled_plugins.exporters import build_descriptor_docs

    return [normalize(d) for d in build_descriptor_docs(dict(metadata), stream, run_start_uid=run_start)]


def owner(descriptors: list[dict[str, Any]], time: float) -> dict[str, Any]:
    """The descriptor a row of ``time`` belongs to: the newest one not younger than it."""
    found = descriptors[0]
    for doc in descriptors[1:]:
        if doc["time"] <= time:
            found = doc
    return found
