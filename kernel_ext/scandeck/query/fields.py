"""Field comparisons: :class:`Key` (a path into a run's documents) and :class:`Comparison`.

``Key("md.sample") == "Ni"`` builds a :class:`Comparison`, or the run-column
query a comparison stands for (:func:`make_comparison`): ``time`` against a date
becomes a :class:`~scandeck.query.tree.TimeRange`, ``scan_id ==`` an integer a
:class:`~scandeck.query.tree.ScanID`, ``uid startswith`` a
:class:`~scandeck.query.tree.PartialUID`.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from ..exceptions import InvalidQuery
from .sql import Frag, comparison_sql
from .text import Regex
from .times import time_interval
from .tree import Not, PartialUID, Query, ScanID, TimeRange
from .values import (
    FACT_ROOTS,
    MISSING,
    OPERATORS,
    ORDERING,
    DocName,
    Value,
    check_path,
    check_value,
    json_equal,
    json_kind,
    py_key,
    py_value,
    read_field,
    text_key,
    text_value,
    value_tag,
)


class Key:
    """A field of a run's documents, to compare with a value.

    Parameters
    ----------
    name : str or sequence of str
        A dotted path into the start document (``"md.sample"`` is
        ``start["md"]["sample"]``), or ``"stop.<path>"`` for the stop document,
        or a path into the run's facts: ``"columns.<name>"`` (a computed column),
        ``"tags"``, ``"comments"`` (every comment's text), ``"data.<key>.min"`` or
        ``".max"`` (the key's range in the run's data).
        Give a sequence of names for a field whose name contains a dot.
    doc : {"start", "stop", "facts"}, optional
        The document to read; given explicitly, ``name`` is not searched for a
        ``stop.`` prefix or a facts name (``Key("tags", doc="start")`` is the
        start document's field ``tags``).

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
    # == builds a query (the DSL), so a Key is unhashable; typeshed types object.__hash__ as a method
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str | Sequence[str], doc: DocName | None = None) -> None:
        path = tuple(name.split(".")) if isinstance(name, str) else tuple(name)
        if doc is None:
            doc = "start"
            if len(path) > 1 and path[0] == "stop":
                doc, path = "stop", path[1:]
            elif path and path[0] in FACT_ROOTS:
                doc = "facts"
        check_path(doc, path, name)
        self.doc: DocName = doc
        self.path: tuple[str, ...] = path

    def __repr__(self) -> str:
        return py_key(self.doc, self.path)

    def _cmp(self, op: str, value: object) -> Query:
        return make_comparison(self.doc, self.path, op, value)

    # The query DSL: == and != build a Query, not a bool (object.__eq__ promises a bool).
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

    def regex(self, pattern: str | re.Pattern[str]) -> Query:
        """Match when the field is a string in which ``pattern`` is found (:func:`re.search`).

        Examples
        --------
        >>> str(Key("sample").regex("^N(i|b)"))
        'sample matches "^N(i|b)"'
        """
        return Regex(self.doc, self.path, pattern)

    def exists(self) -> Query:
        """Match when the field is present, whatever its value (``null`` included).

        There is no leaf of its own: a present field is either ``null`` or not,
        which every source (and Tiled) already answers.

        Examples
        --------
        >>> str(Key("sample").exists())
        'sample == null or sample != null'
        >>> str(~Key("sample").exists())
        'not (sample == null or sample != null)'
        """
        return (self == None) | (self != None)  # noqa: E711 - builds queries, not comparisons

    def _misuse(self, *_: object) -> Query:
        raise TypeError(
            "a Key is not a query yet: compare it first and put each comparison in "
            "parentheses, e.g. (Key('sample') == 'Ni') & (Key('scan_id') > 3)"
        )

    __and__ = __rand__ = __or__ = __ror__ = __invert__ = _misuse


@dataclass(frozen=True, eq=False, repr=False)
class Comparison(Query):
    """A field compared with a value; build it with :class:`Key`, not directly.

    Parameters
    ----------
    doc : {"start", "stop", "facts"}
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
        check_path(self.doc, self.path, ".".join(map(str, self.path)))
        if self.op not in OPERATORS:
            raise InvalidQuery(f"unknown operator {self.op!r}: use one of {', '.join(OPERATORS)}")
        object.__setattr__(self, "value", check_value(self.op, self.value))
        object.__setattr__(self, "_py_prec", 0 if self.op in ORDERING or "=" in self.op else 5)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Comparison):
            return NotImplemented
        return (self.doc, self.path, self.op, value_tag(self.value)) == (
            other.doc, other.path, other.op, value_tag(other.value)
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.doc, self.path, self.op, value_tag(self.value)))

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        field, op, v = read_field(self.doc, self.path, start, stop, facts), self.op, self.value
        if field is MISSING:
            return False
        if op == "==":
            return json_equal(field, v)
        if op == "!=":
            return not json_equal(field, v)
        if op in ORDERING:
            return json_kind(field) == json_kind(v) and bool(ORDERING[op](field, v))
        if op in ("in", "not in"):
            assert isinstance(v, tuple)  # check_value() froze the list of an 'in'
            found = any(json_equal(field, x) for x in v)
            return found if op == "in" else not found
        if op == "contains":
            if isinstance(field, str):
                return isinstance(v, str) and v in field
            return json_kind(field) == "list" and any(json_equal(x, v) for x in field)
        assert isinstance(v, str)  # check_value(): 'startswith' takes a string
        return isinstance(field, str) and field.startswith(v)

    def _sql(self) -> Frag:
        return comparison_sql(self.doc, self.path, self.op, self.value)

    def __str__(self) -> str:
        return f"{text_key(self.doc, self.path)} {self.op} {text_value(self.value)}"

    def __repr__(self) -> str:
        key = py_key(self.doc, self.path)
        if self._py_prec == 0:
            return f"{key} {self.op} {py_value(self.value)}"
        method = {"in": "in_", "not in": "not_in"}.get(self.op, self.op)
        return f"{key}.{method}({py_value(self.value)})"


def make_comparison(doc: DocName, path: tuple[str, ...], op: str, value: object) -> Query:
    """Build a comparison, turning time, scan_id and uid cases into their own queries."""
    check_path(doc, path, ".".join(map(str, path)))
    if op in ("in", "not in") and isinstance(value, Iterable):
        if not isinstance(value, (str, bytes, Mapping)):
            value = list(value)
    special = path[0] if doc == "start" and len(path) == 1 else None
    if special == "time" and (op in ORDERING or op in ("==", "!=")):
        if isinstance(value, (str, date)) or (op in ORDERING and json_kind(value) == "num"):
            begin, end = time_interval(value)
            if op == "==":
                return TimeRange(since=begin, until=end)
            if op == "!=":
                return Not(TimeRange(since=begin, until=end))
            bound = begin if op in (">=", "<") else end
            return TimeRange(since=bound) if op[0] == ">" else TimeRange(until=bound)
    if special == "scan_id":
        if op == "==" and json_kind(value) == "num" and isinstance(value, numbers.Integral):
            return ScanID(int(value))
        if op == "in" and isinstance(value, (list, tuple)) and value:
            if all(json_kind(v) == "num" and isinstance(v, numbers.Integral) for v in value):
                return ScanID(*value)
    if special == "uid" and op == "startswith" and isinstance(value, str) and value:
        return PartialUID(value)
    return Comparison(doc, path, op, cast(Value, value))  # its __post_init__ checks and freezes it
