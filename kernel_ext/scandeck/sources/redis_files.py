"""Files' bytes on the Redis bus: the scripts around a file's chunks, and the reader that reassembles them.

A file sent into a run (``scandeck watch --transfer``, :mod:`scandeck.files.transfer`)
is a stream of chunks under ``P:run:<uid>:file:<sha256>`` and a line in the
run's ``P:run:<uid>:files`` hash (see :mod:`.redis_layout`). Chunk ``k`` has the
entry id ``0-(k+1)``, so no chunk can be stored twice: a sender asks how many
chunks Redis holds before each batch (:data:`GUARD_SCRIPT`) and XADDs the
rest with their ids, so one that lost a reply, or finds chunks missing after a
Redis restart, goes on from the first chunk Redis lacks; and a reader that
arrives late reads from chunk 0, like a late reader of documents.

Storing a chunk into a run the keeper already archived takes the run's
``persisted`` mark away (as a document does), so the keeper archives the file
before the run can be trimmed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..exceptions import FileMismatch, StoreError
from ..safe_text import printable

if TYPE_CHECKING:
    from .redis_source import RedisSource

__all__ = [
    "DONE_SCRIPT",
    "DROP_SCRIPT",
    "GUARD_SCRIPT",
    "OPEN_SCRIPT",
    "FileEntry",
    "chunk_fields",
    "file_chunks",
    "holds_complete",
    "run_files",
]

#: Bytes a reader asks for in one XRANGE (whole chunks, at least one).
_PAGE_BYTES = 8 << 20

#: Start (or resume) sending a file: its line in the run's files hash (created if
#: missing) and how many of its chunks are stored. Returns ``{meta JSON, n stored}``,
#: or ``{-3}`` when the run is not in Redis (trimmed, or its start not stored yet).
#: KEYS: run, files, chunks. ARGV: sha256, meta JSON (used when the file is new).
OPEN_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-3} end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
local meta = redis.call('HGET', KEYS[2], ARGV[1])
local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local n = 0
if #top > 0 then n = tonumber(string.sub(top[1][1], 3)) end
return {meta, n}
"""

#: Before a batch of chunks: whether the run is still in Redis (-3 if not), and how
#: many chunks of the file Redis holds (its last entry id). It takes the run's
#: persisted mark away, so the keeper archives the file before the run can go
#: (and a keeper's trim between this and the chunks finds no mark: it waits).
#: The chunks follow as plain XADDs with their ids (the fast path: no script
#: copies them), NOMKSTREAM after the first so a trimmed file is not recreated.
#: KEYS: run, chunks, persisted. ARGV: uid.
GUARD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -3 end
if redis.call('HDEL', KEYS[1], 'persisted') == 1 then redis.call('SREM', KEYS[3], ARGV[1]) end
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #top > 0 then return tonumber(string.sub(top[1][1], 3)) end
return 0
"""

#: Mark a file complete (every chunk stored, the hash verified by its sender).
#: Returns 1, or 0 when its line is gone (the run trimmed). KEYS: files. ARGV: sha256, meta JSON.
DONE_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: Withdraw a file whose sender read other bytes than its hash says (it changed
#: while being sent), unless it was complete before. KEYS: files, chunks. ARGV: sha256.
DROP_SCRIPT = """
local meta = redis.call('HGET', KEYS[1], ARGV[1])
if not meta or cjson.decode(meta)['complete'] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


@dataclass(frozen=True)
class FileEntry:
    """A file's line in a run's files hash."""

    sha256: str
    size: int
    chunk: int
    chunks: int
    complete: bool

    @classmethod
    def parse(cls, sha256: str, blob: bytes | str) -> FileEntry:
        meta = json.loads(blob)
        return cls(sha256, int(meta["size"]), int(meta["chunk"]), int(meta["chunks"]), bool(meta["complete"]))

    def meta(self, *, complete: bool) -> str:
        """The JSON stored for it."""
        return json.dumps({"size": self.size, "chunk": self.chunk, "chunks": self.chunks, "complete": complete})


def run_files(source: RedisSource, uid: str) -> dict[str, FileEntry]:
    """The files sent into run ``uid`` (complete or not), by sha256; empty when none or trimmed."""
    raw = source.talk(f"listing the files of run {uid}", lambda c: c.hgetall(source.keys.files(uid)))
    return {k.decode(): FileEntry.parse(k.decode(), v) for k, v in raw.items()}


def file_entry(source: RedisSource, uid: str, sha256: str) -> FileEntry | None:
    """The line of one file in run ``uid``, or None."""
    blob = source.talk(f"reading the files of run {uid}", lambda c: c.hget(source.keys.files(uid), sha256))
    return None if blob is None else FileEntry.parse(sha256, blob)


def file_chunks(source: RedisSource, uid: str, sha256: str, size: int) -> Iterator[bytes] | None:
    """The bytes of file ``sha256`` sent into run ``uid``, in order; None when the run has no such file.

    Reads pages of whole chunks (memory stays bounded by a page). While the
    sender is mid-way it waits for the next chunk (XREAD BLOCK), up to the
    bus's ``reconnect`` seconds without progress, then raises
    :class:`~scandeck.exceptions.StoreError`. The caller verifies the hash
    (:func:`scandeck.files.cache.store`).
    """
    entry = file_entry(source, uid, sha256)
    if entry is None:
        return None
    return _chunks(source, uid, entry)


def _chunks(source: RedisSource, uid: str, entry: FileEntry) -> Iterator[bytes]:
    key = source.keys.file(uid, entry.sha256)
    page = max(1, _PAGE_BYTES // max(entry.chunk, 1))
    what = printable(f"file {entry.sha256[:12]} of run {uid}")
    k = 0
    stalled: float | None = None
    while k < entry.chunks:
        entries = source.talk(f"reading {what}", partial(_page, key=key, first=k, count=page))
        if entries:
            stalled = None
            for eid, fields in entries:
                got = int(eid.split(b"-")[1]) - 1
                offset = int(fields[b"offset"])
                if got != k or offset != k * entry.chunk:
                    raise FileMismatch(
                        f"the chunks of {what} in Redis at {source.opts.where} are out of order (chunk "
                        f"{got} at offset {offset} where chunk {k} was due); it cannot be reassembled, "
                        "send the file again"
                    )
                yield fields[b"data"]
                k += 1
            continue
        now = time.monotonic()
        stalled = now if stalled is None else stalled
        left = source.opts.reconnect - (now - stalled)
        if file_entry(source, uid, entry.sha256) is None:
            raise StoreError(
                f"{what} was withdrawn from Redis at {source.opts.where} after {k} of its "
                f"{entry.chunks} chunks (its sender found it changed while sending, or the run was "
                "trimmed); read it again once the watcher has sent it again"
            )
        if left <= 0:
            raise StoreError(
                f"{what} has only {k} of its {entry.chunks} chunks in Redis at {source.opts.where}, "
                f"and none came for {source.opts.reconnect:g} s: its sender stopped mid-way. A "
                "restarted 'scandeck watch --transfer' sends it again; raise reconnect= in the URI "
                "to wait longer"
            )
        block = max(1, int(min(left, 1.0) * 1000))
        source.talk(f"waiting for {what}", partial(_wait, key=key, after=k, block=block))


def _page(client: Any, *, key: str, first: int, count: int) -> list[Any]:
    """Up to ``count`` chunks from chunk ``first``."""
    return client.xrange(key, min=f"0-{first + 1}", count=count)


def _wait(client: Any, *, key: str, after: int, block: int) -> Any:
    """Block up to ``block`` ms for the chunk after the first ``after``."""
    return client.xread({key: f"0-{after}"}, count=1, block=block)


def holds_complete(source: RedisSource, uid: str, sha256: str) -> bool:
    """Whether run ``uid`` holds file ``sha256`` whole on the bus."""
    entry = file_entry(source, uid, sha256)
    return entry is not None and entry.complete


def chunk_fields(entry: FileEntry, k: int, data: bytes) -> dict[str, Any]:
    """The fields of chunk ``k``'s stream entry."""
    return {"offset": k * entry.chunk, "sha256": entry.sha256, "size": entry.size, "data": data}
