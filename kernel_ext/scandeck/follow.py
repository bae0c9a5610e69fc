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
#: After a read that found documents, let a few more land before the next read.
_GATHER = 0.002
#: How long a run must be quiet before its writer is checked for being alive.
_LIVENESS_AFTER = 0.5


def follow_run(
    source: Source, uid: str, *, start: int = 0, timeout: float | None = None
) -> Iterator[Entry]:
    """Documents of run ``uid`` from position ``start``, as they are stored.

    Ends after the stop document, when the run's writer is gone without one
    (status ``incomplete``), or when no new document arrived for ``timeout``
    seconds (``None`` waits for ever).
    """
    pos = start
    last_news = time.monotonic()
    # A source that can block on one run's documents (Redis) wakes the follower
    # as they land; the others are waited on through their change token.
    wait_run = source.wait_run if isinstance(source, WaitRun) else None
    while True:
        token = None if wait_run else source.change_token()
        got = 0
        for entry in source.documents(uid, start=pos):
            yield entry
            pos = entry.pos + 1
            got += 1
            if entry.name == "stop":
                return
        now = time.monotonic()
        if got:
            last_news = now
            if wait_run is None:
                time.sleep(_GATHER)  # let a few more land: read batches, not one document at a time
            continue
        if now - last_news >= _LIVENESS_AFTER and source.get(uid).status == "incomplete":
            # The writer died; anything it committed after our last read comes now.
            for entry in source.documents(uid, start=pos):
                yield entry
            return
        wait = _MAX_WAIT
        if timeout is not None:
            remaining = timeout - (now - last_news)
            if remaining <= 0:
                return
            wait = min(wait, remaining)
        if wait_run is not None:
            wait_run(uid, pos, wait)
        else:
            source.wait(token, wait)


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
