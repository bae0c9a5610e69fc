"""Reading a stream from the embedded store's column blocks (written by :mod:`.sqlite_columns`).

A read takes, in one read transaction (one snapshot of a growing run): the run's
flush point, the blocks of the columns asked for, the descriptors, the documents
external data needs (``run_extras``) and the events after the flush point. The
blocks become numpy columns (one copy of their bytes), the events after them are
gathered as any document source's are (:func:`scandeck.reading.collect`), and the
handlers fill external data as they do for documents.

``rows=slice(...)`` reads only the blocks that hold those rows (and the ``seq_num``
column, which says the rows' order): a slice of a long run costs what it holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from ..documents import unpack
from ..reading import Table, collect, is_stream_key
from .protocol import Entry
from .sqlite_columns import DATA_PART, SEQ_PART, TIME_PART
from .sqlite_db import has_table

__all__ = ["read_stream"]

Column = np.ndarray | list[Any]


def _decode(rows: int, dtype: str | None, shape: str, data: bytes) -> Column:
    if dtype is None:
        values = msgpack.unpackb(data, raw=False, strict_map_key=False)
        assert isinstance(values, list) and len(values) == rows
        return values
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape((rows, *json.loads(shape)))


def _joined(pieces: list[Column]) -> Column:
    """One column from its blocks: an array when every block is one (numpy promotes as for a list).

    Blocks without rows are left out: an empty one is float64 and would make integers floats.
    """
    pieces = [p for p in pieces if len(p)]
    arrays = [p for p in pieces if isinstance(p, np.ndarray)]
    if len(arrays) == len(pieces) and len({a.shape[1:] for a in arrays}) == 1:
        return np.concatenate(arrays) if len(arrays) > 1 else arrays[0].copy()
    out: list[Any] = []
    for piece in pieces:
        out.extend(piece.tolist() if isinstance(piece, np.ndarray) else piece)
    return out


@dataclass
class _Window:
    """Which blocks hold the rows asked for, and which of their rows and of the later events."""

    first: int  # index of the first block read
    last: int  # index of the last block read (inclusive); last < first: none
    head: slice  # rows of the blocks read, from the first block's first row
    tail: slice  # rows of the events after the blocks


def _window(counts: list[int], tail_rows: int, rows: slice) -> _Window | None:
    """The blocks and rows ``rows`` covers; None for a negative step (read everything, then slice)."""
    total = sum(counts) + tail_rows
    start, stop, step = rows.indices(total)
    if step < 0 or start >= stop:
        return None  # read everything, then slice: an empty read would not know the columns' shapes
    ends = np.cumsum(counts) if counts else np.zeros(0, dtype=int)
    in_blocks = int(ends[-1]) if counts else 0
    first = int(np.searchsorted(ends, start, side="right"))
    last = int(np.searchsorted(ends, min(stop, in_blocks) - 1, side="right")) if stop > start else -1
    if start >= in_blocks:
        last = first - 1
    offset = int(ends[first - 1]) if first > 0 else 0
    head = slice(start - offset, max(0, min(stop, in_blocks) - offset), step)
    # The first row at or after the blocks that the step lands on.
    tail_start = start if start >= in_blocks else start + -(-(in_blocks - start) // step) * step
    tail = slice(tail_start - in_blocks, max(0, stop - in_blocks), step)
    return _Window(first, last, head, tail)


def _parts_sql(keys: Collection[str] | None) -> tuple[str, list[str]]:
    if keys is None:
        return f"part != '{SEQ_PART}'", []
    parts = [TIME_PART, *(DATA_PART + k for k in keys)]
    return f"part IN ({','.join('?' * len(parts))})", parts


def _rows_of(entries: list[Entry], descriptor: str) -> list[int]:
    """seq_num of the events in ``entries`` that belong to ``descriptor``, in order."""
    out: list[int] = []
    for entry in entries:
        if entry.name == "event" and entry.doc["descriptor"] == descriptor:
            out.append(entry.doc["seq_num"])
        elif entry.name == "event_page" and entry.doc["descriptor"] == descriptor:
            out.extend(entry.doc["seq_num"])
    return out


def _streamed(entries: list[Entry], descriptor: str) -> bool:
    """Whether the descriptor has keys filled by stream_datum documents (rows that are not events)."""
    for entry in entries:
        if entry.name == "descriptor" and entry.doc["uid"] == descriptor:
            keys = entry.doc.get("data_keys") or {}
            return any(is_stream_key(info) for info in keys.values())
    return False


def read_stream(
    conn: sqlite3.Connection,
    run_id: int,
    descriptor: str,
    *,
    keys: Collection[str] | None,
    fill: bool | Collection[str],
    rows: slice | None = None,
) -> Table | None:
    """One descriptor's rows: its blocks, then its events after them.

    None for a run without blocks (the caller reads documents), and for ``rows`` of
    a stream whose order is not its documents' (a slice of it is taken after sorting).
    """
    conn.execute("BEGIN")
    try:
        if not has_table(conn, "column_cover"):  # a read-only store of an older release
            return None
        cover = conn.execute("SELECT pos FROM column_cover WHERE run_id = ?", (run_id,)).fetchone()
        if cover is None:
            return None
        docs = conn.execute(
            "SELECT pos, 'descriptor', doc FROM descriptors WHERE run_id = ?", (run_id,)
        ).fetchall()
        docs += conn.execute(
            "SELECT d.pos, d.name, d.doc FROM run_extras AS x JOIN documents AS d "
            "ON d.run_id = x.run_id AND d.pos = x.pos "
            "WHERE x.run_id = ? AND (d.descriptor IS NULL OR d.descriptor = ?)",
            (run_id, descriptor),
        ).fetchall()
        docs += conn.execute(
            "SELECT pos, name, doc FROM documents WHERE run_id = ? AND pos > ? "
            "AND name IN ('event', 'event_page') AND descriptor = ?",
            (run_id, cover[0], descriptor),
        ).fetchall()
        docs.sort(key=lambda row: row[0])
        entries = [Entry(pos, name, unpack(blob)) for pos, name, blob in docs]
        base = "FROM column_blocks WHERE run_id = ? AND descriptor = ? AND last_pos <= ?"
        params: list[Any] = [run_id, descriptor, cover[0]]
        seq_blocks = conn.execute(
            f"SELECT last_pos, rows, dtype, shape, data {base} AND part = ? ORDER BY last_pos", [*params, SEQ_PART]
        ).fetchall()
        seq = [_decode(*row[1:]) for row in seq_blocks]
        window = None
        if rows is not None:
            if _streamed(entries, descriptor):
                return None
            tail_seq = _rows_of(entries, descriptor)
            order = [*seq, tail_seq]
            if not all(isinstance(s, np.ndarray) for s in seq) or np.any(np.diff(np.concatenate(order)) < 0):
                return None  # rows not in seq_num order: slice after sorting
            window = _window([len(s) for s in seq], len(tail_seq), rows)
            if window is None:
                return None
        where, parts = _parts_sql(keys)
        sql = f"SELECT part, last_pos, rows, dtype, shape, data {base} AND {where}"
        if window is not None:
            if window.last < window.first:
                sql += " AND 0"
            else:
                sql += " AND last_pos BETWEEN ? AND ?"
                parts += [seq_blocks[window.first][0], seq_blocks[window.last][0]]
        pieces: dict[str, dict[int, Column]] = {}  # part -> {last_pos: block}
        for part, last_pos, n, dtype, shape, data in conn.execute(sql, [*params, *parts]):
            pieces.setdefault(part, {})[last_pos] = _decode(n, dtype, shape, data)
    finally:
        conn.execute("COMMIT")
    blocks = [(row[0], len(s)) for row, s in zip(seq_blocks, seq, strict=True)]  # (last_pos, rows)
    if window is not None:
        seq, blocks = seq[window.first : window.last + 1], blocks[window.first : window.last + 1]

    def joined(part: dict[int, Column]) -> Column:
        # A key no event of a block carried (a STREAM: key some events hold) has no
        # block there: None rows, as an event without the key reads.
        return _joined([part.get(last_pos, [None] * n) for last_pos, n in blocks])

    head = Table()
    if seq:
        head.seq_num = _joined(seq)
        head.time = joined(pieces.pop(TIME_PART))
        head.data = {part[len(DATA_PART) :]: joined(p) for part, p in pieces.items()}
    if window is None:
        return collect(entries, {descriptor}, fill=fill, keys=keys, prefix=head)
    _slice_table(head, window.head)
    n_head = len(head)
    # The events after the blocks are few (at most one block's worth): gathered whole, then cut.
    table = collect(entries, {descriptor}, fill=fill, keys=keys, prefix=head)
    _slice_table(table, slice(n_head, None), then=window.tail)
    return table


def _slice_table(table: Table, rows: slice, then: slice | None = None) -> None:
    """Keep ``rows`` of every column (with ``then``: keep the rows before ``rows.start`` and ``rows[then]``)."""
    for name in ("time", "seq_num"):
        setattr(table, name, _keep(getattr(table, name), rows, then))
    table.data = {k: _keep(v, rows, then) for k, v in table.data.items()}


def _keep(column: Column, rows: slice, then: slice | None) -> Column:
    if then is None:
        return column[rows]
    head, rest = column[: rows.start], column[rows.start :][then]
    if isinstance(head, np.ndarray):  # the events after the blocks joined the blocks' array
        return np.concatenate([head, rest])
    return head + rest
