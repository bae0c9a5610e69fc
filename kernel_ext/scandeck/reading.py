"""A stream's documents to columns, then to xarray and pandas.

One pass over the stored documents of one stream: events and event pages are
appended column-wise, external values (datum ids, stream_datum ranges) are
filled through :mod:`scandeck.handlers`, and each column becomes one numpy
array. Imported lazily: numpy, pandas and xarray load on the first read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .documents import DOCUMENT_NAMES, is_scalar
from .exceptions import FillError
from .sources.protocol import Entry
from .timestamps import TIME_ATTRS, local_datetimes

if TYPE_CHECKING:
    import pandas
    import xarray
    from event_model.documents import StreamDatum

    from .external import Filler

#: Documents a stream read needs: all but start and stop (the rest of the run is skipped in the store).
STREAM_DOCUMENTS = tuple(name for name in DOCUMENT_NAMES if name not in ("start", "stop"))


@dataclass
class Table:
    """Columns of one stream: ``time``, ``seq_num`` and one list per data key.

    A column is a list, or a numpy array for rows read from a store's column blocks
    (:class:`~scandeck.sources.protocol.EventColumns`) until later rows need a list.
    ``stream_data`` holds the rows of keys filled by stream_datum documents,
    ``{key: {seq_num: value}}``, until :func:`columns` puts them on their events.
    """

    data_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    time: Any = field(default_factory=list)
    seq_num: Any = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    stream_data: dict[str, dict[int, Any]] = field(default_factory=dict)
    #: False for a stream whose rows come from stream_datum documents alone (a fly
    #: scan): it has no event times, and is indexed by seq_num.
    timed: bool = True

    def __len__(self) -> int:
        return len(self.seq_num)


def _is_external(data_key: Mapping[str, Any]) -> bool:
    return bool(data_key.get("external"))


def is_stream_key(data_key: Mapping[str, Any]) -> bool:
    """Whether a data key's values come in stream_datum documents (``external: "STREAM:"``)."""
    return str(data_key.get("external", "")).startswith("STREAM:")


def collect(
    entries: Iterable[Entry],
    descriptor_uids: set[str],
    *,
    fill: bool | Collection[str] = True,
    keys: Collection[str] | None = None,
    prefix: Table | None = None,
) -> Table:
    """Gather the columns of the stream made of ``descriptor_uids``.

    ``fill``: True reads every external value through the handlers, False keeps
    the references (datum ids; ``"{stream_resource uid}/{index}"`` for stream
    data), a collection of keys fills those and keeps the others' references.
    ``keys``: only these data keys become columns (and only they are filled); all when None.
    ``prefix``: the stream's first rows, already in columns (a store's column blocks,
    numpy arrays where the values allow); ``entries`` then hold the descriptors, the
    documents external data needs, and the events after those rows.
    """
    table = Table()
    if isinstance(fill, str):
        fill = (fill,)
    kept: Callable[[str], bool] = (lambda key: True) if keys is None else frozenset(keys).__contains__
    filled = (lambda key: True) if fill is True else (lambda key: False) if not fill else set(fill).__contains__

    def wanted(key: str) -> bool:
        return kept(key) and filled(key)

    filler: Filler | None = None
    descriptors: list[dict[str, Any]] = []
    stream_keys: dict[str, str] = {}  # stream_resource uid -> data key

    def get_filler() -> Filler:
        nonlocal filler
        if filler is None:
            filler = _filler()
            for desc in descriptors:
                filler("descriptor", desc)
        return filler

    try:
        for _, name, doc in entries:
            if name in ("event", "event_page"):
                if doc["descriptor"] not in descriptor_uids:
                    continue
                _append(table, name, doc)
            elif name == "descriptor":
                if doc["uid"] in descriptor_uids:
                    descriptors.append(doc)
                    _add_keys(table, {k: v for k, v in doc["data_keys"].items() if kept(k)})
                    if filler is not None:
                        filler(name, doc)
            elif name == "stream_resource":
                stream_keys[doc["uid"]] = doc["data_key"]
                if fill:
                    get_filler()(name, doc)
            elif name == "stream_datum":
                if doc["descriptor"] in descriptor_uids:
                    key = stream_keys.get(doc["stream_resource"])
                    if key is None:
                        raise FillError(
                            f"stream_datum {doc['uid']!r} names stream_resource "
                            f"{doc['stream_resource']!r}, which the run never declared"
                        )
                    if not kept(key):
                        continue
                    sdatum = cast("StreamDatum", doc)  # a stored document matched its schema
                    _add_stream_datum(table, key, sdatum, get_filler() if wanted(key) else None)
            elif fill:
                get_filler()(name, doc)
        if prefix is not None:
            _prepend(prefix, table)
        refs = [k for k, v in table.data_keys.items() if _is_external(v) and not is_stream_key(v) and wanted(k)]
        if refs:
            f = get_filler()
            for key in refs:
                table.data[key] = [None if d is None else f.fill_datum(d) for d in table.data[key]]
    finally:
        if filler is not None:
            filler.close()
    return table


def _filler() -> Filler:
    from .external import Filler

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


def _prepend(prefix: Table, table: Table) -> None:
    """Put ``prefix``'s rows before ``table``'s (numpy columns stay numpy when the new rows allow)."""
    n = len(prefix)
    table.time = _concat(prefix.time, table.time)
    table.seq_num = _concat(prefix.seq_num, table.seq_num)
    for key, values in table.data.items():
        head = prefix.data.get(key)
        table.data[key] = _concat([None] * n if head is None else head, values)


def _concat(head: Any, tail: list[Any]) -> Any:
    """``head + tail`` where ``head`` may be a numeric array; numpy promotes as it would for one list."""
    if not isinstance(head, np.ndarray):
        return head + tail
    if not tail:
        return head
    if None not in tail:
        try:
            more = np.asarray(tail)
        except (ValueError, TypeError, OverflowError):
            more = None
        if more is not None and more.dtype.kind in "biuf" and more.shape[1:] == head.shape[1:]:
            return np.concatenate([head, more])
    return head.tolist() + tail


def _add_stream_datum(table: Table, key: str, doc: StreamDatum, filler: Filler | None) -> None:
    """Remember the values (or references) of a stream_datum's events by seq_num."""
    first = int(doc["seq_nums"]["start"])
    if filler is not None:
        values: Any = filler.fill_stream_datum(doc)
    else:
        i0, i1 = int(doc["indices"]["start"]), int(doc["indices"]["stop"])
        values = [f"{doc['stream_resource']}/{i}" for i in range(i0, i1)]
    out = table.stream_data.setdefault(key, {})
    for i, value in enumerate(values):
        out[first + i] = value


def _merge_stream_data(table: Table) -> None:
    """Put stream_datum rows on their events (same seq_num).

    A stream with events keeps its events as rows: stream data of an event not
    yet written waits for it. A stream without events (a fly scan) gets one row
    per seq_num that every stream key has reached, indexed by seq_num.
    """
    if not table.stream_data:
        return
    if not len(table.seq_num):
        # Every declared stream key, not only those with data yet: a row exists once
        # all of them reached it (as the live table does), so a running read only grows.
        keys = [k for k, info in table.data_keys.items() if is_stream_key(info)] or list(table.stream_data)
        common = set(table.stream_data.get(keys[0], ()))
        for key in keys[1:]:
            common &= table.stream_data.get(key, {}).keys()
        table.seq_num = sorted(common)
        table.time = []
        table.timed = False
        for column in table.data.values():
            column[:] = [None] * len(table.seq_num)
    for key, rows in table.stream_data.items():
        column = table.data.setdefault(key, [None] * len(table.seq_num))
        if isinstance(column, np.ndarray):  # values events carried, from column blocks: a list takes any row
            column = table.data[key] = column.tolist()
        for i, seq in enumerate(table.seq_num):
            value = rows.get(seq)
            if value is not None:
                column[i] = value
    table.stream_data.clear()


def _column(values: list[Any] | np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
    kind = info.get("dtype")
    # An external scalar declared [1] is one value per event (read from its file): gaps become NaN.
    per_row_arrays = (kind == "array" or info.get("shape")) and not (_is_external(info) and is_scalar(info))
    if isinstance(values, np.ndarray):  # a store's column blocks: numbers, no gaps, no references
        return values if per_row_arrays else _scalars(values, info)
    if _is_external(info) and any(isinstance(v, str) for v in values):  # references
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if per_row_arrays:
        if values and all(v is not None for v in values):
            return np.stack([np.asarray(v) for v in values]) if values else np.empty((0,))
        return np.asarray(values, dtype=object)
    if None in values:  # scalars only here: == against None is cheap and unambiguous
        if kind in ("number", "integer"):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return np.asarray(values, dtype=object)
    return _scalars(values, info)


def _scalars(values: list[Any] | np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
    """A column of scalars without gaps, in the data key's numpy dtype where it declares one."""
    dtype_numpy = info.get("dtype_numpy")
    kind = info.get("dtype")
    if kind == "string":
        return np.asarray(values, dtype=object if not len(values) else None)
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


def columns(table: Table) -> tuple[np.ndarray | None, np.ndarray, dict[str, np.ndarray]]:
    """``(time, seq_num, {key: array})`` with rows ordered by seq_num.

    ``time`` is None for a stream without events (its rows have no time).
    """
    _merge_stream_data(table)
    time = np.asarray(table.time, dtype=float) if table.timed else None
    seq = np.asarray(table.seq_num, dtype=np.int64)
    order = None
    if seq.size > 1 and np.any(np.diff(seq) < 0):
        order = np.argsort(seq, kind="stable")
        seq = seq[order]
        time = time[order] if time is not None else None
    out: dict[str, np.ndarray] = {}
    for key, values in table.data.items():
        arr = _column_or_objects(values, table.data_keys[key])
        out[key] = arr[order] if order is not None else arr
    return time, seq, out


def to_xarray(table: Table) -> xarray.Dataset:
    """An ``xarray.Dataset``: ``time`` as dimension coordinate, one variable per key.

    ``time`` holds float seconds since the epoch (UTC); its attrs say so (``units: "s"``).

    A stream without events (a fly scan's) has no times: its dimension is ``seq_num``.
    """
    import xarray as xr

    time, seq, cols = columns(table)
    dim = "time" if time is not None else "seq_num"
    variables = {}
    for key, arr in cols.items():
        variables[key] = variable(dim, key, table.data_keys[key], arr)
    coords: dict[str, Any] = {"seq_num": (dim, seq)}
    if time is not None:
        coords["time"] = (dim, time, dict(TIME_ATTRS))  # seconds, for arithmetic; to_pandas shows dates
    return xr.Dataset(variables, coords=coords)


def variable(dim: str, key: str, info: Mapping[str, Any], data: Any) -> xarray.Variable:
    """The column ``data`` of ``key`` (rows along ``dim``) with its data key's dims and attrs.

    Inner dimensions take the data key's ``dims``, else ``{key}_dim_1``, ...; ``data``
    is a numpy or dask array.
    """
    import xarray as xr

    dims = list(info.get("dims") or [])[: data.ndim - 1]
    dims += [f"{key}_dim_{i}" for i in range(len(dims) + 1, data.ndim)]
    attrs = {k: info[k] for k in ("units", "source", "dtype", "shape", "precision") if k in info}
    attrs.setdefault("units", "")
    return xr.Variable((dim, *dims), data, attrs=attrs)


def to_pandas(table: Table) -> pandas.DataFrame:
    """A ``pandas.DataFrame`` of the scalar keys, indexed by ``seq_num``, with ``time``.

    ``time`` holds local, timezone-aware dates (``datetime64[ns, <local zone>]``);
    :func:`to_xarray` keeps float seconds.

    External scalars are included when the table was filled for them; a key
    holding references (datum ids) is left out, never shown as values.
    """
    import pandas as pd

    time, seq, cols = columns(table)
    scalar = {
        k: v
        for k, v in cols.items()
        if v.ndim == 1 and is_scalar(table.data_keys[k]) and not _holds_references(v, table.data_keys[k])
    }
    head = {"time": local_datetimes(time)} if time is not None else {}  # for people: local dates
    return pd.DataFrame({**head, **scalar}, index=pd.Index(seq, name="seq_num"))


def _holds_references(arr: np.ndarray, info: Mapping[str, Any]) -> bool:
    return _is_external(info) and arr.dtype == object and any(isinstance(v, str) for v in arr)
