"""The :class:`~scandeck.sources.protocol.Source` over a Tiled container of Bluesky runs.

What Tiled answers itself (searches, counts, pages, stream columns) is asked of
it; what it does not keep is rebuilt or said:

* ``seq`` (arrival order) is a run's position in the container's insertion order
  for :meth:`runs_since` and :meth:`latest_seq`; runs found by a search carry
  ``seq`` 0 (Tiled does not say a run's position without listing the container).
* Documents are rebuilt from the stored metadata and tables
  (:mod:`.documents`): event uids are synthetic, since TiledWriter does not
  store them. A run followed live keeps its documents in an append-only log, so
  positions never move while it grows.
* ``incomplete``: a run whose scandeck writer closed (or was dropped) without a
  stop document is marked so in its metadata; a run whose writer died silently
  looks ``running`` (Tiled keeps no writer heartbeat).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ...exceptions import RunNotFound, StoreError
from ...query import Query
from ..entries import select
from ..protocol import Entry, LazyArray, RunSummary
from .connect import TiledTarget, connect, parse_target, tiled_errors, uri_option, without_option
from .writer import INCOMPLETE_KEY, TiledRunWriter

if TYPE_CHECKING:
    from ...reading import Table
    from .documents import RunLog
    from .live import LiveSignals
    from .search import TiledSearch

__all__ = ["TiledSource"]

#: Stopped runs whose rebuilt documents are kept (followers re-read from positions).
_KEEP_STOPPED = 8
#: Runs followed live whose logs are kept.
_KEEP_LIVE = 64


def _options(uri: str) -> tuple[str, int]:
    """The URI without scandeck's own options, and the writer's batch size."""
    text = uri_option(uri, "batch_size")
    if text is None:
        return uri, 1
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise StoreError(f"batch_size in a Tiled URI is a whole number of events >= 1, not {text!r}")
    return without_option(uri, "batch_size"), size


def summary_of(uid: str, metadata: Any, *, seq: int = 0, events: int | None = None) -> RunSummary:
    """A :class:`RunSummary` from a run node's metadata (``{"start": ..., "stop": ...}``)."""
    start = dict(metadata.get("start") or {})
    stop = metadata.get("stop") or None
    stop = dict(stop) if stop else None
    if stop is not None:
        status = str(stop.get("exit_status", "success"))
        counts = stop.get("num_events") or {}
        num_events = sum(int(n) for n in counts.values()) if events is None else events
        num_docs = 2 + len(counts) + num_events
    else:
        status = "incomplete" if metadata.get(INCOMPLETE_KEY) else "running"
        num_events = events or 0
        num_docs = 1 + num_events
    return RunSummary(
        uid=uid,
        seq=seq,
        scan_id=start.get("scan_id"),
        time=float(start.get("time", 0.0)),
        start=start,
        stop=stop,
        num_events=num_events,
        num_documents=num_docs,
        status=status,
    )


def _childless(node: Any) -> bool:
    """Whether a run node had no children (streams) when it was listed: its listing says so.

    A run of start and stop documents only has no streams, so no events to count; a
    listing without the count (None) is no answer, and the streams are asked.
    """
    structure = (getattr(node, "item", None) or {}).get("attributes", {}).get("structure") or {}
    return structure.get("count") == 0


#: The most entries one slice of a Tiled listing asks for (the server refuses a page over 300).
SLICE_LIMIT = 300


class TiledSource:
    """Runs in a Tiled container written by bluesky-tiled-plugins' ``TiledWriter``.

    Examples
    --------
    >>> cat = scandeck.open_catalog("tiled+http://127.0.0.1:8000/raw")   # doctest: +SKIP
    >>> cat[-1].primary.read()                                            # doctest: +SKIP
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        address, self._batch_size = _options(uri)
        self._target: TiledTarget = parse_target(address)
        self._container: Any = None
        self._search: TiledSearch | None = None
        self._live: LiveSignals | None = None
        self._lock = threading.RLock()
        self._stopped: OrderedDict[str, list[Entry]] = OrderedDict()
        self._logs: OrderedDict[str, RunLog] = OrderedDict()

    def __repr__(self) -> str:
        return f"TiledSource({self._target.shown!r})"

    # -- connection ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._container is None:
                self._container = connect(self._target)

    def close(self) -> None:
        with self._lock:
            live, self._live = self._live, None
            container, self._container = self._container, None
        if live is not None:
            live.close()
        if container is not None:
            container.context.close()

    @property
    def container(self) -> Any:
        """The tiled client of the container (connected on first use)."""
        if self._container is None:
            self.start()
        return self._container

    @property
    def searcher(self) -> TiledSearch:
        with self._lock:
            if self._search is None:
                from .search import TiledSearch

                self._search = TiledSearch(self.container)
            return self._search

    def writer(self) -> TiledRunWriter:
        return TiledRunWriter(self.container, self._target, batch_size=self._batch_size)

    def _errors(self, doing: str) -> Any:
        return tiled_errors(self._target, doing)

    # -- runs ------------------------------------------------------------------------------

    def _node(self, uid: str) -> Any:
        """The run node of exactly this uid (the plugin's ``container[key]`` also takes prefixes)."""
        from tiled.queries import KeysFilter

        with self._errors(f"reading run {uid}"):
            found = list(self.container.search(KeysFilter(keys=[uid])).values()[:1]) if uid else []
        if not found:
            raise RunNotFound(f"no run with uid {uid!r} in {self._target.shown}")
        return found[0]

    def _summary(self, uid: str, metadata: Any, seq: int = 0, node: Any = None) -> RunSummary:
        """``node``, when the caller has the run's node already, spares a lookup to count its events."""
        events = None
        stop = metadata.get("stop")
        counted = sum((stop or {}).get("num_events", {}).values()) if stop else 0
        if not counted:  # running, or a stop that counts nothing (a run of stream data only): ask the streams
            log = self._logs.get(uid)
            events = log.num_events if log is not None else self._live_events(uid, node)
        return summary_of(uid, metadata, seq=seq, events=events)

    def _live_events(self, uid: str, node: Any = None) -> int:
        from .tables import stream_lengths

        if node is not None and _childless(node):  # no stream yet: no events, and no request to say so
            return 0
        try:
            node = self._node(uid) if node is None else node
            with self._errors(f"counting the events of run {uid}"):
                return sum(stream_lengths(node).values())
        except (RunNotFound, StoreError):
            return 0

    def count(self, query: Query) -> int:
        with self._errors("counting runs"):
            return self.searcher.count(query)

    def search(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunSummary]:
        with self._errors("searching runs"):
            found = self.searcher.page(query, limit=limit, offset=offset, before=before, oldest_first=oldest_first)
            return [self._summary(uid, run.metadata, node=run) for uid, run in found]

    def open_runs(self, query: Query, *, limit: int = 200) -> list[RunSummary]:
        with self._errors("listing running runs"):
            found = self.searcher.open_runs(query, limit=limit)
            return [self._summary(uid, run.metadata, node=run) for uid, run in found]

    def get(self, uid: str) -> RunSummary:
        node = self._node(uid)
        return self._summary(uid, node.metadata, node=node)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        with self._errors("looking up a uid prefix"):
            found = self.searcher.find_prefix(prefix, limit=limit)
            return [self._summary(uid, run.metadata, node=run) for uid, run in found]

    # -- documents -------------------------------------------------------------------------

    def _entries(self, uid: str, start: int = 0) -> list[Entry]:
        """The run's documents from position ``start``: of its live log, or its rebuilt documents.

        Only those from ``start`` are made into entries: a follower asks for what is new
        in a long live run many times.
        """
        from .documents import RunLog, canonical_documents

        with self._lock:
            log = self._logs.get(uid)
            cached = self._stopped.get(uid)
        if cached is not None:
            return cached[start:]
        if log is None:
            node = self._node(uid)
            if node.metadata.get("stop"):
                with self._errors(f"reading the documents of run {uid}"):
                    docs = canonical_documents(node)
                entries = [Entry(i, name, doc) for i, (name, doc) in enumerate(docs)]
                with self._lock:
                    self._stopped[uid] = entries
                    while len(self._stopped) > _KEEP_STOPPED:
                        self._stopped.popitem(last=False)
                return entries[start:]
            log = RunLog(node)
            with self._lock:
                log = self._logs.setdefault(uid, log)
                while len(self._logs) > _KEEP_LIVE:
                    self._logs.popitem(last=False)
        with self._errors(f"reading the documents of run {uid}"):
            log.update()
        return [Entry(i, name, doc) for i, (name, doc) in enumerate(log.entries[start:], start)]

    def documents(
        self,
        uid: str,
        *,
        start: int = 0,
        names: Iterable[str] | None = None,
        descriptors: Iterable[str] | None = None,
    ) -> Iterator[Entry]:
        return select(self._entries(uid, start), names, descriptors)

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        from .documents import descriptors

        node = self._node(uid)
        with self._errors(f"reading the streams of run {uid}"):
            return descriptors(node)

    def stream_counts(self, uid: str) -> dict[str, int]:
        from .tables import stream_lengths

        node = self._node(uid)
        with self._errors(f"counting the events of run {uid}"):
            return stream_lengths(node)

    # -- columns (StreamTables) ------------------------------------------------------------

    def stream_table(
        self,
        uid: str,
        stream: str,
        *,
        keys: Collection[str] | None = None,
        fill: bool | Collection[str] = True,
    ) -> Table:
        from .tables import stream_table

        node = self._node(uid)
        with self._errors(f"reading stream {stream!r} of run {uid}"):
            return stream_table(node, stream, keys=keys, fill=fill)

    def stream_array(self, uid: str, stream: str, key: str) -> LazyArray:
        from .tables import stream_array

        node = self._node(uid)
        with self._errors(f"reading {key!r} of stream {stream!r} of run {uid}"):
            return stream_array(node, stream, key)

    # -- arrivals and changes --------------------------------------------------------------

    def latest_seq(self) -> int:
        with self._errors("counting runs"):
            return len(self.container.new_variation())  # a fresh count: len() is cached for 1 s

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        stop = None if limit is None else seq + limit
        with self._errors("listing new runs"):
            items: list[tuple[str, Any]] = []
            listing = self.container.new_variation().items()
            while stop is None or seq + len(items) < stop:  # Tiled serves at most 300 per page
                end = seq + len(items) + SLICE_LIMIT
                chunk = list(listing[seq + len(items) : end if stop is None else min(end, stop)])
                items += chunk
                if len(chunk) < SLICE_LIMIT:
                    break
        return [self._summary(uid, run.metadata, seq=n, node=run) for n, (uid, run) in enumerate(items, seq + 1)]

    def _signals(self) -> LiveSignals:
        with self._lock:
            if self._live is None:
                from .live import LiveSignals

                self._live = LiveSignals(self.container, self._target)
            return self._live

    @property
    def live_mode(self) -> str | None:
        """How this source follows changes: ``"subscribed"`` (Tiled's WebSocket), ``"polling"``,
        or None before anything was followed."""
        live = self._live
        if live is None:
            return None
        return "subscribed" if live.subscribed else "polling"

    def change_token(self) -> object:
        return self._signals().token()

    def wait(self, token: object, timeout: float) -> bool:
        return self._signals().wait(token, timeout)

    def wait_run(self, uid: str, start: int, timeout: float) -> bool:
        """Block until an update of run ``uid`` arrives (subscribed), at most 0.5 s; the reader then re-reads.

        Reads nothing itself: a follower has just read up to ``start`` (a wake-up between
        its read and this wait is caught by the next re-read, at most 0.5 s later).
        """
        signals = self._signals()
        return signals.wait_run(uid, signals.run_token(uid), timeout)
