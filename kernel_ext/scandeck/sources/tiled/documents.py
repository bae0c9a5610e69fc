"""A Tiled run's documents, rebuilt client-side from what TiledWriter stored.

TiledWriter keeps the start and stop documents (the run's metadata), each
stream's descriptor (its metadata) and the *contents* of events and
stream_datum documents (table rows and array rows), not the documents
themselves. This module rebuilds them, so scandeck's readers, followers and
event-model's ``Filler`` work on a Tiled run as on any other: no server-side
exporter is needed (bluesky-tiled-plugins' ``run.documents()`` wants one that a
facility's server may lack).

What is not the original, and cannot be:

* **uids of events, stream_resource and stream_datum documents are synthetic**
  (TiledWriter does not store them), and deterministic, so a run reads the same
  twice: ``event-{descriptor uid}-{seq_num}`` (the same as bluesky-tiled-plugins'
  exporter), ``sr-{descriptor uid}-{key}`` and ``sd-{descriptor uid}-{key}-{row}``;
* one event per table row, in seq_num order (never event pages), carrying the
  keys stored in the run (external keys are not in events: their data is in the
  stream_datum documents, one per event row, as an ophyd-async step scan emits them);
* a stream_resource points at the data source Tiled registered for the key
  (mimetype, first file, Tiled's parameters), not the detector's original one;
  scandeck's handlers fill it from the file where they know the mimetype (HDF5),
  and :func:`~.tables.stream_table` reads any of them through the server;
* the order: start, then each stream by descriptor time (its descriptors, its
  stream_resources, its events, its stream_datums), then stop. Streams are not
  interleaved as the RunEngine emitted them.

:class:`RunLog` keeps that list append-only for a run being written: a later
update only adds at the end (a baseline row arriving after primary rows comes
after them), so positions in it are stable and a follower can resume from one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...documents import normalize
from ...exceptions import StoreError
from ...safe_text import printable
from .tables import (
    ArrayPart,
    StreamLayout,
    TiledArray,
    descriptors_of,
    layout_of,
    owner,
    resource_uid,
    run_container,
    start_uid,
    stream_nodes,
)

__all__ = ["RunLog", "canonical_documents", "descriptors"]


def descriptors(node: Any) -> list[dict[str, Any]]:
    """The run's descriptor documents so far, in order of creation (descriptor time).

    Rebuilt from each stream's metadata by bluesky-tiled-plugins' helper (as its
    clients do), so they validate against event-model's schema; a stream whose
    configuration changed mid-run gives one descriptor per change.

    Examples
    --------
    >>> [d["name"] for d in descriptors(client[uid])]  # doctest: +SKIP
    ['baseline', 'primary']
    """
    run_start = start_uid(run_container(node).metadata)
    streams = stream_nodes(node)
    docs = [d for name, client in streams.items() for d in descriptors_of(client.metadata, name, run_start)]
    return sorted(docs, key=lambda d: d["time"])


def canonical_documents(node: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every document of a run (stopped, or running: what is stored so far), as ``(name, doc)``.

    The order, the synthetic uids and what differs from the RunEngine's
    documents are described in this module's docstring; values are plain Python
    (no numpy). It is the first :meth:`RunLog.update` of the run, so a log that
    followed the run to its end holds the same documents.

    Examples
    --------
    >>> [name for name, _ in canonical_documents(client[uid])]  # doctest: +SKIP
    ['start', 'descriptor', 'event', 'event', 'stop']
    """
    log = RunLog(node)
    log.update()
    return list(log.entries)


@dataclass
class _Stream:
    """What a :class:`RunLog` has appended of one stream."""

    descriptors: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0  # table rows turned into events
    stored: int = 0  # the table's row count when last read
    last_seq: int = 0
    resources: set[str] = field(default_factory=set)  # external keys whose stream_resource was appended
    datums: dict[str, int] = field(default_factory=dict)  # external key -> rows given stream_datums


class RunLog:
    """An append-only list of a run's documents as they appear in Tiled (for a live run).

    Each :meth:`update` appends what is new: the start (first time), a new
    stream's descriptor (or a configuration update's), new table rows as events
    (from the last seq_num seen), new external-array rows as stream_datum
    documents, and the stop. Earlier positions never change: a row that
    turns up behind rows already followed (never from TiledWriter) raises a
    StoreError rather than being left out. An update with nothing new costs two
    requests for the run (its metadata, its streams) and two per stream (the
    listing of its parts, the server's count of its rows).

    Rows become events only once every internal array of the stream has them
    too, so no event is appended with a value missing. The stop is appended
    only when it was stored before the rows were read: TiledWriter writes every
    row before the stop, so nothing comes after it.

    Examples
    --------
    >>> log = RunLog(client[uid])                    # doctest: +SKIP
    >>> log.update(); new = log.entries[seen:]        # doctest: +SKIP
    """

    def __init__(self, node: Any) -> None:
        self._container = run_container(node)
        self._streams: dict[str, _Stream] = {}
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.stopped = False
        #: Events in :attr:`entries` (a running run's event count, without re-reading its rows).
        self.num_events = 0

    def __len__(self) -> int:
        return len(self.entries)

    def update(self) -> int:
        """Append what Tiled holds that the log has not; return the log's new length."""
        if self.stopped:
            return len(self.entries)
        container = self._container
        container.refresh()  # the stop arrives as new metadata of the run node (and the node may be old)
        metadata = container.metadata
        stop = metadata.get("stop") or None  # read before the rows (see the class docstring)
        run_start = start_uid(metadata)
        if not self.entries:
            self.entries.append(("start", normalize(metadata["start"])))
        clients = stream_nodes(container)
        metas = {name: dict(client.metadata) for name, client in clients.items()}
        docs = {name: descriptors_of(meta, name, run_start) for name, meta in metas.items()}
        known = [n for n in self._streams if n in clients]
        new = sorted((n for n in clients if n not in self._streams), key=lambda n: docs[n][0]["time"])
        for name in [*known, *new]:
            self._update_stream(name, clients[name], docs[name], run_start)
        if stop is not None:
            self.entries.append(("stop", normalize(stop)))
            self.stopped = True
        return len(self.entries)

    def _update_stream(self, name: str, client: Any, docs: list[dict[str, Any]], run_start: str | None) -> None:
        state = self._streams.setdefault(name, _Stream())
        seen = {d["uid"] for d in state.descriptors}
        for doc in docs:
            if doc["uid"] not in seen:
                state.descriptors.append(doc)
                self.entries.append(("descriptor", doc))
        layout = layout_of(client, name)
        external = {k: p for k, p in layout.arrays.items() if (layout.data_keys.get(k) or {}).get("external")}
        internal = {k: p for k, p in layout.arrays.items() if k not in external}
        base_uid = state.descriptors[0]["uid"]
        for key in external:
            if key not in state.resources:
                self.entries.append(("stream_resource", _stream_resource(external[key], base_uid, run_start)))
                state.resources.add(key)
        self._events(layout, state, internal)
        for key, part in external.items():
            done = state.datums.get(key, 0)
            for row in range(done, part.events):
                self.entries.append(("stream_datum", _stream_datum(base_uid, key, row)))
            state.datums[key] = max(done, part.events)

    def _events(self, layout: StreamLayout, state: _Stream, internal: dict[str, ArrayPart]) -> None:
        """Append the stream's new complete rows as events."""
        if layout.table is None:
            return
        stored = layout.table_rows()  # the server's count: cheap, and changes with any new row
        limit = min((p.events for p in internal.values()), default=None)
        if stored == state.stored and (limit is None or limit <= state.rows):
            return
        import numpy as np

        frame = layout.frame()
        state.stored = stored
        keys = [k for k in layout.data_keys if k in frame.columns and k not in ("seq_num", "time")]
        lo = int(np.searchsorted(frame["seq_num"].to_numpy(), state.last_seq, side="right"))
        if lo != state.rows:
            raise StoreError(
                f"stream {printable(layout.name)!r} gained a row of seq_num {state.last_seq} or lower after "
                "the log had followed past it; its documents so far cannot take it: read the run again"
            )
        hi = len(frame) if limit is None else min(limit, len(frame))
        if hi <= lo:
            return
        seq = frame["seq_num"].to_numpy()[lo:hi].tolist()
        times = frame["time"].to_numpy(dtype=float)[lo:hi].tolist()
        values = {k: frame[k].to_numpy()[lo:hi] for k in keys}
        stamps = {k: frame[f"ts_{k}"].to_numpy()[lo:hi].tolist() for k in layout.data_keys if f"ts_{k}" in frame}
        arrays = {k: TiledArray(p)[lo:hi] for k, p in internal.items()}
        plain = all(v.dtype != object for v in values.values()) and not arrays
        columns = {k: v.tolist() for k, v in values.items()}
        for i, (s, t) in enumerate(zip(seq, times, strict=True)):
            data = {k: columns[k][i] for k in keys}
            data.update({k: np.asarray(a[i]) for k, a in arrays.items()})
            descriptor = owner(state.descriptors, t)["uid"]
            event = {
                "uid": f"event-{descriptor}-{s}",
                "time": t,
                "seq_num": int(s),
                "descriptor": descriptor,
                "data": data,
                # A key without a stored timestamp (an internal array's) takes the event's time.
                "timestamps": {k: stamps[k][i] if k in stamps else t for k in data},
            }
            self.entries.append(("event", event if plain else normalize(event)))
            state.last_seq = int(s)
            self.num_events += 1
        state.rows = hi


def _stream_resource(part: ArrayPart, descriptor_uid: str, run_start: str | None) -> dict[str, Any]:
    """The stream_resource of an external key: the data source Tiled registered for it."""
    sources = part.client.data_sources() or []
    if not sources:
        raise StoreError(f"the external key {printable(part.key)!r} has no data source in Tiled to read it from")
    source = sources[0]
    assets = sorted(
        (a for a in source.assets if a.parameter in ("data_uri", "data_uris")), key=lambda a: a.num or 0
    ) or list(source.assets)
    # Only what is fixed once the key appears: a source of one file per event (old-style
    # resource/datum) gains files as the run goes on, and a log never rewrites a document.
    # Its uri is the first file; its data reads through Tiled (tables.stream_table).
    parameters = dict(source.parameters or {})
    doc = {
        "uid": resource_uid(descriptor_uid, part.key),
        "data_key": part.key,
        "mimetype": source.mimetype,
        "uri": assets[0].data_uri if assets else "",
        "parameters": parameters,
    }
    if run_start is not None:
        doc["run_start"] = run_start
    return normalize(doc)


def _stream_datum(descriptor_uid: str, key: str, row: int) -> dict[str, Any]:
    """The stream_datum of one event row of an external key (row ``i`` is seq_num ``i + 1``)."""
    return {
        "uid": f"sd-{descriptor_uid}-{key}-{row}",
        "stream_resource": resource_uid(descriptor_uid, key),
        "descriptor": descriptor_uid,
        "indices": {"start": row, "stop": row + 1},
        "seq_nums": {"start": row + 1, "stop": row + 2},
    }
