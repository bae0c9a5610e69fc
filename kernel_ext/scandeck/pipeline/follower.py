"""A background thread that follows one run, or the newest run and each new one.

It reads documents straight from the source (no gaps, no duplicates: its own
position), keeps the followed stream's rows in a :class:`LiveTable`, and tells
its listener what changed. The listener decides when (and on which thread) to
react; the follower never runs user code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ..sources.protocol import Source
from .table import LiveTable

#: What a follower reports: a new run started, rows arrived, the run ended.
RUN_START, DATA, RUN_STOP = "run_start", "data", "run_stop"

_IDLE_WAIT = 0.25
_BATCH = 5000
#: After a read that found documents, let a few more land before reading again:
#: at 10k events/s this reads ~50 documents at a time instead of spinning on 3.
_GATHER = 0.005
#: A run with no news for this long gets its writer checked (is it still alive?).
_LIVENESS_AFTER = 0.5


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
        self._stopping = threading.Event()
        self._quiet_since = time.monotonic()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
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
            uid, seq = self._newest()
        else:
            uid = self.source.get(self.target).uid
        pos = 0
        if uid is not None:
            self._switch(uid)
        token: object = None
        while not self._stopping.is_set():
            previous, token = token, self.source.change_token()
            if self.target is None and not self.every_run and token != previous:
                newer = self.source.runs_since(seq)
                if newer:
                    seq = newer[-1].seq
                    newer = [s for s in newer if self._keeps(s)]
                    if newer and newer[-1].uid != uid:
                        uid, pos = newer[-1].uid, 0
                        self._switch(uid)
            got = 0
            if uid is not None and not self.state.finished:
                got, pos = self._read(uid, pos)
            if got:
                self._quiet_since = time.monotonic()
                if got < _BATCH:
                    self._stopping.wait(_GATHER)
                continue
            if uid is not None and not self.state.finished and self._writer_gone(uid):
                continue
            if self.target is None and self.every_run:
                moved = False
                for summary in self.source.runs_since(seq, limit=50):
                    seq = summary.seq
                    if self._keeps(summary) and summary.uid != uid:
                        uid, pos, moved = summary.uid, 0, True
                        self._switch(uid)
                        break
                if moved:
                    continue
            if self.target is not None and self.state.finished:
                return
            self.source.wait(token, _IDLE_WAIT)

    def _keeps(self, summary: Any) -> bool:
        return self.query is None or self.query.matches(summary.start, summary.stop)

    def _switch(self, uid: str) -> None:
        self.state.table.close()
        self.state = FollowState(uid=uid, table=LiveTable(self.stream, fill=self.fill), status="running")

    def _read(self, uid: str, pos: int) -> tuple[int, int]:
        state = self.state
        rows = docs = 0
        ended = False
        for entry in self.source.documents(uid, start=pos):
            pos = entry.pos + 1
            docs += 1
            if entry.name == "start":
                state.start = entry.doc
            elif entry.name == "stop":
                state.stop = entry.doc
                state.status = entry.doc.get("exit_status", "success")
                rows += state.table.finish()
                ended = True
            else:
                rows += state.table.add(entry.name, entry.doc)
            if self._stopping.is_set() or docs >= _BATCH:
                break  # report in slices: the listener sees progress on long backlogs
        state.documents += docs
        if docs and state.start is not None and state.documents == docs:
            self.listener(RUN_START, state)
        if rows:
            self.listener(DATA, state)
        if ended:
            self.listener(RUN_STOP, state)
        return docs, pos

    def _writer_gone(self, uid: str) -> bool:
        """After a quiet spell, ask whether the run's writer died (then report the end)."""
        if time.monotonic() - self._quiet_since < _LIVENESS_AFTER:
            return False
        self._quiet_since = time.monotonic()
        if self.source.get(uid).status != "incomplete":
            return False
        self.state.status = "incomplete"
        if self.state.table.finish():
            self.listener(DATA, self.state)
        self.listener(RUN_STOP, self.state)
        return True


def _all() -> Any:
    from ..query import Query

    return Query.all()

