"""Following live runs and the arrival of new runs, over any source.

The primitive the kernel extension and the panel build on: each reader keeps
its own position, so any number of readers at any speed see every document
once, in order, with no gaps and no duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .sources.protocol import Entry, RunSummary, Source, WaitRun

#: Longest single wait between re-reads; bounds how late a reader notices a
#: writer that died without a stop document.
_MAX_WAIT = 0.5
#: After a read that found documents, let a few more land before the next read: at
#: 10k events/s a reader then takes ~50 documents at a time instead of spinning on 3.
#: (A source that wakes a reader per run, as Redis does, needs no such pause.)
GATHER = 0.005
#: How long a run must be quiet before its writer is checked for being alive.
LIVENESS_AFTER = 0.5
#: Documents one read hands on at most, so that a long backlog arrives in slices.
BATCH = 5000


class RunCursor:
    """One reader's place in one run: read what is new, wait for more, notice a dead writer.

    The one follow loop of scandeck, in pieces: :func:`follow_run` and the
    pipeline's :class:`~scandeck.pipeline.follower.Follower` both drive a cursor,
    so they read, gather, wait and check liveness by the same rules.

    Examples
    --------
    >>> cursor = RunCursor(source, uid)          # doctest: +SKIP
    >>> while not cursor.ended:                  # doctest: +SKIP
    ...     batch = cursor.read()
    ...     if not batch and not cursor.writer_gone():
    ...         cursor.wait(0.5)
    """

    def __init__(self, source: Source, uid: str, *, start: int = 0) -> None:
        self.source, self.uid, self.pos = source, uid, start
        #: True once the stop document was read, or the writer is gone without one.
        self.ended = False
        self.last_news = self._checked = time.monotonic()
        # A source that can block on one run's documents (Redis) wakes the reader as
        # they land; the others are waited on through their change token.
        self._wait_run = source.wait_run if isinstance(source, WaitRun) else None
        self._token: object = None
        #: True when the last read ended at its ``events`` bound: more may be waiting.
        self.full = False

    def read(self, limit: int | None = BATCH, *, events: int | None = None) -> list[Entry]:
        """The documents stored since the last read (at most ``limit``), in order.

        ``events`` also ends the read once its events (event pages count their rows)
        reach that many: a reader that keeps what it read holds a bounded batch,
        however large the pages.
        """
        # The token is taken before reading, so nothing stored meanwhile is missed by wait().
        self._token = None if self._wait_run else self.source.change_token()
        out: list[Entry] = []
        self.full = False
        for entry in self.source.documents(self.uid, start=self.pos):
            out.append(entry)
            self.pos = entry.pos + 1
            if entry.name == "stop":
                self.ended = True
                break
            if limit is not None and len(out) >= limit:
                break
            if events is not None:
                events -= len(entry.doc["seq_num"]) if entry.name == "event_page" else int(entry.name == "event")
                if events <= 0:
                    self.full = True
                    break
        if out:
            self.last_news = time.monotonic()
        return out

    def gather(self, pause: Callable[[float], object] = time.sleep) -> None:
        """After a read that found documents: let a few more land (``pause`` may be an Event's wait)."""
        if self._wait_run is None:
            pause(GATHER)

    @property
    def quiet(self) -> float:
        """Seconds since a read last found documents."""
        return time.monotonic() - self.last_news

    def writer_gone(self) -> bool:
        """True (and :attr:`ended`) when the run has been quiet and its writer died without a stop.

        Asks the source at most every :data:`LIVENESS_AFTER` seconds. What the writer
        committed after the last read is still there for :meth:`read`.
        """
        now = time.monotonic()
        if now - self.last_news < LIVENESS_AFTER or now - self._checked < LIVENESS_AFTER:
            return False
        self._checked = now
        if self.source.get(self.uid).status != "incomplete":
            return False
        self.ended = True
        return True

    def wait(self, timeout: float) -> None:
        """Block until the run (or, for sources without per-run waits, the store) changed, or ``timeout``."""
        if self._wait_run is not None:
            self._wait_run(self.uid, self.pos, timeout)
        else:
            self.source.wait(self._token, timeout)


def follow_run(source: Source, uid: str, *, start: int = 0, timeout: float | None = None) -> Iterator[Entry]:
    """Documents of run ``uid`` from position ``start``, as they are stored.

    Ends after the stop document, when the run's writer is gone without one
    (status ``incomplete``), or when no new document arrived for ``timeout``
    seconds (``None`` waits for ever).
    """
    cursor = RunCursor(source, uid, start=start)
    while True:
        batch = cursor.read()
        yield from batch
        if cursor.ended:
            return
        if batch:
            cursor.gather()
            continue
        if cursor.writer_gone():
            yield from cursor.read(limit=None)  # what it committed after our last read
            return
        wait = _MAX_WAIT
        if timeout is not None:
            remaining = timeout - cursor.quiet
            if remaining <= 0:
                return
            wait = min(wait, remaining)
        cursor.wait(wait)


def follow_runs(
    source: Source,
    *,
    after: int | None = None,
    timeout: float | None = None,
    keep: Callable[[RunSummary], bool] | None = None,
) -> Iterator[RunSummary]:
    """Runs as they start, in arrival order.

    ``after`` is a source ``seq``: the default starts with runs arriving after
    the call. ``keep`` filters (a searched catalog passes its query). Ends when
    no run arrived for ``timeout`` seconds (``None`` waits for ever).
    """
    seq = source.latest_seq() if after is None else after
    last_news = time.monotonic()
    while True:
        token = source.change_token()
        for summary in source.runs_since(seq):
            seq = summary.seq
            last_news = time.monotonic()
            if keep is None or keep(summary):
                yield summary
        wait = _MAX_WAIT
        if timeout is not None:
            remaining = timeout - (time.monotonic() - last_news)
            if remaining <= 0:
                return
            wait = min(wait, remaining)
        source.wait(token, wait)
