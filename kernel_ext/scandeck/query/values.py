"""Query values and keys: JSON typing, freezing, checking, and their text and Python spellings.

The rules of :mod:`scandeck.queries` on the Python side: a value compares only
with a field of the same JSON type (:func:`json_kind`), a boolean is not a
number, lists compare element by element (:func:`json_equal`).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

from ..exceptions import InvalidQuery
from ..runtable.model import FACT_ROOTS  # the first names of keys that read a run's facts
from ..safe_text import UNSAFE

#: A value a key can be compared with: JSON scalars or (nested) lists of them.
Value: TypeAlias = "None | bool | int | float | str | tuple[Value, ...]"
#: The document a key reads: the start or stop document, or the run's facts (computed
#: columns, tags, comments, data summaries: :func:`scandeck.runtable.model.facts_document`).
DocName: TypeAlias = Literal["start", "stop", "facts"]

#: What a missing field reads as.
MISSING: Any = object()
KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "startswith", "true", "false", "null"})
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith")
#: The integers a query compares with: SQLite's signed 64-bit range.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# --------------------------------------------------------------------- values


def json_kind(x: object) -> str:
    """The JSON type of a Python value: null, bool, num, str, list, object or other."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, str):
        return "str"
    if isinstance(x, numbers.Real):
        return "num"
    if isinstance(x, (list, tuple)):
        return "list"
    if isinstance(x, Mapping):
        return "object"
    return "other"


def check_int(value: int) -> int:
    """``value`` if SQLite can hold it (:data:`INT_MIN` to :data:`INT_MAX`); else :class:`InvalidQuery`."""
    if not INT_MIN <= value <= INT_MAX:
        # (str() of a huge int raises ValueError: name its size instead)
        shown = str(value) if value.bit_length() <= 256 else f"of {value.bit_length()} bits"
        raise InvalidQuery(
            f"the integer {shown} is out of range: queries compare integers from {INT_MIN} "
            f"to {INT_MAX}; write a larger number as a float, e.g. 1e30"
        )
    return value


def freeze(value: object) -> Value:
    """Check a query value and make it hashable (lists become tuples)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return check_int(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidQuery(f"cannot compare with {f!r}: JSON holds only finite numbers")
        return f
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        raise InvalidQuery(
            "cannot compare with a dict: compare its fields with dotted keys instead, "
            "e.g. Key('md.sample') == 'Ni'"
        )
    if isinstance(value, (datetime, date)):
        raise InvalidQuery(
            "dates compare only with the 'time' key (or use TimeRange); "
            "for other keys compare with a timestamp number"
        )
    raise InvalidQuery(
        f"cannot compare with {type(value).__name__} {value!r}: "
        "use a string, a number, True/False, None or a list of those"
    )


def check_value(op: str, value: object) -> Value:
    """The frozen value for ``op``, or :class:`InvalidQuery` when they do not fit."""
    if op in ("in", "not in"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise InvalidQuery(
                f"'{op}' needs a list of values, e.g. Key('sample').in_(['Ni', 'Cu']), not {value!r}"
            )
        return freeze(list(value))
    v = freeze(value)
    if op in ORDERING and json_kind(v) not in ("num", "str"):
        raise InvalidQuery(f"'{op}' compares numbers or strings, not {text_value(v)}")
    if op == "contains" and json_kind(v) == "list":
        raise InvalidQuery(
            "'contains' takes one value, not a list: to require several, join conditions with 'and'"
        )
    if op == "startswith" and not isinstance(v, str):
        raise InvalidQuery(f"'startswith' needs a string, not {text_value(v)}")
    return v


def value_tag(v: Value) -> tuple[Any, ...]:
    """A key for structural equality that keeps True apart from 1."""
    if isinstance(v, (list, tuple)):  # json_kind "list"
        return ("list", tuple(value_tag(x) for x in v))
    return (json_kind(v), v)


def json_equal(field: Any, value: Value) -> bool:
    """Whether a document field equals a query value under the same-JSON-type rule."""
    if isinstance(value, (list, tuple)):  # json_kind "list"
        return (
            json_kind(field) == "list"
            and len(field) == len(value)
            and all(json_equal(f, v) for f, v in zip(field, value, strict=True))
        )
    return json_kind(field) == json_kind(value) and bool(field == value)


def text_value(v: Value) -> str:
    """A value in the text syntax."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return quote(v, '"')
    if isinstance(v, tuple):
        return "[" + ", ".join(text_value(x) for x in v) + "]"
    return repr(v)


def py_value(v: Value) -> str:
    """A value in Python syntax (lists, not tuples)."""
    if isinstance(v, tuple):
        return "[" + ", ".join(py_value(x) for x in v) + "]"
    return repr(v)


_ESCAPES_OUT = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def quote(s: str, q: str) -> str:
    """``s`` between ``q`` quotes, with ``q``, backslash, control and bidi characters escaped.

    In a quoted key (``q`` a backquote) a control character is written ``\\uXXXX``: the parser
    reads no other escape in a key but those of the backquote and the backslash.
    """
    out = []
    for ch in s:
        if ch == q:
            out.append("\\" + q)
        elif ch in _ESCAPES_OUT and (q != "`" or ch == "\\"):
            out.append(_ESCAPES_OUT[ch])
        elif UNSAFE.match(ch) and not "\ud800" <= ch <= "\udfff":
            # controls and bidi overrides (a lone surrogate has no escape the parser reads back)
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return q + "".join(out) + q


# ------------------------------------------------------------------------ keys


def is_identifier(s: str) -> bool:
    """Whether ``s`` can be written unquoted as a key segment in the text syntax."""
    return (
        bool(s)
        and (s[0].isalpha() or s[0] == "_")
        and all(c.isalnum() or c in "_-" for c in s)
        and s.lower() not in KEYWORDS
    )


def read_field(
    doc: str,
    path: tuple[str, ...],
    start: Mapping[str, Any],
    stop: Mapping[str, Any] | None,
    facts: Mapping[str, Any] | None,
) -> Any:
    """The value at ``path`` of the document ``doc`` names, or :data:`MISSING`.

    A facts path includes its root (``("columns", "cen")``); without a facts
    document (``facts=None``) every facts key is missing.
    """
    node: Any = start if doc == "start" else stop if doc == "stop" else facts
    for seg in path:
        if not isinstance(node, Mapping) or seg not in node:
            return MISSING
        node = node[seg]
    return node


def check_path(doc: object, path: tuple[object, ...], shown: object) -> None:
    """Raise :class:`InvalidQuery` unless ``doc`` and ``path`` name a field."""
    if doc not in ("start", "stop", "facts"):
        raise InvalidQuery(f"doc must be 'start', 'stop' or 'facts', not {doc!r}")
    if not path:
        raise InvalidQuery("a key needs at least one name")
    if doc == "facts" and path[0] not in FACT_ROOTS:
        raise InvalidQuery(f"a key of a run's facts begins with one of {', '.join(FACT_ROOTS)}, not {path[0]!r}")
    for seg in path:
        if not isinstance(seg, str):
            raise InvalidQuery(f"key names must be strings, not {type(seg).__name__} {seg!r}")
        if not seg:
            raise InvalidQuery(f"key {shown!r} has an empty name between dots")
        if "\0" in seg:
            raise InvalidQuery(f"key {shown!r} contains a NUL character")


def text_key(doc: str, path: tuple[str, ...]) -> str:
    """A key in the text syntax."""
    segs = [s if is_identifier(s) else quote(s, "`") for s in path]
    if doc == "stop":
        return "stop." + ".".join(segs)
    if doc == "start" and (path[0] in FACT_ROOTS or (len(path) > 1 and path[0] == "stop")):
        segs[0] = quote(path[0], "`")  # quoted, so it names a start-document field
    return ".".join(segs)


def py_key(doc: str, path: tuple[str, ...]) -> str:
    """A key as the Python expression that builds it."""
    dotted = not any("." in s for s in path)
    name = ".".join(path)
    if doc == "stop":
        return f"Key({'stop.' + name!r})" if dotted else f"Key({path!r}, doc='stop')"
    if doc == "start" and (path[0] in FACT_ROOTS or (len(path) > 1 and path[0] == "stop")):
        return f"Key({name!r}, doc='start')" if dotted else f"Key({path!r}, doc='start')"
    return f"Key({name!r})" if dotted else f"Key({path!r})"
