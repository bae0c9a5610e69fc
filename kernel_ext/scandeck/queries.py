"""Search queries over stored runs, compiled both to SQL and to a Python predicate.

A query is built from :class:`Key` comparisons, :class:`TimeRange`, :class:`ScanID`
and :class:`PartialUID`, combined with ``&``, ``|`` and ``~``, or parsed from text
with :func:`parse`. Every query can

* test a run's documents in Python: ``query.matches(start, stop)``;
* compile to an SQLite boolean expression over the store's ``runs`` table
  (columns ``uid``, ``scan_id``, ``time``, ``start`` and ``stop``, the last two
  holding the documents as JSON): ``sql, params = query.to_sql()``;
* print itself as text that :func:`parse` reads back: ``parse(str(query)) == query``.

Both compilations give the same answer for every run. The rules:

* A key is a path into the start document (``Key("md.sample")`` is
  ``start["md"]["sample"]``); a path beginning with ``stop.`` reads the stop
  document, which is missing while a run is still going.
* A missing key matches no comparison, ``!=`` and ``not in`` included. ``~``
  (``not``) is plain logical negation, so ``~(Key("x") == 1)`` matches runs
  without ``x``.
* Values compare only with the same JSON type: numbers with numbers (``1 == 1.0``),
  strings with strings, booleans with booleans, ``None`` (JSON ``null``) with a
  present ``null``, lists element by element. A boolean is not a number, so
  ``Key("flag") == 1`` does not match ``true``. ``!=`` means "present and not
  equal", so ``Key("x") != 1`` matches ``x = "1"`` and ``x = null``.
* ``<``, ``<=``, ``>``, ``>=`` take a number or a string and are false for a field
  of any other type (strings compare by code point, case-sensitively).
* ``contains`` is true when a list field has an element equal to the value;
  ``startswith`` is a case-sensitive prefix test on a string field.
* Keys ``uid``, ``scan_id`` and ``time`` use the table's columns, which must hold
  the start document's values (as event-model validation guarantees: a string,
  an integer and a number). Other keys use ``json_extract``/``json_type`` on the
  JSON text, which must be strict JSON (no ``NaN``).

Examples
--------
>>> q = (Key("sample") == "Ni") & ~Key("stop.exit_status").in_(["abort", "fail"])
>>> str(q)
'sample == "Ni" and not stop.exit_status in ["abort", "fail"]'
>>> q.matches({"uid": "a3f", "time": 0.0, "sample": "Ni"}, None)
True
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, TypeAlias

from .exceptions import InvalidQuery

__all__ = [
    "And",
    "Comparison",
    "Key",
    "MatchAll",
    "Not",
    "Or",
    "PartialUID",
    "Query",
    "ScanID",
    "TimeRange",
    "parse",
]

#: A value a key can be compared with: JSON scalars or (nested) lists of them.
Value: TypeAlias = "None | bool | int | float | str | tuple[Value, ...]"
#: The document a key reads.
DocName: TypeAlias = Literal["start", "stop"]
#: What :class:`TimeRange` and the ``time`` key accept as a point in time.
TimeLike: TypeAlias = "float | int | datetime | date | str"

_MISSING: Any = object()
_COLUMNS = frozenset({"uid", "scan_id", "time"})
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "contains", "startswith", "true", "false", "null"}
)
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith")
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_Frag: TypeAlias = "tuple[str, list[Any]]"  # SQL text and its ? parameters, in order


# --------------------------------------------------------------------- values


def _kind(x: object) -> str:
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


def _freeze(value: object) -> Value:
    """Check a query value and make it hashable (lists become tuples)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise InvalidQuery(f"cannot compare with {f!r}: JSON holds only finite numbers")
        return f
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
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


def _tag(v: Value) -> tuple[Any, ...]:
    """A key for structural equality that keeps True apart from 1."""
    k = _kind(v)
    if k == "list":
        return ("list", tuple(_tag(x) for x in v))  # type: ignore[union-attr]
    return (k, v)


def _py_eq(field: Any, value: Value) -> bool:
    k = _kind(value)
    if k == "list":
        return (
            _kind(field) == "list"
            and len(field) == len(value)  # type: ignore[arg-type]
            and all(_py_eq(f, v) for f, v in zip(field, value, strict=True))  # type: ignore[arg-type]
        )
    return _kind(field) == k and bool(field == value)


def _text_value(v: Value) -> str:
    """A value in the text syntax."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _quote(v, '"')
    if isinstance(v, tuple):
        return "[" + ", ".join(_text_value(x) for x in v) + "]"
    return repr(v)


def _py_value(v: Value) -> str:
    """A value in Python syntax (lists, not tuples)."""
    if isinstance(v, tuple):
        return "[" + ", ".join(_py_value(x) for x in v) + "]"
    return repr(v)


_ESCAPES_OUT = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _quote(s: str, q: str) -> str:
    out = []
    for ch in s:
        if ch == q:
            out.append("\\" + q)
        elif ch in _ESCAPES_OUT:
            out.append(_ESCAPES_OUT[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
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


def _check_path(doc: object, path: tuple[object, ...], shown: object) -> None:
    if doc not in ("start", "stop"):
        raise InvalidQuery(f"doc must be 'start' or 'stop', not {doc!r}")
    if not path:
        raise InvalidQuery("a key needs at least one name")
    for seg in path:
        if not isinstance(seg, str):
            raise InvalidQuery(f"key names must be strings, not {type(seg).__name__} {seg!r}")
        if not seg:
            raise InvalidQuery(f"key {shown!r} has an empty name between dots")
        if "\0" in seg:
            raise InvalidQuery(f"key {shown!r} contains a NUL character")


def _text_key(doc: str, path: tuple[str, ...]) -> str:
    segs = [s if is_identifier(s) else _quote(s, "`") for s in path]
    if doc == "stop":
        return "stop." + ".".join(segs)
    if len(path) > 1 and path[0] == "stop":
        segs[0] = "`stop`"  # quoted, so it names a start-document field
    return ".".join(segs)


def _py_key(doc: str, path: tuple[str, ...]) -> str:
    dotted = not any("." in s for s in path)
    name = ".".join(path)
    if doc == "stop":
        return f"Key({'stop.' + name!r})" if dotted else f"Key({path!r}, doc='stop')"
    if len(path) > 1 and path[0] == "stop":
        return f"Key({name!r}, doc='start')" if dotted else f"Key({path!r}, doc='start')"
    return f"Key({name!r})" if dotted else f"Key({path!r})"


class Key:
    """A field of a run's documents, to compare with a value.

    Parameters
    ----------
    name : str or sequence of str
        A dotted path into the start document (``"md.sample"`` is
        ``start["md"]["sample"]``), or ``"stop.<path>"`` for the stop document.
        Give a sequence of names for a field whose name contains a dot.
    doc : {"start", "stop"}, optional
        The document to read; given explicitly, ``name`` is not searched for a
        ``stop.`` prefix.

    Examples
    --------
    >>> Key("sample") == "Ni"
    Key('sample') == 'Ni'
    >>> Key("stop.exit_status") != "success"
    Key('stop.exit_status') != 'success'
    >>> Key("detectors").contains("det") & (Key("md.temperature") > 300)
    Key('detectors').contains('det') & (Key('md.temperature') > 300)
    """

    __slots__ = ("doc", "path")
    __hash__ = None  # type: ignore[assignment]  # == builds a query

    def __init__(self, name: str | Sequence[str], doc: DocName | None = None) -> None:
        path = tuple(name.split(".")) if isinstance(name, str) else tuple(name)
        if doc is None:
            doc = "start"
            if len(path) > 1 and path[0] == "stop":
                doc, path = "stop", path[1:]
        _check_path(doc, path, name)
        self.doc: DocName = doc
        self.path: tuple[str, ...] = path

    def __repr__(self) -> str:
        return _py_key(self.doc, self.path)

    def _cmp(self, op: str, value: object) -> Query:
        return _make_comparison(self.doc, self.path, op, value)

    def __eq__(self, value: object) -> Query:  # type: ignore[override]
        return self._cmp("==", value)

    def __ne__(self, value: object) -> Query:  # type: ignore[override]
        return self._cmp("!=", value)

    def __lt__(self, value: object) -> Query:
        return self._cmp("<", value)

    def __le__(self, value: object) -> Query:
        return self._cmp("<=", value)

    def __gt__(self, value: object) -> Query:
        return self._cmp(">", value)

    def __ge__(self, value: object) -> Query:
        return self._cmp(">=", value)

    def in_(self, values: Iterable[object]) -> Query:
        """Match when the field equals one of ``values``.

        Examples
        --------
        >>> Key("sample").in_(["Ni", "Cu"])
        Key('sample').in_(['Ni', 'Cu'])
        """
        return self._cmp("in", values)

    def not_in(self, values: Iterable[object]) -> Query:
        """Match when the field is present and equals none of ``values``.

        Examples
        --------
        >>> str(Key("sample").not_in(["Ni"]))
        'sample not in ["Ni"]'
        """
        return self._cmp("not in", values)

    def contains(self, value: object) -> Query:
        """Match when the field is a list with an element equal to ``value``.

        Examples
        --------
        >>> str(Key("detectors").contains("det"))
        'detectors contains "det"'
        """
        return self._cmp("contains", value)

    def startswith(self, prefix: str) -> Query:
        """Match when the field is a string starting with ``prefix`` (case-sensitive).

        Examples
        --------
        >>> Key("uid").startswith("a3f")
        PartialUID('a3f')
        """
        return self._cmp("startswith", prefix)

    def _misuse(self, *_: object) -> Query:
        raise TypeError(
            "a Key is not a query yet: compare it first and put each comparison in "
            "parentheses, e.g. (Key('sample') == 'Ni') & (Key('scan_id') > 3)"
        )

    __and__ = __rand__ = __or__ = __ror__ = __invert__ = _misuse


# ---------------------------------------------------------------------- time

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
DATE_FORMS = (
    "a unix timestamp or a date string like '2026-11-21', '2026-11-21 10:30', "
    "'2026-11-21T10:30:00' or '2026-11-21T10:30:00+01:00' (seconds may have up to 6 "
    "decimals; 'Z' means UTC; without an offset it is local time)"
)


def _date_interval(text: str) -> tuple[float, float]:
    """The interval [start, end) of unix time a date string stands for.

    The interval's length is the string's precision: a day, a minute, a second,
    or a single instant when the seconds have decimals.
    """
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise InvalidQuery(f"invalid date {text!r}: use {DATE_FORMS}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        tzinfo = None
        if tz == "Z":
            tzinfo = timezone.utc
        elif tz:
            hours, minutes = int(tz[1:3]), int(tz[-2:])
            if hours > 23 or minutes > 59:
                raise ValueError(f"UTC offset {tz} out of range")
            sign = -1 if tz[0] == "-" else 1
            tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
        dt = datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
            int((frac or "0").ljust(6, "0")), tzinfo=tzinfo,
        )  # fmt: skip
        begin = dt.timestamp()
        if h is None:
            end = (dt + timedelta(days=1)).timestamp()
        elif s is None:
            end = (dt + timedelta(minutes=1)).timestamp()
        elif frac is None:
            end = (dt + timedelta(seconds=1)).timestamp()
        else:
            end = math.nextafter(begin, math.inf)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidQuery(f"invalid date {text!r} ({exc}): use {DATE_FORMS}") from None
    return begin, end


def _time_interval(value: object) -> tuple[float, float]:
    """[start, end) for a point in time; a number or datetime is a single instant."""
    if isinstance(value, str):
        return _date_interval(value)
    if isinstance(value, datetime):
        t = value.timestamp()  # naive means local time
    elif isinstance(value, date):
        return _date_interval(value.isoformat())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = float(value)
    else:
        raise InvalidQuery(f"invalid time {value!r}: use a datetime or {DATE_FORMS}")
    if not math.isfinite(t):
        raise InvalidQuery(f"invalid time {value!r}: it must be finite")
    return t, math.nextafter(t, math.inf)


def _format_time(t: float) -> str | None:
    """An ISO string in local time with offset that parses back to exactly ``t``."""
    try:
        dt = datetime.fromtimestamp(t, timezone.utc).astimezone()
        text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
        return text if _date_interval(text)[0] == t else None
    except (OverflowError, OSError, ValueError):
        return None


def _text_time(t: float) -> str:
    iso = _format_time(t)
    return repr(t) if iso is None else f'"{iso}"'


def _py_time(t: float) -> str:
    iso = _format_time(t)
    return repr(t if iso is None else iso)


# ----------------------------------------------------------------------- SQL


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _plain_segment(seg: str) -> bool:
    """Whether a JSON path can name ``seg`` as ``."seg"``.

    SQLite before 3.45 matches a quoted path label against the raw JSON text, so
    a key written with escapes (non-ASCII under ``json.dumps``' default, quotes,
    backslashes, sometimes ``/``) would not be found; those go through json_each.
    """
    return all(0x20 <= ord(c) <= 0x7E and c not in '"\\/' for c in seg)


class _Json:
    """SQL expressions for one node of a JSON document: its type, value, children."""

    def type(self) -> str:
        raise NotImplementedError

    def value(self) -> str:
        raise NotImplementedError

    def length(self) -> str:
        raise NotImplementedError

    def each(self) -> str:
        raise NotImplementedError

    def child(self, index: int) -> _Json:
        raise NotImplementedError

    def key(self, seg: str) -> _Json:
        raise NotImplementedError


class _Path(_Json):
    """``json_type(base, '$."a"."b"')`` and friends."""

    def __init__(self, base: str, path: str = "$") -> None:
        self.base, self.path = base, path

    def _call(self, fn: str) -> str:
        return f"{fn}({self.base}, {_lit(self.path)})"

    def type(self) -> str:
        return self._call("json_type")

    def value(self) -> str:
        return self._call("json_extract")

    def length(self) -> str:
        return self._call("json_array_length")

    def each(self) -> str:
        return self._call("json_each")

    def child(self, index: int) -> _Json:
        return _Path(self.base, f"{self.path}[{index}]")

    def key(self, seg: str) -> _Json:
        if _plain_segment(seg):
            return _Path(self.base, f'{self.path}."{seg}"')
        return _Member(self.each(), seg)


class _Member(_Json):
    """A member found by decoded key name with json_each, for keys a path can't name."""

    def __init__(self, each: str, name: str) -> None:
        self.each_of_parent, self.name = each, name

    def _select(self, column: str, extra: str = "") -> str:
        return (
            f"(SELECT je.{column} FROM {self.each_of_parent} AS je "
            f"WHERE je.key = {_lit(self.name)}{extra})"
        )

    def type(self) -> str:
        return self._select("type")

    def value(self) -> str:
        return self._select("value")

    def _container(self) -> _Json:
        return _Path(self._select("value", " AND je.type IN ('object', 'array')"))

    def length(self) -> str:
        return self._container().length()

    def each(self) -> str:
        return self._container().each()

    def child(self, index: int) -> _Json:
        return self._container().child(index)

    def key(self, seg: str) -> _Json:
        return self._container().key(seg)


class _Row(_Json):
    """An element row of json_each, aliased ``je``."""

    def type(self) -> str:
        return "je.type"

    def value(self) -> str:
        return "je.value"


def _is_number(type_sql: str) -> str:
    return f"ifnull({type_sql}, '') IN ('integer', 'real')"


def _sql_eq(node: _Json, v: Value) -> _Frag:
    k = _kind(v)
    t = node.type()
    if k == "null":
        return f"{t} IS 'null'", []
    if k == "bool":
        return f"{t} IS '{'true' if v else 'false'}'", []
    if k == "num":
        return f"({_is_number(t)} AND {node.value()} = ?)", [v]
    if k == "str":
        return f"({t} IS 'text' AND {node.value()} = ?)", [v]
    parts, params = [f"{t} IS 'array'", f"{node.length()} = {len(v)}"], []  # type: ignore[arg-type]
    for i, item in enumerate(v):  # type: ignore[arg-type]
        sql, ps = _sql_eq(node.child(i), item)
        parts.append(sql)
        params += ps
    return "(" + " AND ".join(parts) + ")", params


def _column_guard(column: str, v: Value) -> str:
    types = "'text'" if isinstance(v, str) else "'integer', 'real'"
    return f"typeof({column}) IN ({types})"


def _sql_in(node: _Json, column: str | None, values: tuple[Value, ...]) -> _Frag:
    """Equal to one of ``values``: strings and numbers grouped into ``IN (...)``."""
    parts: list[str] = []
    params: list[Any] = []
    for k in ("str", "num"):
        group = [v for v in values if _kind(v) == k]
        if not group:
            continue
        if column is not None:
            guard, target = _column_guard(column, group[0]), column
        else:
            guard = f"{node.type()} IS 'text'" if k == "str" else _is_number(node.type())
            target = node.value()
        marks = ", ".join("?" * len(group))
        parts.append(f"({guard} AND {target} IN ({marks}))")
        params += group
    for v in values:
        if _kind(v) not in ("str", "num"):
            sql, ps = _sql_eq(node, v)
            parts.append(sql)
            params += ps
    if not parts:
        return "0", []
    return ("(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]), params


# -------------------------------------------------------------------- queries


class Query(ABC):
    """Base of every query; combine queries with ``&``, ``|`` and ``~``.

    Examples
    --------
    >>> q = (Key("sample") == "Ni") | ScanID(7)
    >>> q.to_sql()[1]
    ['Ni', 7]
    >>> Query.all().matches({"uid": "x", "time": 1.0})
    True
    """

    __slots__ = ()

    @abstractmethod
    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        """Whether a run with these start and stop documents (stop None while running) matches."""

    @abstractmethod
    def _sql(self) -> _Frag: ...

    def to_sql(self) -> tuple[str, list[Any]]:
        """An SQLite boolean expression over the ``runs`` columns and its ``?`` parameters.

        The expression is always 0 or 1, never NULL.

        Examples
        --------
        >>> ScanID(3, 4).to_sql()
        ("(typeof(scan_id) IN ('integer', 'real') AND scan_id IN (?, ?))", [3, 4])
        """
        sql, params = self._sql()
        return sql, list(params)

    # precedence in the text syntax (1 or, 2 and, 3 not, 4 atom) and in Python
    # (0 comparison operator, 2 |, 3 &, 4 ~, 5 call)
    _text_prec = 4
    _py_prec = 5

    @abstractmethod
    def __str__(self) -> str: ...

    @staticmethod
    def all() -> MatchAll:
        """The query that matches every run (also what an empty text parses to)."""
        return MatchAll()

    def __and__(self, other: object) -> Query:
        return _and(self, other) if isinstance(other, Query) else NotImplemented

    def __or__(self, other: object) -> Query:
        return _or(self, other) if isinstance(other, Query) else NotImplemented

    def __invert__(self) -> Query:
        return _not(self)


def _wrap_text(q: Query, below: int) -> str:
    return f"({q})" if q._text_prec < below else str(q)


def _wrap_py(q: Query, below: int) -> str:
    return f"({q!r})" if q._py_prec < below else repr(q)


@dataclass(frozen=True)
class MatchAll(Query):
    """Matches every run; the text form is ``*`` (an empty text parses to it too).

    Examples
    --------
    >>> MatchAll() & (Key("sample") == "Ni")
    Key('sample') == 'Ni'
    """

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        return True

    def _sql(self) -> _Frag:
        return "1", []

    def __str__(self) -> str:
        return "*"

    def __repr__(self) -> str:
        return "Query.all()"


@dataclass(frozen=True, eq=False, repr=False)
class Comparison(Query):
    """A field compared with a value; build it with :class:`Key`, not directly.

    Parameters
    ----------
    doc : {"start", "stop"}
        The document holding the field.
    path : tuple of str
        Names leading to the field.
    op : str
        One of ``== != < <= > >= in, not in, contains, startswith``.
    value : Value
        The value (a tuple of values for ``in`` and ``not in``).

    Examples
    --------
    >>> Comparison("start", ("sample",), "==", "Ni") == (Key("sample") == "Ni")
    True
    """

    doc: DocName
    path: tuple[str, ...]
    op: str
    value: Value

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", tuple(self.path))
        _check_path(self.doc, self.path, ".".join(map(str, self.path)))
        if self.op not in OPERATORS:
            raise InvalidQuery(f"unknown operator {self.op!r}: use one of {', '.join(OPERATORS)}")
        object.__setattr__(self, "value", _check_value(self.op, self.value))
        object.__setattr__(self, "_py_prec", 0 if self.op in _ORDERING or "=" in self.op else 5)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Comparison):
            return NotImplemented
        return (self.doc, self.path, self.op, _tag(self.value)) == (
            other.doc, other.path, other.op, _tag(other.value)
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.doc, self.path, self.op, _tag(self.value)))

    def _field(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None) -> Any:
        node: Any = start if self.doc == "start" else stop
        for seg in self.path:
            if not isinstance(node, Mapping) or seg not in node:
                return _MISSING
            node = node[seg]
        return node

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        field, op, v = self._field(start, stop), self.op, self.value
        if field is _MISSING:
            return False
        if op == "==":
            return _py_eq(field, v)
        if op == "!=":
            return not _py_eq(field, v)
        if op in _ORDERING:
            return _kind(field) == _kind(v) and bool(_ORDERING[op](field, v))
        if op in ("in", "not in"):
            found = any(_py_eq(field, x) for x in v)  # type: ignore[union-attr]
            return found if op == "in" else not found
        if op == "contains":
            return _kind(field) == "list" and any(_py_eq(x, v) for x in field)
        return isinstance(field, str) and field.startswith(v)  # type: ignore[arg-type]

    def _sql(self) -> _Frag:
        node: _Json = _Path(self.doc)
        for seg in self.path:
            node = node.key(seg)
        column = self.path[0] if self.doc == "start" and self.path[0] in _COLUMNS else None
        if len(self.path) > 1:
            column = None
        op, v, t = self.op, self.value, node.type()
        simple = _kind(v) in ("str", "num")
        if op == "==":
            if column is not None and simple:
                return f"({_column_guard(column, v)} AND {column} = ?)", [v]
            return _sql_eq(node, v)
        if op == "!=":
            sql, ps = _sql_eq(node, v)
            return f"({t} IS NOT NULL AND NOT {sql})", ps
        if op in _ORDERING:
            if column is not None:
                return f"({_column_guard(column, v)} AND {column} {op} ?)", [v]
            guard = f"{t} IS 'text'" if isinstance(v, str) else _is_number(t)
            return f"({guard} AND {node.value()} {op} ?)", [v]
        if op in ("in", "not in"):
            sql, ps = _sql_in(node, column, v)  # type: ignore[arg-type]
            return (sql, ps) if op == "in" else (f"({t} IS NOT NULL AND NOT {sql})", ps)
        if op == "contains":
            sql, ps = _sql_eq(_Row(), v)
            exists = f"EXISTS (SELECT 1 FROM {node.each()} AS je WHERE {sql})"
            return f"({t} IS 'array' AND {exists})", ps
        # startswith: substr is case-sensitive and has no wildcards, unlike LIKE
        n = len(v)  # type: ignore[arg-type]
        if column is not None:
            return f"(typeof({column}) = 'text' AND substr({column}, 1, {n}) = ?)", [v]
        return f"({t} IS 'text' AND substr({node.value()}, 1, {n}) = ?)", [v]

    def __str__(self) -> str:
        return f"{_text_key(self.doc, self.path)} {self.op} {_text_value(self.value)}"

    def __repr__(self) -> str:
        key = _py_key(self.doc, self.path)
        if self._py_prec == 0:
            return f"{key} {self.op} {_py_value(self.value)}"
        method = {"in": "in_", "not in": "not_in"}.get(self.op, self.op)
        return f"{key}.{method}({_py_value(self.value)})"


def _check_value(op: str, value: object) -> Value:
    if op in ("in", "not in"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise InvalidQuery(
                f"'{op}' needs a list of values, e.g. Key('sample').in_(['Ni', 'Cu']), "
                f"not {value!r}"
            )
        return _freeze(list(value))
    v = _freeze(value)
    if op in _ORDERING and _kind(v) not in ("num", "str"):
        raise InvalidQuery(f"'{op}' compares numbers or strings, not {_text_value(v)}")
    if op == "contains" and _kind(v) == "list":
        raise InvalidQuery(
            "'contains' takes one value, not a list: to require several, "
            "join conditions with 'and'"
        )
    if op == "startswith" and not isinstance(v, str):
        raise InvalidQuery(f"'startswith' needs a string, not {_text_value(v)}")
    return v


def _make_comparison(doc: DocName, path: tuple[str, ...], op: str, value: object) -> Query:
    """Build a comparison, turning time, scan_id and uid cases into their own queries."""
    _check_path(doc, path, ".".join(map(str, path)))
    if op in ("in", "not in") and isinstance(value, Iterable):
        if not isinstance(value, (str, bytes, Mapping)):
            value = list(value)
    special = path[0] if doc == "start" and len(path) == 1 else None
    if special == "time" and (op in _ORDERING or op in ("==", "!=")):
        if isinstance(value, (str, date)) or (
            op in _ORDERING and _kind(value) == "num"
        ):
            begin, end = _time_interval(value)
            if op == "==":
                return TimeRange(since=begin, until=end)
            if op == "!=":
                return Not(TimeRange(since=begin, until=end))
            bound = begin if op in (">=", "<") else end
            return TimeRange(since=bound) if op[0] == ">" else TimeRange(until=bound)
    if special == "scan_id":
        if op == "==" and _kind(value) == "num" and isinstance(value, numbers.Integral):
            return ScanID(value)  # type: ignore[arg-type]
        if op == "in" and isinstance(value, (list, tuple)) and value:
            if all(_kind(v) == "num" and isinstance(v, numbers.Integral) for v in value):
                return ScanID(*value)
    if special == "uid" and op == "startswith" and isinstance(value, str) and value:
        return PartialUID(value)
    return Comparison(doc, path, op, value)  # type: ignore[arg-type]


@dataclass(frozen=True, init=False)
class TimeRange(Query):
    """Runs whose start ``time`` is in ``[since, until)`` (databroker's convention).

    Parameters
    ----------
    since, until : float, int, datetime, date or str, optional
        A unix timestamp, a datetime (naive means local time), a date, or a string
        ``"2026-11-21"``, ``"2026-11-21 10:30"``, ``"2026-11-21T10:30:00"``,
        ``"2026-11-21T10:30:00.25+01:00"`` (no offset: local time). A string stands
        for the moment it starts. At least one must be given.

    Raises
    ------
    InvalidQuery
        For an unreadable date string or when neither bound is given.

    Examples
    --------
    >>> TimeRange(since=0, until=86400).matches({"uid": "x", "time": 3600.0})
    True
    >>> TimeRange(until="2026-11-21").to_sql()[0]
    "(typeof(time) IN ('integer', 'real') AND time < ?)"
    """

    since: float | None
    until: float | None

    def __init__(self, since: TimeLike | None = None, until: TimeLike | None = None) -> None:
        if since is None and until is None:
            raise InvalidQuery(
                "TimeRange needs since, until or both; Query.all() matches every run"
            )
        for name, value in (("since", since), ("until", until)):
            object.__setattr__(self, name, None if value is None else _time_interval(value)[0])

    @property
    def _text_prec(self) -> int:  # type: ignore[override]
        return 2 if self.since is not None and self.until is not None else 4

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        t = start.get("time", _MISSING)
        return (
            _kind(t) == "num"
            and (self.since is None or t >= self.since)
            and (self.until is None or t < self.until)
        )

    def _sql(self) -> _Frag:
        parts, params = ["typeof(time) IN ('integer', 'real')"], []
        if self.since is not None:
            parts.append("time >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("time < ?")
            params.append(self.until)
        return "(" + " AND ".join(parts) + ")", params

    def __str__(self) -> str:
        parts = []
        if self.since is not None:
            parts.append(f"time >= {_text_time(self.since)}")
        if self.until is not None:
            parts.append(f"time < {_text_time(self.until)}")
        return " and ".join(parts)

    def __repr__(self) -> str:
        bounds = (("since", self.since), ("until", self.until))
        args = ", ".join(f"{n}={_py_time(t)}" for n, t in bounds if t is not None)
        return f"TimeRange({args})"


@dataclass(frozen=True, init=False)
class ScanID(Query):
    """Runs whose ``scan_id`` is one of the given integers.

    Examples
    --------
    >>> str(ScanID(3, 4))
    'scan_id in [3, 4]'
    """

    scan_ids: tuple[int, ...]

    def __init__(self, *scan_ids: int) -> None:
        if not scan_ids:
            raise InvalidQuery("ScanID needs at least one scan_id")
        for s in scan_ids:
            if not isinstance(s, numbers.Integral) or isinstance(s, bool):
                raise InvalidQuery(f"a scan_id is an integer, not {s!r}")
        object.__setattr__(self, "scan_ids", tuple(int(s) for s in scan_ids))

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        s = start.get("scan_id", _MISSING)
        return _kind(s) == "num" and s in self.scan_ids

    def _sql(self) -> _Frag:
        marks = ", ".join("?" * len(self.scan_ids))
        return (
            f"(typeof(scan_id) IN ('integer', 'real') AND scan_id IN ({marks}))",
            list(self.scan_ids),
        )

    def __str__(self) -> str:
        if len(self.scan_ids) == 1:
            return f"scan_id == {self.scan_ids[0]}"
        return f"scan_id in [{', '.join(map(str, self.scan_ids))}]"

    def __repr__(self) -> str:
        return f"ScanID({', '.join(map(str, self.scan_ids))})"


@dataclass(frozen=True, init=False)
class PartialUID(Query):
    """Runs whose uid starts with one of the prefixes (case-sensitive, no wildcards).

    Examples
    --------
    >>> PartialUID("a3f").matches({"uid": "a3f0-11", "time": 0.0})
    True
    >>> str(PartialUID("a3f", "b7"))
    'uid startswith "a3f" or uid startswith "b7"'
    """

    prefixes: tuple[str, ...]

    def __init__(self, *prefixes: str) -> None:
        if not prefixes:
            raise InvalidQuery("PartialUID needs at least one prefix")
        for p in prefixes:
            if not isinstance(p, str) or not p:
                raise InvalidQuery(f"a uid prefix is a non-empty string, not {p!r}")
        object.__setattr__(self, "prefixes", tuple(prefixes))

    @property
    def _text_prec(self) -> int:  # type: ignore[override]
        return 4 if len(self.prefixes) == 1 else 1

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        uid = start.get("uid")
        return isinstance(uid, str) and uid.startswith(self.prefixes)

    def _sql(self) -> _Frag:
        tests = " OR ".join(f"substr(uid, 1, {len(p)}) = ?" for p in self.prefixes)
        return f"(typeof(uid) = 'text' AND ({tests}))", list(self.prefixes)

    def __str__(self) -> str:
        return " or ".join(f"uid startswith {_text_value(p)}" for p in self.prefixes)

    def __repr__(self) -> str:
        return f"PartialUID({', '.join(map(repr, self.prefixes))})"


@dataclass(frozen=True, init=False)
class And(Query):
    """Matches when every item matches; build it with ``&``.

    Examples
    --------
    >>> str((Key("a") == 1) & (Key("b") == 2))
    'a == 1 and b == 2'
    """

    items: tuple[Query, ...]
    _text_prec = 2
    _py_prec = 3

    def __init__(self, *items: Query) -> None:
        object.__setattr__(self, "items", tuple(items))

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        return all(q.matches(start, stop) for q in self.items)

    def _sql(self) -> _Frag:
        return _join(self.items, " AND ", "1")

    def __str__(self) -> str:
        return " and ".join(_wrap_text(q, 2) for q in self.items)

    def __repr__(self) -> str:
        return " & ".join(_wrap_py(q, 4) for q in self.items)


@dataclass(frozen=True, init=False)
class Or(Query):
    """Matches when any item matches; build it with ``|``.

    Examples
    --------
    >>> str((Key("a") == 1) & (Key("b") == 2) | ScanID(3))
    '(a == 1 and b == 2) or scan_id == 3'
    """

    items: tuple[Query, ...]
    _text_prec = 1
    _py_prec = 2

    def __init__(self, *items: Query) -> None:
        object.__setattr__(self, "items", tuple(items))

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        return any(q.matches(start, stop) for q in self.items)

    def _sql(self) -> _Frag:
        return _join(self.items, " OR ", "0")

    def __str__(self) -> str:
        return " or ".join(_wrap_text(q, 3) for q in self.items)

    def __repr__(self) -> str:
        return " | ".join(_wrap_py(q, 4) for q in self.items)


@dataclass(frozen=True)
class Not(Query):
    """Matches when ``query`` does not (runs missing a key included); build it with ``~``.

    Examples
    --------
    >>> str(~(Key("sample") == "Ni"))
    'not sample == "Ni"'
    """

    query: Query
    _text_prec = 3
    _py_prec = 4

    def matches(self, start: Mapping[str, Any], stop: Mapping[str, Any] | None = None) -> bool:
        return not self.query.matches(start, stop)

    def _sql(self) -> _Frag:
        sql, params = self.query._sql()
        return f"(NOT {sql})", params

    def __str__(self) -> str:
        return "not " + _wrap_text(self.query, 3)

    def __repr__(self) -> str:
        return "~" + _wrap_py(self.query, 4)


def _join(items: tuple[Query, ...], glue: str, empty: str) -> _Frag:
    if not items:
        return empty, []
    sqls, params = [], []
    for q in items:
        sql, ps = q._sql()
        sqls.append(sql)
        params += ps
    return "(" + glue.join(sqls) + ")", params


def _and(*items: Query) -> Query:
    """``&``: flatten, drop match-alls, merge time ranges into one."""
    flat: list[Query] = []
    for q in items:
        flat.extend(q.items if isinstance(q, And) else [q])
    flat = [q for q in flat if not isinstance(q, MatchAll)]
    ranges = [q for q in flat if isinstance(q, TimeRange)]
    if len(ranges) > 1:
        sinces = [r.since for r in ranges if r.since is not None]
        untils = [r.until for r in ranges if r.until is not None]
        merged = TimeRange(since=max(sinces, default=None), until=min(untils, default=None))
        first = flat.index(ranges[0])
        flat = [q for q in flat if not isinstance(q, TimeRange)]
        flat.insert(first, merged)
    if not flat:
        return MatchAll()
    return flat[0] if len(flat) == 1 else And(*flat)


def _or(*items: Query) -> Query:
    """``|``: flatten, absorb into a match-all, merge uid prefixes into one."""
    flat: list[Query] = []
    for q in items:
        flat.extend(q.items if isinstance(q, Or) else [q])
    if any(isinstance(q, MatchAll) for q in flat):
        return MatchAll()
    uids = [q for q in flat if isinstance(q, PartialUID)]
    if len(uids) > 1:
        first = flat.index(uids[0])
        flat = [q for q in flat if not isinstance(q, PartialUID)]
        flat.insert(first, PartialUID(*(p for u in uids for p in u.prefixes)))
    return flat[0] if len(flat) == 1 else Or(*flat)


def _not(q: Query) -> Query:
    return q.query if isinstance(q, Not) else Not(q)


def parse(text: str) -> Query:
    """Parse a text query; the inverse of ``str(query)``.

    Conditions are ``key op value`` with ``op`` one of ``== != < <= > >=``, or
    ``key in [..]``, ``key not in [..]``, ``key contains value``,
    ``key startswith "text"``, joined with ``and``/``&&``/``&``,
    ``or``/``||``/``|``, ``not``/``!``/``~`` and parentheses (``not`` binds
    tightest, then ``and``, then ``or``). Keys are dotted names (``md.sample``,
    ``stop.exit_status``), with backquotes around a name that is not a plain
    identifier (``md.`weird key```). Values are ``"strings"``, ``'strings'``, numbers, ``true``,
    ``false``, ``null`` and ``[lists]``. ``*`` or an empty text matches every run.

    ``time`` compared with a date string (or a number, for ``<``, ``<=``, ``>``,
    ``>=``) becomes a :class:`TimeRange`. A date string stands for the whole span
    of its precision: ``time == "2026-11-21"`` is that whole local day,
    ``time <= "2026-11-21 10:30"`` includes the minute 10:30, ``time > "2026-11-21"``
    starts at the next midnight. ``scan_id == 5`` and ``scan_id in [1, 2]``
    become :class:`ScanID`, ``uid startswith "a3f"`` a :class:`PartialUID`.

    Raises
    ------
    QuerySyntaxError
        With the 0-based column of the offending token and what was expected.

    Examples
    --------
    >>> parse('sample == "Ni" and not stop.exit_status == "abort"')
    (Key('sample') == 'Ni') & ~(Key('stop.exit_status') == 'abort')
    >>> parse("scan_id in [3, 4] or uid startswith 'a3f'")
    ScanID(3, 4) | PartialUID('a3f')
    """
    from .query_parser import parse_query

    return parse_query(text)
