"""Provenance records and their executed notebooks, kept on disk.

Layout of a store directory (default ``<data dir>/provenance``)::

    index.sqlite                         records, one row each (SQLite, WAL mode)
    notebooks/<sha256[:2]>/<sha256>.ipynb   executed notebooks, content-addressed

A save writes the notebook first, to a hidden temporary name in its final
directory, fsyncs it and renames it into place; only then does it insert the
record's row, in one transaction. A process killed at any instant leaves either
no record, or a whole record whose notebook file exists and hashes right. What
a killed save can leave behind is harmless: a hidden ``.*.tmp`` file (never
read; :meth:`ProvStore.sweep` removes old ones) or a notebook no record names
(content-addressed, so a later save of the same bytes reuses it). Any number of
processes (kernels, batch runs) may save and read at once.

Examples
--------
>>> store = open_store(tmp_path)                        # doctest: +SKIP
>>> saved = store.save(record, nb)                      # doctest: +SKIP
>>> store.get(saved.id[:6]).notebook_sha256 == saved.notebook_sha256  # doctest: +SKIP
True
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import AmbiguousRecord, DuplicateRecord, RecordNotFound, StoreError
from ..sources.sqlite_db import ProcessConnection, open_file
from .record import OutputRef, ProvenanceRecord

if TYPE_CHECKING:
    import nbformat

DB_NAME = "index.sqlite"
NOTEBOOKS = "notebooks"
#: Layout version of ``index.sqlite`` (``PRAGMA user_version``).
STORE_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    parent TEXT,
    status TEXT NOT NULL,
    notebook_sha256 TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_created ON records(created, seq);
CREATE INDEX IF NOT EXISTS records_parent ON records(parent);
CREATE INDEX IF NOT EXISTS records_name ON records(name);
-- Runs read ('in') and written ('out') by each record, for readers_of / writers_of.
CREATE TABLE IF NOT EXISTS record_runs (
    role TEXT NOT NULL,
    uid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (role, uid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS record_tags (
    tag TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
"""

_ORDER = "ORDER BY created DESC, seq DESC"
_TMP_SUFFIX = ".tmp"


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _notebook_content(notebook: Any) -> bytes:
    """The bytes to store for a NotebookNode (or dict), bytes, JSON text or a Path."""
    if isinstance(notebook, (bytes, bytearray, memoryview)):
        data = bytes(notebook)
    elif isinstance(notebook, str):
        if not notebook.lstrip().startswith("{"):
            raise ValueError(
                "a notebook given as str must be its JSON text; to store a notebook file "
                "pass pathlib.Path(path) (or its bytes)"
            )
        data = notebook.encode("utf-8")
    elif isinstance(notebook, os.PathLike):
        data = Path(notebook).read_bytes()
    elif isinstance(notebook, Mapping):
        import nbformat

        return nbformat.writes(nbformat.from_dict(notebook)).encode("utf-8")
    else:
        raise TypeError(
            f"a notebook must be an nbformat.NotebookNode, bytes, JSON text or a Path, "
            f"not {type(notebook).__name__}"
        )
    try:
        parsed = json.loads(data)
    except ValueError as err:
        raise ValueError(f"the notebook is not valid JSON: {err}") from None
    if not isinstance(parsed, dict) or "cells" not in parsed:
        raise ValueError("the notebook JSON has no 'cells': is it a notebook (.ipynb)?")
    return data


class ProvStore:
    """Provenance records and executed notebooks in ``directory``.

    Parameters
    ----------
    directory
        The store directory, created on first use; default
        ``scandeck.config.data_dir() / "provenance"``.

    Records come back newest first (by ``created``). Ids may be abbreviated to
    any unique prefix wherever one record is asked for (:meth:`get`,
    :meth:`notebook`, :meth:`add_output`).
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        if directory is None:
            from ..config import data_dir

            directory = data_dir() / "provenance"
        self._at(directory)

    def _at(self, directory: str | Path) -> None:
        """Point at ``directory``, not yet connected (also what unpickling does)."""
        self.directory = Path(directory).expanduser()
        self.db_path = self.directory / DB_NAME
        self.notebooks_dir = self.directory / NOTEBOOKS
        self._db = ProcessConnection(self._open)
        self._lock = self._db.lock

    def __repr__(self) -> str:
        return f"ProvStore({str(self.directory)!r})"

    # -- pickling (dask workers, multiprocessing): only the directory travels --------------

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._at(state["directory"])

    # -- connection ------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own)."""
        return self._db.get()

    def _open(self) -> sqlite3.Connection:
        def setup(conn: sqlite3.Connection) -> None:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                    raise StoreError(f"{self.db_path}: SQLite could not switch to WAL mode")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > STORE_VERSION:
                raise StoreError(
                    f"{self.db_path} was written by a newer scandeck (store layout {version}, this "
                    f"one reads {STORE_VERSION}); upgrade scandeck to read it"
                )
            if version < STORE_VERSION:
                conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {STORE_VERSION}; COMMIT;")

        return open_file(
            self.db_path,
            setup,
            what="the provenance store",
            hint="check that the directory is writable (or set $SCANDECK_DATA)",
            make=(self.notebooks_dir,),
        )

    def close(self) -> None:
        """Release the database connection (the store reopens on next use)."""
        self._db.close()

    def __enter__(self) -> ProvStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] | builtins.list[Any] = ()) -> builtins.list[Any]:
        conn = self._conn()
        with self._lock:
            return conn.execute(sql, params).fetchall()

    # -- notebooks -------------------------------------------------------------------------

    def notebook_file(self, record: ProvenanceRecord | str) -> Path:
        """Path of the stored notebook of ``record`` (a record, id or id prefix)."""
        sha = self._resolve(record).notebook_sha256
        return self._notebook_path(sha)

    def _notebook_path(self, sha: str) -> Path:
        return self.notebooks_dir / sha[:2] / f"{sha}.ipynb"

    def _write_notebook(self, sha: str, data: bytes) -> None:
        """Put ``data`` at its content address: temp name, fsync, rename, fsync the directory."""
        final = self._notebook_path(sha)
        if final.exists():
            with suppress(OSError):
                if _sha256_file(final) == sha:
                    return  # already stored (a rename only ever puts whole files in place)
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(folder.parent)
        tmp = folder / f".{sha}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TMP_SUFFIX}"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(folder)

    def notebook_bytes(self, record: ProvenanceRecord | str) -> bytes:
        """The executed notebook of ``record`` exactly as saved (its sha256 is checked)."""
        rec = self._resolve(record)
        path = self._notebook_path(rec.notebook_sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"the notebook of record {rec.id} is missing: {path} was deleted or the store "
                "was copied without its notebooks/ directory"
            ) from None
        if hashlib.sha256(data).hexdigest() != rec.notebook_sha256:
            raise StoreError(
                f"the notebook of record {rec.id} ({path}) does not match its sha256 "
                f"{rec.notebook_sha256}: the file was changed after it was saved"
            )
        return data

    def notebook_problem(self, record: ProvenanceRecord | str) -> str | None:
        """Why the stored notebook of ``record`` cannot be trusted (missing, changed), or None.

        The check :meth:`notebook_bytes` makes, for callers that warn instead of
        failing (``scandeck provenance show``).

        Examples
        --------
        >>> store.notebook_problem(rec) is None       # doctest: +SKIP
        True
        """
        try:
            self.notebook_bytes(record)
        except StoreError as err:
            return str(err)
        return None

    def notebook(self, record: ProvenanceRecord | str) -> nbformat.NotebookNode:
        """The executed notebook of ``record`` (a record, id or id prefix), as nbformat v4."""
        try:
            import nbformat
        except ImportError:  # pragma: no cover - installed with jupyter
            from ..exceptions import ScandeckError

            raise ScandeckError(
                "reading a stored notebook needs the 'nbformat' package: pip install nbformat "
                "(or read the JSON with notebook_bytes())"
            ) from None

        return nbformat.reads(self.notebook_bytes(record).decode("utf-8"), as_version=4)

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete temporary files of saves killed more than ``older_than`` seconds ago."""
        removed = 0
        cutoff = time.time() - older_than
        if not self.notebooks_dir.is_dir():
            return 0
        for folder in self.notebooks_dir.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.glob(f".*{_TMP_SUFFIX}"):
                with suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    # -- writing ---------------------------------------------------------------------------

    def save(self, record: ProvenanceRecord, notebook: nbformat.NotebookNode | bytes | str) -> ProvenanceRecord:
        """Store ``record`` with its executed ``notebook``; returns the saved copy.

        The notebook is stored content-addressed (sha256 of its bytes;
        ``nbformat.writes`` of a NotebookNode) and the copy returned has
        ``notebook_sha256`` set; ``record`` itself is not changed. Saving the
        same record again is a no-op; a different record with an id already in
        the store raises :class:`~scandeck.exceptions.DuplicateRecord`.
        """
        if not isinstance(record, ProvenanceRecord):
            raise TypeError(f"save() takes a ProvenanceRecord, not {type(record).__name__}")
        data = _notebook_content(notebook)
        sha = hashlib.sha256(data).hexdigest()
        saved = record.model_copy(update={"notebook_sha256": sha}, deep=True)
        text = saved.model_dump_json()
        self._conn()  # creates the directories
        self._write_notebook(sha, data)

        def insert(conn: sqlite3.Connection) -> ProvenanceRecord:
            row = conn.execute("SELECT record FROM records WHERE id = ?", (saved.id,)).fetchone()
            if row is not None:
                existing = _load(row[0])
                if existing == saved:
                    return existing
                raise DuplicateRecord(
                    f"a different record with id {saved.id} is already in {self.directory}; "
                    "a new ProvenanceRecord(...) gets a new id, and add_output() amends a saved one"
                )
            cur = conn.execute(
                "INSERT INTO records (id, name, kind, created, parent, status, notebook_sha256, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (saved.id, saved.name, saved.kind, saved.created, saved.parent, saved.status, sha, text),
            )
            seq = cur.lastrowid
            runs = [("in", i.uid, seq) for i in saved.inputs] + [("out", o.uid, seq) for o in saved.outputs]
            conn.executemany("INSERT OR IGNORE INTO record_runs VALUES (?, ?, ?)", runs)
            conn.executemany("INSERT OR IGNORE INTO record_tags VALUES (?, ?)", [(t, seq) for t in saved.tags])
            return saved

        return self._transaction(insert, f"could not save record {saved.id}")

    def add_output(self, record_id: str, output: OutputRef | Mapping[str, Any]) -> ProvenanceRecord:
        """Add a run written after ``record_id`` (an id or id prefix) was saved; returns the record.

        An output already listed is not repeated (its empty ``catalog`` is filled in).
        """
        out = output if isinstance(output, OutputRef) else OutputRef.model_validate(output)
        rec_id = self._resolve(record_id).id

        def update(conn: sqlite3.Connection) -> ProvenanceRecord:
            row = conn.execute("SELECT seq, record FROM records WHERE id = ?", (rec_id,)).fetchone()
            if row is None:  # pragma: no cover - records are never deleted
                raise RecordNotFound(f"no provenance record {rec_id!r} in {self.directory}")
            seq, rec = row[0], _load(row[1])
            known = next((o for o in rec.outputs if o.uid == out.uid), None)
            if known is not None:
                if known.catalog or not out.catalog:
                    return rec
                known.catalog = out.catalog
            else:
                rec.outputs.append(out.model_copy())
            conn.execute("UPDATE records SET record = ? WHERE seq = ?", (rec.model_dump_json(), seq))
            conn.execute("INSERT OR IGNORE INTO record_runs VALUES ('out', ?, ?)", (out.uid, seq))
            return rec

        return self._transaction(update, f"could not add an output to record {rec_id}")

    def _transaction(self, body: Any, what: str) -> Any:
        conn = self._conn()
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = body(conn)
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"{what} in {self.db_path}: {err}; nothing was changed") from err
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- reading ---------------------------------------------------------------------------

    def _resolve(self, record: ProvenanceRecord | str) -> ProvenanceRecord:
        if isinstance(record, ProvenanceRecord):
            if not record.notebook_sha256:
                return self.get(record.id)
            return record
        return self.get(record)

    def get(self, id_or_prefix: str) -> ProvenanceRecord:
        """The record with this id, else the one record whose id starts with it.

        Raises :class:`~scandeck.exceptions.RecordNotFound` or
        :class:`~scandeck.exceptions.AmbiguousRecord`.
        """
        if not isinstance(id_or_prefix, str) or not id_or_prefix:
            raise RecordNotFound(f"{id_or_prefix!r} is not a record id; `scandeck provenance list` shows them")
        row = self._query("SELECT record FROM records WHERE id = ?", (id_or_prefix,))
        if row:
            return _load(row[0][0])
        # A range on the unique index, not LIKE: LIKE ignores case and the index.
        rows = self._query(
            "SELECT id, record FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT 51",
            (id_or_prefix, id_or_prefix + "\U0010ffff"),
        )
        if not rows:
            raise RecordNotFound(
                f"no provenance record with id or id prefix {id_or_prefix!r} in {self.directory}; "
                "`scandeck provenance list` shows the records"
            )
        if len(rows) > 1:
            raise AmbiguousRecord(id_or_prefix, [r[0] for r in rows])
        return _load(rows[0][1])

    def __contains__(self, record_id: object) -> bool:
        """Whether a record with exactly this id is stored."""
        return isinstance(record_id, str) and bool(self._query("SELECT 1 FROM records WHERE id = ?", (record_id,)))

    def list(
        self,
        *,
        scan: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[ProvenanceRecord]:
        """Records newest first, filtered by every condition given.

        ``scan``: records that read that run uid (or uid prefix); ``name``,
        ``kind``: equal; ``tag``: among the record's tags.
        """
        where: builtins.list[str] = ["1"]
        params: builtins.list[str | int] = []
        if scan:
            where.append("seq IN (SELECT seq FROM record_runs WHERE role = 'in' AND uid >= ? AND uid < ?)")
            params += [scan, scan + "\U0010ffff"]
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if tag is not None:
            where.append("seq IN (SELECT seq FROM record_tags WHERE tag = ?)")
            params.append(tag)
        sql = f"SELECT record FROM records WHERE {' AND '.join(where)} {_ORDER} LIMIT ?"
        params.append(-1 if limit is None else int(limit))
        return [_load(row[0]) for row in self._query(sql, params)]

    def children(self, record_id: str) -> builtins.list[ProvenanceRecord]:
        """Records whose ``parent`` is ``record_id`` (reruns of it), newest first."""
        rows = self._query(f"SELECT record FROM records WHERE parent = ? {_ORDER}", (record_id,))
        return [_load(row[0]) for row in rows]

    def readers_of(self, uid: str) -> builtins.list[ProvenanceRecord]:
        """Records with run ``uid`` among their inputs, newest first."""
        return self._by_run("in", uid)

    def writers_of(self, uid: str) -> builtins.list[ProvenanceRecord]:
        """Records with run ``uid`` among their outputs, newest first."""
        return self._by_run("out", uid)

    def _by_run(self, role: str, uid: str) -> builtins.list[ProvenanceRecord]:
        sql = (
            "SELECT record FROM records WHERE seq IN "
            f"(SELECT seq FROM record_runs WHERE role = ? AND uid = ?) {_ORDER}"
        )
        return [_load(row[0]) for row in self._query(sql, (role, uid))]

    def __len__(self) -> int:
        return self._query("SELECT count(*) FROM records")[0][0]

    def __bool__(self) -> bool:
        return True


def _load(text: str) -> ProvenanceRecord:
    from pydantic import ValidationError

    try:
        return ProvenanceRecord.model_validate_json(text)
    except ValidationError as err:
        version = json.loads(text).get("schema_version", "?")
        raise StoreError(
            f"a stored provenance record (schema_version {version}) cannot be read by this "
            f"scandeck: {err.error_count()} invalid fields; upgrade scandeck"
        ) from err


def open_store(directory: ProvStore | str | Path | None = None) -> ProvStore:
    """The provenance store in ``directory`` (default ``<data dir>/provenance``); a store is returned as is."""
    return directory if isinstance(directory, ProvStore) else ProvStore(directory)


__all__ = ["ProvStore", "open_store", "DB_NAME", "NOTEBOOKS"]
