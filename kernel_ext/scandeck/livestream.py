"""Live pipelines: the rows of followed runs as ``streamz`` streams.

A :class:`Live` follows one run, or the newest run of a catalog and each new
one, on background threads (:class:`~scandeck.pipeline.follower.Follower`), one per
run and stream in the process, shared with the ``%%bind`` cells and plots of that
run (:mod:`scandeck.pipeline.hub`).
Those threads only collect rows; the streams emit them on the kernel's own
event loop, between user requests, never while a cell runs (outside a kernel
on a private loop thread), in batches: everything new at each callback, at
most one callback per ``interval`` seconds.

Examples
--------
>>> import scandeck                                                  # doctest: +SKIP
>>> live = scandeck.live()                    # newest run, then each new one
>>> live.stream().map(lambda r: r["det"]).accumulate(max).sink(print)   # doctest: +SKIP
>>> live.stream(pages=True).sink(lambda page: print(len(page["seq_num"])))  # doctest: +SKIP
>>> live.runs.sink(lambda run: print("new run", run.scan_id))       # doctest: +SKIP
>>> live.stop()                                                      # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Collection, Iterator
from typing import Any

from .catalog import Catalog, Run
from .exceptions import ScandeckError
from .pipeline.follower import RUN_START, RUN_STOP, FollowState
from .pipeline.hub import Reader, subscribe
from .pipeline.loop import Coalescer, KernelLoop
from .safe_text import printable
from .uris import redact

__all__ = ["Live", "live"]

#: Rows handled per loop callback at most; the rest follow in the next callback,
#: so a large backlog never holds the kernel for long.
MAX_ROWS_PER_CALL = 50_000
#: Full tracebacks shown for the first failures of a Live; later ones are only counted.
SHOWN_FAILURES = 5
#: A new stream's first emission waits until every end of its pipeline is a sink
#: (``.sink(...)``, ``.sink_to_list()``), for at most this many seconds: a pipeline
#: built in one statement outside a kernel misses no rows. (In a kernel nothing
#: is emitted before the cell that built it has finished anyway.)
HOLD_SECONDS = 1.0
#: With ``fill=True``: rows filled per batch on the following thread, and the most
#: filled data (bytes) waiting for the loop; beyond it the following thread waits,
#: so a long backlog of large frames never piles up in memory.
FILL_ROWS = 64
MAX_FILLED_BYTES = 256 * 2**20
#: Rows taken from the follower at a time, and the most rows waiting for the loop; beyond
#: it the following thread waits: a pipeline that keeps nothing holds a bounded batch,
#: however long the run and however busy the kernel.
TAKE_ROWS = 10_000
MAX_QUEUED_ROWS = 100_000

#: Longest wait in :meth:`Live.flush` between emissions of what arrived meanwhile.
FLUSH_WAIT = 0.1

_everything: weakref.WeakSet[Live] = weakref.WeakSet()


def live(target: Any = None, *, catalog: Catalog | None = None, interval: float = 0.02) -> Live:
    """Follow runs as they are written; see :class:`Live`."""
    return Live(target, catalog=catalog, interval=interval)


class Live:
    """Followed runs as ``streamz`` streams.

    Parameters
    ----------
    target
        A :class:`~scandeck.catalog.Run` (follow it until it ends); a
        :class:`~scandeck.catalog.Catalog` (its newest run, then each new run
        matching it); a uid, a uid prefix or a scan_id (looked up in
        ``catalog``); ``None`` (the newest run of ``catalog``, then each new one).
    catalog
        Where to look ``target`` up; default the embedded store
        (:func:`scandeck.open_catalog`).
    interval
        At most one emission callback per this many seconds.
    shell
        The IPython shell whose kernel loop emits (default: ``get_ipython()``,
        if any); ``None`` emits from a private loop thread.

    Rows are read on one background thread per followed stream name and emitted
    on the kernel's event loop between requests (never during a cell), all that
    arrived since the last callback at once. Outside a kernel a private loop
    thread emits; a new stream waits (up to :data:`HOLD_SECONDS`) until its
    pipeline ends in sinks, so ``live.stream().map(f).sink(g)`` misses no row.
    Following a run switches to a new run only once the stored rows of the
    current one have been read. Every Live is stopped at interpreter exit.

    Attributes
    ----------
    failures
        Exceptions raised by user code downstream of the streams (and files
        that could not be filled); each is caught, counted, and the following
        rows are emitted as usual.
    emissions, rows
        ``emit`` calls made and rows delivered so far.
    """

    def __init__(
        self, target: Any = None, *, catalog: Catalog | None = None, interval: float = 0.02, shell: Any = "auto"
    ) -> None:
        from .provenance.batch import current_shell, in_batch

        shell = current_shell() if shell == "auto" else shell

        #: True in a batch execution (papermill, nbclient): one run is followed, see :meth:`flush`.
        self.batch = shell is not None and in_batch(shell)
        self.source, self.uid, self.query = _resolve(target, catalog, shell)
        self.interval = interval
        self.failures = 0
        self.last_error: BaseException | None = None
        self.emissions = 0
        self.rows = 0
        self.stopped = False
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # signalled as filled data is drained
        self._filled_bytes = self._queued_rows = 0
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._feeds: dict[tuple[str, bool | tuple[str, ...]], _Feed] = {}  # (stream name, fill) -> feed
        self._runs: Any = None
        self._files: Any = None
        self._side: list[Any] = []  # feeds besides the row feeds (Live.files): each has .ended
        self._unstarted: dict[Any, float] = {}  # new streams -> when made (see HOLD_SECONDS)
        self._watchers: list[Callable[[str, dict[str, Any]], None]] = []
        self._emitting = threading.RLock()  # held while rows are emitted: see paused()
        self._loop = KernelLoop(shell)
        self._coalescer = Coalescer(self._loop, self._drain, interval)
        _everything.add(self)

    def __repr__(self) -> str:
        what = f"run {self.uid[:8]}" if self.uid else "the newest run and each new one"
        state = "stopped" if self.stopped else "live"
        return (
            f"<Live {what} of {redact(self.source.uri)}: {state}, {self.rows} rows in "
            f"{self.emissions} emissions, {self.failures} failures>"
        )

    # -- the public streams ----------------------------------------------------------------

    def stream(self, name: str = "primary", *, pages: bool = False, fill: bool | Collection[str] = False) -> Any:
        """A ``streamz.Stream`` of the rows of stream ``name`` of the followed runs.

        Each row is a dict: ``uid`` (of its run), ``seq_num``, ``time`` and one
        entry per data key. With ``pages=True`` each emission is instead one dict
        of column lists holding every row that arrived since the last emission
        (``uid`` is then a single string: a page never mixes runs). External
        data is read on the following thread: external scalars always, external
        arrays (images written to files) only those named in ``fill``
        (``fill=True``: all); the others are not in the rows. A datum id never
        stands in for a value. The same arguments give the same stream.
        """
        attr = "pages" if pages else "rows"
        if isinstance(fill, str):
            fill = (fill,)
        wanted = fill if isinstance(fill, bool) else tuple(sorted(fill))
        feed, new = self._feed(name, wanted, attr)
        if not new:
            feed.take(follower=False)  # rows read while no stream wanted them
        return getattr(feed, attr)

    @property
    def runs(self) -> Any:
        """A ``streamz.Stream`` emitting each followed :class:`~scandeck.catalog.Run` as it starts."""
        with self._lock:
            if self._runs is None:
                self._runs = _new_stream("runs")
                self._unstarted[self._runs] = time.monotonic()
            lead = next(iter(self._feeds), None)
        if lead is None:
            self._feed("primary", False, None)
        return self._runs

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the followed run to end, then emit everything, here and now.

        For a Live of one run (a Run, a uid, or any Live in a batch execution):
        when this returns, the pipelines built so far have seen every row of
        the run, as a batch notebook needs (its outputs are saved as they are
        when the cell ends; ``scandeck.plot`` calls this in batch). Pipelines
        are taken as built: nothing waits for sinks (:data:`HOLD_SECONDS`).

        Returns False when the run had not ended within ``timeout`` seconds;
        what had arrived is emitted all the same.

        Examples
        --------
        >>> rows = live.stream().sink_to_list()             # doctest: +SKIP
        >>> live.flush()                                     # doctest: +SKIP
        True
        """
        if self.uid is None:
            raise ScandeckError(
                "flush() waits for the end of one run, and this Live follows each new run: "
                "make it for one run, e.g. scandeck.live(cat[-1])"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._unstarted.clear()
        while True:
            # Emit while waiting: with fill, the following thread waits for room (MAX_FILLED_BYTES).
            while self._queue and not self.stopped:
                self._drain()
            pending = [feed for feed in [*self._feeds.values(), *self._side] if not feed.ended.is_set()]
            if not pending or self.stopped:
                while self._queue and not self.stopped:  # what a feed queued just before it ended
                    self._drain()
                return not pending
            remaining = FLUSH_WAIT if deadline is None else min(deadline - time.monotonic(), FLUSH_WAIT)
            if remaining <= 0:
                return False
            pending[0].ended.wait(remaining)

    def files(self) -> Any:
        """A ``streamz.Stream`` emitting each file of the followed watched runs, once complete and local.

        Each item is a :class:`~scandeck.files.follow.FileEntry` (a path-like of the verified
        local file, with ``relpath``, ``sha256``, ``info``, ``read(key)``...), as
        ``scandeck.files(run).follow()`` yields them. A Live of one run follows its files
        until it stops (a run ``scandeck watch`` did not write is refused:
        :class:`~scandeck.exceptions.NotWatchedRun`); a Live of a catalog follows its newest
        watched run and every new one, side by side. Files are fetched (``--transfer`` runs
        read elsewhere) on a following thread, emitted on the kernel loop like rows. A file
        that cannot be made local counts in :attr:`failures`. The same stream each call.

        Examples
        --------
        >>> scandeck.live(run).files().map(lambda f: f.read().mean()).sink(print)  # doctest: +SKIP
        """
        from .files.follow import FileFeed

        with self._lock:
            if self.stopped:
                raise RuntimeError("this Live was stopped; make a new one with scandeck.live(...)")
            if self._files is not None:
                return self._files
        feed = FileFeed(
            self.source,
            self.uid,
            query=self.query,
            emit=lambda entry: self._push(("emit", self._files, entry, "a sink of Live.files")),
            failed=self._failed,
        )
        with self._lock:
            if self.stopped:  # stopped meanwhile: stop() did not see this feed
                raise RuntimeError("this Live was stopped; make a new one with scandeck.live(...)")
            if self._files is not None:  # made meanwhile on another thread; this feed never starts
                return self._files
            self._files = _new_stream("files")
            self._unstarted[self._files] = time.monotonic()
            self._side.append(feed)
        feed.start()
        return self._files

    @property
    def alive(self) -> bool:
        """True while some follower thread still runs."""
        return any(feed.reader.follower.alive for feed in list(self._feeds.values()))

    def watch(self, callback: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``callback(event, detail)`` on what happens to this Live (``to_run`` listens).

        Events: ``"end"`` (a followed run ended and the last rows of one of its streams were
        emitted; on the emitting thread; detail ``uid``, ``stream``, ``fill`` (as the stream
        was asked for: each stream and each fill is followed on its own thread, and ends
        on its own), ``exit_status``, ``reason``),
        ``"failure"`` (detail ``error``, ``what``: as counted in :attr:`failures`, on the
        thread where it happened), ``"stopped"`` (:meth:`stop` was called). A callback
        that raises is reported on stderr and kept.
        """
        self._watchers = [*self._watchers, callback]

    def unwatch(self, callback: Callable[[str, dict[str, Any]], None]) -> None:
        """Stop calling ``callback`` (no error if it was not watching)."""
        self._watchers = [w for w in self._watchers if w != callback]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing is emitted while in this block (rows wait in the queue; an emission under
        way finishes first): attach to a pipeline without rows going past half-way.

        ``to_run`` builds its node in it: the rows and the run's end a Live emits while a
        sink beside it is attached (the pipeline then ends in sinks) would miss the new run.
        """
        with self._emitting:
            yield

    def _tell(self, event: str, detail: dict[str, Any]) -> None:
        for callback in self._watchers:
            try:
                callback(event, detail)
            except Exception as err:  # noqa: BLE001 - a watcher's bug must not stop the stream
                text = printable("".join(traceback.format_exception(type(err), err, err.__traceback__)), keep="\n")
                sys.stderr.write(f"scandeck.live: a watcher of {event!r} failed:\n{text}")

    def stop(self) -> None:
        """Stop following: the threads end, nothing more is emitted (idempotent)."""
        with self._lock:
            was_stopped = self.stopped
            self.stopped = True
            feeds = list(self._feeds.values())
            side = list(self._side)
            self._queue.clear()
            self._filled_bytes = self._queued_rows = 0
            self._room.notify_all()
        self._coalescer.close()
        for feed in feeds:
            feed.reader.close()  # the run's follower goes on for its other consumers
        for other in side:
            other.stop()
        self._loop.close()
        _everything.discard(self)
        if not was_stopped:
            self._tell("stopped", {})

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- any thread ------------------------------------------------------------------------

    def _feed(self, name: str, fill: bool | tuple[str, ...], attr: str | None) -> tuple[_Feed, bool]:
        """The feed of ``name`` (made and started if new), with its ``attr`` stream made."""
        with self._lock:
            if self.stopped:
                raise RuntimeError("this Live was stopped; make a new one with scandeck.live(...)")
            feed = self._feeds.get((name, fill))
            new = feed is None
            if feed is None:
                feed = self._feeds[(name, fill)] = _Feed(self, name, fill, lead=not self._feeds)
            if attr is not None and getattr(feed, attr) is None:
                made = _new_stream(f"{name} {attr}")
                # What Stream.to_run reads to find the parent run (scandeck.derived_live).
                made.scandeck_origin = {"live": self, "stream": name, "pages": attr == "pages", "fill": fill}
                setattr(feed, attr, made)
                self._unstarted[getattr(feed, attr)] = time.monotonic()
        if new:
            feed.reader.start()
        return feed, new

    def _push(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            if self.stopped:
                return
            self._queue.append(item)
            if item[0] == "rows":
                self._filled_bytes += item[4]
                self._queued_rows += len(item[3]["seq_num"])
        self._coalescer.poke()

    def _wait_for_room(self, reader: Reader) -> None:
        """Block the following thread while too much (rows, or filled data) waits for the loop."""
        with self._room:
            while (
                self._filled_bytes >= MAX_FILLED_BYTES or self._queued_rows >= MAX_QUEUED_ROWS
            ) and not self.stopped:
                if reader.closed:
                    return
                self._room.wait(0.25)

    def _failed(self, err: BaseException, what: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = err
            count = self.failures
        if count <= SHOWN_FAILURES:
            # The error may quote a run's values (a file path, a uid): never raw to a terminal.
            text = printable("".join(traceback.format_exception(type(err), err, err.__traceback__)), keep="\n")
            sys.stderr.write(f"scandeck.live: {what} failed ({count} so far; the stream goes on):\n{text}")
            if count == SHOWN_FAILURES:
                sys.stderr.write("scandeck.live: further failures are counted in Live.failures, not shown\n")
        self._tell("failure", {"error": err, "what": what})

    # -- the loop --------------------------------------------------------------------------

    def _ready(self) -> bool:
        """False while a new stream's pipeline is still being built (see HOLD_SECONDS)."""
        with self._lock:
            waiting = list(self._unstarted.items())
        now = time.monotonic()
        for stream, made in waiting:
            if now - made < HOLD_SECONDS and not _ends_in_sinks(stream):
                return False
            with self._lock:
                self._unstarted.pop(stream, None)
        return True

    def _drain(self) -> None:
        with self._emitting:
            self._drain_now()

    def _drain_now(self) -> None:
        if not self._ready():
            self._coalescer.poke()  # again after the interval; the rows stay queued
            return
        taken: list[tuple[Any, ...]] = []
        rows = filled = 0
        with self._lock:
            while self._queue and (not taken or (rows < MAX_ROWS_PER_CALL and filled < MAX_FILLED_BYTES // 4)):
                item = self._queue.popleft()
                taken.append(item)
                if item[0] == "rows":
                    rows += len(item[3]["seq_num"])
                    filled += item[4]
            self._filled_bytes -= filled
            self._queued_rows -= rows
            self._room.notify_all()
            more = bool(self._queue)
        for item in _merge(taken):
            if self.stopped:
                return
            if item[0] == "run":
                if self._runs is not None:
                    self._emit(self._runs, item[1], 0, "a sink of Live.runs")
                continue
            if item[0] == "end":
                self._tell("end", item[1])
                continue
            if item[0] == "emit":  # one value for one stream (Live.files)
                self._emit(item[1], item[2], 0, item[3])
                continue
            _, feed, uid, cols, _ = item
            if feed.pages is not None:
                self._emit(feed.pages, {"uid": uid, **cols}, len(cols["seq_num"]), "a page sink")
            if feed.rows is not None:
                keys = list(cols)
                for values in zip(*(cols[k] for k in keys), strict=True):
                    row = dict(zip(keys, values, strict=True))
                    self._emit(feed.rows, {"uid": uid, **row}, 1, "a row sink")
        if more:
            self._coalescer.poke()

    def _emit(self, stream: Any, value: Any, rows: int, what: str) -> None:
        self.emissions += 1
        self.rows += rows
        try:
            stream.emit(value)
        except Exception as err:  # noqa: BLE001 - user code: shown, counted, the stream goes on
            self._failed(err, what)


class _Feed:
    """One followed stream name (filled or not): a reader of the run's shared follower and
    the streams it feeds."""

    def __init__(self, live: Live, name: str, fill: bool | tuple[str, ...], *, lead: bool) -> None:
        self.live = live  # the follower thread keeps its Live (and its streams) alive
        self.name = name
        self.fill = fill
        self.lead = lead
        self.rows: Any = None
        self.pages: Any = None
        self._lock = threading.Lock()
        #: Set when the followed run ended (or following it failed): what :meth:`Live.flush` waits for.
        self.ended = threading.Event()
        self.reader = subscribe(
            live.source,
            live.uid,
            listener=self._on_follow,
            stream=name,
            fill=fill,
            query=live.query,
            every_run=True,
            name=f"scandeck-live-{name}",
        )

    # -- the follower thread ---------------------------------------------------------------

    def _on_follow(self, kind: str, state: FollowState) -> None:
        live = self.live
        if kind == "error":
            error = self.reader.follower.error or RuntimeError("follower failed")
            live._failed(error, f"following {self.name}")
            self.ended.set()
            return
        if kind == RUN_START and state.uid is not None:
            from .provenance.context import note

            note(
                state.uid,
                scan_id=(state.start or {}).get("scan_id"),
                catalog=live.source.uri,
                stream=self.name,
                fields=list(state.table.keys),
            )
            if self.lead:
                live._push(("run", Run(live.source, live.source.get(state.uid))))
        self.take()
        if kind == RUN_STOP:
            if self.rows is not None or self.pages is not None:
                stop = state.stop or {}
                end = {"uid": state.uid, "stream": self.name, "fill": self.fill, "exit_status": state.status}
                live._push(("end", {**end, "reason": stop.get("reason", "")}))
            self.ended.set()

    def take(self, *, follower: bool = True) -> None:
        """Queue the rows not yet taken (on the follower thread, or on the thread making a
        new stream, then without waiting: it may be the loop's)."""
        while True:
            if follower:
                self.live._wait_for_room(self.reader)
            with self._lock:
                if self.rows is None and self.pages is None:
                    return  # kept (by the shared follower) until a stream wants them
                got = self.reader.take(FILL_ROWS if self.fill else TAKE_ROWS)
                if got is None:
                    return
                state, cols = got
                self._report_errors(state)
                nbytes = _nbytes(cols) if self.fill else 0
                self.live._push(("rows", self, state.uid, cols, nbytes))
                if self.live.stopped:
                    return

    def _report_errors(self, state: FollowState) -> None:
        for err in state.table.take_errors():
            self.live._failed(err, f"filling external data of {self.name!r}")


def _nbytes(cols: dict[str, list[Any]]) -> int:
    """Bytes of the arrays (filled external data) in a chunk of rows."""
    return sum(getattr(v, "nbytes", 0) for values in cols.values() for v in values if getattr(v, "ndim", 0))


def _merge(items: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Join consecutive row chunks of the same feed and run into one page."""
    out: list[tuple[Any, ...]] = []
    for item in items:
        last = out[-1] if out else None
        if (
            item[0] == "rows"
            and last is not None
            and last[0] == "rows"
            and last[1] is item[1]
            and last[2] == item[2]
            and list(last[3]) == list(item[3])
        ):
            for key, values in item[3].items():
                last[3][key].extend(values)
        else:
            out.append(item)
    return out


def _ends_in_sinks(stream: Any) -> bool:
    """True when every path down from ``stream`` ends in a sink."""
    from streamz.sinks import Sink

    todo, seen = [stream], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        downstreams = list(node.downstreams)
        if not downstreams and not isinstance(node, Sink):
            return False
        todo.extend(downstreams)
    return True


def _new_stream(name: str) -> Any:
    from .exceptions import require

    stream = require("streamz", "notebook").Stream(stream_name=name)
    from . import derived_live  # noqa: F401 - registers Stream.to_run

    return stream


def _resolve(target: Any, catalog: Catalog | None, shell: Any) -> tuple[Any, str | None, Any]:
    """(source, uid or None for "the newest and each new", query or None).

    In a batch execution "the newest and each new" is the run the parameters
    name (:func:`~scandeck.provenance.batch.batch_scan`): a rerun reads its scan,
    not whatever run is newest while it runs.
    """
    from .provenance.batch import batch_scan

    if isinstance(target, Run):
        return target.source, target.uid, None
    if isinstance(target, Catalog):
        key = batch_scan(shell)
        if key is not None:
            return target.source, target[key].uid, None
        return target.source, None, _query_of(target)
    if catalog is None:
        from .opening import open_catalog

        catalog = open_catalog()
    if target is None:
        key = batch_scan(shell)
        if key is not None:
            return catalog.source, catalog[key].uid, None
        return catalog.source, None, _query_of(catalog)
    if isinstance(target, (str, int)) and not isinstance(target, bool):
        return catalog.source, catalog[target].uid, None
    raise TypeError(
        f"scandeck.live follows a Run, a Catalog, a uid (or prefix), a scan_id or None, "
        f"not {type(target).__name__}"
    )


def _query_of(catalog: Catalog) -> Any:
    from .query import Query

    return None if catalog.query == Query.all() else catalog.query


@atexit.register
def _stop_everything() -> None:
    for item in list(_everything):
        item.stop()
