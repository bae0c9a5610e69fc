"""The embedded store's SQLite file: its tables, and connections as scandeck wants them.

Shared by the store's reader (:mod:`.sqlite`) and writer (:mod:`.sqlite_writer`),
and by the provenance index (its own file, same connection settings).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..exceptions import StoreError
from ..query.sql import register_functions

T = TypeVar("T")

__all__ = ["SCHEMA", "ProcessConnection", "connect", "has_table", "json_index_copy", "open_file", "retry_locked"]

SCHEMA = """
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


def retry_locked(action: Callable[[], T], what: str, timeout: float = 30.0, hint: str = "") -> T:
    """Run ``action()``, retrying while another connection holds a lock SQLite won't wait for.

    Switching a new file to WAL needs it alone: two processes creating one store at once
    (a notebook and the Jupyter server's column service) get "database is locked" at once,
    busy timeout or not. Other errors, and a lock held past ``timeout``, raise StoreError
    (``what: error`` and then ``hint``, what to do).
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as err:
            text = str(err)
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise StoreError(f"{what}: {err}{hint}") from err
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the store has table ``name`` (one a store of an older release may lack)."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def json_index_copy(doc: Mapping[str, Any]) -> str:
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


def open_file(
    path: Path,
    setup: Callable[[sqlite3.Connection], None],
    *,
    what: str,
    hint: str = "check that the directory is writable",
    make: tuple[Path, ...] = (),
) -> sqlite3.Connection:
    """:func:`connect` to ``path`` (its directory and ``make`` created), then ``setup(conn)``,
    retried while another process holds a lock (:func:`retry_locked`).

    Errors are :class:`StoreError` naming ``what`` ("the provenance store"): a directory
    that cannot be made or a file that cannot be opened say ``hint``; a file that is not
    an SQLite database, or of another layout, says so.
    """
    try:
        for directory in (path.parent, *make):
            directory.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
    except (OSError, sqlite3.Error) as err:
        raise StoreError(f"cannot open {what} {path.parent}: {err}; {hint}") from err
    try:
        retry_locked(lambda: setup(conn), f"cannot open {what} {path}")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(f"cannot open {what} {path}: {err}; is it a file scandeck wrote?") from err
    except BaseException:
        conn.close()
        raise
    return conn


class ProcessConnection:
    """One connection to an SQLite file per process, made by ``opener`` on first use.

    A forked child opens its own (a connection must not cross a fork); ``lock``
    serialises this process's threads on the connection.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection]) -> None:
        self.opener = opener
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def get(self) -> sqlite3.Connection:
        """This process's connection."""
        conn = self._conn
        if conn is not None and self._pid == os.getpid():
            return conn
        with self.lock:
            if self._conn is None or self._pid != os.getpid():
                self._conn = self.opener()
                self._pid = os.getpid()
            return self._conn

    def query(self, sql: str, params: Iterable[Any], where: str) -> list[Any]:
        """The rows of ``sql``, retried while the file is locked (``where`` names it in the error)."""
        conn = self.get()
        with self.lock:
            return retry_locked(lambda: conn.execute(sql, tuple(params)).fetchall(), f"cannot read {where}")

    def transaction(self, body: Callable[[sqlite3.Connection], T], what: str) -> T:
        """``body(conn)`` in one ``BEGIN IMMEDIATE`` transaction, rolled back if it raises and
        retried while the file is locked; ``what`` says what failed (``"could not X in FILE"``)."""
        conn = self.get()

        def attempt() -> T:
            with self.lock:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    result = body(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

        return retry_locked(attempt, what, hint="; nothing was changed")

    def close(self) -> None:
        """Close this process's connection (the next :meth:`get` opens a new one)."""
        with self.lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
