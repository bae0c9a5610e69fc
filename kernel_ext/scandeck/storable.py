"""The values a stored document may hold, and the shapes its events must have.

Every store keeps documents as msgpack (SQLite, memory, Redis) and the start and
stop documents also as JSON (SQLite's index), so a document may hold JSON values
only: ``None``, ``bool``, ``int`` in msgpack's range ``[-2**63, 2**64)``,
``float``, ``str`` (valid Unicode), lists (tuples read back as lists) and dicts
with ``str`` keys, nested at most :data:`MAX_DEPTH` levels, plus numpy scalars
and arrays of bool, integer, float (up to 64 bits) or str dtype (object arrays
are walked element by element). Sets, bytes, complex numbers, datetimes and
other objects are refused with the field's path and what to use instead, before
anything is stored, so that whatever a store accepts reads back as written
(modulo :func:`scandeck.documents.normalize`).

:func:`check_storable` walks a document once; :func:`check_shapes` compares an
event's (or event page's) values with the shapes its descriptor declares.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .exceptions import InvalidDocument

#: How deep dicts and lists may nest in a document (msgpack's own limit is 512,
#: Python's recursion limit about 1000; real documents use fewer than 10).
MAX_DEPTH = 64

_INT_MIN, _INT_END = -(1 << 63), 1 << 64  # msgpack's integers
_I64_END = 1 << 63  # SQLite's INTEGER (scan_id) and what it binds into REAL (time)
_SCALARS = frozenset({float, int, str, bool, type(None)})
_PLAIN = frozenset({float, bool, type(None)})  # nothing to check in these
_STR, _INT, _FLOAT = frozenset({str}), frozenset({int}), frozenset({float})

_USE_INSTEAD = {
    "set": "use a list",
    "frozenset": "use a list",
    "bytes": "decode it to a str (or store it base64-encoded)",
    "bytearray": "decode it to a str (or store it base64-encoded)",
    "memoryview": "decode it to a str (or store it base64-encoded)",
    "complex": "store its real and imaginary parts as two numbers",
    "datetime": "store a float of seconds since the epoch or an ISO 8601 str",
    "date": "store an ISO 8601 str",
}


class _Refused(Exception):
    """A value no store can hold; ``path`` is filled innermost first while unwinding."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str | int] = []


def check_storable(name: str, doc: Any) -> frozenset[str]:
    """Raise :class:`InvalidDocument` unless every value of ``doc`` can be stored faithfully.

    The message names the document, the field path (``data/det/3``) and what to
    use instead. ``time`` must be a finite number and ``scan_id`` a signed 64-bit
    integer (the SQLite store indexes both), as must ``seq_num``.

    Returns the data keys of an event page whose columns hold scalars only, which
    :func:`check_shapes` then need not look at again (an empty set for other documents).

    Examples
    --------
    >>> check_storable("start", {"uid": "a", "time": 1.0, "tags": ["Ni", "powder"]})
    frozenset()
    >>> check_storable("start", {"uid": "a", "time": 1.0, "tags": {"Ni"}})
    Traceback (most recent call last):
    ...
    scandeck.exceptions.InvalidDocument: rejected start document uid='a': field 'tags' is a set: \
documents hold JSON values, use a list. Nothing was stored for it.
    """
    if type(doc) is not dict and not isinstance(doc, dict):
        raise InvalidDocument(name, doc, f"a document must be a dict, not {type(doc).__name__}")
    flat: set[str] = set()
    try:
        data = doc.get("data")
        if name == "event_page" and type(data) is dict:
            _walk_dict({k: v for k, v in doc.items() if k != "data"}, 1)
            try:
                _walk_columns(data, flat)
            except _Refused as err:
                err.path.append("data")
                raise
        else:
            _walk_dict(doc, 1)
        try:
            _check_time(doc.get("time"))
        except _Refused as err:
            err.path.append("time")
            raise
        # The SQLite store keeps scan_id, and every reader indexes rows by seq_num, as int64.
        for key in ("scan_id", "seq_num"):
            try:
                _check_int64(doc.get(key))
            except _Refused as err:
                err.path.append(key)
                raise
        if name == "stream_datum":  # its ranges become seq_nums and frame indices
            for key in ("seq_nums", "indices"):
                ranges = doc.get(key)
                if not isinstance(ranges, dict):
                    continue
                for end in ("start", "stop"):
                    try:
                        _check_int64(ranges.get(end))
                    except _Refused as err:
                        err.path += [end, key]
                        raise
    except _Refused as err:
        path = _path(err.path)
        where = f"field {path!r}" if path else "the document"
        raise InvalidDocument(name, doc, f"{where} {err.reason}", field=path) from None
    return frozenset(flat)


def _check_time(value: Any) -> None:
    if type(value) is list:  # an event page's times
        if {*map(type, value)} <= _FLOAT and all(map(math.isfinite, value)):
            return
        for i, item in enumerate(value):
            try:
                _check_time(item)
            except _Refused as err:
                err.path.append(i)
                raise
        return
    if value is None or isinstance(value, (bool, str, dict)):
        return  # not a number at all: the schema says so
    try:
        ok = math.isfinite(value) and (not isinstance(value, int) or _INT_MIN <= value < _I64_END)
    except (TypeError, OverflowError):  # not a number, or an int beyond any float
        ok = isinstance(value, (list, tuple))  # a wrong type: the schema says so
    if not ok:
        raise _Refused(f"is {_show(value)}: a document's time must be a finite number of seconds since the epoch")


def _check_int64(value: Any) -> None:
    if type(value) is list:  # an event page's seq_nums
        if {*map(type, value)} <= _INT and (not value or _INT_MIN <= min(value) and max(value) < _I64_END):
            return
        for i, item in enumerate(value):
            try:
                _check_int64(item)
            except _Refused as err:
                err.path.append(i)
                raise
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # A float passes the schema's "integer" when it is whole (1e308 does).
        if not _INT_MIN <= value < _I64_END:
            raise _Refused(f"is {_show(value)}, outside the signed 64-bit integers it is stored as")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _path(parts: list[str | int]) -> str:
    shown = [str(p) if len(str(p)) <= 40 else f"{str(p)[:30]}..." for p in reversed(parts)]
    if len(shown) > 8:
        shown = [*shown[:3], "...", *shown[-3:]]
    return "/".join(shown)


def _walk(value: Any, depth: int) -> None:
    t = type(value)
    if t is str:
        if not value.isascii():
            _check_text(value)
    elif t is float or t is bool or value is None:
        pass
    elif t is int:
        if not _INT_MIN <= value < _INT_END:
            raise _Refused(
                f"is {_show(value)}, outside the integers a document can hold "
                "([-2**63, 2**64)); store it as a str or a float"
            )
    elif t is dict:
        _walk_dict(value, depth)
    elif t is list or t is tuple:
        _walk_list(value, depth)
    else:
        _walk_other(value, depth)


def _walk_dict(value: Mapping[Any, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(f"nests deeper than {MAX_DEPTH} levels; flatten it or store it as a JSON str")
    for key, item in value.items():
        if type(key) is not str or not key.isascii():
            _check_key(key)
        t = type(item)
        if t is float or (t is str and item.isascii()):  # most values of real documents
            continue
        try:
            _walk(item, depth + 1)
        except _Refused as err:
            err.path.append(key)
            raise


def _walk_columns(data: Mapping[Any, Any], flat: set[str]) -> None:
    """An event page's data; the keys of columns of scalars only go into ``flat``."""
    for key, column in data.items():
        if type(key) is not str or not key.isascii():
            _check_key(key)
        try:
            if type(column) is list:
                if _walk_list(column, 3):
                    flat.add(key)
            else:
                _walk(column, 3)
        except _Refused as err:
            err.path.append(key)
            raise


def _walk_list(value: Sequence[Any], depth: int) -> bool:
    """Check a list; return whether it holds scalars only (JSON ones, no numpy)."""
    if depth > MAX_DEPTH:
        raise _Refused(f"nests deeper than {MAX_DEPTH} levels; flatten it or store it as a JSON str")
    # Event-page columns are long lists of one type: check them with C loops first.
    kinds = {*map(type, value)}
    if kinds <= _PLAIN:
        return True
    if kinds == _STR and all(map(str.isascii, value)):
        return True
    if kinds == _INT and _INT_MIN <= min(value) and max(value) < _INT_END:
        return True
    for i, item in enumerate(value):
        if type(item) in _PLAIN:
            continue  # float, bool, None: nothing to check
        try:
            _walk(item, depth + 1)
        except _Refused as err:
            err.path.append(i)
            raise
    return kinds <= _SCALARS


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise _Refused(
            f"has a key {_show(key)} of type {type(key).__name__}: keys must be str (documents hold JSON values)"
        )
    if not key.isascii():
        try:
            _check_text(key)
        except _Refused as err:
            err.reason = f"has a key {_show(key)} that {err.reason}"
            raise


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Refused(
            f"holds a lone surrogate ({text[err.start]!r} at character {err.start}), which is not "
            "valid Unicode; decode the bytes it came from with errors='replace'"
        ) from None


def _walk_other(value: Any, depth: int) -> None:
    """Subclasses of the JSON types, numpy values, and everything refused."""
    if isinstance(value, str):  # numpy.str_ and other str subclasses
        if not value.isascii():
            _check_text(value)
        return
    if isinstance(value, float):  # numpy.float64
        return
    np = sys.modules.get("numpy")  # a numpy value means numpy is imported already
    if np is not None:
        if isinstance(value, np.ndarray):
            _walk_array(value, depth)
            return
        if isinstance(value, np.generic):
            _walk_array(np.asarray(value), depth)
            return
    if isinstance(value, int):  # bool subclasses int, and an IntEnum is stored as its int
        _walk(int(value), depth)
    elif isinstance(value, dict):
        _walk_dict(value, depth)
    elif isinstance(value, (list, tuple)):
        _walk_list(value, depth)
    else:
        kind = type(value).__name__
        instead = _USE_INSTEAD.get(kind, "use None, a bool, a number, a str, a list or a dict")
        what = kind if kind == "bytes" else f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"
        raise _Refused(f"is {what}: documents hold JSON values, {instead}")


def _walk_array(arr: Any, depth: int) -> None:
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if depth + arr.ndim > MAX_DEPTH + 1:
        raise _Refused(f"nests deeper than {MAX_DEPTH} levels; flatten it or store it as a JSON str")
    if kind in "biu" or (kind == "f" and size <= 8):
        return  # every value fits msgpack's integers or a float
    if kind in "UO" or (kind == "V" and arr.dtype.names):
        _walk(arr.tolist(), depth)  # a structured array's rows become lists of its fields
        return
    what = {
        "f": f"{size * 8}-bit floats, which a document cannot hold; convert it to float64",
        "c": "complex numbers; store the real and imaginary parts as two arrays",
        "S": "bytes; decode it to str",
        "M": "datetimes; store floats of seconds since the epoch or ISO 8601 strs",
        "m": "timedeltas; store floats of seconds",
    }.get(kind, f"values of numpy dtype {arr.dtype}; convert it to numbers or strs")
    noun = "numpy array" if arr.ndim else "numpy scalar"
    raise _Refused(f"is a {noun} of {what}")


# -- shapes ----------------------------------------------------------------------------------


def declared_shapes(data_keys: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """``{key: declared shape}`` of the keys whose values events carry (not external)."""
    out = {}
    for key, info in data_keys.items():
        if isinstance(info, Mapping) and not info.get("external"):
            shape = info.get("shape")
            if isinstance(shape, (list, tuple)):
                out[key] = tuple(shape)
    return out


def check_shapes(
    name: str, doc: Mapping[str, Any], shapes: Mapping[str, tuple[Any, ...]], flat: frozenset[str] = frozenset()
) -> None:
    """Raise :class:`InvalidDocument` if an event's values have another rank than declared.

    Lengths are not enforced: a producer declares the shape of the first reading
    (ophyd's ``describe()``, ophyd-async's datakey), and a waveform whose length
    changes during a run (EPICS NORD) is real data that must not abort the run;
    such rows read back as one array per row. What is refused is a value of another
    rank: a list where a scalar is declared, a 2-D array where 1-D is. ``None``
    values (no reading) are always accepted, and a nested list may have more
    dimensions than declared (ophyd declares a list by its length alone,
    ``ophyd.utils.data_shape``); a numpy array may not. ``flat``: the keys of an
    event page's columns known to hold scalars only (from :func:`check_storable`).
    """
    data = doc["data"]
    page = name == "event_page"
    for key, declared in shapes.items():
        value = data.get(key)
        if value is None:
            continue
        if not page:
            if declared or type(value) not in _SCALARS:
                _check_shape(name, doc, key, declared, value, None)
        elif declared or (key not in flat and not {*map(type, value)} <= _SCALARS):
            for row, item in enumerate(value):
                if item is not None:
                    _check_shape(name, doc, key, declared, item, row)


def _check_shape(
    name: str, doc: Mapping[str, Any], key: str, declared: tuple[Any, ...], value: Any, row: int | None
) -> None:
    actual = _shape_of(value)
    is_list = isinstance(value, (list, tuple))
    if actual is None or _fits(declared, actual, is_list):
        return  # a ragged list: variable lengths, read back as one object per row
    where = f"data key {key!r}" + ("" if row is None else f" (row {row} of the page)")
    raise InvalidDocument(
        name,
        doc,
        f"{where} has shape {list(actual)} ({len(actual)} dimensions) but its descriptor declares "
        f"shape {list(declared)} ({len(declared)}); make the device describe() the shape it reads",
        field=f"data/{key}",
    )


def _fits(declared: tuple[Any, ...], actual: tuple[int, ...], is_list: bool) -> bool:
    """Same rank (any lengths); a list may have more dimensions than declared."""
    return len(actual) == len(declared) or (is_list and bool(declared) and len(actual) > len(declared))


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of a number, string, nested list or numpy value; None if ragged."""
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,)
        if all(type(v) in _SCALARS for v in value):
            return (len(value),)
        inner = _shape_of(value[0])
        if inner is None or any(_shape_of(v) != inner for v in _rest(value)):
            return None
        return (len(value), *inner)
    shape = getattr(value, "shape", None)  # numpy arrays and scalars; the walk refused the rest
    return shape if type(shape) is tuple else ()


def _rest(value: Sequence[Any]) -> Iterable[Any]:
    it = iter(value)
    next(it)
    return it
