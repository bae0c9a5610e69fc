"""Sending a file's bytes through the Redis bus, so readers on machines that cannot see it read it.

``scandeck watch --transfer`` sends each complete file into its run before the
documents that reference it (:mod:`scandeck.files.layout`): the chunks go into
a stream of their own (:mod:`scandeck.sources.redis_files`), in pipelined
batches, each chunk with an entry id of its own, so that

* a batch whose reply was lost is sent again from the first chunk Redis lacks
  (each chunk's entry id is its number: no chunk is ever stored twice);
* a Redis restart mid-file (``appendonly yes``) is waited out, as long as the
  bus's ``reconnect`` option says, and the file goes on from the first chunk
  Redis does not hold: nothing is lost, nothing doubled;
* a file sent again (a watcher restarted after a crash) resumes where it stopped,
  and one already whole in the run is not read at all.

The sender hashes what it reads: a file that changed while it was sent (its
bytes no longer hash to the sha256 the watcher computed) is withdrawn from the
bus and :class:`~scandeck.exceptions.FileMismatch` names both hashes; the
watcher retries it as a new version once it settles.

Examples
--------
>>> sender = sender_for(catalog.source)                       # doctest: +SKIP
>>> sender.send(run_uid, sha256, "/data/img_0001.tif", 4_194_816)  # doctest: +SKIP
>>> sender.close()                                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import FileMismatch, ScandeckError, StoreError
from ..safe_text import printable
from . import providers
from .layout import CHUNK_SIZE

if TYPE_CHECKING:
    from ..sources.redis_source import RedisSource

__all__ = ["CHUNK_SIZE", "MAX_CHUNK_SIZE", "FileSender", "sender_for"]

log = logging.getLogger(__name__)

#: The largest chunk a sender takes (Redis holds up to 512 MB in a value; readers
#: hold a chunk in memory).
MAX_CHUNK_SIZE = 64 << 20
#: Bytes per pipelined round trip (whole chunks, at least one).
_BATCH_BYTES = 8 << 20

#: ``progress(bytes sent or found stored, size)`` after each batch.
Progress = Callable[[int, int], Any]


def sender_for(source: Any, chunk_size: int = CHUNK_SIZE) -> FileSender:
    """A :class:`FileSender` into the Redis bus ``source`` (a catalog's ``.source``).

    Raises :class:`~scandeck.exceptions.ScandeckError` when ``source`` is not a
    Redis bus (only a bus carries files' bytes) or ``chunk_size`` is out of range.
    """
    from ..sources.redis_source import RedisSource

    if not isinstance(source, RedisSource):
        uri = printable(str(getattr(source, "uri", source)))
        raise ScandeckError(
            f"files' bytes can be sent only through a Redis bus catalog (redis://host:port/db?prefix=P), "
            f"not {uri}; give --catalog a redis:// URI, or watch without --transfer (readers then "
            "need the watched directory mounted)"
        )
    chunk_size = int(chunk_size)
    if not 1024 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ScandeckError(
            f"a chunk size of {chunk_size} bytes is out of range: give 1kB to {MAX_CHUNK_SIZE >> 20}MB "
            "(default 512kB)"
        )
    return FileSender(source.uri, chunk_size, options=source.opts)


class FileSender:
    """Sends files into runs of one Redis bus; one connection of its own. Use :func:`sender_for`."""

    def __init__(self, uri: str, chunk_size: int = CHUNK_SIZE, *, options: Any = None) -> None:
        from ..sources.redis_source import RedisSource

        self.chunk_size = int(chunk_size)
        self._bus: RedisSource = RedisSource(uri)
        if options is not None:  # the catalog's reconnect= and the rest (its canonical URI drops them)
            self._bus.opts = options
        self._bus.start()
        providers.unregister(self._bus)  # a connection for sending: readers ask the catalog's source
        self._closed = False

    def __repr__(self) -> str:
        return f"<FileSender to {self._bus.opts.where} prefix={self._bus.opts.prefix!r} chunk={self.chunk_size}>"

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._bus.close()

    def __enter__(self) -> FileSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self, run: str, sha256: str, path: str | os.PathLike[str], size: int, *, progress: Progress | None = None
    ) -> int:
        """Store the file at ``path`` (``size`` bytes hashing to ``sha256``) in run ``run``; chunks stored now.

        Returns once every chunk is in Redis and the bytes read hashed to
        ``sha256``. Raises :class:`~scandeck.exceptions.FileMismatch` when they
        did not (the file changed: what was sent is withdrawn),
        :class:`FileNotFoundError` when the file is gone (withdrawn likewise),
        :class:`~scandeck.exceptions.StoreError` when Redis stayed away longer
        than ``reconnect`` or the run is not in Redis.
        """
        from ..sources.redis_files import FileEntry

        if self._closed:
            raise StoreError("this file sender is closed; get a new one with sender_for(catalog.source)")
        size = int(size)
        chunk = self.chunk_size
        new = FileEntry(sha256, size, chunk, -(-size // chunk), complete=False)
        entry, stored = self._open(run, new, str(path))
        if entry.complete:
            if progress is not None:
                progress(size, size)
            return 0
        return self._send(run, entry, stored, str(path), progress)

    # -- the steps -------------------------------------------------------------------------

    def _open(self, run: str, new: Any, path: str) -> tuple[Any, int]:
        """The file's line (an earlier sender's chunk size wins) and how many chunks are stored."""
        from ..sources.redis_files import OPEN_SCRIPT, FileEntry
        from ..sources.redis_writer import settle

        bus, keys = self._bus, self._bus.keys
        deadline = time.monotonic() + bus.opts.reconnect
        while True:
            reply = bus.talk(
                f"sending {printable(path)}",
                lambda c: c.eval(
                    OPEN_SCRIPT, 3, keys.run(run), keys.files(run), keys.file(run, new.sha256),
                    new.sha256, new.meta(complete=False),
                ),
            )  # fmt: skip
            if reply[0] != -3:
                return FileEntry.parse(new.sha256, reply[0]), int(reply[1])
            # The start document may still be queued by this process's writer (Redis was away).
            settle((bus.opts.url, bus.opts.prefix), timeout=1.0)
            if time.monotonic() > deadline:
                raise StoreError(
                    f"run {printable(run)} is not in Redis at {bus.opts.where} (trimmed by the keeper, or "
                    f"its start document was never stored), so {printable(path)} cannot be sent into it; "
                    "write the run's start document before its files"
                )
            time.sleep(0.1)

    def _send(self, run: str, entry: Any, stored: int, path: str, progress: Progress | None) -> int:
        digest = hashlib.sha256()
        chunk, n = entry.chunk, entry.chunks
        per_batch = max(1, _BATCH_BYTES // chunk)
        added = 0
        hashed = 0  # bytes hashed so far (a chunk read again after a gap is not hashed twice)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed in finally, across the retries
        except FileNotFoundError:  # taken away since it was read: the watcher warns and goes on
            self._withdraw(run, entry, path)
            raise
        except OSError as err:
            raise StoreError(
                f"cannot read {printable(path)} to send it: {err.strerror or err}; the watcher tries again"
            ) from err
        try:
            k = 0
            while k < n:
                batch: list[tuple[int, bytes]] = []
                while k < n and len(batch) < per_batch:
                    want = min(chunk, entry.size - k * chunk)
                    f.seek(k * chunk)
                    data = f.read(want)
                    if k * chunk == hashed:
                        digest.update(data)
                        hashed += len(data)
                    if len(data) < want:  # shorter than when it was ingested
                        return self._changed(run, entry, path, digest, hashed)
                    if k >= stored:
                        batch.append((k, data))
                    k += 1
                if batch:
                    held, now = self._store(run, entry, batch, path)
                    added += now
                    if held < batch[0][0]:  # Redis lost chunks (it restarted without them): from the first missing
                        log.warning(
                            "Redis at %s lost chunks %d..%d of %s; sending them again",
                            self._bus.opts.where,
                            held,
                            batch[0][0] - 1,
                            printable(path),
                        )
                        stored = k = held
                        continue
                if progress is not None:
                    progress(min(k * chunk, entry.size), entry.size)
            f.seek(entry.size)
            if f.read(1) or hashed != entry.size or digest.hexdigest() != entry.sha256:
                return self._changed(run, entry, path, digest, hashed)
        finally:
            f.close()
        self._done(run, entry, path)
        return added

    def _store(self, run: str, entry: Any, batch: list[tuple[int, bytes]], path: str) -> tuple[int, int]:
        """Store what Redis lacks of ``batch``: the chunks Redis holds then (fewer than the
        batch's first: Redis lost some, send again from there), and how many were stored now.
        One call, retried whole while Redis is away: a reply lost mid-batch is found stored."""
        from ..sources.redis_files import GUARD_SCRIPT, chunk_fields

        bus, keys = self._bus, self._bus.keys
        key = keys.file(run, entry.sha256)
        gone = -3
        before: list[int] = []

        def store(client: Any) -> int:
            held = int(client.eval(GUARD_SCRIPT, 3, keys.run(run), key, keys.persisted, run))
            before.append(held)
            if held == gone or held < batch[0][0]:
                return held
            todo = [(k, data) for k, data in batch if k >= held]
            if not todo:
                return held
            pipe = client.pipeline(transaction=False)
            for k, data in todo:
                pipe.xadd(key, chunk_fields(entry, k, data), id=f"0-{k + 1}", nomkstream=k > 0)
            for reply in pipe.execute(raise_on_error=False):
                if reply is None:  # NOMKSTREAM: the file's stream went (the run trimmed)
                    return gone
                if isinstance(reply, Exception) and "equal or smaller" not in str(reply):  # else: stored before
                    raise reply
            return todo[-1][0] + 1

        held = bus.talk(f"sending {printable(path)}", store)
        if held == gone:
            raise StoreError(
                f"run {printable(run)} left Redis at {bus.opts.where} while {printable(path)} was sent into "
                "it (trimmed by the keeper?); the file was not stored"
            )
        return held, max(0, held - max(before[0], batch[0][0]))

    def _done(self, run: str, entry: Any, path: str) -> None:
        from ..sources.redis_files import DONE_SCRIPT

        keys = self._bus.keys
        meta = entry.meta(complete=True)
        ok = self._bus.talk(
            f"sending {printable(path)}", lambda c: c.eval(DONE_SCRIPT, 1, keys.files(run), entry.sha256, meta)
        )
        if not ok:
            raise StoreError(
                f"run {printable(run)} left Redis at {self._bus.opts.where} while {printable(path)} was "
                "sent into it (trimmed by the keeper?); the file was not stored"
            )

    def _changed(self, run: str, entry: Any, path: str, digest: Any, hashed: int) -> int:
        """The bytes read are not the file ingested: withdraw them and say so."""
        self._withdraw(run, entry, path)
        raise FileMismatch(
            f"{printable(path)} changed while it was sent: the {hashed} bytes read hash to sha256 "
            f"{digest.hexdigest()}, but it was ingested as {entry.size} bytes with sha256 {entry.sha256}; "
            "what was sent was withdrawn. Send it again once it is complete (the watcher does)."
        )

    def _withdraw(self, run: str, entry: Any, path: str) -> None:
        """Take the file's line and chunks out of the run, unless it was complete before."""
        from ..sources.redis_files import DROP_SCRIPT

        keys = self._bus.keys
        self._bus.talk(
            f"withdrawing {printable(path)}",
            lambda c: c.eval(DROP_SCRIPT, 2, keys.files(run), keys.file(run, entry.sha256), entry.sha256),
        )
