"""The embedded store's index of the fields its runs have: a ``fields`` table kept on insert.

One row per dotted start-document field name (:func:`scandeck.query.hints.start_fields`)
that some run has. A writer adds a start document's fields in the transaction that
stores it; a store made before the table existed gets it, filled from its runs, the
first time a writable connection opens it (:func:`ensure_table`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from ..query.hints import start_fields
from .sqlite_db import has_table

__all__ = ["add_fields", "ensure_table", "read_fields"]

_CREATE = "CREATE TABLE fields (name TEXT PRIMARY KEY) WITHOUT ROWID"


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the table, filled from the stored runs, if the store has none (a migration).

    One transaction: another process opening the store meanwhile waits, then finds it.
    """
    if has_table(conn, "fields"):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_table(conn, "fields"):
            conn.execute(_CREATE)
            names = _fields_of_runs(conn)
            conn.executemany("INSERT INTO fields VALUES (?)", [(name,) for name in sorted(names)])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def add_fields(conn: sqlite3.Connection, start: Mapping[str, Any]) -> None:
    """Index a start document's fields (inside the caller's transaction)."""
    conn.executemany("INSERT OR IGNORE INTO fields VALUES (?)", [(name,) for name in start_fields(start)])


def read_fields(conn: sqlite3.Connection) -> set[str]:
    """The indexed field names; computed from the runs on a read-only store made before the index."""
    if has_table(conn, "fields"):
        return {name for (name,) in conn.execute("SELECT name FROM fields")}
    return _fields_of_runs(conn)


def _fields_of_runs(conn: sqlite3.Connection) -> set[str]:
    """The fields of every stored run's start document (a full scan: for a store made before the index)."""
    names: set[str] = set()
    for (start,) in conn.execute("SELECT start FROM runs"):
        names |= start_fields(json.loads(start))
    return names
