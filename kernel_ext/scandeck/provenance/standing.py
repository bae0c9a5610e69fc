"""Standing analyses: a recorded notebook rerun on every new matching scan, and their ledger.

A standing analysis is a record id, a query, a catalog and an exit status. Its
ledger lives in the provenance store directory, in ``standing.sqlite`` (SQLite,
WAL), beside ``index.sqlite``:

- ``standing``: one row per analysis, with its *place* in the catalog: the
  arrival ``seq`` of the newest run it has looked at;
- ``standing_runs``: the runs it has seen, each ``open`` (still running when
  seen), ``pending`` (ended, matching: to rerun), ``running`` (claimed by a
  service), ``done`` or ``failed`` (with the rerun record's id);
- ``standing_leases``: which service may rerun for the analysis, until when;
- ``standing_marks``: for a query on facts (tags, columns), the catalog's facts change
  mark the analysis has looked up to (a run whose facts match only after its end).

Each step (new runs seen and the place moved, a claim, a result) is one
transaction, so a service killed at any instant leaves a ledger that the next
one continues: nothing seen is forgotten, nothing done is done again (a claimed
run whose rerun record exists is marked from that record, see
:meth:`Ledger.reclaim`).

Examples
--------
>>> ledger = Ledger(tmp_path)                                                    # doctest: +SKIP
>>> standing = ledger.define("1a2b3c4d", query='sample == "Ni"', catalog="")     # doctest: +SKIP
>>> ledger.counts(standing.id)                                                   # doctest: +SKIP
{'open': 0, 'pending': 0, 'running': 0, 'done': 0, 'failed': 0}
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..exceptions import AmbiguousRecord, RecordNotFound
from ..sources.liveness import HOST, writer_alive
from ..sources.sqlite_db import ProcessConnection, open_file

__all__ = ["STATES", "EXIT_STATUSES", "Ledger", "RunRow", "Standing", "lease_owner", "owner_text"]

DB_NAME = "standing.sqlite"
#: A run's states in a standing analysis, in the order --list shows them.
STATES = ("open", "pending", "running", "done", "failed")
#: What ``--status`` takes: the stop document's exit status, or ``any``.
EXIT_STATUSES = ("success", "fail", "abort", "any")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS standing (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    catalog TEXT NOT NULL,
    status TEXT NOT NULL,
    since REAL,
    workers INTEGER NOT NULL,
    dask TEXT,
    output_dir TEXT NOT NULL,
    created REAL NOT NULL,
    seq INTEGER NOT NULL,
    managed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS standing_runs (
    standing TEXT NOT NULL,
    uid TEXT NOT NULL,
    scan_id INTEGER,
    state TEXT NOT NULL,
    seen REAL NOT NULL,
    updated REAL NOT NULL,
    owner TEXT,
    record_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (standing, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS standing_runs_state ON standing_runs(standing, state, updated);
CREATE TABLE IF NOT EXISTS standing_leases (
    standing TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS standing_marks (
    standing TEXT PRIMARY KEY,
    facts INTEGER NOT NULL
) WITHOUT ROWID;
"""

T = TypeVar("T")


@dataclass(frozen=True)
class Standing:
    """One standing analysis (a row of ``standing``)."""

    id: str
    record: str
    name: str
    query: str
    catalog: str
    status: str
    since: float | None
    workers: int
    dask: str | None
    output_dir: str
    created: float
    seq: int
    managed: bool

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class RunRow:
    """One run of a standing analysis."""

    uid: str
    scan_id: int | None
    state: str
    seen: float
    updated: float
    record_id: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def standing_id(record: str, query: str, catalog: str, status: str) -> str:
    """The id of the analysis of ``record`` on ``query`` in ``catalog`` (the same inputs, the same id)."""
    key = json.dumps([record, query, catalog, status])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def lease_owner() -> str:
    """``host:pid:random``: who holds a lease (a new value per service)."""
    return f"{HOST}:{os.getpid()}:{os.urandom(3).hex()}"


def owner_text(owner: str) -> str:
    """``host:pid`` of a lease owner (``host:pid:random``), for people (not yet made printable)."""
    return owner.rsplit(":", 1)[0]


def _owner_dead(owner: str) -> bool:
    """Whether ``owner`` (``host:pid:...``) is surely gone: a process of this host that exited
    (or a zombie), as :func:`~scandeck.sources.liveness.writer_alive` tells a run's writer."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return pid_text.isdigit() and not writer_alive(host, int(pid_text), None)


def _standing(row: sqlite3.Row | tuple[Any, ...]) -> Standing:
    (sid, record, name, query, catalog, status, since, workers, dask, out, created, seq, managed) = row
    return Standing(
        sid, record, name, query, catalog, status, since, workers, dask, out, created, seq, bool(managed)
    )


_COLUMNS = "id, record, name, query, catalog, status, since, workers, dask, output_dir, created, seq, managed"


class Ledger:
    """The standing analyses of the provenance store in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.db_path = self.directory / DB_NAME
        self._db = ProcessConnection(self._open)

    def __repr__(self) -> str:
        return f"Ledger({str(self.directory)!r})"

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def _open(self) -> sqlite3.Connection:
        def setup(conn: sqlite3.Connection) -> None:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")

        return open_file(self.db_path, setup, what="the standing analyses")

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._db.query(sql, params, str(self.db_path))

    def _transaction(self, body: Callable[[sqlite3.Connection], T], what: str) -> T:
        return self._db.transaction(body, f"{what} in {self.db_path}")

    # -- analyses ----------------------------------------------------------------------------

    def define(
        self,
        record: str,
        *,
        name: str,
        query: str,
        catalog: str,
        status: str = "success",
        since: float | None = None,
        workers: int = 2,
        dask: str | None = None,
        output_dir: str = "",
        seq: int = 0,
    ) -> tuple[Standing, bool]:
        """The analysis of these inputs, created if new: ``(standing, created)``.

        ``seq`` is the catalog's place when the analysis is new (runs that arrive
        later are its to consider). An existing analysis keeps its place; its
        ``workers``, ``dask`` and ``output_dir`` take the new values.
        """
        if status not in EXIT_STATUSES:
            raise ValueError(f"--status must be one of {', '.join(EXIT_STATUSES)}, not {status!r}")
        sid = standing_id(record, query, catalog, status)

        def body(conn: sqlite3.Connection) -> tuple[Standing, bool]:
            row = conn.execute(f"SELECT {_COLUMNS} FROM standing WHERE id = ?", (sid,)).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO standing ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    (
                        sid,
                        record,
                        name,
                        query,
                        catalog,
                        status,
                        since,
                        workers,
                        dask,
                        output_dir,
                        time.time(),
                        seq,
                    ),
                )
                created = True
            else:
                conn.execute(
                    "UPDATE standing SET workers = ?, dask = ?, output_dir = ? WHERE id = ?",
                    (workers, dask, output_dir or row[9], sid),
                )
                created = False
            new = conn.execute(f"SELECT {_COLUMNS} FROM standing WHERE id = ?", (sid,)).fetchone()
            return _standing(new), created

        return self._transaction(body, "could not define the standing analysis")

    def get(self, id_or_prefix: str) -> Standing:
        """The analysis with this id or unique id prefix."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM standing WHERE id >= ? AND id < ? ORDER BY id LIMIT 51",
            (id_or_prefix, id_or_prefix + "\U0010ffff"),
        )
        if not id_or_prefix or not rows:
            raise RecordNotFound(
                f"no standing analysis with id {id_or_prefix!r} in {self.directory}; "
                "`scandeck auto --list` shows them"
            )
        if len(rows) > 1:
            raise AmbiguousRecord(id_or_prefix, [r[0] for r in rows])
        return _standing(rows[0])

    def all(self) -> list[Standing]:
        """Every analysis, newest first."""
        return [_standing(r) for r in self._query(f"SELECT {_COLUMNS} FROM standing ORDER BY created DESC")]

    def set_managed(self, sid: str, managed: bool) -> None:
        """Mark the analysis as run by the Jupyter server (which resumes it when it starts)."""
        self._transaction(
            lambda c: c.execute("UPDATE standing SET managed = ? WHERE id = ?", (int(managed), sid)),
            "could not mark the standing analysis",
        )

    def remove(self, sid: str) -> None:
        """Forget an analysis and its runs (rerun records stay in the provenance store)."""

        def body(conn: sqlite3.Connection) -> None:
            tables = ("standing_runs", "standing"), ("standing_leases", "standing"), ("standing_marks", "standing")
            for table, key in (*tables, ("standing", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (sid,))

        self._transaction(body, "could not remove the standing analysis")

    # -- the place ---------------------------------------------------------------------------

    def advance(
        self,
        sid: str,
        *,
        seq: int | None = None,
        opened: Iterable[tuple[str, int | None]] = (),
        ended: Iterable[tuple[str, int | None]] = (),
        dropped: Iterable[str] = (),
        facts_mark: int | None = None,
    ) -> None:
        """In one transaction: note runs seen running (``opened``), runs to rerun (``ended``:
        open or new rows become pending, rows past that stay as they are), forget ``dropped``
        open rows (ended without matching), and move the place to ``seq`` and the facts
        mark to ``facts_mark``."""
        now = time.time()

        def body(conn: sqlite3.Connection) -> None:
            for uid, scan_id in opened:
                conn.execute(
                    "INSERT OR IGNORE INTO standing_runs (standing, uid, scan_id, state, seen, updated) "
                    "VALUES (?, ?, ?, 'open', ?, ?)",
                    (sid, uid, scan_id, now, now),
                )
            for uid, scan_id in ended:
                conn.execute(
                    "INSERT INTO standing_runs (standing, uid, scan_id, state, seen, updated) "
                    "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (standing, uid) DO UPDATE "
                    "SET state = 'pending', updated = excluded.updated WHERE state = 'open'",
                    (sid, uid, scan_id, now, now),
                )
            for uid in dropped:
                conn.execute(
                    "DELETE FROM standing_runs WHERE standing = ? AND uid = ? AND state = 'open'", (sid, uid)
                )
            if seq is not None:
                conn.execute("UPDATE standing SET seq = max(seq, ?) WHERE id = ?", (seq, sid))
            if facts_mark is not None:
                conn.execute(
                    "INSERT INTO standing_marks VALUES (?, ?) ON CONFLICT (standing) DO UPDATE "
                    "SET facts = max(facts, excluded.facts)",
                    (sid, facts_mark),
                )

        self._transaction(body, "could not note new runs")

    def place(self, sid: str) -> int:
        rows = self._query("SELECT seq FROM standing WHERE id = ?", (sid,))
        return int(rows[0][0]) if rows else 0

    def facts_mark(self, sid: str) -> int | None:
        """The facts change mark the analysis has looked up to (None: not yet)."""
        rows = self._query("SELECT facts FROM standing_marks WHERE standing = ?", (sid,))
        return int(rows[0][0]) if rows else None

    def known(self, sid: str, uids: Iterable[str]) -> set[str]:
        """Those of ``uids`` the analysis has a row for (in any state)."""
        wanted = list(dict.fromkeys(uids))
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ", ".join("?" * len(part))
            sql = f"SELECT uid FROM standing_runs WHERE standing = ? AND uid IN ({marks})"
            found |= {r[0] for r in self._query(sql, [sid, *part])}
        return found

    def runs(self, sid: str, states: Iterable[str] = STATES, limit: int | None = None) -> list[RunRow]:
        """The analysis's runs in ``states``, most recently updated first."""
        wanted = list(states)
        marks = ", ".join("?" * len(wanted))
        rows = self._query(
            "SELECT uid, scan_id, state, seen, updated, record_id, message FROM standing_runs "
            f"WHERE standing = ? AND state IN ({marks}) ORDER BY updated DESC, uid LIMIT ?",
            [sid, *wanted, -1 if limit is None else int(limit)],
        )
        return [RunRow(*r) for r in rows]

    def counts(self, sid: str) -> dict[str, int]:
        found = dict(
            self._query("SELECT state, count(*) FROM standing_runs WHERE standing = ? GROUP BY state", (sid,))
        )
        return {state: int(found.get(state, 0)) for state in STATES}

    # -- work --------------------------------------------------------------------------------

    def claim(self, sid: str, owner: str, limit: int) -> list[RunRow]:
        """Move up to ``limit`` pending runs (oldest seen first) to ``running`` for ``owner``,
        if ``owner`` holds the lease; the runs claimed."""
        if limit <= 0:
            return []

        def body(conn: sqlite3.Connection) -> list[RunRow]:
            if not _holds(conn, sid, owner):
                return []
            rows = conn.execute(
                "SELECT uid, scan_id, state, seen, updated, record_id, message FROM standing_runs "
                "WHERE standing = ? AND state = 'pending' ORDER BY seen, uid LIMIT ?",
                (sid, limit),
            ).fetchall()
            now = time.time()
            for row in rows:
                conn.execute(
                    "UPDATE standing_runs SET state = 'running', owner = ?, updated = ? "
                    "WHERE standing = ? AND uid = ?",
                    (owner, now, sid, row[0]),
                )
            return [RunRow(r[0], r[1], "running", r[3], now, None, "") for r in rows]

        return self._transaction(body, "could not claim runs")

    def finish(
        self, sid: str, uid: str, *, ok: bool, record_id: str | None, message: str = "", owner: str | None = None
    ) -> bool:
        """Note a rerun's result (``done`` or ``failed``); whether it was noted.

        With ``owner`` (the service that claimed the run), the result is noted only while the
        run is still that owner's, or pending again (a successor requeued it and has not rerun
        it yet: the result spares it the second rerun); the late result of a service that lost
        the lease never replaces its successor's. Without, it is noted whatever the state.
        """
        values: tuple[Any, ...] = ("done" if ok else "failed", record_id, message[:500], time.time(), sid, uid)
        sql = (
            "UPDATE standing_runs SET state = ?, record_id = ?, message = ?, updated = ?, owner = NULL "
            "WHERE standing = ? AND uid = ?"
        )
        if owner is not None:
            sql += " AND ((state = 'running' AND owner = ?) OR state = 'pending')"
            values += (owner,)
        changed = self._transaction(lambda c: c.execute(sql, values).rowcount, "could not note a rerun's result")
        return changed > 0

    def reclaim(self, sid: str, results: Callable[[str], tuple[bool, str] | None]) -> tuple[int, int]:
        """Settle the runs a service that no longer holds the lease left ``running``.

        ``results(uid)`` gives ``(ok, record_id)`` of the rerun record already saved for the
        run, or None: then the run is pending again. Returns ``(settled, requeued)``.
        """
        stuck = self.runs(sid, ["running"])
        settled = requeued = 0
        for row in stuck:
            found = results(row.uid)
            if found is not None:
                self.finish(
                    sid, row.uid, ok=found[0], record_id=found[1], message="" if found[0] else "see the record"
                )
                settled += 1
            else:
                self._requeue(sid, row.uid)
                requeued += 1
        return settled, requeued

    def _requeue(self, sid: str, uid: str) -> None:
        sql = (
            "UPDATE standing_runs SET state = 'pending', owner = NULL "
            "WHERE standing = ? AND uid = ? AND state = 'running'"
        )
        self._transaction(lambda c: c.execute(sql, (sid, uid)), "could not requeue a run")

    # -- the lease ---------------------------------------------------------------------------

    def acquire(self, sid: str, owner: str, ttl: float) -> str | None:
        """Take or renew the lease for ``ttl`` seconds: None when ``owner`` holds it now, else
        the current holder (whose lease has not run out)."""

        def body(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT owner, expires FROM standing_leases WHERE standing = ?", (sid,)).fetchone()
            now = time.time()
            if row is not None and row[0] != owner and row[1] > now and not _owner_dead(row[0]):
                return str(row[0])
            conn.execute(
                "INSERT INTO standing_leases VALUES (?, ?, ?) ON CONFLICT (standing) DO UPDATE "
                "SET owner = excluded.owner, expires = excluded.expires",
                (sid, owner, now + ttl),
            )
            return None

        return self._transaction(body, "could not take the lease")

    def release(self, sid: str, owner: str) -> None:
        self._transaction(
            lambda c: c.execute("DELETE FROM standing_leases WHERE standing = ? AND owner = ?", (sid, owner)),
            "could not release the lease",
        )

    def holder(self, sid: str) -> str | None:
        """Who holds the lease now (None when nobody does)."""
        rows = self._query("SELECT owner, expires FROM standing_leases WHERE standing = ?", (sid,))
        if rows and rows[0][1] > time.time() and not _owner_dead(rows[0][0]):
            return str(rows[0][0])
        return None


def _holds(conn: sqlite3.Connection, sid: str, owner: str) -> bool:
    row = conn.execute("SELECT owner, expires FROM standing_leases WHERE standing = ?", (sid,)).fetchone()
    return row is not None and row[0] == owner and row[1] > time.time()
