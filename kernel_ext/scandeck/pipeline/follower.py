"""A background thread that follows one run, or the newest run and each new one.

It reads documents through a :class:`~scandeck.follow.RunCursor` (the same reading,
gathering, waiting and liveness rules as :func:`~scandeck.follow.follow_run`: no
gaps, no duplicates, its own position), keeps the followed stream's rows in a
:class:`LiveTable`, and tells its listener what changed. The listener decides when (and on which thread) to
react; the follower never runs user code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ..follow import BATCH, RunCursor
from ..sources.matching import keep_matching
from ..sources.protocol import Source
from .table import LiveTable

#: What a follower reports: a new run started, rows arrived, the run ended.
RUN_START, DATA, RUN_STOP = "run_start", "data", "run_stop"

#: Longest wait between looks for news (bounds how long stop() takes).
_IDLE_WAIT = 0.25
#: Events one read takes at most: what a follower holds before its consumers take it,
#: whatever the size of the run's event pages.
READ_EVENTS = 20_000


@dataclass
class FollowState:
    """The followed run as last seen: shared with readers, replaced on a new run."""

    uid: str | None = None
    table: LiveTable = field(default_factory=LiveTable)
    start: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None
    documents: int = 0
    status: str = "waiting"

    @property
    def num_events(self) -> int:
        """Rows of the followed stream so far."""
        return len(self.table)

    @property
    def finished(self) -> bool:
        return self.stop is not None or self.status == "incomplete"


class Follower:
    """Follow ``target`` in ``source`` on a daemon thread.

    Parameters
    ----------
    source
        Any started source.
    target
        A run uid, or ``None`` for the newest run and then each new run as it starts.
    stream
        The stream whose rows are kept (``primary``).
    listener
        Called from the follower thread as ``listener(kind, state)`` with
        ``kind`` one of ``run_start``, ``data``, ``run_stop``.
    query
        With ``target=None``: follow only runs matching it (a searched catalog's query).
    every_run
        With ``target=None``: read what is stored of the current run before moving on,
        and visit each new run in arrival order instead of jumping to the newest.
    fill
        External array keys to read into the table (``True``: all); external
        scalars are always read (see :class:`LiveTable`).
    """

    def __init__(
        self,
        source: Source,
        target: str | None,
        *,
        stream: str = "primary",
        listener: Callable[[str, FollowState], None],
        name: str = "scandeck-follower",
        query: Any = None,
        every_run: bool = False,
        fill: bool | Collection[str] = (),
    ) -> None:
        self.source = source
        self.target = target
        self.stream = stream
        self.listener = listener
        self.query = query
        self.every_run = every_run
        self.fill = fill
        self.state = FollowState(table=LiveTable(stream, fill=fill))
        self.error: BaseException | None = None
        self._begin: tuple[str | None, int] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        # "The newest run and each new one" counts from this call, not from when the thread
        # first runs: a run that starts right after start() returns is never skipped.
        self._begin = self._newest() if self.target is None else None
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and wait for it (idempotent)."""
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._follow()
        except BaseException as err:  # noqa: BLE001 - reported through .error, never lost
            self.error = err
            self.listener("error", self.state)
        finally:
            self.state.table.close()

    def _newest(self) -> tuple[str | None, int]:
        found = self.source.search(self.query if self.query is not None else _all(), limit=1)
        return (found[0].uid if found else None), self.source.latest_seq()

    def _follow(self) -> None:
        seq = 0
        if self.target is None:
            assert self._begin is not None  # start() sets it before the thread runs
            uid, seq = self._begin
        else:
            uid = self.source.get(self.target).uid
        cursor = self._switch(uid) if uid is not None else None
        token: object = None
        while not self._stopping.is_set():
            previous, token = token, self.source.change_token()
            if self.target is None and not self.every_run and token != previous:
                newer = self.source.runs_since(seq)
                if newer:
                    seq = newer[-1].seq
                    newer = [s for s in newer if self._keeps(s)]
                    if newer and newer[-1].uid != uid:
                        uid = newer[-1].uid
                        cursor = self._switch(uid)
            got = 0
            if cursor is not None and not self.state.finished:
                got = self._read(cursor)
            if cursor is not None and got:
                if got < BATCH and not cursor.full:  # not cut short by a bound: let a few more land
                    cursor.gather(self._stopping.wait)
                continue
            if cursor is not None and not self.state.finished and cursor.writer_gone():
                self._writer_died(cursor)
                continue
            if self.target is None and self.every_run:
                moved = False
                for summary in self.source.runs_since(seq, limit=50):
                    seq = summary.seq
                    if self._keeps(summary) and summary.uid != uid:
                        uid, moved = summary.uid, True
                        cursor = self._switch(uid)
                        break
                if moved:
                    continue
            if self.target is not None and cursor is not None:  # a target always has a cursor
                if self.state.finished:
                    return
                cursor.wait(_IDLE_WAIT)
            else:
                self.source.wait(token, _IDLE_WAIT)  # new runs, as well as this one's documents

    def _keeps(self, summary: Any) -> bool:
        return bool(keep_matching(self.source, self.query, [summary]))

    def _switch(self, uid: str) -> RunCursor:
        self.state.table.close()
        self.state = FollowState(uid=uid, table=LiveTable(self.stream, fill=self.fill), status="running")
        return RunCursor(self.source, uid)

    def _read(self, cursor: RunCursor, limit: int | None = BATCH) -> int:
        """Read what is new into the state and tell the listener; returns the documents read."""
        state = self.state
        rows = 0
        batch = cursor.read(limit, events=READ_EVENTS if limit is not None else None)
        for entry in batch:
            if entry.name == "start":
                state.start = entry.doc
            elif entry.name == "stop":
                state.stop = entry.doc
                state.status = entry.doc.get("exit_status", "success")
                rows += state.table.finish()
            else:
                rows += state.table.add(entry.name, entry.doc)
        docs = len(batch)
        state.documents += docs
        if docs and state.start is not None and state.documents == docs:
            self.listener(RUN_START, state)
        if rows:
            self.listener(DATA, state)
        if state.stop is not None and docs and batch[-1].name == "stop":
            self.listener(RUN_STOP, state)
        return docs

    def _writer_died(self, cursor: RunCursor) -> None:
        """The run's writer is gone without a stop: take what it committed, then report the end."""
        self._read(cursor, limit=None)
        if self.state.stop is not None:
            return  # the stop document was there after all: reported by _read
        self.state.status = "incomplete"
        if self.state.table.finish():
            self.listener(DATA, self.state)
        self.listener(RUN_STOP, self.state)


def _all() -> Any:
    from ..query import Query

    return Query.all()
