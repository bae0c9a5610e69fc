"""The embedded store's writer: each document validated, then stored in its own transaction.

A run's row, its start document's index rows (:mod:`.sqlite_index`, :mod:`.sqlite_fields`)
and its column blocks (:mod:`.sqlite_columns`) are written in the transactions of the
documents they come from, so a killed writer leaves nothing half-written.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..documents import PER_DESCRIPTOR, Placed, RunOrder, pack
from ..exceptions import InvalidDocument, StoreError
from .liveness import identity
from .sqlite_db import connect, json_index_copy
from .sqlite_fields import add_fields
from .sqlite_index import add_start

if TYPE_CHECKING:
    from .sqlite import SQLiteSource

__all__ = ["SQLiteWriter"]


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
            start_json = json_index_copy(doc)
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
                (json_index_copy(doc), doc["exit_status"], pos + 1, run_id),
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
            run_id = self._source.run_id(uid)
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
