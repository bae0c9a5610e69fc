"""``stream.to_dask()``: a stream as an xarray Dataset whose external arrays are read by chunk.

Scalars and arrays stored in the documents are read at once (they are already in
the store's rows); each external array key (images, spectra from files) becomes
a dask array of one chunk per :data:`ROWS_PER_CHUNK` rows. A chunk, when
computed, fills only its rows: over documents, it gathers the stream's documents
of those rows (read once, when ``to_dask()`` is called; no file is opened then)
and fills them through the handler registry; over a source that stores columns
(:class:`~scandeck.sources.protocol.StreamTables`, Tiled), it slices the source's
lazy array (``dask.array.from_array``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .documents import is_scalar
from .exceptions import FillError
from .reading import Table, collect, columns, to_xarray, variable
from .sources.protocol import Entry, LazyArray

if TYPE_CHECKING:
    import xarray

#: Rows in one dask chunk of an external array key (one image per task by default).
ROWS_PER_CHUNK = 1

_KIND_DTYPES = {"number": "float64", "integer": "int64", "boolean": "bool", "array": "float64"}


def lazy_keys(data_keys: Mapping[str, Mapping[str, Any]], *, stored_as_arrays: bool = False) -> list[str]:
    """The keys ``to_dask()`` reads by chunk: external arrays (not external scalars).

    With ``stored_as_arrays`` (a :class:`~scandeck.sources.protocol.StreamTables`
    source, where every array key is an array in the store): every array key.
    """
    return [k for k, v in data_keys.items() if (stored_as_arrays or v.get("external")) and not is_scalar(v)]


def _row_shape(key: str, info: Mapping[str, Any]) -> tuple[int, ...]:
    shape = info.get("shape") or []
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise FillError(
            f"key {key!r} declares shape {shape!r}, with an unknown size: to_dask() needs the shape "
            "of a row to plan its chunks; use read() for this key"
        )
    return tuple(shape)


def _dtype(info: Mapping[str, Any]) -> np.dtype[Any]:
    declared = info.get("dtype_numpy")
    if declared:
        try:
            return np.dtype(declared)
        except TypeError:
            pass
    return np.dtype(_KIND_DTYPES.get(str(info.get("dtype")), "float64"))


def _rows_from_documents(
    entries: Sequence[Entry], descriptor_uids: set[str], key: str, seqs: list[int]
) -> list[Any]:
    """The filled values of ``key`` at ``seqs``, from the documents of those rows only."""
    wanted = set(seqs)

    def keep(entry: Entry) -> bool:
        name, doc = entry.name, entry.doc
        if name == "event":
            return doc["seq_num"] in wanted
        if name == "event_page":
            return not wanted.isdisjoint(doc["seq_num"])
        if name == "stream_datum":
            first, stop = int(doc["seq_nums"]["start"]), int(doc["seq_nums"]["stop"])
            return any(first <= s < stop for s in wanted)
        return True  # descriptors and the resources/datums a fill looks up (no file is read for them)

    table = collect([e for e in entries if keep(e)], descriptor_uids, fill=[key], keys=[key])
    _, seq, cols = columns(table)
    at = {int(s): i for i, s in enumerate(seq)}
    missing = [s for s in seqs if s not in at]
    if missing:
        raise FillError(f"key {key!r} has no stored value for seq_num {missing[0]} any more")
    return [cols[key][at[s]] for s in seqs]


def _chunk(
    fetch: Callable[[list[int]], list[Any]], key: str, seqs: list[int], shape: tuple[int, ...], dtype: Any
) -> Any:
    rows = fetch(seqs)
    out = np.stack([np.asarray(r) for r in rows]) if rows else np.empty((0, *shape), dtype=dtype)
    if out.shape[1:] != shape:
        raise FillError(
            f"key {key!r}: its data_key declares rows of shape {list(shape)} "
            f"but its external data has rows of shape {list(out.shape[1:])}"
        )
    return out.astype(dtype, copy=False)


def to_dask(
    table: Table,
    descriptor_uids: set[str],
    infos: Mapping[str, Mapping[str, Any]],
    *,
    entries: Sequence[Entry] | None = None,
    arrays: Mapping[str, LazyArray] | None = None,
) -> xarray.Dataset:
    """The Dataset of ``table`` with the keys of ``infos`` (``{key: data_key}``) as dask arrays.

    ``table`` holds the rows (its columns of those keys, references if any, are
    dropped). ``entries``: the stream's stored documents (document sources);
    ``arrays``: the source's lazy arrays by key
    (:class:`~scandeck.sources.protocol.StreamTables`).
    """
    import dask
    import dask.array as da

    time, seq, _ = columns(table)
    lazy = list(infos)
    for key in lazy:
        table.data_keys.pop(key, None)
        table.data.pop(key, None)
    ds = to_xarray(table)
    dim = "time" if time is not None else "seq_num"
    seqs = [int(s) for s in seq]
    for key in lazy:
        info = infos[key]
        if arrays is not None:  # the store's own array: its shape and dtype, sliced by dask
            stored = arrays[key]
            shape = tuple(int(n) for n in stored.shape[1:])
            data = da.from_array(stored, chunks=(ROWS_PER_CHUNK, *shape))[: len(seqs)]
            if data.shape[0] != len(seqs):
                raise FillError(
                    f"key {key!r} has {data.shape[0]} rows stored as an array but the stream has {len(seqs)} rows"
                )
        else:
            shape, dtype = _row_shape(key, info), _dtype(info)
            assert entries is not None  # a document source passes its entries

            def fetch(block: list[int], key: str = key) -> list[Any]:
                return _rows_from_documents(entries, descriptor_uids, key, block)

            blocks = [seqs[i : i + ROWS_PER_CHUNK] for i in range(0, len(seqs), ROWS_PER_CHUNK)]
            parts = [
                da.from_delayed(
                    dask.delayed(_chunk)(fetch, key, block, shape, dtype), shape=(len(block), *shape), dtype=dtype
                )
                for block in blocks
            ]
            data = da.concatenate(parts) if parts else da.empty((0, *shape), dtype=dtype)
        ds[key] = variable(dim, key, info, data)
    return ds
