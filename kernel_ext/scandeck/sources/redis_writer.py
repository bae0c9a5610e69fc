"""The Redis writer: validate in the caller's thread, send in order from a background one.

``writer(name, doc)`` checks the document and queues it; a sender thread ships
the queue in pipelined batches through :data:`~.redis_layout.APPEND_SCRIPT`.
The caller waits only for start and stop documents (so a duplicate uid raises
at once and a finished run is readable when the RunEngine returns) and for
:meth:`RedisWriter.flush`.

While Redis is away the queue is the buffer: the sender retries with back-off
and sends everything in order when Redis is back. Every document carries its
position in its run, so a batch whose reply was lost is simply sent again
(Redis answers "already stored" for what arrived). Documents of open runs are
kept after they were stored, within the same byte budget: if a restarted Redis
lost some (``appendfsync everysec``), they are sent again from where it stopped.
When the buffer is full, the writer raises :class:`~scandeck.exceptions.StoreError`
for the document it could not take.

The writer also records each run's data summaries (:mod:`scandeck.runtable.summaries`:
per descriptor, each numeric key's min and max) as events go by, and sends them
with the documents at most every second and with the stop document, so a query
on ``data.<key>.min|max`` finds a running run, and a finished one at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..documents import PER_DESCRIPTOR, RunOrder, pack
from ..exceptions import InvalidDocument, StoreError
from ..runtable.summaries import RunRanges
from .liveness import identity
from .redis_layout import APPEND_SCRIPT, FACTS_SCRIPT, Keys, RedisOptions, connect, is_connection_error

log = logging.getLogger(__name__)

#: Documents (and bytes) per pipelined round trip.
_BATCH, _BATCH_BYTES = 1000, 8 << 20
#: Back-off while Redis is away: 50 ms doubling to 2 s.
_BACKOFF, _BACKOFF_MAX = 0.05, 2.0
#: Seconds between two stores of a running run's data summaries.
_SUMS_EVERY = 1.0

#: Writers alive in this process, by bus, so a reader of the same bus sees what
#: this process wrote (read-your-writes) before it reads.
_live: weakref.WeakSet[_Sender] = weakref.WeakSet()


@dataclass
class _Item:
    uid: str
    pos: int
    name: str
    blob: bytes
    args: list[Any]  # pos, name, blob, descriptor, n events, exit_status
    start: tuple[str, str] | None = None  # a start document's time and scan_id, for the index
    sums: list[str] | None = None  # the run's data summaries to store after it (RunRanges.fields)

    @property
    def size(self) -> int:
        return len(self.blob) + 600  # the item, its argument list and deque slot (measured)


class _Sender:
    """The queue and the thread that empties it; holds no reference to the writer."""

    def __init__(self, opts: RedisOptions, keys: Keys) -> None:
        self.opts, self.keys = opts, keys
        self.writer_id = uuid.uuid4().hex
        host, pid, token = identity()
        self.identity = [host, pid, token, int(opts.heartbeat * 1000)]
        self.cond = threading.Condition()
        self.queue: deque[_Item] = deque()
        self.kept: dict[str, deque[_Item]] = {}  # stored documents of open runs, for replays
        self.bytes = 0  # queued + kept
        self.connected = True
        self.down_since: float | None = None
        self.last_error: BaseException | None = None
        self.failures: list[StoreError | InvalidDocument] = []
        self.closing = False
        self.client = connect(opts)
        self.sha: str | None = None
        self.facts_sha: str | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"scandeck-redis-writer-{self.writer_id[:8]}", daemon=True
        )
        self.thread.start()
        _live.add(self)

    # -- called by the writer --------------------------------------------------------------

    def put(self, item: _Item) -> None:
        with self.cond:
            if self.bytes + item.size > self.opts.buffer:
                self._drop_kept(self.bytes + item.size - self.opts.buffer)
            if self.bytes + item.size > self.opts.buffer:
                since = time.strftime("%H:%M:%S", time.localtime(self.down_since or time.time()))
                raise StoreError(
                    f"the writer's buffer is full ({len(self.queue)} documents, {_human(self.bytes)} "
                    f"of buffer={_human(self.opts.buffer)}) because Redis at {self.opts.where} has been "
                    f"unreachable since {since} ({self.last_error}); this {item.name} document was not "
                    "stored. The buffered documents are sent in order when Redis is back; raise "
                    "buffer= in the URI to hold more."
                )
            self.queue.append(item)
            self.bytes += item.size
            self.cond.notify_all()

    def flush(self, timeout: float | None, *, while_down: bool) -> bool:
        """Wait until the queue is stored; give up early when Redis is away unless ``while_down``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while self.queue:
                if not self.connected and not while_down:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            return True

    def take_failures(self) -> list[StoreError | InvalidDocument]:
        with self.cond:
            failures, self.failures = self.failures, []
            return failures

    def close(self, timeout: float) -> int:
        """Send what is queued (up to ``timeout``), end the heartbeat; return documents left."""
        self.flush(timeout, while_down=True)
        with self.cond:
            self.closing = True
            left = len(self.queue)
            self.cond.notify_all()
        self.thread.join(timeout=5)
        try:
            self.client.delete(self.keys.writer(self.writer_id))
        except Exception as err:  # noqa: BLE001 - the heartbeat key then expires by itself
            log.debug("could not delete writer key: %s", err)
        self.client.close()
        _live.discard(self)
        return left

    # -- the sender thread -----------------------------------------------------------------

    def _run(self) -> None:
        delay = _BACKOFF
        next_beat = 0.0
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    wait = next_beat - time.monotonic()
                    if wait <= 0:
                        break
                    self.cond.wait(wait)
                if self.closing:
                    return
                batch = self._next_batch()
            try:
                results = self._send(batch)
                if not batch:
                    self.client.set(self.keys.writer(self.writer_id), "1", px=int(self.opts.heartbeat * 1000))
            except Exception as err:  # noqa: BLE001 - whatever it is, keep the documents and retry
                with self.cond:
                    if self.connected:
                        if _retryable(err):
                            log.warning(
                                "Redis at %s unreachable (%s); retrying, %d documents buffered",
                                self.opts.where,
                                err,
                                len(self.queue),
                            )
                        else:
                            log.exception("sending documents to Redis at %s failed; retrying", self.opts.where)
                        self.down_since = time.time()
                    self.connected, self.last_error = False, err
                    self.cond.notify_all()
                    self.cond.wait(delay)  # close() may end the wait
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            delay = _BACKOFF
            next_beat = time.monotonic() + self.opts.heartbeat / 3
            with self.cond:
                if not self.connected:
                    log.warning(
                        "Redis at %s is back; sending %d buffered documents", self.opts.where, len(self.queue)
                    )
                self.connected, self.down_since = True, None
                self._settle(batch, results)
                self.cond.notify_all()

    def _next_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        size = 0
        for item in self.queue:
            if len(batch) >= _BATCH or (batch and size + item.size > _BATCH_BYTES):
                break
            batch.append(item)
            size += item.size
        return batch

    def _send(self, batch: list[_Item]) -> list[Any]:
        """Send ``batch`` in one round trip, a script call per stretch of one run's documents."""
        if not batch:
            return []
        if self.sha is None or self.facts_sha is None:
            self.sha = self.client.script_load(APPEND_SCRIPT)
            self.facts_sha = self.client.script_load(FACTS_SCRIPT)
        pipe = self.client.pipeline(transaction=False)
        groups: list[list[_Item]] = []
        for item in batch:
            if groups and groups[-1][0].uid == item.uid and item.start is None:
                groups[-1].append(item)
            else:
                groups.append([item])
        for group in groups:
            first = group[0]
            time_, scan_id = first.start or ("", "")
            args = [first.uid, self.writer_id, *self.identity, time_, scan_id]
            for item in group:
                args += item.args
            pipe.evalsha(
                self.sha,
                9,
                *self.keys.of_run(first.uid),
                self.keys.runs,
                self.keys.seq,
                self.keys.changes,
                self.keys.writer(self.writer_id),
                self.keys.persisted,
                *args,
            )
            sums = next((item.sums for item in reversed(group) if item.sums is not None), None)
            if sums is not None:  # after the documents: the stop's summaries land before its flush returns
                keys = self.keys.facts_write(first.uid, self.keys.sums(first.uid))
                pipe.evalsha(self.facts_sha, len(keys), *keys, first.uid, "sums", self.writer_id, *sums)
        replies = pipe.execute(raise_on_error=False)
        if any(_is_noscript(r) for r in replies):  # Redis restarted: load the scripts, resend
            self.sha = None
            return self._send(batch)
        results: list[Any] = []
        replies_of = iter(replies)
        for group in groups:
            reply = next(replies_of)
            if any(item.sums is not None for item in group):
                stored = next(replies_of)  # the run gone (-3) or another's (-2): its documents say so
                if isinstance(stored, Exception) and _retryable(stored):
                    raise stored
                if isinstance(stored, Exception):
                    log.error("Redis at %s refused data summaries: %s", self.opts.where, stored)
            if isinstance(reply, Exception):
                if _retryable(reply):
                    raise reply
                results += [reply] * len(group)
            else:
                results += reply
        return results

    def _settle(self, batch: list[_Item], results: list[Any]) -> None:
        """Take the sent items off the queue; act on what Redis answered (under the lock)."""
        for item, result in zip(batch, results, strict=True):
            if self.queue and self.queue[0] is item:
                self.queue.popleft()
            if result in (0, 1):
                self._keep(item)
                continue
            if result in (-1, -3) and self._replay(item):
                return  # the queue now restarts with what Redis lost; the rest of the batch follows
            self.bytes -= item.size
            self.failures.append(self._failure(item, result))

    def _keep(self, item: _Item) -> None:
        if item.name == "stop":
            for kept in self.kept.pop(item.uid, []):
                self.bytes -= kept.size
            self.bytes -= item.size
        else:
            self.kept.setdefault(item.uid, deque()).append(item)

    def _replay(self, item: _Item) -> bool:
        """Redis lacks documents before ``item`` (it restarted without them): queue them again."""
        try:
            n_docs = int(self.client.hget(self.keys.run(item.uid), "n_docs") or 0)
        except Exception:  # noqa: BLE001 - decide on the next round
            n_docs = 0
        kept = self.kept.get(item.uid, deque())
        if not kept or kept[0].pos > n_docs:
            return False
        again = [k for k in kept if k.pos >= n_docs]
        log.warning(
            "Redis at %s lost documents %d..%d of run %s; sending them again",
            self.opts.where,
            n_docs,
            item.pos - 1,
            item.uid,
        )
        self.kept[item.uid] = deque(k for k in kept if k.pos < n_docs)
        self.queue.appendleft(item)
        self.queue.extendleft(reversed(again))
        return True

    def _drop_kept(self, need: int) -> None:
        for uid in list(self.kept):
            while self.kept[uid] and need > 0:
                item = self.kept[uid].popleft()
                self.bytes -= item.size
                need -= item.size
            if need <= 0:
                return

    def _failure(self, item: _Item, result: Any) -> StoreError | InvalidDocument:
        where = f"Redis at {self.opts.where}"
        if result == -2:
            return InvalidDocument(
                item.name,
                {"uid": item.uid},
                "a run with this uid is already in the store (another writer holds it)",
            )
        if result == -3:
            return StoreError(
                f"run {item.uid} is no longer in {where} (trimmed, or lost when Redis "
                f"restarted without persistence); its {item.name} document at position "
                f"{item.pos} was not stored"
            )
        if result == -1:
            return StoreError(
                f"{where} lost documents of run {item.uid} before position {item.pos} and "
                "this writer no longer holds them; the run has a gap. Run Redis with "
                "appendonly yes and appendfsync always to rule this out."
            )
        return StoreError(f"{where} refused the {item.name} document of run {item.uid}: {result}")

    def _connection_state(self) -> str:
        return "connected" if self.connected else f"buffering since {self.down_since}"


def _human(size: int) -> str:
    for unit, shift in (("GB", 30), ("MB", 20), ("kB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.3g}{unit}"
    return f"{size}B"


def _retryable(err: BaseException) -> bool:
    """Redis is away, restarting, or full (``maxmemory``: a keeper trimming frees it)."""
    return is_connection_error(err) or str(err).startswith("OOM")


def _is_noscript(result: Any) -> bool:
    import redis

    return isinstance(result, redis.exceptions.NoScriptError)


class RedisWriter:
    """A ``(name, doc)`` callable for ``RE.subscribe`` that publishes runs to Redis.

    Examples
    --------
    >>> RE.subscribe(open_catalog("redis://localhost:6379/0?prefix=28id").writer())  # doctest: +SKIP
    """

    def __init__(self, opts: RedisOptions, keys: Keys) -> None:
        self._opts = opts
        self._order = RunOrder()
        self._pos: dict[str, int] = {}
        self._ranges: dict[str, RunRanges] = {}
        self._lock = threading.Lock()
        self._sender = _Sender(opts, keys)
        self._finalizer = weakref.finalize(self, _finish, self._sender, opts.where)

    def __repr__(self) -> str:
        return (
            f"<RedisWriter to {self._opts.where} prefix={self._opts.prefix!r}: "
            f"{len(self._sender.queue)} queued, {self._sender._connection_state()}>"
        )

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if not self._finalizer.alive:
                raise StoreError("this writer is closed; get a new one with catalog.writer()")
            self._raise_failures()
            placed = self._order.check(name, doc)
            uid = placed.run_uid
            pos = self._pos.get(uid, 0)
            blob = pack(doc)
            descriptor = placed.descriptor if name in PER_DESCRIPTOR else ""
            args = [
                pos,
                name,
                blob,
                descriptor or "",
                placed.num_events,
                doc.get("exit_status", "") if name == "stop" else "",
            ]
            start = (repr(float(doc["time"])), _scan_id(doc)) if name == "start" else None
            sums = self._sums(name, uid, placed.descriptor, doc)
            self._sender.put(_Item(uid, pos, name, blob, args, start, sums))
            self._order.commit(name, doc, placed)
            if name == "stop":
                del self._pos[uid]
                self._ranges.pop(uid, None)
            else:
                self._pos[uid] = pos + 1
            if name in ("start", "stop"):
                # Wait while Redis answers: a duplicate uid raises now, and a finished
                # run is complete in Redis when the RunEngine returns.
                self._sender.flush(None, while_down=False)
                self._raise_failures(undo_start=uid if name == "start" else None)

    def _sums(self, name: str, uid: str, descriptor: str | None, doc: dict[str, Any]) -> list[str] | None:
        """Widen the run's ranges by an event (page); the summaries to store now, if due."""
        ranges = self._ranges.get(uid)
        if name in ("event", "event_page") and descriptor is not None:
            if ranges is None:
                ranges = self._ranges[uid] = RunRanges()
            ranges.add(descriptor, doc["data"], page=name == "event_page")
            if ranges.changed and (now := time.monotonic()) - ranges.stored_at >= _SUMS_EVERY:
                ranges.changed, ranges.stored_at = False, now
                return ranges.fields()
        elif name == "stop" and ranges is not None and ranges.by_descriptor:
            return ranges.fields()
        return None

    def _raise_failures(self, undo_start: str | None = None) -> None:
        failures = self._sender.take_failures()
        if not failures:
            return
        for failure in failures:
            if (
                undo_start is not None
                and isinstance(failure, InvalidDocument)
                and isinstance(failure.doc, dict)
                and failure.doc.get("uid") == undo_start
            ):
                self._order.forget(undo_start)
                self._pos.pop(undo_start, None)
                self._ranges.pop(undo_start, None)
        raise failures[0]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every document given so far is in Redis; False if ``timeout`` passed first."""
        done = self._sender.flush(timeout, while_down=True)
        with self._lock:
            self._raise_failures()
        return done

    def close(self, timeout: float = 30.0) -> None:
        """Send what is buffered (waiting up to ``timeout`` s), then close.

        Runs left without a stop document become ``incomplete``. Raises
        :class:`StoreError` if documents could not be sent in time.
        """
        with self._lock:
            if not self._finalizer.alive:
                return
            self._finalizer.detach()
            left = self._sender.close(timeout)
            for uid in list(self._pos):
                self._order.forget(uid)
            self._pos.clear()
            self._ranges.clear()
        if left:
            raise StoreError(
                f"{left} documents could not be sent to Redis at {self._opts.where} within {timeout:g} s "
                f"({self._sender.last_error}); they were not stored. Start Redis and write them again, "
                "or close with a longer timeout."
            )
        failures = self._sender.take_failures()
        if failures:
            raise failures[0]


def _scan_id(doc: dict[str, Any]) -> str:
    scan_id = doc.get("scan_id")
    return str(scan_id) if isinstance(scan_id, int) and not isinstance(scan_id, bool) else ""


def _finish(sender: _Sender, where: str) -> None:
    """A writer dropped without close(): send what it can, then end its heartbeat."""
    left = sender.close(timeout=10.0)
    if left:
        log.error("a dropped scandeck writer could not send %d documents to Redis at %s", left, where)


def settle(bus: tuple[str, str], timeout: float = 30.0) -> None:
    """Let this process's writers on ``bus`` (url, prefix) store what they queued."""
    for sender in list(_live):
        if (sender.opts.url, sender.opts.prefix) == bus and sender.queue:
            sender.flush(timeout, while_down=False)
