"""One thread per watched catalog: new runs, and the progress of running ones, as messages.

The thread waits on the source's change token (the store tells it something was
written), then reads only index rows: the runs that arrived since the last look
(:meth:`~scandeck.sources.protocol.Source.runs_since`) and the current row of each
run it saw running. It emits a ``{"type": "run", "run": RUN}`` message

- when a run arrives,
- while it runs, when its event count or status changed, at most once per
  :data:`MIN_INTERVAL` seconds (a change inside that interval is sent when it ends,
  never dropped),
- once more when it ends (success, abort, fail, or incomplete when its writer died).

For a store that keeps runs' facts (:class:`~scandeck.sources.protocol.RunFacts`) it
also emits ``{"type": "facts", "uids": [...]}`` when runs' tags, comments or computed
cells changed (:meth:`~scandeck.sources.protocol.RunFacts.facts_since`): by this server,
the command line, a notebook or a column service, in this process or another.

``emit`` is called on the watcher's thread; the push hub hands the message to the
event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound
from ..sources.matching import keep_matching
from ..sources.protocol import RunFacts
from .catalogs import live_runs
from .watched_runs import summary

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary

__all__ = ["MIN_INTERVAL", "RunWatcher"]

log = logging.getLogger(__name__)

#: Least time between two progress messages of one run (at most 4 per second).
MIN_INTERVAL = 0.25
#: Longest wait without news: bounds how late a writer that died is noticed.
MAX_WAIT = 0.5
#: Least time between two looks: a store written 1000 times a second is read 20 times.
GATHER = 0.05
#: Pause after an error reading the store (a lost connection) before trying again.
RETRY_AFTER = 1.0
#: Most uids in one ``facts`` message (a recompute of every run sends several).
FACTS_PER_MESSAGE = 500


@dataclass
class _Track:
    """A running run: what was last sent about it, and when."""

    sent: tuple[int, str]
    at: float


class RunWatcher:
    """Watch ``catalog`` in a thread, calling ``emit(message)`` for each run message.

    Examples
    --------
    >>> watcher = RunWatcher("", cat, print)   # doctest: +SKIP
    >>> watcher.start(); ...; watcher.stop(); watcher.join()  # doctest: +SKIP
    """

    def __init__(self, name: str, catalog: Catalog, emit: Callable[[dict[str, Any]], None]) -> None:
        self.name = name
        self.catalog = catalog
        self.emit = emit
        self._stop = threading.Event()
        #: Set once the thread knows the store's state: changes after that are pushed.
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq: int | None = None
        self._tracked: dict[str, _Track] = {}
        self._facts_mark: int | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"scandeck-watch-{self.name or 'default'}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it does within :data:`MAX_WAIT`); does not wait."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception:  # noqa: BLE001 - a store hiccup must not end the push channel
                log.exception("scandeck: watching catalog %r failed; trying again", self.name)
                self._stop.wait(RETRY_AFTER)

    def _watch(self) -> None:
        source = self.catalog.source
        if self._seq is None:
            # The seq first: a run starting meanwhile is then seen by runs_since (and not twice).
            self._seq = source.latest_seq()
            now = time.monotonic()
            for s in live_runs(self.catalog):
                self._tracked[s.uid] = _Track((s.num_events, s.status), now - MIN_INTERVAL)
            if isinstance(source, RunFacts):
                self._facts_mark = source.facts_since(0)[0]
            self.ready.set()
        while not self._stop.is_set():
            token = source.change_token()
            next_due = self._look()
            wait = MAX_WAIT if next_due is None else min(MAX_WAIT, max(next_due - time.monotonic(), 0.0))
            if self._stop.wait(min(GATHER, wait)):
                return
            wait -= GATHER
            if wait > 0:
                source.wait(token, wait)

    def _look(self) -> float | None:
        """Send what changed; return when a held-back change is due (monotonic time), if any."""
        source = self.catalog.source
        query = self.catalog.query
        now = time.monotonic()
        assert self._seq is not None
        arrived = source.runs_since(self._seq)
        kept = {s.uid for s in keep_matching(source, query, arrived)}
        for s in arrived:
            self._seq = s.seq
            if s.uid not in kept:
                continue
            self._send(s)
            if s.status == "running":
                self._tracked[s.uid] = _Track((s.num_events, s.status), now)
        self._look_facts()
        due: float | None = None
        for uid, track in list(self._tracked.items()):
            try:
                s = source.get(uid)
            except RunNotFound:  # trimmed from a bus meanwhile
                del self._tracked[uid]
                continue
            state = (s.num_events, s.status)
            if s.status != "running":
                self._send(s)
                del self._tracked[uid]
            elif state != track.sent:
                if now - track.at >= MIN_INTERVAL:
                    self._send(s)
                    track.sent, track.at = state, now
                else:
                    when = track.at + MIN_INTERVAL
                    due = when if due is None else min(due, when)
        return due

    def _look_facts(self) -> None:
        source = self.catalog.source
        if self._facts_mark is None or not isinstance(source, RunFacts):
            return
        mark, uids = source.facts_since(self._facts_mark)
        self._facts_mark = mark
        for at in range(0, len(uids), FACTS_PER_MESSAGE):
            self.emit({"type": "facts", "uids": uids[at : at + FACTS_PER_MESSAGE]})

    def _send(self, s: RunSummary) -> None:
        self.emit({"type": "run", "run": summary(self.catalog.source, s)})
