"""The embedded default store: one SQLite file in WAL mode, nothing to install.

Layout (measured in ``bench/``; one file keeps a run's documents and its index
row in one transaction, which is what makes a killed writer harmless):

* ``runs``: one row per run: uid, scan_id, start time, the start and stop
  documents as JSON (searched with ``json_extract``), event and document
  counts, and who writes it (host, pid, pid start time) while it is open.
* ``start_values``: the start document's scalar values, typed, one row per
  field and run (``sqlite_index.py``), written with the run's row: searches on
  start fields read it instead of the JSON.
* ``documents``: every document, msgpack-encoded, keyed by (run, position),
  clustered so that a run reads back as one contiguous range.

One writer per run, any number of readers in any process. Each document is
its own transaction, so readers see it as soon as ``writer(name, doc)`` returns.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from ..documents import PER_DESCRIPTOR, Placed, RunOrder, pack, unpack
from ..exceptions import InvalidDocument, ReadOnlyStore, RunNotFound, StoreError
from ..query import Query
from ..query.sql import register_functions
from .liveness import identity, writer_alive
from .protocol import Entry, RunSummary
from .sqlite_fields import add_fields, ensure_table, read_fields
from .sqlite_index import add_start, count_runs, ensure_index, where_sql

if TYPE_CHECKING:
    from ..reading import Table

DB_NAME = "scandeck.sqlite"
_CHUNK = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    scan_id INTEGER,
    time REAL NOT NULL,
    start TEXT NOT NULL,
    stop TEXT,
    exit_status TEXT,
    num_events INTEGER NOT NULL DEFAULT 0,
    num_documents INTEGER NOT NULL DEFAULT 0,
    writer_host TEXT,
    writer_pid INTEGER,
    writer_token TEXT,
    writer_open INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_time ON runs(time, id);
CREATE INDEX IF NOT EXISTS runs_scan_id ON runs(scan_id, time);
-- Runs without a stop document (running, or incomplete): the few a live view asks for.
CREATE INDEX IF NOT EXISTS runs_open ON runs(time, id) WHERE exit_status IS NULL;
CREATE TABLE IF NOT EXISTS documents (
    run_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    descriptor TEXT,
    n INTEGER NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (run_id, pos)
) WITHOUT ROWID;
-- Descriptors again, so that listing a run's streams never scans its events.
CREATE TABLE IF NOT EXISTS descriptors (
    run_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (run_id, pos)
) WITHOUT ROWID;
-- Events again as numpy column blocks, for reads (sqlite_columns.py).
CREATE TABLE IF NOT EXISTS column_blocks (
    run_id INTEGER NOT NULL,
    descriptor TEXT NOT NULL,
    part TEXT NOT NULL,
    last_pos INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    dtype TEXT,
    shape TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS column_blocks_by_part
    ON column_blocks(run_id, descriptor, part, last_pos);
CREATE TABLE IF NOT EXISTS column_cover (
    run_id INTEGER PRIMARY KEY,
    pos INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS run_extras (
    run_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    PRIMARY KEY (run_id, pos)
) WITHOUT ROWID;
"""

_RUN_COLUMNS = (
    "id, uid, scan_id, time, start, stop, exit_status, num_events, num_documents, "
    "writer_host, writer_pid, writer_token, writer_open"
)


def connect(path: Path | str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection as scandeck's SQLite files want it (the run store's and the provenance index).

    Autocommit mode (transactions are explicit: BEGIN IMMEDIATE ... COMMIT), any
    thread, and a 30 s wait for another writer's lock.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30, uri=uri)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable against process death
    register_functions(conn)  # what Regex and FullText queries compile to
    return conn


def sqlite_target(uri: str) -> tuple[str, bool]:
    """The path an embedded-store path or ``sqlite://`` URI names, and whether it says ``mode=ro``.

    ``?mode=ro`` opens an existing store read-only; ``?mode=rw`` is the default.
    A ``?`` not followed by ``key=value`` is part of the path.

    Examples
    --------
    >>> sqlite_target("sqlite:///data/store?mode=ro")
    ('/data/store', True)
    >>> sqlite_target("./store")
    ('./store', False)
    """
    path = uri[len("sqlite://") :] if uri.startswith("sqlite://") else uri
    base, sep, query = path.rpartition("?")
    if not sep or "=" not in query:
        return path, False
    options = dict(parse_qsl(query, keep_blank_values=True))
    mode = options.pop("mode", None)
    if options or mode not in ("ro", "rw"):
        raise StoreError(
            f"unknown option {query!r} in the store address {uri!r}; the embedded store takes "
            "only mode=ro (read-only) or mode=rw (the default), as in ./store?mode=ro"
        )
    return base, mode == "ro"


def _json_index_copy(doc: Mapping[str, Any]) -> str:
    """JSON of a start/stop document for ``json_extract`` (SQLite rejects NaN in JSON)."""
    try:
        return json.dumps(doc, allow_nan=False, default=_builtin)
    except ValueError:
        return json.dumps(_finite(doc), allow_nan=False, default=_builtin)


def _builtin(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if tolist is None:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
    return tolist()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _status(row: tuple[Any, ...]) -> str:
    exit_status, host, pid, token, is_open = row[6], row[9], row[10], row[11], row[12]
    if exit_status is not None:
        return exit_status
    if not is_open or not writer_alive(host, pid, token):
        return "incomplete"
    return "running"


def _summary(row: tuple[Any, ...]) -> RunSummary:
    return RunSummary(
        uid=row[1],
        seq=row[0],
        scan_id=row[2],
        time=row[3],
        start=json.loads(row[4]),
        stop=json.loads(row[5]) if row[5] is not None else None,
        num_events=row[7],
        num_documents=row[8],
        status=_status(row),
    )


class SQLiteSource:
    """Runs in one SQLite file under ``directory``.

    Parameters
    ----------
    path
        A directory (created if missing; the database is ``scandeck.sqlite`` in
        it) or the path of an ``.sqlite``/``.db`` file.
    read_only
        Open an existing store for reading only (``?mode=ro`` in a URI). A store
        whose directory or file is not writable (a read-only mount, an archive)
        is opened read-only anyway. Either way :meth:`writer` raises
        :class:`~scandeck.exceptions.ReadOnlyStore` and nothing is created.

    Examples
    --------
    >>> src = SQLiteSource(tmp_path)            # doctest: +SKIP
    >>> src.start(); src.count(Query.all())     # doctest: +SKIP
    0
    >>> SQLiteSource(tmp_path, read_only=True).writer()   # doctest: +SKIP
    Traceback (most recent call last):
    scandeck.exceptions.ReadOnlyStore: the run store .../scandeck.sqlite is read-only ...
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        path = Path(path).expanduser()
        if path.suffix in (".sqlite", ".db", ".sqlite3"):
            self.directory, self.db_path = path.parent, path
        else:
            self.directory, self.db_path = path, path / DB_NAME
        self.uri = f"sqlite://{self.db_path.resolve()}" + ("?mode=ro" if read_only else "")
        self._ask_read_only = read_only
        # Set by start(): why this store is read-only (None: writable), and what
        # sqlite3.connect opens (a path, or a file: URI for read-only).
        self._read_only: str | None = None
        self._target: tuple[Path | str, bool] = (self.db_path, False)
        self._local = threading.local()
        self._run_ids: dict[str, int] = {}
        self._started = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteSource({str(self.db_path)!r})"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only (known once started)."""
        self.start()
        return self._read_only is not None

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            reason = self._why_read_only()
            if reason is not None:
                conn = self._open_read_only(reason)
            else:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    conn = connect(self.db_path)
                    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                        raise StoreError(f"{self.db_path}: SQLite could not switch to WAL mode")
                    conn.executescript(_SCHEMA)
                    ensure_table(conn)  # the field index; a migration for stores made before it
                    ensure_index(conn)  # the start-values index, built for stores made before it
                except sqlite3.Error as err:
                    raise StoreError(
                        f"cannot open the run store {self.db_path}: {err}; check that the "
                        "directory is writable and the file is a scandeck store"
                    ) from err
                except OSError as err:  # mkdir
                    if isinstance(err, StoreError):
                        raise
                    raise StoreError(
                        f"cannot create the run store directory {self.directory}: "
                        f"{err.strerror or err}; check the path"
                    ) from err
                self._target = (self.db_path, False)
            self._read_only = reason
            self._local.conn = conn
            self._started = True

    def _why_read_only(self) -> str | None:
        """Why the store must be opened read-only, or None; raises if there is nothing to open."""
        if self._ask_read_only:
            if not self.db_path.is_file():
                raise StoreError(
                    f"no run store at {self.db_path}; mode=ro opens an existing store and "
                    "never creates one: check the path"
                )
            return "it was opened with mode=ro"
        if not self.db_path.exists():
            parent = self.db_path.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not os.access(parent, os.W_OK):
                raise StoreError(
                    f"no run store at {self.db_path}, and none can be created there: {parent} "
                    "is not writable (a read-only file system?); check the path"
                )
            return None
        # os.access, not the mode bits: it also says no on a read-only file system,
        # for root too. SQLite writes its -wal and -shm files beside the database.
        if not os.access(self.directory, os.W_OK):
            return f"the directory {self.directory} is not writable"
        if not os.access(self.db_path, os.W_OK):
            return f"the file {self.db_path} is not writable"
        return None

    def _open_read_only(self, reason: str) -> sqlite3.Connection:
        # A WAL database is read through its -shm index, which SQLite creates when
        # missing (or rebuilds when stale), even with mode=ro. On a directory it
        # cannot write, a store without a -wal file (or with an empty one) opens only
        # with immutable=1. That is right exactly then: every run is in the main file
        # (the last connection closed cleanly and checkpointed), and no writer can come
        # through a path where it could not create its -wal file. With runs in a -wal
        # file (a snapshot of an open store) or a writable directory (a writer may
        # still add runs), mode=ro: immutable would not see those runs.
        wal = Path(f"{self.db_path}-wal")
        wal_empty = not wal.exists() or wal.stat().st_size == 0
        immutable = wal_empty and not os.access(self.directory, os.W_OK)
        uri = "file:" + quote(str(self.db_path.resolve())) + "?mode=ro"
        if immutable:
            uri += "&immutable=1"
        try:
            conn = connect(uri, uri=True)
            conn.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.Error as err:
            raise StoreError(
                f"cannot open the run store {self.db_path} read-only ({reason}): {err}; "
                "check that the file is a scandeck store"
            ) from err
        self._target = (uri, True)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._started = False

    def _conn(self) -> sqlite3.Connection:
        if not self._started:
            self.start()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            target, uri = self._target
            conn = self._local.conn = connect(target, uri=uri)
        return conn

    def writer(self) -> SQLiteWriter:
        """A writer for new runs; :class:`ReadOnlyStore` if the store is read-only."""
        self.start()
        if self._read_only is not None:
            todo = (
                "open it without mode=ro to record runs"
                if self._ask_read_only
                else "to record runs, copy it to a writable directory or remount it read-write"
            )
            raise ReadOnlyStore(
                f"the run store {self.db_path} is read-only because {self._read_only}: "
                f"its runs can be read, searched and exported, not written; {todo}"
            )
        return SQLiteWriter(self)

    # -- reading ---------------------------------------------------------------------------

    def _run_id(self, uid: str) -> int:
        run_id = self._run_ids.get(uid)
        if run_id is None:
            row = self._conn().execute("SELECT id FROM runs WHERE uid = ?", (uid,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with uid {uid!r} in {self.db_path}")
            run_id = self._run_ids[uid] = row[0]
        return run_id

    def count(self, query: Query) -> int:
        return count_runs(self._conn(), query)

    def search(
        self,
        query: Query,
        *,
        limit: int | None = None,
        offset: int = 0,
        before: tuple[float, int] | None = None,
        oldest_first: bool = False,
    ) -> list[RunSummary]:
        conn = self._conn()
        with where_sql(conn, query, None if limit is None else limit + offset) as (where, params):
            if before is not None:
                # A row value: a range seek on runs_time at any depth (an OR of the two
                # conditions walks the index from the newest run down to the cursor).
                op = ">" if oldest_first else "<"
                where = f"({where}) AND (time, id) {op} (?, ?)"
                params += [before[0], before[1]]
            order = "ASC" if oldest_first else "DESC"
            sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where} ORDER BY time {order}, id {order}"
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else limit, offset]
            rows = conn.execute(sql, params).fetchall()
        return [_summary(row) for row in rows]

    def open_runs(self, query: Query, *, limit: int = 200) -> list[RunSummary]:
        """Matching runs without a stop document (running or incomplete), newest first.

        Optional in the protocol: a live view asks this instead of searching every run.
        """
        conn = self._conn()
        with where_sql(conn, query, limit) as (where, params):
            sql = (
                f"SELECT {_RUN_COLUMNS} FROM runs INDEXED BY runs_open WHERE exit_status IS NULL "
                f"AND ({where}) ORDER BY time DESC, id DESC LIMIT ?"
            )
            rows = conn.execute(sql, [*params, limit]).fetchall()
        return [_summary(row) for row in rows]

    def fields(self) -> set[str]:
        """Dotted start-document field names that some stored run has (the ``fields`` table)."""
        return read_fields(self._conn())

    def get(self, uid: str) -> RunSummary:
        row = self._conn().execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with uid {uid!r} in {self.db_path}")
        return _summary(row)

    def find_prefix(self, prefix: str, *, limit: int = 11) -> list[RunSummary]:
        # A range on the unique index, not LIKE: LIKE ignores case and the index.
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE uid >= ? AND uid < ? ORDER BY uid LIMIT ?"
        rows = self._conn().execute(sql, (prefix, prefix + "\U0010ffff", limit))
        return [_summary(row) for row in rows]

    def documents(
        self,
        uid: str,
        *,
        start: int = 0,
        names: Iterable[str] | None = None,
        descriptors: Iterable[str] | None = None,
    ) -> Iterator[Entry]:
        run_id = self._run_id(uid)
        where, filters = self._filters(names, descriptors)
        sql = (
            f"SELECT pos, name, doc FROM documents WHERE run_id = ? AND pos >= ?{where} "
            f"ORDER BY pos LIMIT {_CHUNK}"
        )
        conn = self._conn()
        pos = start
        # Chunks, each its own short read transaction: a slow consumer never
        # pins a WAL snapshot.
        while True:
            rows = conn.execute(sql, [run_id, pos, *filters]).fetchall()
            for p, name, blob in rows:
                yield Entry(p, name, unpack(blob))
            if len(rows) < _CHUNK:
                return
            pos = rows[-1][0] + 1

    @staticmethod
    def _filters(names: Iterable[str] | None, descriptors: Iterable[str] | None) -> tuple[str, list[str]]:
        """SQL conditions (to append after AND) and parameters for :meth:`documents`."""
        where, params = "", []
        if names is not None:
            names = list(names)
            where += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        if descriptors is not None:
            descriptors = list(descriptors)
            where += f" AND (descriptor IS NULL OR descriptor IN ({','.join('?' * len(descriptors))}))"
            params += descriptors
        return where, params

    def raw_documents(
        self, uid: str, *, names: Iterable[str], descriptors: Iterable[str] | None = None
    ) -> list[tuple[str, bytes]]:
        """``(name, msgpack bytes)`` of a run's documents, undecoded, for bulk readers."""
        where, filters = self._filters(names, descriptors)
        sql = f"SELECT name, doc FROM documents WHERE run_id = ?{where} ORDER BY pos"
        return self._conn().execute(sql, [self._run_id(uid), *filters]).fetchall()

    def event_table(
        self,
        uid: str,
        descriptors: Collection[str],
        *,
        keys: Collection[str] | None = None,
        fill: bool | Collection[str] = True,
        rows: slice | None = None,
    ) -> Table | None:
        """A stream's rows from the run's column blocks, then its newer events; None: read documents.

        None for a run written before column blocks existed, and for a stream of
        several descriptors (its rows interleave in document order, which blocks do not keep).
        """
        if len(descriptors) != 1:
            return None
        from .sqlite_column_reads import read_stream  # numpy: loaded by the first read

        (descriptor,) = descriptors
        return read_stream(self._conn(), self._run_id(uid), descriptor, keys=keys, fill=fill, rows=rows)

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM descriptors WHERE run_id = ? ORDER BY pos"
        return [unpack(row[0]) for row in self._conn().execute(sql, (self._run_id(uid),))]

    def stream_counts(self, uid: str) -> dict[str, int]:
        sql = (
            "SELECT descriptor, sum(n) FROM documents WHERE run_id = ? "
            "AND descriptor IS NOT NULL GROUP BY descriptor"
        )
        return dict(self._conn().execute(sql, (self._run_id(uid),)).fetchall())

    def latest_seq(self) -> int:
        return self._conn().execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]

    def runs_since(self, seq: int, *, limit: int | None = None) -> list[RunSummary]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE id > ? ORDER BY id LIMIT ?"
        rows = self._conn().execute(sql, (seq, -1 if limit is None else limit))
        return [_summary(row) for row in rows]

    def change_token(self) -> object:
        # data_version changes when any other connection commits to the file.
        return self._conn().execute("PRAGMA data_version").fetchone()[0]

    def wait(self, token: object, timeout: float) -> bool:
        conn = self._conn()
        version = token
        if conn.execute("PRAGMA data_version").fetchone()[0] != version:
            return True
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            if conn.execute("PRAGMA data_version").fetchone()[0] != version:
                return True
            delay = min(delay * 2, 0.01)


class SQLiteWriter:
    """Validates each document, then stores it in its own transaction.

    A rejected document raises :class:`~scandeck.exceptions.InvalidDocument`
    and leaves the store and the writer as they were.
    """

    def __init__(self, source: SQLiteSource) -> None:
        from .sqlite_columns import BlockWriter  # numpy: loaded by the first writer, not by readers

        self._source = source
        self._conn = connect(source.db_path)
        self._order = RunOrder()
        self._runs: dict[str, list[int]] = {}  # uid -> [run id, next position]
        self._blocks = BlockWriter()
        self._lock = threading.Lock()
        self._host, self._pid, self._token = identity()
        self._finalizer = weakref.finalize(self, _close_runs, self._conn, self._runs)

    def __repr__(self) -> str:
        return f"<SQLiteWriter to {self._source.db_path} open runs={list(self._runs)}>"

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if not self._finalizer.alive:
                raise StoreError("this writer is closed; get a new one with catalog.writer()")
            placed = self._order.check(name, doc)
            try:
                self._store(name, doc, placed)
            except sqlite3.IntegrityError as err:
                self._rollback()
                if "runs.uid" not in str(err):
                    raise StoreError(
                        f"could not store the {name} document in {self._source.db_path}: "
                        f"{err}; nothing was stored for it"
                    ) from err
                raise InvalidDocument(name, doc, "a run with this uid is already in the store") from err
            except sqlite3.Error as err:
                self._rollback()
                raise StoreError(
                    f"could not store the {name} document in {self._source.db_path}: {err}; "
                    "nothing was stored for it and the writer can go on"
                ) from err
            except BaseException:
                # Whatever it is (even KeyboardInterrupt), never leave the write lock held:
                # other writers would wait 30 s and fail, and this one could not go on.
                self._rollback()
                raise
            self._order.commit(name, doc, placed)

    def _rollback(self) -> None:
        self._blocks.rolled_back()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back already (e.g. on a full disk); nothing is held

    def _store(self, name: str, doc: dict[str, Any], placed: Placed) -> None:
        blob = pack(doc)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        if name == "start":
            start_json = _json_index_copy(doc)
            cur = conn.execute(
                "INSERT INTO runs (uid, scan_id, time, start, num_documents, writer_host, "
                "writer_pid, writer_token, writer_open) VALUES (?, ?, ?, ?, 1, ?, ?, ?, 1)",
                (
                    doc["uid"],
                    doc.get("scan_id"),
                    doc["time"],
                    start_json,
                    self._host,
                    self._pid,
                    self._token,
                ),
            )
            run_id = cur.lastrowid
            assert run_id is not None  # an INSERT that succeeded always sets lastrowid
            add_fields(conn, doc)
            add_start(conn, run_id, start_json)  # the start-values index, in the run's own transaction
            conn.execute("INSERT INTO documents VALUES (?, 0, 'start', NULL, 0, ?)", (run_id, blob))
            self._blocks.in_transaction(conn, doc["uid"], run_id, 0, name)
            conn.execute("COMMIT")
            self._runs[doc["uid"]] = [run_id, 1]
            self._blocks.committed(doc["uid"], name, doc)
            return
        state = self._runs[placed.run_uid]
        run_id, pos = state
        descriptor = placed.descriptor if name in PER_DESCRIPTOR else None
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, pos, name, descriptor, placed.num_events, blob),
        )
        if name == "descriptor":
            conn.execute("INSERT INTO descriptors VALUES (?, ?, ?)", (run_id, pos, blob))
        if name == "stop":
            conn.execute(
                "UPDATE runs SET stop = ?, exit_status = ?, num_documents = ?, writer_open = 0 WHERE id = ?",
                (_json_index_copy(doc), doc["exit_status"], pos + 1, run_id),
            )
        else:
            conn.execute(
                "UPDATE runs SET num_events = num_events + ?, num_documents = ? WHERE id = ?",
                (placed.num_events, pos + 1, run_id),
            )
        self._blocks.in_transaction(conn, placed.run_uid, run_id, pos, name)
        conn.execute("COMMIT")
        self._blocks.committed(placed.run_uid, name, doc)
        if name == "stop":
            del self._runs[placed.run_uid]
        else:
            state[1] = pos + 1

    def resume(self, uid: str) -> int:
        """Take over an ``incomplete`` run to append the rest of it; return its next position.

        Its stored documents go through this writer's order checks first, so
        what follows is validated as if this writer had written the whole run.
        (The Redis keeper completes an archived copy this way.)
        """
        with self._lock:
            summary = self._source.get(uid)
            if summary.status != "incomplete":
                raise StoreError(f"run {uid} is {summary.status}; only an incomplete run can be resumed")
            run_id = self._source._run_id(uid)
            pos = 0
            entries = list(self._source.documents(uid))
            for entry in entries:
                self._order.commit(entry.name, entry.doc, self._order.check(entry.name, entry.doc))
                pos = entry.pos + 1
            self._blocks.resume(self._conn, uid, run_id, entries)
            self._conn.execute(
                "UPDATE runs SET writer_host = ?, writer_pid = ?, writer_token = ?, writer_open = 1 "
                "WHERE id = ? AND exit_status IS NULL",
                (self._host, self._pid, self._token, run_id),
            )
            self._runs[uid] = [run_id, pos]
            return pos

    def close(self) -> None:
        """Close; runs still open become ``incomplete`` to every reader."""
        with self._lock:
            for uid in list(self._runs):
                self._order.forget(uid)
            self._finalizer()


def _close_runs(conn: sqlite3.Connection, runs: dict[str, list[int]]) -> None:
    try:
        if runs:
            ids = [state[0] for state in runs.values()]
            conn.execute(f"UPDATE runs SET writer_open = 0 WHERE id IN ({','.join('?' * len(ids))})", ids)
            runs.clear()
        conn.close()
    except sqlite3.Error:
        pass  # interpreter shutdown: the pid check reports these runs incomplete anyway
