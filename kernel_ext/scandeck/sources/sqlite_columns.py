"""Column blocks: the embedded store's events kept a second time, as numpy columns.

The ``documents`` table stays the record: :meth:`~scandeck.sources.sqlite.SQLiteSource.documents`
returns every document as written. Beside it the writer keeps, per run:

* ``column_blocks``: for each descriptor and each column (``time``, ``seq_num``,
  ``data:<key>``), blocks of consecutive events' values: the raw bytes of a numpy
  array (numbers, booleans, equal-shaped arrays of them), or a msgpack list for
  anything else (strings, ``None`` gaps, ragged arrays, datum ids);
* ``column_cover``: the position up to which every event of the run is in a block
  (the blocks' common flush point). Events after it are read as documents;
* ``run_extras``: the positions of the run's other documents a stream read needs
  (resources, datums, stream resources and stream datums), so that a read never
  walks the run's events to find them.

A flush is written in the transaction of the document that follows the flushed
events (or of the stop document), so a killed writer leaves blocks that agree with
the stored documents, and the events after the last flush are still read from
their documents. Blocks grow with the run (1,024 rows, then as many as are already
in blocks, up to 16,384): a run of 100,000 events has about ten per column.

A run without a ``column_cover`` row (written before the blocks existed, or resumed
from such a store) is read from its documents, as before: stores made by earlier
releases are read as they are, not migrated.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgpack
import numpy as np

from ..documents import normalize_value
from ..runtable.summaries import array_range, column_range
from ..safe_text import printable
from .protocol import Entry
from .sqlite_facts import add_summaries, refresh_facts

log = logging.getLogger(__name__)

__all__ = ["DATA_PART", "EXTRA_DOCUMENTS", "SEQ_PART", "TIME_PART", "BlockWriter", "ColumnBuffer"]


#: Documents a stream read needs besides descriptors and events (kept in ``run_extras``).
EXTRA_DOCUMENTS = frozenset({"resource", "datum", "datum_page", "stream_resource", "stream_datum"})

#: Rows of the first block; later blocks hold as many rows as the run already has in
#: blocks, up to MAX_ROWS (so a read concatenates O(log n) + n / MAX_ROWS blocks).
MIN_ROWS = 1024
MAX_ROWS = 16_384
#: Values (array elements count one each) buffered at most before a flush: a run
#: of images inside events flushes by size long before MAX_ROWS.
MAX_CELLS = 2_000_000

#: Types whose values read back from msgpack as they are (np.float64 is a float).
_PLAIN = frozenset({float, int, str, bool, type(None), np.float64})

#: Names of the blocks' columns: ``time``, ``seq_num`` and ``data:<key>`` per data key.
TIME_PART, SEQ_PART, DATA_PART = "time", "seq_num", "data:"


def start_run(conn: sqlite3.Connection, run_id: int) -> None:
    """Mark a new run as kept in blocks (inside the transaction storing its start document)."""
    conn.execute("INSERT INTO column_cover VALUES (?, 0)", (run_id,))


def _plain(values: Any) -> list[Any]:
    """A column's values as msgpack gives them back (lists, Python scalars)."""
    if type(values) is list and set(map(type, values)) <= _PLAIN:
        return values
    return list(normalize_value(values))


def _cells(info: Mapping[str, Any]) -> int:
    shape = info.get("shape") or []
    return max(1, math.prod(int(n) for n in shape if isinstance(n, int) and n > 0))


@dataclass
class _Columns:
    """One descriptor's buffered rows: columns, then single events' data not yet made columns."""

    cells_per_row: int
    time: list[Any] = field(default_factory=list)
    seq_num: list[Any] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)
    #: ``data`` of single events since the columns were last extended: a copy of the
    #: dict is all an event costs; they become columns at a flush or before a page.
    events: list[dict[str, Any]] = field(default_factory=list)

    def add_event(self, data: Mapping[str, Any]) -> None:
        if set(map(type, data.values())) <= _PLAIN:
            self.events.append(dict(data))
        else:  # arrays, numpy integers, ...: as they read back, and safe from later changes
            self.events.append({k: v if type(v) in _PLAIN else normalize_value(v) for k, v in data.items()})

    def columns(self) -> dict[str, list[Any]]:
        """``data`` with the buffered events appended (a missing value is None, as a reader has it)."""
        if self.events:
            before = len(self.seq_num) - len(self.events)
            for key in set().union(*self.events) - self.data.keys():
                self.data[key] = [None] * before
            for key, column in self.data.items():
                column.extend([row.get(key) for row in self.events])
            self.events.clear()
        return self.data


class ColumnBuffer:
    """One open run's events since the last flush, column-wise, per descriptor.

    The writer adds an event once its document is committed, and writes a flush in
    the transaction of a later document; :meth:`clear` after that commits.
    """

    def __init__(self, flushed_rows: int = 0) -> None:
        self._descriptors: dict[str, _Columns] = {}
        self._cells: dict[str, int] = {}  # descriptor uid -> values per row
        self.rows = 0
        self.cells = 0
        self.flushed_rows = flushed_rows

    def describe(self, doc: Mapping[str, Any]) -> None:
        """Know a descriptor's keys (for the size of its rows)."""
        keys = doc.get("data_keys") or {}
        self._cells[doc["uid"]] = max(1, sum(_cells(info) for info in keys.values()))

    def add(self, name: str, doc: Mapping[str, Any]) -> None:
        """Buffer an ``event`` or ``event_page`` already stored as a document."""
        desc = doc["descriptor"]
        cols = self._descriptors.get(desc)
        if cols is None:
            cols = self._descriptors[desc] = _Columns(self._cells.get(desc, 1))
        data = doc["data"]
        if name == "event":
            n = 1
            time, seq_num = doc["time"], doc["seq_num"]  # float32 times pass validation: as they read back
            cols.time.append(time if type(time) in _PLAIN else normalize_value(time))
            cols.seq_num.append(seq_num if type(seq_num) in _PLAIN else normalize_value(seq_num))
            cols.add_event(data)
        else:
            n = len(doc["seq_num"])
            columns = cols.columns()
            before = len(cols.seq_num)
            cols.time.extend(_plain(doc["time"]))
            cols.seq_num.extend(_plain(doc["seq_num"]))
            for key in data.keys() - columns.keys():
                columns[key] = [None] * before
            for key, column in columns.items():
                values = data.get(key)
                column.extend(_plain(values) if values is not None else [None] * n)
        self.rows += n
        self.cells += n * cols.cells_per_row

    def due(self) -> bool:
        """Whether the buffered rows make a block."""
        return self.rows >= max(MIN_ROWS, min(self.flushed_rows, MAX_ROWS)) or self.cells >= MAX_CELLS

    def flush(self, conn: sqlite3.Connection, run_id: int, last_pos: int) -> None:
        """Write the buffered rows as blocks of every event up to ``last_pos`` (in the caller's transaction)."""
        rows = []
        for desc, cols in self._descriptors.items():
            n = len(cols.seq_num)
            if not n:  # only empty pages since the last flush: a block would be float64 and empty
                continue
            parts = {TIME_PART: cols.time, SEQ_PART: cols.seq_num}
            for key, values in cols.columns().items():
                if len(values) != n:  # the writer's checks make this impossible; never store a wrong block
                    raise ValueError(f"column {key!r} has {len(values)} rows, seq_num {n}")
                parts[DATA_PART + key] = values
            ranges = {}
            for part, values in parts.items():
                encoded = _encode(values)
                rows.append((run_id, desc, part, last_pos, n, *encoded))
                if not part.startswith(DATA_PART):
                    continue
                # a block kept as a list (numbers of mixed types, 0, 2.5, 5) has its rows' range
                bounds = _range(encoded[0], encoded[2]) if encoded[0] is not None else column_range(values)
                if bounds is not None:
                    ranges[part[len(DATA_PART) :]] = bounds
            add_summaries(conn, run_id, desc, ranges)
        conn.executemany("INSERT INTO column_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        refresh_facts(conn, run_id)
        conn.execute("UPDATE column_cover SET pos = ? WHERE run_id = ?", (last_pos, run_id))

    def clear(self) -> None:
        """Forget the flushed rows (after the flush's transaction committed)."""
        self.flushed_rows += self.rows
        self._descriptors.clear()
        self.rows = self.cells = 0


#: The Python types a numpy kind gives back (``tolist()``, as a read that needs a list does).
_KIND_TYPES: dict[str, set[type]] = {"b": {bool}, "i": {int}, "u": {int}, "f": {float, np.float64}}


#: numpy dtypes of columns whose values are all of one of these types.
_FLAT = {float: np.float64, np.float64: np.float64, int: np.int64, bool: np.bool_}


def _flat(values: list[Any]) -> np.ndarray | None:
    """A column of floats, ints or bools, all of one type, as numpy; None for anything else."""
    types = set(map(type, values))
    if len(types) != 1 or (dtype := _FLAT.get(types.pop())) is None:
        return None
    try:
        return np.fromiter(values, dtype, len(values))
    except OverflowError:  # an int past 64 bits
        return None


def _range(dtype: str | None, data: bytes) -> tuple[float, float] | None:
    """``(min, max)`` of a numeric block's values, for the data summaries.

    The rule (array elements count, NaN does not, infinities do) is the one every
    writer follows: :mod:`scandeck.runtable.summaries`.
    """
    if dtype is None or np.dtype(dtype).kind not in "iuf":
        return None
    return array_range(np.frombuffer(data, dtype))


def _encode(values: list[Any]) -> tuple[str | None, str, bytes]:
    """``(dtype, row shape as JSON, bytes)``: numpy bytes when the values make a numeric array.

    Only values numpy keeps as they are: ``[1, 2.5]`` would read back ``[1.0, 2.5]``,
    which shows once the column is a list (a gap, a string, a ragged row in another block).
    """
    flat = _flat(values)
    if flat is not None:  # the usual column of scalars of one type: no second pass to check it
        return flat.dtype.str, "[]", flat.tobytes()
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is not None and arr.dtype.kind in "biuf" and arr.ndim >= 1:
        cells: Iterable[Any] = values
        for _ in range(arr.ndim - 1):  # rows of arrays: nested lists, the same depth in every row
            cells = chain.from_iterable(cells)
        if set(map(type, cells)) <= _KIND_TYPES[arr.dtype.kind]:
            return arr.dtype.str, json.dumps(arr.shape[1:]), arr.tobytes()
    return None, "[]", msgpack.packb(values, use_bin_type=True)


class BlockWriter:
    """The column blocks of one writer's open runs.

    The writer calls :meth:`in_transaction` before committing each document and
    :meth:`committed` after: a flush is written with the document that follows the
    flushed events, and the buffers change only once SQLite has committed, so a
    rolled-back document leaves them as they were.
    """

    def __init__(self) -> None:
        self._runs: dict[str, ColumnBuffer] = {}
        self._flushed: str | None = None  # the run whose flush is in the open transaction
        self._dropped: str | None = None  # the run whose blocks the open transaction gives up

    def in_transaction(self, conn: sqlite3.Connection, uid: str, run_id: int, pos: int, name: str) -> None:
        """Index the document at ``pos`` and write a due flush (inside its transaction)."""
        self._flushed = self._dropped = None
        if name == "start":
            start_run(conn, run_id)
            return
        buffer = self._runs.get(uid)
        if buffer is None:  # a run resumed from a store without blocks: documents only
            return
        if name in EXTRA_DOCUMENTS:
            conn.execute("INSERT INTO run_extras VALUES (?, ?)", (run_id, pos))
        if buffer.rows and (name == "stop" or buffer.due()):
            try:
                buffer.flush(conn, run_id, pos - 1)
            except sqlite3.Error:
                raise  # the store refused it: so is the document, and the next one tries again
            except Exception:
                # Values the blocks cannot hold (a bug of ours): the run stays readable from
                # its documents, and the writer goes on without blocks for it.
                note = "column blocks of run %s dropped; it reads from its documents"
                log.warning(note, printable(uid), exc_info=True)
                conn.execute("DELETE FROM column_cover WHERE run_id = ?", (run_id,))
                self._dropped = uid
                return
            self._flushed = uid

    def committed(self, uid: str, name: str, doc: Mapping[str, Any]) -> None:
        """The document is stored: clear a written flush, buffer its events."""
        if name == "start":
            self._runs[uid] = ColumnBuffer()
            return
        buffer = self._runs.get(uid)
        if buffer is None:
            return
        if self._dropped == uid:
            del self._runs[uid]
            self._dropped = None
            return
        if self._flushed == uid:
            buffer.clear()
            self._flushed = None
        if name in ("event", "event_page"):
            buffer.add(name, doc)
        elif name == "descriptor":
            buffer.describe(doc)
        elif name == "stop":
            del self._runs[uid]

    def rolled_back(self) -> None:
        self._flushed = self._dropped = None

    def resume(self, conn: sqlite3.Connection, uid: str, run_id: int, entries: Iterable[Entry]) -> None:
        """Take over an incomplete run: buffer its events after the last flush again.

        A run kept only as documents (written by an older release) stays so.
        """
        row = conn.execute("SELECT pos FROM column_cover WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return
        flushed = conn.execute(
            "SELECT coalesce(sum(rows), 0) FROM column_blocks WHERE run_id = ? AND part = ?", (run_id, SEQ_PART)
        ).fetchone()[0]
        buffer = ColumnBuffer(flushed)
        for entry in entries:
            if entry.name == "descriptor":
                buffer.describe(entry.doc)
            elif entry.name in ("event", "event_page") and entry.pos > row[0]:
                buffer.add(entry.name, entry.doc)
        self._runs[uid] = buffer
