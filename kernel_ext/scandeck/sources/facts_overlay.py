"""Facts for a store that cannot keep them itself (a Tiled archive): a sidecar SQLite file beside it.

scandeck never writes into a Tiled archive's runs. Comments, tags and computed cells of
its runs go to a sidecar file instead: the same tables as the embedded store's
(:mod:`.sqlite_facts`), keyed by run uid. By default the file is
``$SCANDECK_DATA/facts/<hash of the catalog's address>.sqlite``, private to this user
and machine; a catalog entry's ``facts:`` option names a shared one.

:class:`FactsOverlay` wraps the store: every call goes to it, except the
:class:`~scandeck.sources.protocol.RunFacts` methods (to the sidecar), and searches
whose query reads facts: each facts condition becomes the set of uids the sidecar
finds for it (``uid in [...]``), which the store answers with the rest of the query.
Data summaries (``data.<key>.min``) are recorded by scandeck's own writers only; a
query on them here is refused, saying so, rather than matching nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from ..exceptions import InvalidQuery, RunNotFound
from ..query import And, Comparison, Key, Not, Or, Query, Regex
from ..query.hints import uses_facts
from ..runtable.model import Annotation, Cell, empty_facts, needs_computing
from ..safe_text import printable
from ..uris import redact
from .protocol import RunSummary, Source
from .sqlite import ThreadConnections
from .sqlite_db import connect, retry_locked
from .sqlite_facts import FACTS_SCHEMA, FactsMixin, runs_from

__all__ = ["FactsOverlay", "default_facts_path"]

_SIDECAR_RUNS = "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE)"
#: Runs of the store walked per request when looking for runs without a cell (``needing``).
_PAGE = 200


def _set_up(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(_SIDECAR_RUNS)
    conn.executescript(FACTS_SCHEMA)


def default_facts_path(uri: str) -> Path:
    """Where the facts of the store at ``uri`` are kept when its entry names no ``facts:`` file."""
    from ..config import data_dir

    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return data_dir() / "facts" / f"{digest}.sqlite"


class _Sidecar(FactsMixin):
    """The sidecar file: the embedded store's facts tables, with a ``runs`` table of uids only."""

    def __init__(self, path: Path, store: Source) -> None:
        self.path = path
        self._store = store
        self._conns = ThreadConnections()  # closed together by close(), as SQLiteSource's
        self._ready = False
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn = self._conns.current()
        if conn is None:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    first = connect(self.path)
                    try:
                        retry_locked(lambda: _set_up(first), f"cannot open the facts file {self.path}")
                    finally:
                        first.close()
                    self._ready = True
            conn = self._conns.keep(connect(self.path))
        return conn

    def close(self) -> None:
        """Close every thread's connection; a thread using the facts afterwards opens a new one."""
        self._conns.close_all()

    def writable(self, what: str) -> None:
        self.connection()  # creates the file; an unwritable place fails here, naming the path

    def run_id(self, uid: str) -> int:
        conn = self.connection()
        row = conn.execute("SELECT id FROM runs WHERE uid = ?", (uid,)).fetchone()
        if row is not None:
            return int(row[0])
        self._store.get(uid)  # RunNotFound for a run the store does not have
        conn.execute("INSERT OR IGNORE INTO runs (uid) VALUES (?)", (uid,))
        return int(conn.execute("SELECT id FROM runs WHERE uid = ?", (uid,)).fetchone()[0])

    def known(self, uids: Collection[str]) -> dict[int, str]:
        """Sidecar ids of those of ``uids`` that have facts (no request to the store)."""
        if not uids:
            return {}
        marks = ",".join("?" * len(uids))
        rows = self.connection().execute(f"SELECT id, uid FROM runs WHERE uid IN ({marks})", list(uids))
        return {run_id: uid for run_id, uid in rows}

    def matching(self, leaf: Query) -> list[str]:
        """Uids of the runs whose facts match ``leaf`` (a condition on facts alone)."""
        conn = self.connection()
        sql, params = leaf.to_sql()
        rows = conn.execute(f"SELECT uid FROM {runs_from(conn, leaf)} WHERE {sql}", params)
        return [uid for (uid,) in rows]


class FactsOverlay:
    """A store plus a sidecar file keeping its runs' facts (see the module docstring).

    Examples
    --------
    >>> from scandeck.sources.memory import MemorySource
    >>> src = FactsOverlay(MemorySource(), Path("/tmp/doc-facts.sqlite"))   # doctest: +SKIP
    """

    def __init__(self, store: Source, path: Path) -> None:
        self.store = store
        self.uri = store.uri
        self._facts = _Sidecar(path, store)

    def __repr__(self) -> str:
        return f"<{type(self.store).__name__} {redact(self.uri)} with facts in {self._facts.path}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "store":
            raise AttributeError(name)
        return getattr(self.store, name)  # the store's optional capabilities, as they are

    @property
    def facts_path(self) -> Path:
        """The sidecar file."""
        return self._facts.path

    def use_file(self, path: Path) -> None:
        """Keep the facts in ``path`` (a catalog entry's ``facts:``) instead of the default file."""
        self._facts = _Sidecar(path, self.store)

    # -- the Source protocol: the store's, with facts conditions answered by the sidecar ----------

    def start(self) -> None:
        self.store.start()

    def close(self) -> None:
        self.store.close()
        self._facts.close()

    def writer(self) -> Any:
        return self.store.writer()

    def _rewritten(self, query: Query) -> Query:
        if not uses_facts(query):
            return query
        if isinstance(query, And):
            return And(*(self._rewritten(q) for q in query.items))
        if isinstance(query, Or):
            return Or(*(self._rewritten(q) for q in query.items))
        if isinstance(query, Not):
            return Not(self._rewritten(query.query))
        assert isinstance(query, (Comparison, Regex)) and query.doc == "facts"
        if query.path[0] == "data":
            raise InvalidQuery(
                f"{query}: data summaries are recorded by scandeck's own writers (the embedded store, the "
                f"Redis bus), not kept for the runs of {redact(self.uri)}; search its start fields or "
                "computed columns"
            )
        if query.matches({}, None, empty_facts()):
            # runs the sidecar has never heard of match too (tags != "Ni"): keep all but its misses
            return ~Key("uid").in_(self._facts.matching(~query))
        return Key("uid").in_(self._facts.matching(query))

    def count(self, query: Query) -> int:
        return self.store.count(self._rewritten(query))

    def search(self, query: Query, **kwargs: Any) -> list[RunSummary]:
        return self.store.search(self._rewritten(query), **kwargs)

    def open_runs(self, query: Query, **kwargs: Any) -> list[RunSummary]:
        return self.store.open_runs(self._rewritten(query), **kwargs)  # type: ignore[attr-defined]

    def get(self, uid: str) -> RunSummary:
        return self.store.get(uid)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        return self.store.find_prefix(prefix, limit=limit)

    def documents(self, uid: str, **kwargs: Any) -> Iterator[Any]:
        return self.store.documents(uid, **kwargs)

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        return self.store.descriptors(uid)

    def stream_counts(self, uid: str) -> dict[str, int]:
        return self.store.stream_counts(uid)

    def latest_seq(self) -> int:
        return self.store.latest_seq()

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        return self.store.runs_since(seq, limit=limit)

    def _version(self) -> int:
        return int(self._facts.connection().execute("PRAGMA data_version").fetchone()[0])

    def _mark(self) -> int:
        """The sidecar's newest facts change (what ``facts_since`` numbers), read from its index."""
        return int(self._facts.connection().execute("SELECT coalesce(max(seq), 0) FROM run_facts").fetchone()[0])

    def change_token(self) -> object:
        return (self.store.change_token(), self._version(), self._mark())

    def wait(self, token: object, timeout: float) -> bool:
        """Until the store changed or the sidecar's facts did (another process's or this one's)."""
        assert isinstance(token, tuple)  # change_token()'s
        inner: object = token[0]
        version, mark = int(token[1]), int(token[2])
        deadline = time.monotonic() + timeout
        while True:
            if self._version() != version or self._mark() != mark:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.store.wait(inner, min(0.2, remaining)):
                return True

    # -- RunFacts: the sidecar --------------------------------------------------------------------

    def add_annotations(self, uid: str, notes: list[Annotation]) -> None:
        self._facts.add_annotations(uid, notes)

    def annotations(self, uid: str) -> list[Annotation]:
        if not self._facts.known([uid]):
            self.store.get(uid)  # RunNotFound for an unknown run; none said yet for a known one
            return []
        return self._facts.annotations(uid)

    def put_cells(self, uid: str, cells: dict[str, Cell]) -> None:
        self._facts.put_cells(uid, cells)

    def delete_cells(self, name: str) -> int:
        return self._facts.delete_cells(name)

    def _known(self, uids: Collection[str]) -> list[str]:
        """Those of ``uids`` with facts; RunNotFound if any other is no run of the store (one request)."""
        known = list(self._facts.known(uids).values())
        others = set(uids) - set(known)
        if others:
            found = {s.uid for s in self.store.search(Key("uid").in_(sorted(others)))}
            if others - found:
                raise RunNotFound(f"no run with uid {printable(min(others - found))!r} in {redact(self.uri)}")
        return known

    def cells(self, uids: Collection[str], names: Collection[str] | None = None) -> dict[str, dict[str, Cell]]:
        return self._facts.cells(self._known(uids), names)

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        self.store.get(uid)
        return {}

    def facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        known = self._known(uids)
        out = {uid: empty_facts() for uid in uids}
        out.update(self._facts.facts(known))
        return out

    def needing(self, name: str, code_hash: str, *, limit: int = 100) -> list[str]:
        """Ended runs of the store, newest first, whose cell of ``name`` is missing or stale."""
        found: list[str] = []
        before = None
        while len(found) < limit:
            page = self.store.search(Query.all(), limit=_PAGE, before=before)
            if not page:
                break
            ended = [s.uid for s in page if s.status != "running"]
            have = self._facts.cells(list(self._facts.known(ended).values()), [name])
            found += [uid for uid in ended if needs_computing(have.get(uid, {}).get(name), code_hash)]
            before = (page[-1].time, page[-1].seq)
        return found[:limit]

    def facts_since(self, mark: int) -> tuple[int, list[str]]:
        return self._facts.facts_since(mark)

    def fact_names(self) -> set[str]:
        return self._facts.fact_names()

    def cell_names(self) -> set[str]:
        return self._facts.cell_names()
