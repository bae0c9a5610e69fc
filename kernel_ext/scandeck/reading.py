"""A stream's documents to columns, then to xarray and pandas.

One pass over the stored documents of one stream: events and event pages are
appended column-wise, external values (datum ids, stream_datum ranges) are
filled through :mod:`scandeck.handlers`, and each column becomes one numpy
array. Imported lazily: numpy, pandas and xarray load on the first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .sources.protocol import Entry

#: Documents a stream read needs (the rest of the run is skipped in the store).
STREAM_DOCUMENTS = (
    "descriptor", "event", "event_page", "resource", "datum", "datum_page",
    "stream_resource", "stream_datum",
)


@dataclass
class Table:
    """Columns of one stream: ``time``, ``seq_num`` and one list per data key."""

    data_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    time: list[float] = field(default_factory=list)
    seq_num: list[int] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)
    stream_data: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seq_num)


def _is_external(data_key: Mapping[str, Any]) -> bool:
    return bool(data_key.get("external"))


def collect(entries: Iterable[Entry], descriptor_uids: set[str], *, fill: bool = True) -> Table:
    """Gather the columns of the stream made of ``descriptor_uids``."""
    table = Table()
    filler = None
    external: list[str] = []
    try:
        for _, name, doc in entries:
            if name in ("event", "event_page"):
                if doc["descriptor"] not in descriptor_uids:
                    continue
                _append(table, name, doc)
            elif name == "descriptor":
                if doc["uid"] in descriptor_uids:
                    _add_keys(table, doc["data_keys"])
                    external = [k for k, v in table.data_keys.items() if _is_external(v)]
            elif name == "stream_datum":
                if doc["descriptor"] in descriptor_uids and fill:
                    filler = filler or _filler()
                    _append_stream_datum(table, doc, filler)
            elif fill:
                filler = filler or _filler()
                filler(name, doc)
        internal_refs = [k for k in external
                         if not str(table.data_keys[k]["external"]).startswith("STREAM:")]
        if fill and internal_refs:
            filler = filler or _filler()
            for key in internal_refs:
                table.data[key] = [None if d is None else filler.fill_datum(d) for d in table.data[key]]
    finally:
        if filler is not None:
            filler.close()
    return table


def _filler() -> Any:
    from .handlers import Filler

    return Filler()


def _add_keys(table: Table, data_keys: Mapping[str, Any]) -> None:
    for key, info in data_keys.items():
        if key not in table.data_keys:
            table.data_keys[key] = dict(info)
            # A key added by a later descriptor has no values for earlier rows.
            table.data[key] = [None] * len(table.seq_num)


def _append(table: Table, name: str, doc: Mapping[str, Any]) -> None:
    data = doc["data"]
    if name == "event":
        table.time.append(doc["time"])
        table.seq_num.append(doc["seq_num"])
        for key, column in table.data.items():
            column.append(data.get(key))
    else:
        n = len(doc["seq_num"])
        table.time.extend(doc["time"])
        table.seq_num.extend(doc["seq_num"])
        for key, column in table.data.items():
            values = data.get(key)
            column.extend(values if values is not None else [None] * n)


def _append_stream_datum(table: Table, doc: Mapping[str, Any], filler: Any) -> None:
    rows = filler.fill_stream_datum(doc)
    key = filler.stream_data_key(doc)
    first = doc["seq_nums"]["start"]
    out = table.stream_data.setdefault(key, [])
    out.extend((first + i, row) for i, row in enumerate(rows))


def _merge_stream_data(table: Table) -> None:
    """Put stream_datum rows on the rows of the events with the same seq_num."""
    for key, rows in table.stream_data.items():
        index = {s: i for i, s in enumerate(table.seq_num)}
        column = table.data.setdefault(key, [None] * len(table.seq_num))
        for seq, value in rows:
            i = index.get(seq)
            if i is None:  # data with no event: a row of its own, time unknown
                index[seq] = i = len(table.seq_num)
                table.seq_num.append(seq)
                table.time.append(float("nan"))
                for other in table.data.values():
                    other.append(None)
            column[i] = value
    table.stream_data.clear()


def _column(values: list[Any], info: Mapping[str, Any]) -> np.ndarray:
    dtype_numpy = info.get("dtype_numpy")
    kind = info.get("dtype")
    if kind == "array" or info.get("shape"):
        if values and all(v is not None for v in values):
            return np.stack([np.asarray(v) for v in values]) if values else np.empty((0,))
        return np.asarray(values, dtype=object)
    if None in values:  # scalars only here: == against None is cheap and unambiguous
        if kind in ("number", "integer"):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.asarray(values, dtype=object)
    if kind == "string":
        return np.asarray(values, dtype=object if not values else None)
    arr = np.asarray(values)
    if dtype_numpy and arr.dtype.kind in "iufb" and arr.size:
        try:
            arr = arr.astype(np.dtype(dtype_numpy), copy=False)
        except TypeError:
            pass
    elif kind == "number" and not arr.size:
        arr = arr.astype(float)
    return arr


def _column_or_objects(values: list[Any], info: Mapping[str, Any]) -> np.ndarray:
    """:func:`_column`, or one object per row when that fails.

    A key of variable shape (``None`` in its declared shape), or values that
    disagree with the declared dtype (a str in a "number" key), make no array of
    one dtype and shape; the store accepted them, so they still read.
    """
    try:
        return _column(values, info)
    except (ValueError, TypeError, OverflowError):
        out = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            out[i] = value
        return out


def columns(table: Table) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(time, seq_num, {key: array})`` with rows ordered by seq_num."""
    _merge_stream_data(table)
    time = np.asarray(table.time, dtype=float)
    seq = np.asarray(table.seq_num, dtype=np.int64)
    order = None
    if seq.size > 1 and np.any(np.diff(seq) < 0):
        order = np.argsort(seq, kind="stable")
        time, seq = time[order], seq[order]
    out: dict[str, np.ndarray] = {}
    for key, values in table.data.items():
        arr = _column_or_objects(values, table.data_keys[key])
        out[key] = arr[order] if order is not None else arr
    return time, seq, out


def to_xarray(table: Table) -> Any:
    """An ``xarray.Dataset``: ``time`` as dimension coordinate, one variable per key."""
    import xarray as xr

    time, seq, cols = columns(table)
    variables = {}
    for key, arr in cols.items():
        info = table.data_keys[key]
        dims = info.get("dims") or [f"{key}_dim_{i}" for i in range(1, arr.ndim)]
        dims = list(dims)[: arr.ndim - 1]
        dims += [f"{key}_dim_{i}" for i in range(len(dims) + 1, arr.ndim)]
        attrs = {k: info[k] for k in ("units", "source", "dtype", "shape", "precision") if k in info}
        if "units" not in attrs:
            attrs["units"] = ""
        variables[key] = xr.Variable(("time", *dims), arr, attrs=attrs)
    return xr.Dataset(variables, coords={"time": time, "seq_num": ("time", seq)})


def to_pandas(table: Table) -> Any:
    """A ``pandas.DataFrame`` of the scalar keys, indexed by ``seq_num``, with ``time``."""
    import pandas as pd

    time, seq, cols = columns(table)
    scalar = {
        k: v for k, v in cols.items()
        if v.ndim == 1 and not table.data_keys[k].get("external") and not table.data_keys[k].get("shape")
    }
    frame = pd.DataFrame({"time": time, **scalar}, index=pd.Index(seq, name="seq_num"))
    return frame
