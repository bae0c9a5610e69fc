"""The keeper: copies finished runs from Redis to a durable catalog, then trims Redis.

Redis holds a bus's live and recent runs in memory; the keeper bounds that
memory, as blissdata's memory tracker does. It copies every finished run
(stopped, or ``incomplete`` for longer than ``grace``) into the archive (the
embedded default store unless told otherwise), marks it ``persisted``, and
publishes the archive's URI under ``P:archive`` so readers find trimmed runs.
Then it trims persisted runs by a :class:`TrimPolicy`: the oldest first
beyond ``max_runs``, those that ended more than ``max_age`` seconds ago, and
the oldest while Redis uses more than ``max_memory`` bytes. A run that is not
in the archive is never trimmed, so reading a run never fails.

The archive may be a Tiled server (``tiled+http://host:8000/raw``): runs then go
through bluesky-tiled-plugins' ``TiledWriter`` (:meth:`Source.writer`), a whole
run per write unless the URI says ``?batch_size=N``. Tiled rebuilds documents
rather than keeping them, so a copy is checked by its stop document and its
events per stream (:mod:`.archive_copy`), and a copy cut short (a keeper killed
mid-run) cannot be completed there: TiledWriter creates a run once and cannot
add to it. The keeper then says so, naming the run, keeps it in Redis and goes
on with the others. The URI published for readers carries no credentials: a
reader gives its own.

A run's transferred files (``scandeck watch --transfer``) go to the archive
before it is marked persisted, verified, and leave Redis with it
(:mod:`.keeper_files`); an archive that cannot keep files keeps such runs in Redis.

A run's comments, tags and computed cells go to the archive with it, and again
whenever they change while the run is still in Redis (:mod:`.redis_facts`): a
run is trimmed only if the archive holds its facts as Redis does.

One keeper per bus is active (a lock key with a lease); others wait.
``scandeck keeper redis://...`` runs one; ``scandeck demo --catalog redis://...``
runs one alongside the simulated beamline.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import RunNotFound, ScandeckError
from ..uris import redact
from .archive_copy import lacking, verbatim, writing_uri
from .keeper_files import file_keys, persist_files
from .protocol import RunSummary, Source
from .redis_facts import persist_facts
from .redis_source import RedisSource

log = logging.getLogger(__name__)

#: Delete a run's keys only if it is still marked persisted (atomic): documents, facts, files.
#: KEYS: run, docs, desc, counts, runs, persisted, notes, cells, sums, facts, then its files'
#: keys (keeper_files.file_keys: a file stored since takes the persisted mark away). ARGV: uid.
TRIM_SCRIPT = """
if redis.call('HGET', KEYS[1], 'persisted') ~= '1' then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], KEYS[8], KEYS[9])
for i = 11, #KEYS do redis.call('UNLINK', KEYS[i]) end
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
return 1
"""
_LEASE = 15.0


@dataclass(frozen=True)
class TrimPolicy:
    """When persisted runs leave Redis. ``None`` switches a limit off.

    ``grace`` is how long a run whose writer vanished (``incomplete``) waits
    before it counts as finished: a writer cut off from Redis by a network
    blip comes back within it and goes on.
    """

    max_runs: int | None = 1000
    max_age: float | None = None
    max_memory: int | None = None
    grace: float = 60.0


@dataclass
class KeeperReport:
    """What one pass did."""

    persisted: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # uid -> why it cannot be persisted
    waiting: bool = False  # another keeper holds the lock


class Keeper:
    """Persist finished runs of a Redis bus to ``archive`` and trim them by ``policy``.

    Parameters
    ----------
    uri
        The bus, ``redis://host:port/db?prefix=P``.
    archive
        URI or path of the durable catalog (default: ``archive=`` in ``uri``,
        else the archive the bus already uses, else the embedded default store).
    say
        Gets one line per run persisted or trimmed and per problem.
    """

    def __init__(
        self,
        uri: str,
        *,
        archive: str | None = None,
        policy: TrimPolicy | None = None,
        say: Callable[[str], Any] | None = None,
    ) -> None:
        self.bus = RedisSource(uri)
        self.policy = policy or TrimPolicy()
        self.say = say or (lambda line: log.info("%s", line))
        self.id = uuid.uuid4().hex
        self._chosen = archive or self.bus.opts.archive
        self._archive: Source | None = None
        self._row_by_row: Source | None = None  # the archive again, one event per write
        self._target: str | None = None
        self._shown: str | None = None  # the archive's URI, published and printed (no credentials)
        self._incomplete_since: dict[str, float] = {}
        self._trim_sha: str | None = None
        self._complained: set[str] = set()

    @property
    def archive(self) -> Source:
        """The archive: the one chosen, else the one the bus already uses, else the default store."""
        if self._archive is None:
            from .openers import open_source

            target = self._chosen
            if target is None:
                published = self.bus.talk("finding the archive", lambda c: c.get(self.bus.keys.archive))
                if published is not None:
                    target = published.decode()
                else:
                    from ..config import default_store

                    target = str(default_store())
            archive = open_source(writing_uri(target))
            archive.start()
            self._archive, self._target = archive, target
            # As given, without the batch size added for writing, and without credentials.
            self._shown = redact(target if writing_uri(target) != target else archive.uri)
        return self._archive

    @property
    def archive_shown(self) -> str:
        """The archive's URI without credentials (what is printed and published for readers)."""
        archive = self.archive  # opening it sets _shown
        return self._shown or redact(archive.uri)

    def start(self) -> None:
        self.bus.start()

    def close(self) -> None:
        try:
            if self.bus._client is not None:
                self._release()
        finally:
            self.bus.close()
            for archive in (self._archive, self._row_by_row):
                if archive is not None:
                    archive.close()

    # -- one pass --------------------------------------------------------------------------

    def run_once(self) -> KeeperReport:
        """Persist what finished, then trim by the policy."""
        self.start()
        report = KeeperReport()
        if not self._hold_lock():
            report.waiting = True
            return report
        self._publish_archive()
        runs = sorted(self.bus._live().values(), key=lambda s: s.seq)
        persisted = self.bus._persisted()
        now = time.time()
        for summary in runs:
            if summary.uid in persisted or not self._finished(summary, now):
                continue
            why = self._persist(summary)
            if why is None:
                persisted.add(summary.uid)
                report.persisted.append(summary.uid)
                self.say(
                    f"persisted run {summary.uid[:8]} (scan {summary.scan_id}, "
                    f"{summary.num_documents} documents, {summary.status}) to {self.archive_shown}"
                )
            else:
                report.skipped[summary.uid] = why
                if summary.uid not in self._complained:
                    self._complained.add(summary.uid)
                    self.say(f"cannot persist run {summary.uid}: {why}; it stays in Redis")
        for summary in self._to_trim(runs, persisted, now):
            if self._trim(summary.uid):
                report.trimmed.append(summary.uid)
        if report.trimmed:
            n = len(report.trimmed)
            self.say(f"trimmed {n} persisted run{'s' if n != 1 else ''} from Redis ({self.policy_text()})")
        return report

    def run_forever(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Pass after every change on the bus (at most every ``interval`` s) until ``stop`` is set.

        A last pass after ``stop`` persists what finished just before it.
        """
        waiting_said = False
        while not stop.is_set():
            token = self.bus.change_token()
            report = self.run_once()
            if report.waiting and not waiting_said:
                self.say("another keeper is active on this bus; waiting to take over")
            waiting_said = report.waiting
            self.bus.wait(token, interval)
            stop.wait(min(interval, 0.2))
        self.run_once()  # what finished just before the stop

    # -- persisting ------------------------------------------------------------------------

    def _finished(self, summary: RunSummary, now: float) -> bool:
        if summary.status == "running":
            self._incomplete_since.pop(summary.uid, None)
            return False
        if summary.status != "incomplete":
            return True
        first = self._incomplete_since.setdefault(summary.uid, now)
        return now - first >= self.policy.grace

    def _persist(self, summary: RunSummary) -> str | None:
        """Copy the run to the archive (or complete its copy there); the reason when it cannot be."""
        uid = summary.uid
        why = persist_files(self.bus, self.archive, uid, self.archive_shown)  # first: the bytes its events name
        if why is not None:
            return why
        try:
            held = self.archive.get(uid)
        except RunNotFound:
            held = None
        if held is None or self._short(summary, held):
            writer = self._writer(summary)
            try:
                start = 0 if held is None else self._resume(writer, summary, held)
                if isinstance(start, str):
                    return start
                for entry in self.bus.documents(uid, start=start):
                    writer(entry.name, entry.doc)
            except ScandeckError as err:
                return f"copying it to {self.archive_shown} failed: {err}"
            finally:
                writer.close()
            held = self.archive.get(uid)
        short = lacking(self.bus, self.archive, summary, held)
        if short is not None:
            return (
                f"{self.archive_shown} holds {short} and cannot complete them; "
                "remove that copy from the archive to retry"
            )
        try:  # its comments, tags and cells too; marked persisted if nothing changed meanwhile
            return persist_facts(self.bus, self.archive, uid, summary.num_documents)
        except (ScandeckError, UnicodeEncodeError) as err:  # e.g. a lone surrogate the archive cannot encode
            return f"copying its comments, tags and cells to {self.archive_shown} failed: {err}"

    def _writer(self, summary: RunSummary) -> Any:
        """The archive's writer; for a run without a stop document into a batching archive,
        one that writes each event as it comes: TiledWriter sends a batch only when it is
        full or at the stop document, so the rows of a run that has none would be lost."""
        target = self._target
        if summary.stop is not None or target is None or writing_uri(target) == target:
            return self.archive.writer()
        if self._row_by_row is None:
            from .openers import open_source

            self._row_by_row = open_source(writing_uri(target, batch=1))
            self._row_by_row.start()
        return self._row_by_row.writer()

    def _short(self, summary: RunSummary, held: RunSummary) -> bool:
        """The archive's copy lacks documents (a verbatim archive counts them exactly)."""
        if verbatim(self.archive):
            return held.num_documents < summary.num_documents
        return lacking(self.bus, self.archive, summary, held) is not None

    def _resume(self, writer: Any, summary: RunSummary, held: RunSummary) -> int | str:
        """Take over the archive's partial copy (a copy cut short, or a run that went on
        after it was archived): its position to copy from, or why it cannot be completed."""
        resume = getattr(writer, "resume", None)
        if not verbatim(self.archive):
            short = lacking(self.bus, self.archive, summary, held)
            return (
                f"{self.archive_shown} holds a partial copy of it ({short}; {held.status}), and its "
                "writer cannot add to a run the archive already holds (TiledWriter creates a run "
                "once); delete that copy from the archive (in Tiled: "
                "container.delete_contents(uid, recursive=True, external_only=False)) and the "
                "keeper copies the run again"
            )
        if resume is None or held.status != "incomplete":
            return (
                f"{self.archive_shown} holds {held.num_documents} of its {summary.num_documents} "
                f"documents ({held.status}) and cannot complete them; remove that copy to retry"
            )
        ours = self.bus.documents(summary.uid)
        for theirs in self.archive.documents(summary.uid):
            if next(ours, None) != theirs:
                return (
                    f"{self.archive.uri} holds a different run under this uid (document "
                    f"{theirs.pos} differs); remove that copy to retry"
                )
        return resume(summary.uid)

    # -- trimming --------------------------------------------------------------------------

    def _to_trim(self, runs: list[RunSummary], persisted: set[str], now: float) -> list[RunSummary]:
        """Persisted runs the policy lets go, oldest first (memory is checked as they go)."""
        p = self.policy
        candidates = [s for s in runs if s.uid in persisted]
        out: dict[str, RunSummary] = {}
        if p.max_runs is not None and len(runs) > p.max_runs:
            for s in candidates[: len(runs) - p.max_runs]:
                out[s.uid] = s
        if p.max_age is not None:
            for s in candidates:
                ended = (s.stop or {}).get("time", s.time)
                if now - ended > p.max_age:
                    out[s.uid] = s
        if p.max_memory is not None:
            used = self._used_memory()
            for s in candidates:
                if used <= p.max_memory:
                    break
                if s.uid not in out:
                    out[s.uid] = s
                    used -= self._run_memory(s.uid)
        return sorted(out.values(), key=lambda s: s.seq)

    def _used_memory(self) -> int:
        return int(self.bus.talk("reading memory use", lambda c: c.info("memory"))["used_memory"])

    def _run_memory(self, uid: str) -> int:
        keys = self.bus.keys.of_run(uid) + self.bus.keys.facts_of(uid) + file_keys(self.bus, uid)

        def usage(client: Any) -> int:
            return sum(client.memory_usage(k, samples=0) or 0 for k in keys)

        return self.bus.talk("reading memory use", usage)

    def _trim(self, uid: str) -> bool:
        keys = self.bus.keys
        run_keys = [*keys.of_run(uid), keys.runs, keys.persisted, *keys.facts_of(uid), keys.facts]
        run_keys += file_keys(self.bus, uid)

        def trim(client: Any) -> int:
            if self._trim_sha is None:
                self._trim_sha = client.script_load(TRIM_SCRIPT)
            return client.evalsha(self._trim_sha, len(run_keys), *run_keys, uid)

        try:
            return bool(self.bus.talk(f"trimming run {uid}", trim))
        except ScandeckError as err:
            if "NOSCRIPT" in str(err):
                self._trim_sha = None
                return bool(self.bus.talk(f"trimming run {uid}", trim))
            raise

    def policy_text(self) -> str:
        """The trim policy in one line, for logs: ``max_runs=1000, max_age=86400s``."""
        p = self.policy
        parts = [
            f"max_runs={p.max_runs}" if p.max_runs is not None else "",
            f"max_age={p.max_age:g}s" if p.max_age is not None else "",
            f"max_memory={p.max_memory >> 20}MB" if p.max_memory is not None else "",
        ]
        return ", ".join(x for x in parts if x) or "no limits"

    # -- one keeper per bus ----------------------------------------------------------------

    def _hold_lock(self) -> bool:
        key, lease = self.bus.keys.keeper, int(_LEASE * 1000)

        def hold(client: Any) -> bool:
            if client.set(key, self.id, nx=True, px=lease):
                return True
            if client.get(key) == self.id.encode():
                client.pexpire(key, lease)
                return True
            return False

        return self.bus.talk("taking the keeper lock", hold)

    def _release(self) -> None:
        key = self.bus.keys.keeper

        def release(client: Any) -> None:
            if client.get(key) == self.id.encode():
                client.delete(key)

        try:
            self.bus.talk("releasing the keeper lock", release)
        except ScandeckError as err:
            log.debug("keeper lock not released (it expires): %s", err)

    def _publish_archive(self) -> None:
        uri = self.archive_shown  # readers bring their own credentials: never hand out ours
        key = self.bus.keys.archive
        old = self.bus.talk("publishing the archive", lambda c: c.set(key, uri, get=True))
        if old is not None and old.decode() != uri:
            self.say(
                f"the archive of this bus changes from {old.decode()} to {uri}: runs trimmed "
                "before stay in the old one"
            )
