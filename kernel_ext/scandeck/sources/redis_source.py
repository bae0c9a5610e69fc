"""Redis Streams: the facility's live bus, with the durable archive behind it.

``open_catalog("redis://host:6379/0?prefix=28id")`` reads the runs a RunEngine
on another machine publishes through :class:`~.redis_writer.RedisWriter`. Each
run is a stream of its documents addressed by position, so a reader that
arrives mid-run or after the run reads from the start document, and one that
lost its connection resumes at the position it reached. Queries run through
their Python form over the runs in Redis (a keeper keeps them few; see
:mod:`.redis_keeper`) and through the archive's own search for the runs trimmed
from Redis, which every read falls back to transparently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ..documents import PER_DESCRIPTOR, unpack
from ..exceptions import RunNotFound, StoreError
from ..files import providers
from ..query import Query
from ..query.hints import start_fields, uses_facts
from .liveness import writer_alive
from .matching import keep_matching
from .protocol import Entry, FieldIndex, RawDocuments, RunSummary, Source
from .redis_facts import RedisFacts
from .redis_layout import Keys, RedisOptions, auth_failed, connect, is_auth_error, is_connection_error, unreachable
from .redis_writer import RedisWriter, settle

log = logging.getLogger(__name__)
T = TypeVar("T")

_CHUNK = 5000
_FIELDS = (
    "seq",
    "time",
    "scan_id",
    "start",
    "stop",
    "n_docs",
    "n_events",
    "exit_status",
    "writer",
    "host",
    "pid",
    "token",
    "persisted",
)


class RedisSource(RedisFacts):
    """Runs on a Redis server under one key prefix, and the archive of trimmed ones.

    It keeps runs' facts too (annotations, computed cells, data summaries:
    :class:`~.redis_facts.RedisFacts`).

    Examples
    --------
    >>> src = RedisSource("redis://localhost:6379/0?prefix=28id")  # doctest: +SKIP
    >>> src.start(); src.count(Query.all())                        # doctest: +SKIP
    0
    """

    def __init__(self, uri: str) -> None:
        self.opts = RedisOptions.parse(uri)
        self.uri = self.opts.uri
        self.keys = Keys(self.opts.prefix)
        self._bus = (self.opts.url, self.opts.prefix)
        self._client: Any = None
        self._starts: dict[str, dict[str, Any]] = {}  # start documents never change: decode once
        self._finished: dict[str, RunSummary] = {}
        self._archive_src: Source | None = None
        self._archive_uri: str | None = None
        self._missing_said: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisSource({self.uri!r})"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._client is not None:
            return
        client = connect(self.opts)
        try:
            client.ping()
        except Exception as err:
            client.close()
            if is_auth_error(err):
                raise auth_failed(self.opts, "opening the catalog") from None
            if is_connection_error(err):
                raise unreachable(self.opts, err, "opening the catalog") from None
            raise StoreError(f"Redis at {self.opts.where} refused the connection: {err}") from None
        self._client = client
        providers.register(self)  # files sent through this bus (scandeck watch --transfer)

    def close(self) -> None:
        providers.unregister(self)
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._archive_src is not None:
            self._archive_src.close()
            self._archive_src = None

    def writer(self) -> RedisWriter:
        self.start()
        return RedisWriter(self.opts, self.keys)

    def talk(self, doing: str, call: Callable[[Any], T]) -> T:
        """``call(client)``, retrying a lost connection with back-off for ``reconnect`` seconds.

        Public for the keeper, which works on the same bus (``doing`` names the
        step in the error raised when the connection does not come back).
        """
        if self._client is None:
            self.start()
        deadline, delay = None, 0.02
        while True:
            try:
                return call(self._client)
            except Exception as err:
                if is_auth_error(err):  # e.g. the password changed while connected
                    raise auth_failed(self.opts, doing) from None
                if not is_connection_error(err):
                    raise StoreError(f"Redis at {self.opts.where} failed while {doing}: {err}") from err
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.opts.reconnect
                    log.warning(
                        "Redis at %s unreachable while %s (%s); retrying for up to %g s",
                        self.opts.where,
                        doing,
                        err,
                        self.opts.reconnect,
                    )
                if now >= deadline:
                    raise unreachable(self.opts, err, doing) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -- transferred files (redis_files.py) ------------------------------------------------

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterable[bytes] | None:
        """A file sent into ``run``, or a trimmed run's from the archive (a files.providers.FileProvider)."""
        from .redis_files import file_chunks

        chunks = file_chunks(self, run, sha256, size)
        archive = self._archive() if chunks is None else None
        if archive is not None and hasattr(archive, "file_chunks"):
            return archive.file_chunks(run, sha256, size)
        return chunks

    def file_places(self, run: str, sha256: str, size: int) -> list[str]:
        """Where this catalog holds the file whole: ``bus`` (Redis), ``archive`` (the keeper's copy)."""
        from .redis_files import holds_complete

        places = ["bus"] if holds_complete(self, run, sha256) else []
        archive = self._archive()
        if archive is not None and hasattr(archive, "file_places"):
            places += archive.file_places(run, sha256, size)
        return places

    # -- the runs in Redis -----------------------------------------------------------------

    def _summaries(self, uids: list[str]) -> dict[str, RunSummary]:
        """Summaries of those runs still in Redis (finished ones from the cache)."""
        found = {uid: self._finished[uid] for uid in uids if uid in self._finished}
        ask = [uid for uid in uids if uid not in found]
        if not ask:
            return found

        def fetch(client: Any) -> tuple[list[Any], list[bool]]:
            pipe = client.pipeline(transaction=False)
            for uid in ask:
                pipe.hmget(self.keys.run(uid), _FIELDS)
            rows = pipe.execute()
            pipe = client.pipeline(transaction=False)
            for row in rows:
                if row[0] is not None and row[4] is None:  # open: is its writer's heartbeat alive?
                    pipe.exists(self.keys.writer(row[8].decode()))
            beats = iter(pipe.execute())
            return rows, [bool(next(beats)) if r[0] is not None and r[4] is None else True for r in rows]

        rows, beating = self.talk("reading the run index", fetch)
        for uid, row, beat in zip(ask, rows, beating, strict=True):
            if row[0] is not None:
                summary = found[uid] = self._summary(uid, row, beat)
                if summary.stop is not None:  # a stopped run's index never changes again
                    self._finished[uid] = summary
        return found

    def _summary(self, uid: str, row: list[Any], beating: bool) -> RunSummary:
        start = self._starts.get(uid)
        if start is None:
            start = self._starts[uid] = unpack(row[3])
        if row[7] is not None:
            status = row[7].decode()
        elif beating and writer_alive(row[9].decode(), int(row[10]), row[11].decode()):
            status = "running"
        else:
            status = "incomplete"
        return RunSummary(
            uid=uid,
            seq=int(row[0]),
            scan_id=int(row[2]) if row[2] else None,
            time=float(row[1]),
            start=start,
            stop=unpack(row[4]) if row[4] is not None else None,
            num_events=int(row[6]),
            num_documents=int(row[5]),
            status=status,
        )

    def _live(self) -> dict[str, RunSummary]:
        settle(self._bus)
        uids = [u.decode() for u in self.talk("listing runs", lambda c: c.zrange(self.keys.runs, 0, -1))]
        if len(self._finished) > 2 * len(uids) + 100:  # forget trimmed runs
            keep = set(uids)
            self._finished = {u: s for u, s in self._finished.items() if u in keep}
        return self._summaries(uids)

    def _persisted(self) -> set[str]:
        """Uids of the runs in Redis that the archive holds too."""
        members = self.talk("reading the run index", lambda c: c.smembers(self.keys.persisted))
        return {m.decode() for m in members}

    # -- the archive of trimmed runs -------------------------------------------------------

    def _archive(self) -> Source | None:
        """The durable catalog trimmed runs live in, or None when there is none (yet)."""
        uri = self.opts.archive
        if uri is None:
            published = self.talk("finding the archive", lambda c: c.get(self.keys.archive))
            uri = published.decode() if published else None
        if uri is None:
            return None
        if self._archive_src is not None and uri == self._archive_uri:
            return self._archive_src
        from .openers import open_source

        if uri.startswith("sqlite://") or "://" not in uri:
            from .sqlite import SQLiteSource, sqlite_target  # where the database file of a path is

            if not SQLiteSource(sqlite_target(uri)[0]).db_path.exists():
                # Not created yet, or not mounted here: never create an empty one.
                if uri != self.opts.archive and uri not in self._missing_said:
                    self._missing_said.add(uri)
                    log.warning(
                        "the archive %s of %s is not on this machine; trimmed runs cannot be "
                        "read here: pass archive=URI",
                        uri,
                        self.uri,
                    )
                return None
        src = open_source(uri)
        src.start()
        self._archive_src, self._archive_uri = src, uri
        return src

    def _archived(self, uid: str) -> Source:
        """The archive holding trimmed run ``uid``; RunNotFound if it is nowhere."""
        archive = self._archive()
        if archive is None:
            raise RunNotFound(
                f"no run with uid {uid!r} in {self.uri} (and no archive of trimmed runs "
                "is reachable from here; pass archive=URI if it was trimmed)"
            )
        archive.get(uid)  # raises RunNotFound naming the archive
        return archive

    # -- the protocol ----------------------------------------------------------------------

    def count(self, query: Query) -> int:
        live = self._live()
        matching = [s.uid for s in keep_matching(self, query, list(live.values()))]
        archive = self._archive()
        if archive is None:
            return len(matching)
        if uses_facts(query):  # an archived copy may be annotated otherwise than its run in Redis, for now
            return len(matching) + archive.count(query) - self.archive_overlap(archive, query, live)
        persisted = self._persisted()
        return (
            len(matching)
            + archive.count(query)
            - sum(1 for uid in matching if uid in persisted or _holds(archive, uid))
        )

    def fields(self) -> set[str]:
        """Dotted start-document field names of the runs on the bus and in the archive."""
        starts = [s.start for s in self._live().values()]
        archive = self._archive()
        archived: set[str] = archive.fields() if isinstance(archive, FieldIndex) else set()
        return archived.union(*map(start_fields, starts))

    def search(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunSummary]:
        live = self._live()
        found = keep_matching(self, query, list(live.values()))
        if before is not None:
            found = [s for s in found if ((s.time, s.seq) > before if oldest_first else (s.time, s.seq) < before)]
        archive = self._archive()
        if archive is not None:
            want = None if limit is None else offset + limit + len(live)
            more = archive.search(query, limit=want, before=before, oldest_first=oldest_first)
            found += [s for s in more if s.uid not in live]
        found.sort(key=lambda s: (s.time, s.seq), reverse=not oldest_first)
        found = found[offset:]
        return found if limit is None else found[:limit]

    def get(self, uid: str) -> RunSummary:
        settle(self._bus)
        live = self._summaries([uid])
        if uid in live:
            return live[uid]
        return self._archived(uid).get(uid)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        settle(self._bus)
        uids = self.talk("listing runs", lambda c: c.zrange(self.keys.runs, 0, -1))
        found = {
            s.uid: s
            for s in self._summaries(
                sorted(u.decode() for u in uids if u.decode().startswith(prefix))[:limit]
            ).values()
        }
        archive = self._archive()
        if archive is not None:
            for s in archive.find_prefix(prefix, limit=limit):
                found.setdefault(s.uid, s)
        return [found[u] for u in sorted(found)[:limit]]

    def documents(
        self,
        uid: str,
        *,
        start: int = 0,
        names: Iterable[str] | None = None,
        descriptors: Iterable[str] | None = None,
    ) -> Iterator[Entry]:
        settle(self._bus)
        keep_names = None if names is None else {n.encode() for n in names}
        keep_desc = None if descriptors is None else {d.encode() for d in descriptors}
        per_descriptor = {n.encode() for n in PER_DESCRIPTOR}
        pos = start
        while True:
            entries, present = self._chunk(uid, pos)
            if not entries and not present:  # trimmed (or never here): the archive has it all
                yield from self._archived(uid).documents(uid, start=pos, names=names, descriptors=descriptors)
                return
            for eid, fields in entries:
                pos = int(eid.split(b"-")[1])  # entry 0-(p+1) holds position p; next read from p+1
                name = fields[b"n"]
                if keep_names is not None and name not in keep_names:
                    continue
                if keep_desc is not None and name in per_descriptor and fields[b"s"] not in keep_desc:
                    continue
                yield Entry(pos - 1, name.decode(), unpack(fields[b"d"]))
            if len(entries) < _CHUNK:
                return

    def _chunk(self, uid: str, pos: int) -> tuple[list[Any], bool]:
        def read(client: Any) -> tuple[list[Any], bool]:
            pipe = client.pipeline(transaction=False)
            pipe.xrange(self.keys.docs(uid), min=f"0-{pos + 1}", count=_CHUNK)
            pipe.exists(self.keys.run(uid))
            entries, present = pipe.execute()
            return entries, bool(present)

        return self.talk(f"reading run {uid}", read)

    def raw_documents(
        self, uid: str, *, names: Iterable[str], descriptors: Iterable[str] | None = None
    ) -> list[tuple[str, bytes]]:
        """``(name, msgpack bytes)`` of a run's documents, undecoded, for bulk readers."""
        settle(self._bus)
        keep = {n.encode() for n in names}
        keep_desc = None if descriptors is None else {d.encode() for d in descriptors}
        per_descriptor = {n.encode() for n in PER_DESCRIPTOR}
        out: list[tuple[str, bytes]] = []
        pos = 0
        while True:
            entries, present = self._chunk(uid, pos)
            if not entries and not present:
                archive = self._archived(uid)
                if not isinstance(archive, RawDocuments) or pos:
                    from ..documents import pack

                    rest = archive.documents(uid, start=pos, names=names, descriptors=descriptors)
                    return out + [(e.name, pack(e.doc)) for e in rest]
                return archive.raw_documents(uid, names=names, descriptors=descriptors)
            for eid, fields in entries:
                pos = int(eid.split(b"-")[1])
                name = fields[b"n"]
                if name in keep and (keep_desc is None or name not in per_descriptor or fields[b"s"] in keep_desc):
                    out.append((name.decode(), fields[b"d"]))
            if len(entries) < _CHUNK:
                return out

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        settle(self._bus)

        def read(client: Any) -> tuple[list[bytes], int]:
            pipe = client.pipeline(transaction=False)
            pipe.lrange(self.keys.desc(uid), 0, -1)
            pipe.exists(self.keys.run(uid))
            return pipe.execute()

        blobs, present = self.talk(f"reading run {uid}", read)
        if not present:
            return self._archived(uid).descriptors(uid)
        return [unpack(b) for b in blobs]

    def stream_counts(self, uid: str) -> dict[str, int]:
        settle(self._bus)

        def read(client: Any) -> tuple[dict[bytes, bytes], int]:
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(self.keys.counts(uid))
            pipe.exists(self.keys.run(uid))
            return pipe.execute()

        counts, present = self.talk(f"reading run {uid}", read)
        if not present:
            return self._archived(uid).stream_counts(uid)
        return {k.decode(): int(v) for k, v in counts.items()}

    def latest_seq(self) -> int:
        settle(self._bus)
        return int(self.talk("reading the run counter", lambda c: c.get(self.keys.seq)) or 0)

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        settle(self._bus)
        uids = self.talk(
            "listing new runs",
            lambda c: c.zrangebyscore(self.keys.runs, f"({seq}", "+inf", start=0 if limit else None, num=limit),
        )
        found = self._summaries([u.decode() for u in uids])
        return sorted(found.values(), key=lambda s: s.seq)

    def wait_run(self, uid: str, start: int, timeout: float) -> bool:
        """Block until run ``uid`` has a document at position ``start`` or later (or timeout).

        Lets :func:`~scandeck.follow.follow_run` wake on the run's own stream
        instead of on every change of the bus.
        """
        block = max(1, int(timeout * 1000))
        got = self.talk(
            f"waiting for run {uid}", lambda c: c.xread({self.keys.docs(uid): f"0-{start}"}, count=1, block=block)
        )
        return bool(got)

    def change_token(self) -> object:
        last = self.talk("reading changes", lambda c: c.xrevrange(self.keys.changes, count=1))
        return last[0][0] if last else b"0-0"

    def wait(self, token: object, timeout: float) -> bool:
        block = max(1, int(timeout * 1000))
        got = self.talk("waiting for changes", lambda c: c.xread({self.keys.changes: token}, count=1, block=block))
        return bool(got)


def _holds(archive: Source, uid: str) -> bool:
    """Whether the archive has (a copy, maybe partial, of) run ``uid``."""
    try:
        archive.get(uid)
    except RunNotFound:
        return False
    return True
