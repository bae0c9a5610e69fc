"""An in-process store: nothing persists. For scratch work, tests and examples.

``open_catalog("memory://name")`` returns the same store for the same name
within one process. Queries run through their Python form (``Query.matches``),
which is how transports without a query language (Redis) search too.

It keeps its runs' facts too (:class:`~scandeck.sources.protocol.RunFacts`:
comments, tags, computed cells, data summaries), and its searches read them:
``tags contains "Ni"`` works on it as on the embedded store.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..documents import PER_DESCRIPTOR, RunOrder, normalize
from ..exceptions import InvalidDocument, RunNotFound, StoreError
from ..query import Query
from ..query.hints import start_fields, uses_facts
from .entries import select
from .memory_facts import MemoryFacts
from .protocol import Entry, RunSummary

if TYPE_CHECKING:
    from ..runtable.model import Annotation, Cell

_named: weakref.WeakValueDictionary[str, MemorySource] = weakref.WeakValueDictionary()
_named_lock = threading.Lock()


@dataclass
class _Run:
    summary: RunSummary
    entries: list[Entry] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    open: bool = True


class MemorySource:
    """Runs held in this process's memory.

    Examples
    --------
    >>> src = MemorySource("scratch"); src.start()
    >>> src.count(Query.all())
    0
    """

    def __init__(self, name: str = "") -> None:
        self.uri = f"memory://{name}"
        self._runs: dict[str, _Run] = {}
        self._seq = itertools.count(1)
        self._changed = threading.Condition()
        self._version = 0
        self._facts = MemoryFacts()

    @classmethod
    def named(cls, name: str) -> MemorySource:
        """The process-wide store called ``name`` (a new one for an empty name)."""
        if not name:
            return cls()
        with _named_lock:
            src = _named.get(name)
            if src is None:
                src = _named[name] = cls(name)
            return src

    def __repr__(self) -> str:
        return f"MemorySource({self.uri!r}, runs={len(self._runs)})"

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def writer(self) -> MemoryWriter:
        return MemoryWriter(self)

    # -- reading ---------------------------------------------------------------------------

    def _matching(self, query: Query) -> list[RunSummary]:
        reads_facts = uses_facts(query)  # else no run's facts document is built, on every search
        with self._changed:
            runs = [
                (run.summary, self._facts.document(uid) if reads_facts else None)
                for uid, run in self._runs.items()
            ]
        return [s for s, facts in runs if query.matches(s.start, s.stop, facts)]

    def count(self, query: Query) -> int:
        return len(self._matching(query))

    def fields(self) -> set[str]:
        """Dotted start-document field names that some run has (computed: a memory store is small)."""
        with self._changed:
            starts = [run.summary.start for run in self._runs.values()]
        return set().union(*map(start_fields, starts))

    def search(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunSummary]:
        found = sorted(self._matching(query), key=lambda s: (s.time, s.seq), reverse=not oldest_first)
        if before is not None:
            if oldest_first:
                found = [s for s in found if (s.time, s.seq) > before]
            else:
                found = [s for s in found if (s.time, s.seq) < before]
        found = found[offset:]
        return found if limit is None else found[:limit]

    def _run(self, uid: str) -> _Run:
        try:
            return self._runs[uid]
        except KeyError:
            raise RunNotFound(f"no run with uid {uid!r} in {self.uri}") from None

    def get(self, uid: str) -> RunSummary:
        with self._changed:
            return self._run(uid).summary

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        with self._changed:
            found = sorted(u for u in self._runs if u.startswith(prefix))[:limit]
            return [self._runs[u].summary for u in found]

    def documents(
        self,
        uid: str,
        *,
        start: int = 0,
        names: Iterable[str] | None = None,
        descriptors: Iterable[str] | None = None,
    ) -> Iterator[Entry]:
        with self._changed:
            entries = self._run(uid).entries[start:]
        return select(entries, names, descriptors)

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e.doc for e in self._run(uid).entries if e.name == "descriptor"]

    def stream_counts(self, uid: str) -> dict[str, int]:
        with self._changed:
            return dict(self._run(uid).counts)

    def latest_seq(self) -> int:
        with self._changed:
            return max((r.summary.seq for r in self._runs.values()), default=0)

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        with self._changed:
            found = sorted((r.summary for r in self._runs.values() if r.summary.seq > seq), key=lambda s: s.seq)
        return found if limit is None else found[:limit]

    def change_token(self) -> object:
        return self._version

    def wait(self, token: object, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._version != token, timeout)

    # -- facts (RunFacts) --------------------------------------------------------------------

    def _wrote(self) -> None:
        self._version += 1
        self._changed.notify_all()

    def add_annotations(self, uid: str, notes: Sequence[Annotation]) -> None:
        with self._changed:
            self._run(uid)
            self._facts.add_annotations(uid, notes)
            self._wrote()

    def annotations(self, uid: str) -> list[Annotation]:
        with self._changed:
            self._run(uid)
            return self._facts.annotations(uid)

    def put_cells(self, uid: str, cells: Mapping[str, Cell]) -> None:
        with self._changed:
            self._run(uid)
            self._facts.put_cells(uid, cells)
            self._wrote()

    def delete_cells(self, name: str) -> int:
        with self._changed:
            n = self._facts.delete_cells(name)
            if n:
                self._wrote()
            return n

    def cells(self, uids: Collection[str], names: Collection[str] | None = None) -> dict[str, dict[str, Cell]]:
        with self._changed:
            for uid in uids:
                self._run(uid)
            return self._facts.cells(uids, names)

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        with self._changed:
            self._run(uid)
            return self._facts.data_summary(uid)

    def facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        with self._changed:
            return {uid: self._facts.document(self._run(uid).summary.uid) for uid in uids}

    def needing(self, name: str, code_hash: str, *, limit: int = 100) -> list[str]:
        with self._changed:
            ended = [r.summary for r in self._runs.values() if r.summary.status != "running"]
            found = [s for s in ended if self._facts.stale(s.uid, name, code_hash)]
        found.sort(key=lambda s: (s.time, s.seq), reverse=True)
        return [s.uid for s in found[:limit]]

    def facts_since(self, mark: int) -> tuple[int, list[str]]:
        with self._changed:
            return self._facts.since(mark)

    def cell_names(self) -> set[str]:
        with self._changed:
            return self._facts.names()[0]

    def fact_names(self) -> set[str]:
        with self._changed:
            cells, keys = self._facts.names()
        return {f"columns.{n}" for n in cells} | {f"data.{k}.{b}" for k in keys for b in ("min", "max")}

    # -- writing (called by MemoryWriter under its checks) ---------------------------------

    def _append(self, name: str, doc: dict[str, Any], run_uid: str, descriptor: str | None, n: int) -> None:
        doc = normalize(doc)  # what a reader gets back from any store: no numpy, own copy
        with self._changed:
            if name == "start":
                if run_uid in self._runs:
                    raise InvalidDocument(name, doc, "a run with this uid is already in the store")
                summary = RunSummary(
                    uid=run_uid,
                    seq=next(self._seq),
                    scan_id=doc.get("scan_id"),
                    time=doc["time"],
                    start=doc,
                    stop=None,
                    num_events=0,
                    num_documents=0,
                    status="running",
                )
                self._runs[run_uid] = _Run(summary)
                self._facts.add_run(run_uid)
            run = self._runs[run_uid]
            run.entries.append(Entry(len(run.entries), name, doc))
            if descriptor is not None:
                run.counts[descriptor] = run.counts.get(descriptor, 0) + n
            if name in ("event", "event_page"):
                self._facts.add_events(run_uid, name, doc)
            changes: dict[str, Any] = {
                "num_documents": len(run.entries),
                "num_events": run.summary.num_events + n,
            }
            if name == "stop":
                changes.update(stop=doc, status=doc["exit_status"])
                run.open = False
            run.summary = replace(run.summary, **changes)
            self._version += 1
            self._changed.notify_all()

    def _abandon(self, run_uids: Iterable[str]) -> None:
        with self._changed:
            for uid in run_uids:
                run = self._runs.get(uid)
                if run is not None and run.open:
                    run.open = False
                    run.summary = replace(run.summary, status="incomplete")
            self._version += 1
            self._changed.notify_all()


class MemoryWriter:
    """Validates each document, then appends it to a :class:`MemorySource`."""

    def __init__(self, source: MemorySource) -> None:
        self._source = source
        self._order = RunOrder()
        self._lock = threading.Lock()
        self._closed = False
        # A writer dropped without close() (its RunEngine gone) leaves incomplete runs,
        # as a dead writer process does for the SQLite store.
        self._finalizer = weakref.finalize(self, source._abandon, self._order.open_runs_view())

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("this writer is closed; get a new one with catalog.writer()")
            placed = self._order.check(name, doc)
            descriptor = placed.descriptor if name in PER_DESCRIPTOR else None
            self._source._append(name, doc, placed.run_uid, descriptor, placed.num_events)
            self._order.commit(name, doc, placed)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._finalizer()
