"""What a pipeline emits, as event data: the data keys of the first value, and checks of the rest.

A value is one event. A dict gives one data key per item (the row bookkeeping keys
``uid``, ``seq_num`` and ``time`` of ``scandeck.live`` rows are left out); any other
value is one data key, named by :class:`Values`'s ``key``. Each data key keeps the
type and shape of its first value for the whole run:

========================================  ===========  ==================================
value                                     ``dtype``    later values may be
========================================  ===========  ==================================
``bool``, ``numpy.bool_``                 boolean      booleans
``int``, numpy integers                   integer      integers
``float``, numpy floats                   number       floats or integers (stored as floats)
``str``                                   string       strings
numpy arrays, lists/tuples of numbers     array        arrays of the same shape and kind
========================================  ===========  ==================================

Anything else (None, a nested dict, an object) cannot be stored and is an error naming
the key and the type, as is a later value of another type, shape or set of keys. So are
what the store would refuse: integers outside the signed 64 bits, strings that are not
valid Unicode (a lone surrogate), dict keys with ``.`` or ``/``. The descriptor's
``dtype_numpy`` is that of the values as stored (``<f8``, ``<i8``, ``|b1``), whatever
numpy type the first value had, so it holds every later value the key accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import DerivedValueError
from ..safe_text import printable

__all__ = ["BOOKKEEPING", "Kind", "Values", "bad_key", "kind_of"]

#: Keys of a ``scandeck.live`` row that describe the row, not the data: left out of dict values.
BOOKKEEPING = ("uid", "seq_num", "time")

_NUMPY_KIND = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}
#: The numpy dtype values of each kind are stored as (Python ints, floats, bools: 64 bits).
_STORED = {"boolean": "|b1", "integer": "<i8", "number": "<f8"}
_INT64 = (-(2**63), 2**63)


@dataclass(frozen=True)
class Kind:
    """The storable type of one value: event-model ``dtype``, ``shape``, numpy dtype string."""

    dtype: str
    shape: tuple[int, ...] = ()
    dtype_numpy: str = ""

    def describe(self) -> str:
        """Words for errors: ``float``, ``array float64 (3, 4)``."""
        names = {"boolean": "bool", "integer": "int", "number": "float", "string": "str"}
        if self.dtype != "array":
            return names[self.dtype]
        import numpy as np

        return f"array {np.dtype(self.dtype_numpy).name} {self.shape}"

    def accepts(self, other: Kind) -> bool:
        if self == other:
            return True
        if self.dtype == "number" and other.dtype == "integer":
            return True  # an int where floats go is stored as a float
        if self.dtype == "array" and other.dtype == "array" and self.shape == other.shape:
            mine, theirs = self.dtype_numpy[1:2], other.dtype_numpy[1:2]
            return mine == theirs or (mine == "f" and theirs in "iu") or (mine in "iu" and theirs in "iu")
        return False

    def data_key(self, key: str) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "source": f"derived:{key}"}
        if self.dtype_numpy:
            out["dtype_numpy"] = self.dtype_numpy
        return out


def kind_of(key: str, value: Any) -> Kind:
    """The :class:`Kind` of ``value`` for data key ``key``; DerivedValueError if it cannot be stored."""
    if isinstance(value, bool):
        return Kind("boolean", (), "|b1")
    if isinstance(value, int):
        if not _INT64[0] <= value < _INT64[1]:
            raise _outside(key, value)
        return Kind("integer", (), "<i8")
    if isinstance(value, float):
        return Kind("number", (), "<f8")
    if isinstance(value, str):
        _check_text(key, value)
        return Kind("string")
    module = type(value).__module__
    if module == "numpy" or isinstance(value, (list, tuple)):
        import numpy as np

        try:
            arr = np.asarray(value)
        except ValueError as err:  # ragged lists
            raise DerivedValueError(
                f"{_name(key)}: a {type(value).__name__} of uneven length cannot be stored in a run ({err})"
            ) from None
        kind = _NUMPY_KIND.get(arr.dtype.kind)
        if kind is None:
            raise DerivedValueError(
                f"{_name(key)}: values of numpy dtype {arr.dtype} ({type(value).__name__}) cannot be stored "
                "in a run; return numbers, strings, booleans or numeric arrays"
            )
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() >= _INT64[1]:
            raise _outside(key, int(arr.max()))
        if arr.ndim == 0:
            return Kind(kind, (), _STORED[kind])
        return Kind("array", tuple(int(n) for n in arr.shape), _STORED[kind])
    raise DerivedValueError(
        f"{_name(key)}: a value of type {type(value).__name__} cannot be stored in a run; "
        "return numbers, strings, booleans or numeric arrays (or a dict of them, one data key each)"
    )


def plain(kind: Kind, value: Any) -> Any:
    """``value`` as JSON-ready Python: numpy to lists and scalars, ints to floats where floats go."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        value = tolist()
    elif isinstance(value, tuple):
        value = list(value)
    if kind.dtype == "number":
        return float(value)
    if kind.dtype == "array":
        import numpy as np

        return np.asarray(value, dtype=kind.dtype_numpy).tolist()
    return value


def _name(key: str) -> str:
    return f"data key {printable(repr(key))[:80]}"


def _outside(key: str, value: int) -> DerivedValueError:
    return DerivedValueError(
        f"{_name(key)}: {value} is outside the 64-bit integers a run holds; "
        "convert it in the pipeline, e.g. float(x) or str(x)"
    )


def _check_text(key: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DerivedValueError(
            f"{_name(key)}: a string with a lone surrogate ({printable(repr(value[err.start : err.end]))} at "
            f"character {err.start}) is not valid Unicode and cannot be stored; decode the bytes it came "
            "from with errors='replace'"
        ) from None


def bad_key(key: Any) -> bool:
    """True unless ``key`` can name a data key: a non-empty string, valid Unicode, no ``.`` or ``/``."""
    if not isinstance(key, str) or not key or "." in key or "/" in key:
        return True
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Values:
    """Turns each emitted value into event data, checking it against the first.

    ``key`` names the single data key of values that are not dicts.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.kinds: dict[str, Kind] | None = None
        self.count = 0

    def fields(self, value: Any) -> dict[str, Any]:
        """The data of one value (dict: its items less the bookkeeping keys)."""
        if isinstance(value, dict):
            out = {k: v for k, v in value.items() if k not in BOOKKEEPING}
            bad = [k for k in out if bad_key(k)]
            if bad:
                raise DerivedValueError(
                    "dict keys become data keys and must be non-empty strings with no '.' or '/' "
                    f"(valid Unicode), not {printable(repr(bad[0]))[:80]}"
                )
            if not out:
                raise DerivedValueError(
                    "a dict value with no data (only uid, seq_num, time) cannot be stored; "
                    "map the rows to the values to keep first"
                )
            return out
        return {self.key: value}

    def take(self, value: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]] | None]:
        """``(event data, data keys)``: data keys only for the first value, else None."""
        fields = self.fields(value)
        index = self.count + 1
        if self.kinds is None:
            kinds = {k: kind_of(k, v) for k, v in fields.items()}
            self.kinds = kinds
            self.count = 1
            return {k: plain(kinds[k], v) for k, v in fields.items()}, {k: kinds[k].data_key(k) for k in kinds}
        kinds = self.kinds
        if fields.keys() != kinds.keys():
            missing = sorted(set(kinds) - set(fields))
            extra = sorted(set(fields) - set(kinds))
            raise DerivedValueError(
                f"value {index} has other keys than the first: "
                + (f"missing {printable(', '.join(missing))[:200]}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"new {printable(', '.join(extra))[:200]}" if extra else "")
                + f"; every value must have the keys of the first ({printable(', '.join(kinds))[:200]})"
            )
        for k, v in fields.items():
            got = kind_of(k, v)
            if not kinds[k].accepts(got):
                raise DerivedValueError(
                    f"{_name(k)} changed type at value {index}: {kinds[k].describe()} at first, now "
                    f"{got.describe()}; a run keeps each key's type and shape (convert in the pipeline, "
                    "e.g. float(x) or numpy.asarray(x, float))"
                )
        self.count = index
        return {k: plain(kinds[k], v) for k, v in fields.items()}, None
