"""The watcher's ledger: which file versions are in the catalog, so that none goes in twice.

SQLite (WAL), one file per catalog: ``watch.sqlite`` in the directory of an embedded
(SQLite) catalog, else ``<data dir>/watch/<hash of the catalog's address>.sqlite``
(:func:`ledger_path`). One row per file version:

``root, relpath, version, size, mtime_ns, sha256, state, run, resource, reason``

* ``pending``: written before the file's bytes and documents; ``done`` once they are
  stored. A watcher killed in between leaves a ``pending`` row, which the next one
  settles by asking the catalog whether the run holds the file's event
  (:func:`settle_pending`): ``done`` if so, else the row goes and the file is taken again;
* ``done``: the version is in run ``run``, resource ``resource``;
* ``unreadable``: its reader refused it (``reason``); retried when the file changes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..sources.sqlite_db import ProcessConnection, connect, open_file

__all__ = ["DB_NAME", "IN_MEMORY", "FileRow", "Ledger", "RootLock", "ledger_of", "ledger_path", "settle_pending"]

DB_NAME = "watch.sqlite"
STATES = ("pending", "done", "unreadable")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watched_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root TEXT NOT NULL,
    relpath TEXT NOT NULL,
    version INTEGER,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    state TEXT NOT NULL,
    run TEXT,
    resource TEXT,
    reason TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS watched_files_path ON watched_files(root, relpath, id);
CREATE INDEX IF NOT EXISTS watched_files_state ON watched_files(state) WHERE state = 'pending';
"""

T = TypeVar("T")


@dataclass(frozen=True)
class FileRow:
    """One row of the ledger."""

    id: int
    root: str
    relpath: str
    version: int | None
    size: int
    mtime_ns: int
    sha256: str | None
    state: str
    run: str | None
    resource: str | None
    reason: str


_COLUMNS = "id, root, relpath, version, size, mtime_ns, sha256, state, run, resource, reason"


#: The ledger of a catalog that lives in memory (``memory://``): in memory too, for the process.
IN_MEMORY = Path(":memory:")


def ledger_path(catalog: Any) -> Path:
    """Where the ledger of ``catalog`` lives (see the module docstring); :data:`IN_MEMORY` for
    a ``memory://`` catalog, whose runs a file on disk would outlive."""
    if str(catalog.source.uri).startswith("memory://"):
        return IN_MEMORY
    directory = getattr(catalog.source, "directory", None)
    if isinstance(directory, Path) and str(catalog.source.uri).startswith("sqlite://"):
        return directory / DB_NAME
    from ..config import data_dir

    name = hashlib.sha256(_bus_identity(catalog.source.uri).encode("utf-8")).hexdigest()[:24]
    return data_dir() / "watch" / f"{name}.sqlite"


def _bus_identity(uri: str) -> str:
    """The catalog's address without credentials or where its runs are archived (the same bus
    opened with or without ``archive=`` is the same catalog)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    from ..uris import redact

    parts = urlsplit(redact(uri))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "archive"]
    return urlunsplit(parts._replace(query=urlencode(sorted(query))))


_IN_MEMORY: dict[str, Ledger] = {}
_IN_MEMORY_LOCK = threading.Lock()


def ledger_of(catalog: Any) -> tuple[Ledger, bool]:
    """The ledger of ``catalog``, and whether the caller should close it when done.

    A ``memory://`` catalog's ledger is kept for the life of the process, as its runs are.
    """
    path = ledger_path(catalog)
    if path != IN_MEMORY:
        return Ledger(path), True
    with _IN_MEMORY_LOCK:
        ledger = _IN_MEMORY.get(catalog.source.uri)
        if ledger is None:
            ledger = _IN_MEMORY[catalog.source.uri] = Ledger(IN_MEMORY)
        return ledger, False


class Ledger:
    """The ledger at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) if Path(path) == IN_MEMORY else Path(path).expanduser()
        self._db = ProcessConnection(self._open)

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def _open(self) -> sqlite3.Connection:
        def setup(conn: sqlite3.Connection) -> None:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")

        if self.path == IN_MEMORY:
            conn = connect(":memory:")
            setup(conn)
            return conn
        return open_file(self.path, setup, what="the watch ledger")

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._db.query(sql, params, str(self.path))

    def _transaction(self, body: Callable[[sqlite3.Connection], T], what: str) -> T:
        return self._db.transaction(body, f"{what} in {self.path}")

    # -- reading ---------------------------------------------------------------------------------

    def rows(self, root: str, relpath: str) -> list[FileRow]:
        """The rows of one file, oldest first."""
        sql = f"SELECT {_COLUMNS} FROM watched_files WHERE root = ? AND relpath = ? ORDER BY id"
        return [FileRow(*r) for r in self._query(sql, (root, relpath))]

    def marks(self, root: str, relpath: str) -> tuple[FileRow | None, FileRow | None]:
        """The newest version of the file in the catalog and its unreadable mark (each None
        when there is none), read at once."""
        rows = self.rows(root, relpath)
        done = [r for r in rows if r.state == "done"]
        bad = [r for r in rows if r.state == "unreadable"]
        return (max(done, key=lambda r: r.version or 0) if done else None), (bad[-1] if bad else None)

    def pending(self) -> list[FileRow]:
        """Rows a watcher left between writing and confirming."""
        sql = f"SELECT {_COLUMNS} FROM watched_files WHERE state = 'pending' ORDER BY id"
        return [FileRow(*r) for r in self._query(sql)]

    def all(self, state: str | None = None) -> list[FileRow]:
        """Every row (of ``state``), oldest first."""
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        return [
            FileRow(*r) for r in self._query(f"SELECT {_COLUMNS} FROM watched_files {where} ORDER BY id", params)
        ]

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT state, count(*) FROM watched_files GROUP BY state")
        out = dict.fromkeys(STATES, 0)
        out.update({state: n for state, n in rows})
        return out

    # -- writing ---------------------------------------------------------------------------------

    def begin(
        self, root: str, relpath: str, size: int, mtime_ns: int, sha256: str, run: str, resource: str
    ) -> FileRow:
        """A ``pending`` row for the next version of the file (before its bytes and documents)."""

        def body(conn: sqlite3.Connection) -> FileRow:
            (latest,) = conn.execute(
                "SELECT max(version) FROM watched_files WHERE root = ? AND relpath = ? AND state = 'done'",
                (root, relpath),
            ).fetchone()
            conn.execute(
                "DELETE FROM watched_files WHERE root = ? AND relpath = ? AND state != 'done'", (root, relpath)
            )
            version = (latest or 0) + 1
            cur = conn.execute(
                "INSERT INTO watched_files (root, relpath, version, size, mtime_ns, sha256, state, run, resource,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                (root, relpath, version, size, mtime_ns, sha256, run, resource, time.time()),
            )
            row_id = int(cur.lastrowid or 0)
            row = conn.execute(f"SELECT {_COLUMNS} FROM watched_files WHERE id = ?", (row_id,)).fetchone()
            return FileRow(*row)

        return self._transaction(body, "could not note the file")

    def done(self, row_id: int) -> None:
        """The pending row's bytes and documents are stored."""
        self._transaction(
            lambda c: c.execute(
                "UPDATE watched_files SET state = 'done', updated = ? WHERE id = ?", (time.time(), row_id)
            ),
            "could not mark the file done",
        )

    def drop(self, row_id: int) -> None:
        """Forget a pending row (its documents were not stored: the file is taken again)."""
        self._transaction(
            lambda c: c.execute("DELETE FROM watched_files WHERE id = ? AND state = 'pending'", (row_id,)),
            "could not drop the pending file",
        )

    def touch(self, row_id: int, size: int, mtime_ns: int) -> None:
        """The file has this size and mtime now, with the same bytes (its mtime was touched)."""
        self._transaction(
            lambda c: c.execute(
                "UPDATE watched_files SET size = ?, mtime_ns = ?, updated = ? WHERE id = ?",
                (size, mtime_ns, time.time(), row_id),
            ),
            "could not note the file",
        )

    def mark_unreadable(self, root: str, relpath: str, size: int, mtime_ns: int, sha256: str, reason: str) -> None:
        """The file as it is now cannot be read (``reason``); it is retried when it changes."""

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM watched_files WHERE root = ? AND relpath = ? AND state = 'unreadable'",
                (root, relpath),
            )
            conn.execute(
                "INSERT INTO watched_files (root, relpath, version, size, mtime_ns, sha256, state, reason,"
                " updated) VALUES (?, ?, NULL, ?, ?, ?, 'unreadable', ?, ?)",
                (root, relpath, size, mtime_ns, sha256, reason, time.time()),
            )

        self._transaction(body, "could not note the unreadable file")


class RootLock:
    """Who watches a root into this ledger's catalog: one watcher per root at a time.

    An exclusive ``flock`` on a file beside the ledger, named by the root; the
    system lets go of it when the process ends, however it ends (SIGKILL too).
    Where ``fcntl`` is missing (Windows), nothing is locked.
    """

    def __init__(self, ledger_file: Path, root: str) -> None:
        self.root = root
        name = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        self.path = ledger_file.with_name(ledger_file.name + ".locks") / f"{name}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`~scandeck.exceptions.ScandeckError` naming its holder."""
        if self.path.parent.name == IN_MEMORY.name + ".locks":
            return  # a catalog in memory is this process's alone
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        from ..exceptions import ScandeckError
        from ..sources.liveness import HOST

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ScandeckError(
                f"{self.root} is already watched into this catalog by {holder}; "
                "stop that watcher first (two would take files twice)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"scandeck watch {HOST}:{os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing lets go of the flock
            self._fd = None


def settle_pending(ledger: Ledger, catalog: Any, roots: Collection[str] | None = None) -> tuple[int, int]:
    """Settle the rows a killed watcher left ``pending`` (of ``roots``, else all): ``(done, dropped)``.

    Only a watcher that holds the roots' :class:`RootLock` may: another one's rows may be in flight.

    A row is ``done`` when its run holds the file's event (the event whose ``file``
    value is one of the resource's datums); otherwise it is dropped and the file is
    taken again, into this watcher's run.
    """
    from ..exceptions import RunNotFound

    done = dropped = 0
    for row in ledger.pending():
        if roots is not None and row.root not in roots:
            continue
        found = False
        if row.run and row.resource:
            try:
                found = _holds_event(catalog, row.run, row.resource)
            except RunNotFound:
                found = False
        if found:
            ledger.done(row.id)
            done += 1
        else:
            ledger.drop(row.id)
            dropped += 1
    return done, dropped


def _holds_event(catalog: Any, run: str, resource: str) -> bool:
    """Whether run ``run`` holds the resource ``resource`` and an event referencing one of its datums."""
    source = catalog.source
    datums: set[str] = set()
    has_resource = False
    for entry in source.documents(run, names=("resource", "datum", "datum_page", "event", "event_page")):
        name, doc = entry.name, entry.doc
        if name == "resource" and doc.get("uid") == resource:
            has_resource = True
        elif name == "datum" and doc.get("resource") == resource:
            datums.add(doc["datum_id"])
        elif name == "datum_page" and doc.get("resource") == resource:
            datums.update(doc.get("datum_id", []))
        elif name == "event" and has_resource and datums:
            if any(isinstance(v, str) and v in datums for v in doc.get("data", {}).values()):
                return True
        elif name == "event_page" and has_resource and datums:
            for values in doc.get("data", {}).values():
                if any(isinstance(v, str) and v in datums for v in values):
                    return True
    return False
