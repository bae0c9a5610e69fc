"""The embedded store's index of start-document values: ``start_values``, kept on insert.

A search on start fields reads this index instead of parsing every run's JSON
(:mod:`scandeck.query.indexed` holds the rows' rule and the SQL). The writer adds
a run's rows in the transaction that inserts the run (:func:`add_start`), so a
reader never sees a run without its rows.

A trigger on ``runs`` notes every new run in ``start_values_pending``;
:func:`add_start` takes it out again. A run written by code that does not know the
index (an older scandeck on the same file) therefore stays pending, and while any
run is pending, searches use the JSON (:func:`where_sql`): slower, never wrong. A
writable open indexes pending runs, and builds the whole index for a store made
before it existed (:func:`ensure_index`), in one transaction; a read-only store
made before the index is searched through the JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..query import Query
from ..query.indexed import INDEX_TABLE, index_rows, indexed_sql, uses_index

__all__ = ["add_start", "ensure_index", "index_ready", "where_sql"]

_PENDING = "start_values_pending"
# Separate statements: executescript would commit the migration's open transaction first.
_CREATE = (
    f"""CREATE TABLE {INDEX_TABLE} (
        field TEXT NOT NULL,
        value NOT NULL,  -- no declared type: numbers, TEXT and BLOB kept as they are, never converted
        run_id INTEGER NOT NULL,
        PRIMARY KEY (field, value, run_id)
    ) WITHOUT ROWID""",
    f"CREATE TABLE {_PENDING} (run_id INTEGER PRIMARY KEY)",
    f"CREATE TRIGGER {_PENDING} AFTER INSERT ON runs BEGIN INSERT INTO {_PENDING} VALUES (new.id); END",
)
_INSERT = f"INSERT OR IGNORE INTO {INDEX_TABLE} VALUES (?, ?, ?)"  # OR IGNORE: [1, 1.0] is one row


def _has_index(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (_PENDING,)).fetchone() is not None


def index_ready(conn: sqlite3.Connection) -> bool:
    """Whether the index holds every stored run (it exists, and no run is pending)."""
    try:
        return conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {_PENDING})").fetchone()[0] == 1
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return False  # a store made before the index, opened read-only
        raise


def ensure_index(conn: sqlite3.Connection) -> None:
    """Create and fill the index if the store has none, and index runs still pending.

    One transaction (``BEGIN IMMEDIATE``): a writer in another process waits for it.
    On a store that has the index and no pending run, this is one small read.
    """
    if _has_index(conn) and index_ready(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_index(conn):
            for statement in _CREATE:
                conn.execute(statement)
            which = "1"
        else:
            which = f"id IN (SELECT run_id FROM {_PENDING})"
        todo = f"SELECT id, start FROM runs WHERE {which} AND id > ? ORDER BY id LIMIT 1000"
        last = 0
        while rows := conn.execute(todo, (last,)).fetchall():  # in chunks: a big store's JSON is 100s of MB
            for run_id, start in rows:
                _add(conn, run_id, start)
            last = rows[-1][0]
        conn.execute(f"DELETE FROM {_PENDING}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _add(conn: sqlite3.Connection, run_id: int, start_json: str) -> None:
    conn.executemany(_INSERT, [(f, v, run_id) for f, v in index_rows(json.loads(start_json))])


def add_start(conn: sqlite3.Connection, run_id: int, start_json: str) -> None:
    """Index run ``run_id`` from its start document's JSON as stored (inside the caller's transaction)."""
    _add(conn, run_id, start_json)
    conn.execute(f"DELETE FROM {_PENDING} WHERE run_id = ?", (run_id,))


@contextmanager
def where_sql(conn: sqlite3.Connection, query: Query) -> Iterator[tuple[str, list[Any]]]:
    """``query``'s SQL over ``runs``: through the index when it is complete, else ``to_sql()``.

    Use the SQL inside the ``with`` block: when the index is used, the block is
    one read transaction, so the index is read as complete as it was checked.
    """
    if not uses_index(query) or conn.in_transaction:
        yield query.to_sql()
        return
    conn.execute("BEGIN")
    try:
        yield indexed_sql(query) if index_ready(conn) else query.to_sql()
    finally:
        conn.execute("COMMIT")
