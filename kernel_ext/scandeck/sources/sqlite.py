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
* ``column_blocks``, ``column_cover``, ``run_extras``: the events again as numpy
  column blocks, for reads (``sqlite_columns.py``, ``sqlite_column_reads.py``).

The tables and connections are in ``sqlite_db.py``, the writer in ``sqlite_writer.py``.

One writer per run, any number of readers in any process. Each document is
its own transaction, so readers see it as soon as ``writer(name, doc)`` returns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from ..documents import unpack
from ..exceptions import ReadOnlyStore, RunNotFound, StoreError
from ..files import providers
from ..query import Query
from . import archive_files
from .liveness import writer_alive
from .protocol import Entry, RunSummary
from .sqlite_db import SCHEMA, connect, retry_locked
from .sqlite_facts import FACTS_SCHEMA, FactsMixin, runs_from
from .sqlite_fields import ensure_table, read_fields
from .sqlite_index import count_runs, ensure_index, where_sql
from .sqlite_writer import SQLiteWriter

if TYPE_CHECKING:
    from ..reading import Table

DB_NAME = "scandeck.sqlite"
_CHUNK = 20_000


_RUN_COLUMNS = (
    "id, uid, scan_id, time, start, stop, exit_status, num_events, num_documents, "
    "writer_host, writer_pid, writer_token, writer_open"
)


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


def _set_up(conn: sqlite3.Connection) -> None:
    """WAL, the tables, and the migrations of stores made by earlier releases (a writable open)."""
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        raise sqlite3.OperationalError("SQLite could not switch to WAL mode")
    conn.executescript(SCHEMA)
    conn.executescript(FACTS_SCHEMA)
    ensure_table(conn)  # the field index; a migration for stores made before it
    ensure_index(conn)  # the start-values index, built for stores made before it


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


class ThreadConnections:
    """Each thread's SQLite connection to one file, so that :meth:`close_all` closes them all.

    A follower's or a thread pool's connection would otherwise keep its descriptors
    (the file, its -wal, and the ones SQLite defers while any connection holds the
    file) open for as long as its owner lives. :meth:`close_all` bumps the
    generation; a thread holding a connection of an older one gets ``None`` from
    :meth:`current` and opens a new one. A thread that ended leaves its connection
    here until the next one is kept, which closes it.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: dict[threading.Thread, sqlite3.Connection] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def current(self) -> sqlite3.Connection | None:
        """This thread's connection, or None (none yet, or closed by :meth:`close_all` since)."""
        if getattr(self._local, "generation", None) != self._generation:
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn

    def keep(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Make ``conn`` this thread's connection; ``conn``."""
        with self._lock:
            for thread in [thread for thread in self._conns if not thread.is_alive()]:
                self._conns.pop(thread).close()
            self._conns[threading.current_thread()] = conn
            self._local.conn, self._local.generation = conn, self._generation
        return conn

    def close_all(self) -> None:
        """Close every thread's connection; a thread using the file afterwards opens a new one."""
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
            self._generation += 1
            self._local.conn = None
        for conn in conns:
            conn.close()


class SQLiteSource(FactsMixin):
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
        self._conns = ThreadConnections()
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
                    retry_locked(
                        lambda: _set_up(conn),
                        f"cannot open the run store {self.db_path}",
                        hint="; check that the directory is writable and the file is a scandeck store",
                    )
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
            self._conns.keep(conn)
            self._started = True
        providers.register(self)  # files the keeper archived here (archive_files.py)

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
        """Close every thread's connection; a thread reading afterwards opens a new one."""
        providers.unregister(self)
        with self._lock:
            self._started = False
            self._conns.close_all()

    def _conn(self) -> sqlite3.Connection:
        if not self._started:
            self.start()
        conn = self._conns.current()
        if conn is None:
            target, uri = self._target
            conn = self._conns.keep(connect(target, uri=uri))
        return conn

    def writer(self) -> SQLiteWriter:
        """A writer for new runs; :class:`ReadOnlyStore` if the store is read-only."""
        self.writable("runs")
        return SQLiteWriter(self)

    def writable(self, what: str) -> None:
        """Raise :class:`ReadOnlyStore` (saying why, and what to do) unless ``what`` can be stored."""
        self.start()
        if self._read_only is not None:
            todo = (
                f"open it without mode=ro to record {what}"
                if self._ask_read_only
                else f"to record {what}, copy it to a writable directory or remount it read-write"
            )
            raise ReadOnlyStore(
                f"the run store {self.db_path} is read-only because {self._read_only}: "
                f"its runs can be read, searched and exported, not written; {todo}"
            )

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the store (opened on first use)."""
        return self._conn()

    # -- transferred files the keeper archived (archive_files.py) ---------------------------

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterator[bytes] | None:
        """A file kept here with a run, in blocks, or None (:class:`scandeck.files.providers.FileProvider`)."""
        path = archive_files.kept(self.directory, sha256, size)
        return None if path is None else archive_files.read_blocks(path)

    def file_places(self, run: str, sha256: str, size: int) -> list[str]:
        """``["archive"]`` when this store keeps the file, else ``[]``."""
        return ["archive"] if archive_files.kept(self.directory, sha256, size) else []

    def keep_file(self, sha256: str, size: int, chunks: Iterable[bytes], *, what: str) -> Path:
        """Keep a run's transferred file here, verified (the keeper does, before it trims the run)."""
        self.writable("files")
        return archive_files.keep(self.directory, sha256, size, chunks, what=what)

    # -- reading ---------------------------------------------------------------------------

    def run_id(self, uid: str) -> int:
        """The store's row id of a run (what its documents and blocks are keyed by)."""
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
            sql = f"SELECT {_RUN_COLUMNS} FROM {runs_from(conn, query)} WHERE {where} "
            sql += f"ORDER BY time {order}, id {order}"
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
                f"SELECT {_RUN_COLUMNS} FROM {runs_from(conn, query, 'runs INDEXED BY runs_open')} "
                "WHERE exit_status IS NULL "
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
        run_id = self.run_id(uid)
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
        return self._conn().execute(sql, [self.run_id(uid), *filters]).fetchall()

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
        return read_stream(self._conn(), self.run_id(uid), descriptor, keys=keys, fill=fill, rows=rows)

    def descriptors(self, uid: str) -> list[dict[str, Any]]:
        sql = "SELECT doc FROM descriptors WHERE run_id = ? ORDER BY pos"
        return [unpack(row[0]) for row in self._conn().execute(sql, (self.run_id(uid),))]

    def stream_counts(self, uid: str) -> dict[str, int]:
        sql = (
            "SELECT descriptor, sum(n) FROM documents WHERE run_id = ? "
            "AND descriptor IS NOT NULL GROUP BY descriptor"
        )
        return dict(self._conn().execute(sql, (self.run_id(uid),)).fetchall())

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
