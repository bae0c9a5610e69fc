"""The query tree: the :class:`Query` base, run-column conditions and boolean combinators.

:class:`TimeRange`, :class:`ScanID` and :class:`PartialUID` test the ``time``,
``scan_id`` and ``uid`` columns; :class:`And`, :class:`Or` and :class:`Not`
combine queries (build them with ``&``, ``|`` and ``~``, which flatten and merge
through :func:`all_of`, :func:`any_of` and :func:`negate`). Field comparisons
live in :mod:`scandeck.query.fields`; users import all of them from
:mod:`scandeck.queries`.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidQuery
from .sql import Frag
from .times import TimeLike, py_time, text_time, time_interval
from .values import MISSING, check_int, json_kind, text_value

#: How deeply ``and``, ``or`` and ``not`` may nest in a query (a comparison is depth 1):
#: SQLite's parser overflows on SQL nested much deeper.
MAX_DEPTH = 32


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
    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        """Whether a run with these start and stop documents (stop None while running) matches.

        ``facts`` is the run's facts document (:func:`scandeck.runtable.model.facts_document`);
        without it, keys of the facts (``columns.x``, ``tags``...) are missing.
        """

    @abstractmethod
    def _sql(self) -> Frag: ...

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
    _py_prec = 5

    @property
    def _text_prec(self) -> int:  # a property: TimeRange and PartialUID compute theirs
        return 4

    #: Nesting depth: 1 for a condition, one more for each And, Or, Not around it.
    depth = 1

    @abstractmethod
    def __str__(self) -> str: ...

    @staticmethod
    def all() -> MatchAll:
        """The query that matches every run (also what an empty text parses to)."""
        return MatchAll()

    def __and__(self, other: object) -> Query:
        return all_of(self, other) if isinstance(other, Query) else NotImplemented

    def __or__(self, other: object) -> Query:
        return any_of(self, other) if isinstance(other, Query) else NotImplemented

    def __invert__(self) -> Query:
        return negate(self)


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

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        return True

    def _sql(self) -> Frag:
        return "1", []

    def __str__(self) -> str:
        return "*"

    def __repr__(self) -> str:
        return "Query.all()"


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
            raise InvalidQuery("TimeRange needs since, until or both; Query.all() matches every run")
        for name, value in (("since", since), ("until", until)):
            object.__setattr__(self, name, None if value is None else time_interval(value)[0])

    @property
    def _text_prec(self) -> int:
        return 2 if self.since is not None and self.until is not None else 4

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        t = start.get("time", MISSING)
        return (
            json_kind(t) == "num"
            and (self.since is None or t >= self.since)
            and (self.until is None or t < self.until)
        )

    def _sql(self) -> Frag:
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
            parts.append(f"time >= {text_time(self.since)}")
        if self.until is not None:
            parts.append(f"time < {text_time(self.until)}")
        return " and ".join(parts)

    def __repr__(self) -> str:
        bounds = (("since", self.since), ("until", self.until))
        args = ", ".join(f"{n}={py_time(t)}" for n, t in bounds if t is not None)
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
        object.__setattr__(self, "scan_ids", tuple(check_int(int(s)) for s in scan_ids))

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        s = start.get("scan_id", MISSING)
        return json_kind(s) == "num" and s in self.scan_ids

    def _sql(self) -> Frag:
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
    def _text_prec(self) -> int:
        return 4 if len(self.prefixes) == 1 else 1

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        uid = start.get("uid")
        return isinstance(uid, str) and uid.startswith(self.prefixes)

    def _sql(self) -> Frag:
        tests = " OR ".join(f"substr(uid, 1, {len(p)}) = ?" for p in self.prefixes)
        return f"(typeof(uid) = 'text' AND ({tests}))", list(self.prefixes)

    def __str__(self) -> str:
        return " or ".join(f"uid startswith {text_value(p)}" for p in self.prefixes)

    def __repr__(self) -> str:
        return f"PartialUID({', '.join(map(repr, self.prefixes))})"


@dataclass(frozen=True, init=False)
class _Junction(Query):
    """Items joined by one connective: what :class:`And` and :class:`Or` share."""

    items: tuple[Query, ...]
    # The connective in text, Python and SQL; the SQL for no items; the text
    # precedence below which an item is put in parentheses.
    _connective = ("", "", "")
    _empty_sql = ""
    _item_prec = 0

    def __init__(self, *items: Query) -> None:
        object.__setattr__(self, "items", tuple(items))
        _set_depth(self, max((q.depth for q in self.items), default=0) + 1)

    def _sql(self) -> Frag:
        if not self.items:
            return self._empty_sql, []
        sqls, params = [], []
        for q in self.items:
            sql, ps = q._sql()
            sqls.append(sql)
            params += ps
        return "(" + f" {self._connective[2]} ".join(sqls) + ")", params

    def __str__(self) -> str:
        word = f" {self._connective[0]} "
        return word.join(_wrap_text(q, self._item_prec) for q in self.items)

    def __repr__(self) -> str:
        return f" {self._connective[1]} ".join(_wrap_py(q, 4) for q in self.items)


@dataclass(frozen=True, init=False, repr=False)  # keep _Junction.__repr__
class And(_Junction):
    """Matches when every item matches; build it with ``&``.

    Examples
    --------
    >>> str((Key("a") == 1) & (Key("b") == 2))
    'a == 1 and b == 2'
    """

    _text_prec = 2
    _py_prec = 3
    _connective = ("and", "&", "AND")
    _empty_sql = "1"
    _item_prec = 2

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        return all(q.matches(start, stop, facts) for q in self.items)


@dataclass(frozen=True, init=False, repr=False)  # keep _Junction.__repr__
class Or(_Junction):
    """Matches when any item matches; build it with ``|``.

    Examples
    --------
    >>> str((Key("a") == 1) & (Key("b") == 2) | ScanID(3))
    '(a == 1 and b == 2) or scan_id == 3'
    """

    _text_prec = 1
    _py_prec = 2
    _connective = ("or", "|", "OR")
    _empty_sql = "0"
    _item_prec = 3

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        return any(q.matches(start, stop, facts) for q in self.items)


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

    def __post_init__(self) -> None:
        _set_depth(self, self.query.depth + 1)

    def matches(
        self,
        start: Mapping[str, Any],
        stop: Mapping[str, Any] | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> bool:
        return not self.query.matches(start, stop, facts)

    def _sql(self) -> Frag:
        sql, params = self.query._sql()
        return f"(NOT {sql})", params

    def __str__(self) -> str:
        return "not " + _wrap_text(self.query, 3)

    def __repr__(self) -> str:
        return "~" + _wrap_py(self.query, 4)


def _set_depth(q: Query, depth: int) -> None:
    """Record ``q``'s depth, or raise :class:`InvalidQuery` past :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise InvalidQuery(
            f"the query nests 'and', 'or' and 'not' more than {MAX_DEPTH} levels deep: "
            "write it flatter (a and b and c is one level; 'not not' cancels)"
        )
    object.__setattr__(q, "depth", depth)


def _flatten(items: tuple[Query, ...], junction: type[_Junction]) -> list[Query]:
    """``items`` with those of type ``junction`` replaced by their own items."""
    flat: list[Query] = []
    for q in items:
        flat.extend(q.items if isinstance(q, junction) else [q])
    return flat


def all_of(*items: Query) -> Query:
    """``&``: flatten, drop match-alls, merge time ranges into one."""
    flat = [q for q in _flatten(items, And) if not isinstance(q, MatchAll)]
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


def any_of(*items: Query) -> Query:
    """``|``: flatten, absorb into a match-all, merge uid prefixes into one."""
    flat = _flatten(items, Or)
    if any(isinstance(q, MatchAll) for q in flat):
        return MatchAll()
    uids = [q for q in flat if isinstance(q, PartialUID)]
    if len(uids) > 1:
        first = flat.index(uids[0])
        flat = [q for q in flat if not isinstance(q, PartialUID)]
        flat.insert(first, PartialUID(*(p for u in uids for p in u.prefixes)))
    return flat[0] if len(flat) == 1 else Or(*flat)


def negate(q: Query) -> Query:
    """``~``: a double negation cancels."""
    return q.query if isinstance(q, Not) else Not(q)
