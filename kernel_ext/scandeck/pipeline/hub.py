"""One follower per (source, run, stream) in a process, shared by every consumer of that run.

``%%bind`` cells, ``live()`` pipelines and live plots of the same run read its
documents once: :func:`subscribe` hands each consumer a :class:`Reader` on the
shared :class:`~scandeck.pipeline.follower.Follower` of its key (made and started
for the first, reference counted). Each reader keeps its own place in the
stream's rows; the shared table forgets a row once every reader took it, so the
slowest consumer bounds the memory, and a consumer that wants the whole run
keeps its own copy (:class:`~scandeck.pipeline.columns.KeptColumns`). Closing a
reader leaves the others fed; the last one stops the follower. A follower of
one run leaves the registry when the run ends.

A reader that joins a follower whose table already dropped rows reads those
rows itself, from the source, before it takes the shared ones: every consumer
sees the run from its first row, as it did with a follower of its own.

Examples
--------
>>> reader = subscribe(source, uid, listener=on_follow)        # doctest: +SKIP
>>> state, cols = reader.take() or (None, None)                 # doctest: +SKIP
>>> reader.close()                                              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection, Hashable
from typing import Any

from ..follow import BATCH, RunCursor
from ..safe_text import printable
from ..sources.protocol import Source
from .follower import DATA, RUN_START, RUN_STOP, Follower, FollowState
from .table import LiveTable

__all__ = ["Reader", "followers", "registered", "subscribe"]

Listener = Callable[[str, FollowState], None]

_lock = threading.Lock()
_registry: dict[Hashable, _Shared] = {}


def subscribe(
    source: Source,
    target: str | None,
    *,
    listener: Listener,
    stream: str = "primary",
    fill: bool | Collection[str] = (),
    query: Any = None,
    every_run: bool = False,
    name: str = "scandeck-follower",
) -> Reader:
    """A :class:`Reader` of ``stream`` of run ``target`` (``None``: the newest run, then each new one).

    ``listener(kind, state)`` is called on the follower's thread as for a
    :class:`~scandeck.pipeline.follower.Follower` of one's own; it should
    :meth:`Reader.take` what it wants and return. ``query`` and ``every_run``
    matter only with ``target=None``. Call :meth:`Reader.start` once the
    consumer is ready for reports (the follower starts with its first reader),
    and :meth:`Reader.close` when done.
    """
    wanted = _wanted(fill)
    key = follower_key(source, target, stream, wanted, query, every_run)
    with _lock:
        shared = _registry.get(key)
        if shared is not None and not shared.joinable():
            _registry.pop(key)
            shared = None
        if shared is None:
            shared = _registry[key] = _Shared(key, source, target, stream, wanted, query, every_run, name)
        return shared.join(listener)


def _wanted(fill: bool | Collection[str]) -> bool | tuple[str, ...]:
    """``fill`` in one spelling: False and () both mean "no external arrays", one follower for both."""
    if fill is True:
        return True
    return () if fill is False else tuple(sorted({fill} if isinstance(fill, str) else set(fill)))


def follower_key(
    source: Source, target: str | None, stream: str, fill: bool | tuple[str, ...], query: Any, every_run: bool
) -> Hashable:
    """What makes two consumers share a follower: the same store, run (or "newest" with the same
    query and pace), stream and filled keys."""
    where = source.uri
    if where.startswith("memory://"):  # in-process stores: the same name need not be the same store
        where = f"{where}#{id(source)}"
    if target is not None:
        return (where, target, stream, fill)
    return (where, "newest", stream, fill, repr(query), every_run)


def followers() -> int:
    """How many shared followers the registry holds (each one thread, one table)."""
    with _lock:
        return len(_registry)


def registered(
    source: Source,
    target: str | None,
    *,
    stream: str = "primary",
    fill: bool | Collection[str] = (),
    query: Any = None,
    every_run: bool = False,
) -> Follower | None:
    """The follower the registry holds for these arguments of :func:`subscribe`, if any."""
    key = follower_key(source, target, stream, _wanted(fill), query, every_run)
    with _lock:
        shared = _registry.get(key)
    return None if shared is None else shared.follower


class _Shared:
    """One follower, its readers, and the lowest row any of them still needs."""

    def __init__(
        self,
        key: Hashable,
        source: Source,
        target: str | None,
        stream: str,
        fill: bool | tuple[str, ...],
        query: Any,
        every_run: bool,
        name: str,
    ) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.readers: list[Reader] = []
        self.started = False
        self.follower = Follower(
            source,
            target,
            stream=stream,
            listener=self._fan_out,
            name=name,
            query=query,
            every_run=every_run,
            fill=fill,
        )

    def joinable(self) -> bool:
        """False once the follower ended or failed: a new consumer gets a new one."""
        follower = self.follower
        return follower.error is None and not (follower.target is not None and follower.state.finished)

    def join(self, listener: Listener) -> Reader:
        with self.lock:
            reader = Reader(self, listener)
            self.readers.append(reader)
        return reader

    def leave(self, reader: Reader) -> None:
        with self.lock:
            if reader in self.readers:
                self.readers.remove(reader)
            last = not self.readers
        if last:
            with _lock:
                if _registry.get(self.key) is self:
                    del _registry[self.key]
            self.follower.stop()
            self.follower.state.table.close()

    def _fan_out(self, kind: str, state: FollowState) -> None:
        """The follower's listener: every reader hears every report, whatever the others do."""
        with self.lock:
            readers = [r for r in self.readers if r.started]
        for reader in readers:
            try:
                if kind == RUN_START:
                    if reader.heard(RUN_START, state):
                        reader.listener(kind, state)
                    continue
                if state.start is not None and reader.heard(RUN_START, state):
                    # Joined while the run was going: it hears of the run's start first, as
                    # a consumer with a follower of its own would have.
                    reader.listener(RUN_START, state)
                if kind != RUN_STOP or reader.heard(RUN_STOP, state):
                    reader.listener(kind, state)
            except Exception as err:  # noqa: BLE001 - one consumer's bug must not starve the others
                reader.failed(err)
        self.release()
        if kind in (RUN_STOP, "error") and (self.follower.target is not None or kind == "error"):
            with _lock:  # a finished run's follower is done: the next consumer starts afresh
                if _registry.get(self.key) is self:
                    del _registry[self.key]

    def release(self) -> None:
        """Drop the rows of the current table that every reader took."""
        with self.lock:
            state = self.follower.state
            lowest = min((r.position(state) for r in self.readers), default=len(state.table))
            state.table.drop(lowest)


class Reader:
    """One consumer's place in a shared follower's rows; see :func:`subscribe`."""

    def __init__(self, shared: _Shared, listener: Listener) -> None:
        self._shared = shared
        self.listener = listener
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._state: FollowState | None = shared.follower.state  # joined under the shared lock
        self._pos = 0
        self._catch_up: _CatchUp | None = None
        self.started = self.closed = False
        #: The state whose run start this reader's listener heard of.
        self.announced: FollowState | None = None
        #: The state whose run stop it heard of (a stop is told once, by the follower or by start()).
        self.told_stop: FollowState | None = None
        self._heard_lock = threading.Lock()

    def heard(self, kind: str, state: FollowState) -> bool:
        """Note that the listener hears ``kind`` (RUN_START or RUN_STOP) of ``state``: False when
        it already did (the follower's report and :meth:`start`'s catch-up may cross)."""
        with self._heard_lock:
            if kind == RUN_START:
                new, self.announced = self.announced is not state, state
            else:
                new, self.told_stop = self.told_stop is not state, state
            return new

    def start(self) -> None:
        """Begin hearing the follower's reports (and start the follower if it is new)."""
        shared = self._shared
        with shared.lock:
            self.started = True
            begin = not shared.started
            shared.started = True
        if begin:
            shared.follower.start()
        else:
            self._catch_up_reports()

    def _catch_up_reports(self) -> None:
        """Joined a running follower: hear now what it reported before this reader started.

        A reader joins (:func:`subscribe`) and starts apart; a follower that read the run to its
        stop in between told only its started readers, and tells nothing more: without this the
        reader would never hear of its rows or its end (a second ``scandeck.live`` of a short run).
        """
        state = self._shared.follower.state
        if state.start is None:
            return  # nothing read yet: the follower's reports will come
        try:
            if self.heard(RUN_START, state):
                self.listener(RUN_START, state)
            if state.finished:
                if self.heard(RUN_STOP, state):
                    self.listener(RUN_STOP, state)
            else:
                self.listener(DATA, state)
        except Exception as err:  # noqa: BLE001 - the consumer's bug, as in the follower's reports
            self.failed(err)

    @property
    def follower(self) -> Follower:
        """The shared follower (its ``state``, ``error`` and ``alive``)."""
        return self._shared.follower

    @property
    def state(self) -> FollowState:
        return self._shared.follower.state

    def position(self, state: FollowState) -> int:
        """The first row of ``state`` this reader has not taken (0 for a state it has not seen)."""
        return self._pos if state is self._state else 0

    def take(self, limit: int | None = None) -> tuple[FollowState, dict[str, list[Any]]] | None:
        """The followed state and the rows of its stream not taken yet (at most ``limit``), or None.

        A new run (following "the newest") starts again at its first row.
        """
        with self._lock:
            state = self._shared.follower.state
            if state is not self._state:
                self._state, self._pos = state, 0
                self._close_catch_up()
            end = len(state.table)
            if self._pos >= end or self.closed:
                return None
            stop = end if limit is None else min(end, self._pos + limit)
            base = state.table.base
            if self._pos < base:  # joined late: the rows every other reader took come from the source
                if self._catch_up is None:
                    self._catch_up = _CatchUp(self._shared.follower, state, base)
                stop = min(stop, self._catch_up.upto)
                cols = self._catch_up.columns(self._pos, stop)
                if stop >= self._catch_up.upto:
                    self._close_catch_up()
            else:
                cols = state.table.columns(self._pos, stop)
            self._pos = stop
        self._shared.release()
        return state, cols

    def _close_catch_up(self) -> None:
        if self._catch_up is not None:
            self._catch_up.table.close()
            self._catch_up = None

    def failed(self, err: BaseException) -> None:
        """The consumer's listener raised: kept, shown once, the others go on."""
        first = self.error is None
        self.error = err
        if first:
            sys.stderr.write(f"scandeck: a live consumer failed: {printable(repr(err))}\n")

    def close(self) -> None:
        """Stop taking rows; the follower stops when its last reader closed (idempotent)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._close_catch_up()
        self._shared.leave(self)


class _CatchUp:
    """Rows ``0:upto`` of a followed run that the shared table dropped before a reader joined,
    read again from the source (in batches, dropped as they are taken)."""

    def __init__(self, follower: Follower, state: FollowState, upto: int) -> None:
        assert state.uid is not None  # a table with rows belongs to a run
        self.upto = upto
        self.table = LiveTable(follower.stream, fill=follower.fill)
        self._cursor = RunCursor(follower.source, state.uid)

    def columns(self, start: int, stop: int) -> dict[str, list[Any]]:
        # The same documents in the same order make the same rows: row i here is row i there.
        while len(self.table) < stop and not self._cursor.ended:
            batch = self._cursor.read(BATCH)
            if not batch:
                raise RuntimeError(f"the run ended after {len(self.table)} rows; {stop} were followed")
            for entry in batch:
                self.table.add(entry.name, entry.doc)
        cols = self.table.columns(start, stop)
        self.table.drop(stop)
        return cols
