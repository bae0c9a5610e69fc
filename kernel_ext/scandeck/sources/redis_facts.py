"""A run's facts on the Redis bus: annotations, computed cells, data summaries.

A run in Redis keeps its facts beside its documents (the keys are in
:mod:`.redis_layout`): every write is one atomic script call
(:data:`~.redis_layout.FACTS_SCRIPT`) that numbers it in ``P:facts`` for
``facts_since`` and wakes the readers waiting on ``P:changes``. Any client of
the bus may annotate; all see the same history.

The archive is where the facts of a run go once Redis no longer holds it: the
keeper copies a finished run's annotations and cells with its documents
(:func:`persist_facts`; the archive's writer computes the data summaries from
the documents itself), and an annotation or cell written later to a run still in
Redis takes the run's ``persisted`` mark away, so the keeper copies it again
before the run may be trimmed (the trim script deletes only a run marked
persisted, and the mark is set only if no facts were written since the copy).
A run already trimmed is annotated in the archive directly. So trimming Redis
loses no comment or tag, and a reader sees one history per run whichever way
it came: Redis while the run is there, the archive after.

Why not annotate archived runs in the archive only: the archive may not be
writable (or reachable) from every client of the bus (a SQLite file on the
keeper's machine); the bus is what every client shares.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..exceptions import FactsNotSupported, StoreError
from ..query import Key, Query
from ..runtable.model import Annotation, Cell, facts_document, merge_summaries, needs_computing
from .protocol import FactNames, RunFacts, RunSummary, Source
from .redis_layout import FACTS_SCRIPT, Keys
from .redis_writer import settle

__all__ = ["DELETE_CELLS_SCRIPT", "MARK_SCRIPT", "TOUCH_SCRIPT", "RedisFacts", "persist_facts"]

T = TypeVar("T")

#: Take ``name``'s cell from every run in Redis, atomically; the uids of the runs that had one.
#: KEYS: facts seq, facts, changes, persisted, then per run: run, cells. ARGV: name, then the uids.
DELETE_CELLS_SCRIPT = """
local done, seq = {}, nil
for i = 2, #ARGV do
  local run, cells = KEYS[5 + (i - 2) * 2], KEYS[6 + (i - 2) * 2]
  if redis.call('HDEL', cells, ARGV[1]) == 1 then
    done[#done + 1] = ARGV[i]
    redis.call('HINCRBY', run, 'facts', 1)
    if redis.call('HDEL', run, 'persisted') == 1 then redis.call('SREM', KEYS[4], ARGV[i]) end
    seq = redis.call('INCR', KEYS[1])
    redis.call('ZADD', KEYS[2], seq, ARGV[i])
  end
end
if #done > 0 then redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'u', '') end
return done
"""

#: Number a facts write made in the archive (a trimmed run), and wake the readers.
#: KEYS: facts seq, facts, changes. ARGV: uid.
TOUCH_SCRIPT = """
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 1000, '*', 'u', ARGV[1])
return seq
"""

#: The keeper's mark: persisted only if the run's facts and documents are what it copied.
#: KEYS: run, persisted. ARGV: uid, facts count copied, documents copied.
MARK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'facts') or '0') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'n_docs') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'persisted', '1')
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""


@dataclass
class _Held:
    """One run's facts as Redis holds them."""

    history: list[Annotation] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)


def _note(raw: bytes) -> Annotation:
    d = json.loads(raw)
    return Annotation(d["kind"], d["text"], d["author"], d["host"], float(d["time"]))


def _summary(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, float]]:
    parts = (json.loads(v) for v in raw.values())
    return merge_summaries({k: {"min": lo, "max": hi} for k, (lo, hi) in part.items()} for part in parts)


def _cells(raw: Mapping[bytes, bytes], names: Collection[str] | None = None) -> dict[str, Cell]:
    out = {k.decode(): Cell.from_dict(json.loads(v)) for k, v in raw.items()}
    return out if names is None else {k: c for k, c in out.items() if k in names}


def _cell_fields(cells: Mapping[str, Cell]) -> list[str]:
    """``[name, JSON, ...]`` as the embedded store keeps cells (a value JSON cannot hold is refused)."""
    out: list[str] = []
    now = time.time()
    for name, c in cells.items():
        d = c.to_dict()
        d["time"] = c.time or now
        try:
            out += [name, json.dumps(d, allow_nan=False)]
        except (TypeError, ValueError) as err:
            raise StoreError(f"column {name!r}: the value {c.value!r} cannot be stored ({err})") from err
    return out


class RedisFacts:
    """:class:`~scandeck.sources.protocol.RunFacts` for :class:`~scandeck.sources.redis_source.RedisSource`.

    The source provides ``keys``, ``talk``, ``_live``, ``_archive`` and ``_archived``.
    """

    keys: Keys
    _bus: tuple[str, str]

    def talk(self, doing: str, call: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _live(self) -> dict[str, RunSummary]:
        raise NotImplementedError

    def _archive(self) -> Source | None:
        raise NotImplementedError

    def _archived(self, uid: str) -> Source:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------

    def _facts_archive(self, uid: str) -> RunFacts:
        """The archive holding trimmed run ``uid``'s facts (RunNotFound if it is nowhere)."""
        archive = self._archived(uid)
        if not isinstance(archive, RunFacts):
            raise FactsNotSupported(
                f"run {uid} was trimmed from the Redis bus into {archive.uri}, which keeps no "
                "comments, tags or computed columns; keep runs on the bus longer, or archive "
                "them into an embedded store"
            )
        return archive

    def _script(self, doing: str, script: str, keys: Sequence[str], *args: Any) -> Any:
        def run(client: Any) -> Any:
            return client.register_script(script)(keys=list(keys), args=list(args), client=client)

        return self.talk(doing, run)

    def _write(self, uid: str, what: str, entries: list[str]) -> bool:
        """Store facts of a run in Redis; False when Redis does not hold the run."""
        settle(self._bus)  # a run this process is writing is in Redis first
        target = {"notes": self.keys.notes, "cells": self.keys.cells}[what](uid)
        keys = self.keys.facts_write(uid, target)
        return self._script(f"storing {what} of run {uid}", FACTS_SCRIPT, keys, uid, what, "", *entries) != -3

    def _touch(self, uid: str) -> None:
        keys = [self.keys.facts_seq, self.keys.facts, self.keys.changes]
        self._script(f"announcing facts of run {uid}", TOUCH_SCRIPT, keys, uid)

    def _held(self, uids: Collection[str], *, notes: bool = True, cells: bool = True) -> dict[str, _Held]:
        """The facts of those runs Redis holds (one round trip)."""
        settle(self._bus)
        uids = list(uids)

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for uid in uids:
                pipe.exists(self.keys.run(uid))
                if notes:
                    pipe.lrange(self.keys.notes(uid), 0, -1)
                if cells:
                    pipe.hgetall(self.keys.cells(uid))
                pipe.hgetall(self.keys.sums(uid))
            return pipe.execute()

        replies = iter(self.talk("reading facts", read) if uids else [])
        out: dict[str, _Held] = {}
        for uid in uids:
            present = next(replies)
            raw_notes = next(replies) if notes else []
            raw_cells = next(replies) if cells else {}
            raw_sums = next(replies)
            if present:
                out[uid] = _Held([_note(r) for r in raw_notes], _cells(raw_cells), _summary(raw_sums))
        return out

    def archive_overlap(self, archive: Source, query: Query, live: Collection[str]) -> int:
        """How many of the runs in Redis the archive's own search for ``query`` counts."""
        return archive.count(query & Key("uid").in_(sorted(live))) if live else 0

    # -- RunFacts --------------------------------------------------------------------------

    def add_annotations(self, uid: str, notes: Sequence[Annotation]) -> None:
        if not self._write(uid, "notes", [json.dumps(n.to_dict()) for n in notes]):
            self._facts_archive(uid).add_annotations(uid, notes)
            self._touch(uid)

    def annotations(self, uid: str) -> list[Annotation]:
        held = self._held([uid], cells=False).get(uid)
        return held.history if held is not None else self._facts_archive(uid).annotations(uid)

    def put_cells(self, uid: str, cells: Mapping[str, Cell]) -> None:
        if not self._write(uid, "cells", _cell_fields(cells)):
            self._facts_archive(uid).put_cells(uid, cells)
            self._touch(uid)

    def delete_cells(self, name: str) -> int:
        uids = [u.decode() for u in self.talk("listing runs", lambda c: c.zrange(self.keys.runs, 0, -1))]
        archive = self._archive()
        in_archive: dict[str, Any] = {}
        if isinstance(archive, RunFacts):  # the copies of runs still in Redis: counted once
            held = [s.uid for s in archive.search(Key("uid").in_(uids))] if uids else []
            in_archive = archive.cells(held, [name])
        keys = [self.keys.facts_seq, self.keys.facts, self.keys.changes, self.keys.persisted]
        for uid in uids:
            keys += [self.keys.run(uid), self.keys.cells(uid)]
        done = self._script(f"deleting cells of column {name}", DELETE_CELLS_SCRIPT, keys, name, *uids)
        n = len({u.decode() for u in done} | in_archive.keys())
        if isinstance(archive, RunFacts):
            n += archive.delete_cells(name) - len(in_archive)
        return n

    def cells(self, uids: Collection[str], names: Collection[str] | None = None) -> dict[str, dict[str, Cell]]:
        held = self._held(uids, notes=False)
        out = {uid: found for uid, h in held.items() if (found := _cells_named(h.cells, names))}
        missing = [uid for uid in uids if uid not in held]
        if missing:
            archive = self._facts_archive(missing[0])
            for uid in missing[1:]:
                self._archived(uid)  # RunNotFound for one nowhere
            out.update(archive.cells(missing, names))
        return out

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        held = self._held([uid], notes=False, cells=False).get(uid)
        return held.summary if held is not None else self._facts_archive(uid).data_summary(uid)

    def facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        held = self._held(uids)
        out = {uid: facts_document(h.history, h.cells, h.summary) for uid, h in held.items()}
        missing = [uid for uid in uids if uid not in held]
        if missing:
            archive = self._facts_archive(missing[0])
            for uid in missing[1:]:
                self._archived(uid)
            out.update(archive.facts(missing))
        return out

    def needing(self, name: str, code_hash: str, *, limit: int = 100) -> list[str]:
        live = self._live()
        ended = [s for s in live.values() if s.status != "running"]

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for s in ended:
                pipe.hget(self.keys.cells(s.uid), name)
            return pipe.execute()

        raw = self.talk("reading cells", read) if ended else []
        found = []
        for s, blob in zip(ended, raw, strict=True):
            cell = None if blob is None else Cell.from_dict(json.loads(blob))
            if needs_computing(cell, code_hash):
                found.append(s)
        archive = self._archive()
        if isinstance(archive, RunFacts):  # trimmed runs: the archive knows their cells
            more = [u for u in archive.needing(name, code_hash, limit=limit + len(live)) if u not in live]
            if more:
                found += archive.search(Key("uid").in_(more))
        found.sort(key=lambda s: (s.time, s.seq), reverse=True)
        return [s.uid for s in found[:limit]]

    def fact_names(self) -> set[str]:
        """``columns.<name>`` and ``data.<key>.min|max`` that runs on the bus or in its archive have."""
        uids = [u.decode() for u in self.talk("listing runs", lambda c: c.zrange(self.keys.runs, 0, -1))]

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for uid in uids:
                pipe.hkeys(self.keys.cells(uid))
                pipe.hvals(self.keys.sums(uid))
            return pipe.execute()

        replies = self.talk("reading facts", read) if uids else []
        names = {f"columns.{n.decode()}" for cells in replies[::2] for n in cells}
        for sums in replies[1::2]:
            for key in set().union(*(json.loads(v) for v in sums)):
                names |= {f"data.{key}.min", f"data.{key}.max"}
        archive = self._archive()
        return names | archive.fact_names() if isinstance(archive, FactNames) else names

    def cell_names(self) -> set[str]:
        """The columns of the cells that runs on the bus or in its archive have."""
        uids = [u.decode() for u in self.talk("listing runs", lambda c: c.zrange(self.keys.runs, 0, -1))]

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for uid in uids:
                pipe.hkeys(self.keys.cells(uid))
            return pipe.execute()

        names = {n.decode() for cells in (self.talk("reading cells", read) if uids else []) for n in cells}
        archive = self._archive()
        return names | archive.cell_names() if isinstance(archive, FactNames) else names

    def facts_since(self, mark: int) -> tuple[int, list[str]]:
        rows = self.talk(
            "reading facts changes",
            lambda c: c.zrangebyscore(self.keys.facts, f"({mark}", "+inf", withscores=True),
        )
        return (int(rows[-1][1]) if rows else mark), [u.decode() for u, _ in rows]


def _cells_named(cells: dict[str, Cell], names: Collection[str] | None) -> dict[str, Cell]:
    return cells if names is None else {k: c for k, c in cells.items() if k in names}


def persist_facts(bus: RedisFacts, archive: Source, uid: str, n_docs: int) -> str | None:
    """Copy run ``uid``'s annotations and cells into ``archive``, then mark it persisted.

    The keeper calls it once the archive holds the run's ``n_docs`` documents. The
    mark is set only if no facts were written (and no document stored) since the
    copy; otherwise it copies again. Returns why the run cannot be marked, or None.
    """
    for _ in range(3):

        def snapshot(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=True)
            pipe.hget(bus.keys.run(uid), "facts")
            pipe.lrange(bus.keys.notes(uid), 0, -1)
            pipe.hgetall(bus.keys.cells(uid))
            return pipe.execute()

        version, raw_notes, raw_cells = bus.talk(f"reading facts of run {uid}", snapshot)
        notes, cells = [_note(r) for r in raw_notes], _cells(raw_cells)
        if notes or cells:
            if not isinstance(archive, RunFacts):
                return (
                    f"it has {len(notes)} comments or tags and {len(cells)} computed cells, and "
                    f"{archive.uri} keeps none (archive into an embedded store to keep them)"
                )
            have = Counter(archive.annotations(uid))
            missing = []
            for note in notes:  # the archive's history is the bus's, perhaps without the latest
                if have[note] > 0:
                    have[note] -= 1
                else:
                    missing.append(note)
            if missing:
                archive.add_annotations(uid, missing)
            held = archive.cells([uid]).get(uid, {})
            changed = {name: c for name, c in cells.items() if held.get(name) != c}
            if changed:
                archive.put_cells(uid, changed)
        copied = (version or b"0").decode()
        keys = [bus.keys.run(uid), bus.keys.persisted]
        if bus._script(f"marking run {uid} persisted", MARK_SCRIPT, keys, uid, copied, n_docs):
            return None
    return "its comments, tags or cells changed while they were copied, three times; the next pass tries again"
