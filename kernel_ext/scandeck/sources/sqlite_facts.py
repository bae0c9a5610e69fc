"""A run's facts in the embedded store: annotations, computed cells, data summaries.

Three tables hold what was said and computed (``annotations``, appended to only;
``cells``, one row per run and column; ``data_summaries``, per descriptor and key,
written with the column blocks by the writer). ``run_facts`` holds, per run, the
facts document built from them (:func:`scandeck.runtable.model.facts_document`),
which queries read as the JSON column ``facts`` (:func:`runs_from` joins it), and
the document's values are in the ``start_values`` index under ``@`` names
(:func:`scandeck.query.indexed.index_rows`), so a search on ``columns.x`` is as
fast as one on a start field. Every write rebuilds the run's document and index
rows in its own transaction (:func:`refresh_facts`), and numbers it with a
store-wide sequence that :meth:`FactsMixin.facts_since` reads.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..exceptions import ReadOnlyStore, StoreError
from ..query import Query
from ..query.hints import uses_facts
from ..query.indexed import INDEX_TABLE, index_rows
from ..runtable.model import Annotation, Cell, empty_facts, facts_document, merge_summaries, needs_computing
from .sqlite_db import has_table

__all__ = ["FACTS_SCHEMA", "FactsMixin", "add_summaries", "refresh_facts", "runs_from"]

FACTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    host TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_by_run ON annotations(run_id, id);
CREATE TABLE IF NOT EXISTS cells (
    run_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,  -- JSON
    code_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    time REAL NOT NULL,
    final INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cells_by_name ON cells(name, code_hash, final);
CREATE TABLE IF NOT EXISTS data_summaries (
    run_id INTEGER NOT NULL,
    descriptor TEXT NOT NULL,
    key TEXT NOT NULL,
    min NOT NULL,
    max NOT NULL,
    PRIMARY KEY (run_id, descriptor, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_facts (
    run_id INTEGER PRIMARY KEY,
    facts TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_facts_by_seq ON run_facts(seq);
"""

_NO_FACTS = "(SELECT NULL AS run_id, NULL AS facts) AS run_facts ON 0"


def runs_from(conn: sqlite3.Connection, query: Query, runs: str = "runs") -> str:
    """The ``FROM`` clause of a search for ``query``: ``runs``, joined to the facts when it reads them.

    A store made before facts existed (opened read-only) has no ``run_facts``: its runs
    have no facts, so every facts key is missing, as the query rules say.
    """
    if not uses_facts(query):
        return runs
    if has_table(conn, "run_facts"):
        return f"{runs} LEFT JOIN run_facts ON run_facts.run_id = runs.id"
    return f"{runs} LEFT JOIN {_NO_FACTS}"


def _cell(row: Sequence[Any]) -> Cell:
    value, code_hash, status, error, at, final = row
    return Cell(json.loads(value), code_hash, status, error, at, bool(final))


def refresh_facts(conn: sqlite3.Connection, run_id: int) -> None:
    """Rebuild run ``run_id``'s facts document and its index rows (inside the caller's transaction)."""
    history = [
        Annotation(*row)
        for row in conn.execute(
            "SELECT kind, text, author, host, time FROM annotations WHERE run_id = ? ORDER BY id", (run_id,)
        )
    ]
    cells = {
        row[0]: _cell(row[1:])
        for row in conn.execute(
            "SELECT name, value, code_hash, status, error, time, final FROM cells WHERE run_id = ?", (run_id,)
        )
    }
    summary = _summary(conn, run_id)
    doc = facts_document(history, cells, summary)
    old = conn.execute("SELECT facts FROM run_facts WHERE run_id = ?", (run_id,)).fetchone()
    if has_table(conn, INDEX_TABLE):  # not in a sidecar file (facts_overlay.py)
        # Only the rows that changed: a block flush moves a range or two, not the run's facts.
        before = set() if old is None else {(*row, run_id) for row in index_rows(json.loads(old[0]), "facts")}
        after = {(*row, run_id) for row in index_rows(doc, "facts")}
        conn.executemany(f"DELETE FROM {INDEX_TABLE} WHERE field = ? AND value = ? AND run_id = ?", before - after)
        conn.executemany(f"INSERT OR IGNORE INTO {INDEX_TABLE} VALUES (?, ?, ?)", after - before)
    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM run_facts").fetchone()[0]
    conn.execute(
        "INSERT INTO run_facts VALUES (?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET facts = excluded.facts, "
        "seq = excluded.seq",
        (run_id, json.dumps(doc, allow_nan=False, ensure_ascii=False), seq),
    )


def _summary(conn: sqlite3.Connection, run_id: int) -> dict[str, dict[str, float]]:
    rows = conn.execute("SELECT key, min, max FROM data_summaries WHERE run_id = ?", (run_id,))
    return merge_summaries({key: {"min": lo, "max": hi}} for key, lo, hi in rows)


def add_summaries(
    conn: sqlite3.Connection, run_id: int, descriptor: str, ranges: Mapping[str, tuple[float, float]]
) -> None:
    """Widen the recorded ``(min, max)`` of ``descriptor``'s keys by a flushed block's (caller's transaction)."""
    conn.executemany(
        "INSERT INTO data_summaries VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, descriptor, key) DO UPDATE "
        "SET min = min(min, excluded.min), max = max(max, excluded.max)",
        [(run_id, descriptor, key, lo, hi) for key, (lo, hi) in ranges.items()],
    )


class FactsMixin:
    """:class:`~scandeck.sources.protocol.RunFacts` for :class:`~scandeck.sources.sqlite.SQLiteSource`.

    The source provides :meth:`connection`, :meth:`run_id` and :meth:`writable`.
    """

    def connection(self) -> sqlite3.Connection:
        raise NotImplementedError

    def run_id(self, uid: str) -> int:
        raise NotImplementedError

    def writable(self, what: str) -> None:
        raise NotImplementedError

    def _has_facts(self) -> bool:
        return has_table(self.connection(), "run_facts")

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        self.writable(what)
        conn = self.connection()
        if not self._has_facts():
            raise ReadOnlyStore(
                f"this store was made by an older scandeck and is open read-only: cannot store {what}"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise StoreError(f"could not store {what}: {err}; nothing was stored") from err
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def add_annotations(self, uid: str, notes: Sequence[Annotation]) -> None:
        run_id = self.run_id(uid)
        with self._write("annotations") as conn:
            conn.executemany(
                "INSERT INTO annotations (run_id, kind, text, author, host, time) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, n.kind, n.text, n.author, n.host, n.time) for n in notes],
            )
            refresh_facts(conn, run_id)

    def annotations(self, uid: str) -> list[Annotation]:
        run_id = self.run_id(uid)
        if not self._has_facts():
            return []
        sql = "SELECT kind, text, author, host, time FROM annotations WHERE run_id = ? ORDER BY id"
        return [Annotation(*row) for row in self.connection().execute(sql, (run_id,))]

    def put_cells(self, uid: str, cells: Mapping[str, Cell]) -> None:
        run_id = self.run_id(uid)
        rows = []
        for name, c in cells.items():
            try:
                value = json.dumps(c.value, allow_nan=False, ensure_ascii=False)
            except (TypeError, ValueError) as err:
                raise StoreError(f"column {name!r}: the value {c.value!r} cannot be stored ({err})") from err
            rows.append((run_id, name, value, c.code_hash, c.status, c.error, c.time or time.time(), int(c.final)))
        with self._write("computed cells") as conn:
            conn.executemany("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            refresh_facts(conn, run_id)

    def delete_cells(self, name: str) -> int:
        with self._write("computed cells") as conn:
            ids = [row[0] for row in conn.execute("SELECT run_id FROM cells WHERE name = ?", (name,))]
            conn.execute("DELETE FROM cells WHERE name = ?", (name,))
            for run_id in ids:
                refresh_facts(conn, run_id)
        return len(ids)

    def cells(self, uids: Collection[str], names: Collection[str] | None = None) -> dict[str, dict[str, Cell]]:
        if not uids or not self._has_facts():
            return {}
        ids = {self.run_id(uid): uid for uid in uids}
        out: dict[str, dict[str, Cell]] = {}
        conn, marks = self.connection(), ",".join("?" * len(ids))
        sql = "SELECT run_id, name, value, code_hash, status, error, time, final FROM cells "
        sql += f"WHERE run_id IN ({marks})"
        params: list[Any] = list(ids)
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += list(names)
        for row in conn.execute(sql, params):
            out.setdefault(ids[row[0]], {})[row[1]] = _cell(row[2:])
        return out

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        run_id = self.run_id(uid)
        if not self._has_facts():
            return {}
        return _summary(self.connection(), run_id)

    def facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        ids = {self.run_id(uid): uid for uid in uids}
        out = {uid: empty_facts() for uid in uids}
        if ids and self._has_facts():
            sql = f"SELECT run_id, facts FROM run_facts WHERE run_id IN ({','.join('?' * len(ids))})"
            for run_id, text in self.connection().execute(sql, list(ids)):
                out[ids[run_id]] = json.loads(text)
        return out

    def needing(self, name: str, code_hash: str, *, limit: int = 100) -> list[str]:
        conn = self.connection()
        if not self._has_facts():
            return []
        sql = (
            "SELECT uid FROM runs LEFT JOIN cells ON cells.run_id = runs.id AND cells.name = ? "
            "WHERE (runs.exit_status IS NOT NULL OR runs.writer_open = 0) "
            "AND (cells.run_id IS NULL OR cells.code_hash != ? OR cells.final = 0) "  # needs_computing
            "ORDER BY runs.time DESC, runs.id DESC LIMIT ?"
        )
        found = [row[0] for row in conn.execute(sql, (name, code_hash, limit))]
        # A run whose writer died without a stop document is still marked open: ended all the
        # same (incomplete), as the liveness check of the few open runs tells.
        incomplete = [s.uid for s in self.open_runs(Query.all()) if s.status == "incomplete"]
        if incomplete and len(found) < limit:
            have = self.cells(incomplete, [name])
            found += [uid for uid in incomplete if needs_computing(have.get(uid, {}).get(name), code_hash)]
        return found[:limit]

    def open_runs(self, query: Query, *, limit: int = 200) -> list[Any]:
        raise NotImplementedError

    def cell_names(self) -> set[str]:
        if not self._has_facts():
            return set()
        return {name for (name,) in self.connection().execute("SELECT DISTINCT name FROM cells")}

    def fact_names(self) -> set[str]:
        if not self._has_facts():
            return set()
        conn = self.connection()
        names = {f"columns.{name}" for name in self.cell_names()}
        for (key,) in conn.execute("SELECT DISTINCT key FROM data_summaries"):
            names |= {f"data.{key}.min", f"data.{key}.max"}
        return names

    def facts_since(self, mark: int) -> tuple[int, list[str]]:
        conn = self.connection()
        if not self._has_facts():
            return mark, []
        rows = conn.execute(
            "SELECT uid, seq FROM run_facts JOIN runs ON runs.id = run_facts.run_id WHERE seq > ? ORDER BY seq",
            (mark,),
        ).fetchall()
        return (rows[-1][1] if rows else mark), [uid for uid, _ in rows]
