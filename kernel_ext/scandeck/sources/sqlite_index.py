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
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..query import Query
from ..query.indexed import (
    INDEX_TABLE,
    conjuncts,
    index_condition,
    index_count_sql,
    index_rows,
    indexed_sql,
    uses_index,
)
from .sqlite_db import has_table
from .sqlite_facts import runs_from

__all__ = ["add_start", "count_runs", "ensure_index", "index_ready", "where_sql"]

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
    if index_ready(conn):  # False too for a store without the index
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_table(conn, _PENDING):
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


#: Candidates counted at most per condition to pick where a search starts (a count of
#: 10,000 index rows takes ~0.3 ms; past that the exact number changes no choice).
_CAP = 10_000


def _estimates(conn: sqlite3.Connection, query: Query) -> list[tuple[int, Query]]:
    """``(runs matched, capped at _CAP; condition)`` for each indexed condition every match meets."""
    found = []
    for q in conjuncts(query):
        condition = index_condition(q)
        if condition is not None:
            where, params = condition
            sql = f"SELECT count(*) FROM (SELECT 1 FROM {INDEX_TABLE} WHERE {where} LIMIT {_CAP})"
            found.append((conn.execute(sql, params).fetchone()[0], q))
    return sorted(found, key=lambda pair: pair[0])


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[bool]:
    """One read transaction, in which the index is checked and then read; yields whether it is complete."""
    if conn.in_transaction:  # someone else's transaction: read in it as it is
        yield index_ready(conn)
        return
    conn.execute("BEGIN")
    try:
        yield index_ready(conn)
    finally:
        conn.execute("COMMIT")


def _count(conn: sqlite3.Connection, query: Query, where: str, params: list[Any]) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {runs_from(conn, query)} WHERE {where}", params).fetchone()[0])


def count_runs(conn: sqlite3.Connection, query: Query) -> int:
    """How many runs match ``query``: through the index when it is complete, else ``to_sql()``.

    The search starts from the runs of the query's least common indexed condition;
    when the rest is tested by index seeks alone it never reads the runs table.
    """
    if not uses_index(query):
        return _count(conn, query, *query.to_sql())
    with _snapshot(conn) as ready:
        if not ready:
            where, params = query.to_sql()
        else:
            estimates = _estimates(conn, query)
            driver = estimates[0][1] if estimates else None
            counting = index_count_sql(query, driver) if driver is not None else None
            if counting is not None:
                return int(conn.execute(*counting).fetchone()[0])
            where, params = indexed_sql(query, driver=driver)
        return _count(conn, query, where, params)


@contextmanager
def where_sql(conn: sqlite3.Connection, query: Query, need: int | None) -> Iterator[tuple[str, list[Any]]]:
    """``query``'s SQL over ``runs`` for a page of ``need`` runs in time order (None: all of them).

    Through the index when it is complete, else ``to_sql()``. Use the SQL inside the
    ``with`` block: when the index is used, the block is one read transaction, so
    the index is read as complete as it was checked. The shape is chosen by cost:
    walking runs newest first and probing the index for each costs about ``need``
    times (runs / expected matches) steps; starting from the runs of the least common
    indexed condition costs its count (and a sort).
    """
    if not uses_index(query):
        yield query.to_sql()
        return
    with _snapshot(conn) as ready:
        if not ready:
            yield query.to_sql()
            return
        estimates = _estimates(conn, query)
        if not estimates:
            yield indexed_sql(query, probe=need is not None)
            return
        runs = max(1, conn.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0])
        expected = float(runs)
        for count, _ in estimates:
            expected *= count / runs  # as if the conditions were independent
        fewest, driver = estimates[0]
        walk = need * runs / max(expected, 1.0) if need is not None else math.inf
        yield indexed_sql(query, probe=True) if walk < fewest else indexed_sql(query, driver=driver)
