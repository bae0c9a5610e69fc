"""Scandeck queries as plans of Tiled queries: exact where Tiled agrees, re-checked where not.

A :class:`Plan` is a tree of :class:`Leaf` (Tiled queries that Tiled ANDs), :class:`AllOf`,
:class:`AnyOf` and :class:`NoneOf`; :mod:`.search` evaluates it. A leaf's queries are
the narrowest ones that never drop a run the scandeck query matches; when they may
also keep runs it does not match, the leaf carries ``check`` (the scandeck query) and
its candidates are re-checked with ``check.matches(start, stop)``.

What Tiled's SQLite catalog does with each query (measured with tiled 0.2.20, see
``docs/design/tiled-source.md`` §2) decides exactness. A key's value is compared as
SQLite's ``json_extract`` gives it: ``true``/``false`` are the integers 1/0, a list or
an object is its JSON text, ``null`` and a missing key are both SQL NULL. So:

* ``==`` a string or a number is exact, except for the numbers 0 and 1 (they match
  ``false``/``true``) and strings that start like JSON text (``[``, ``{``), which
  match a list or object of that text; ``== true`` matches 1; ``== null`` and
  ``== [list]`` make the server fail (500) and are found by presence, then checked;
* ``!=`` and ``not in`` are "present and not equal": presence (``KeyPresent``, which
  sees ``null``) minus the ``==`` runs; Tiled's own ``NotEq``/``NotIn`` drop ``null``;
* ``<``/``>`` with a number also match booleans and, upwards, every string (bounded
  below ``""``, the least string); strings compare by code point but also meet lists
  and objects through their JSON text. The strays are few and known (values 0/1; values
  starting with ``[``/``{``): those alone are downloaded and checked, and dropped on the
  server, so a range stays a server-side search;
* ``contains`` is a substring test on JSON text (of a list, or of a string: ours is a
  substring test there too), ``startswith`` and uid prefixes use
  ``LIKE`` (case-insensitive, ``_``/``%`` are wildcards): always re-checked;
* ``matches`` (a regular expression) finds the non-null values (``LIKE '%'``), then checks;
  a full-text search checks every candidate (Tiled's ``FullText`` matches words, not substrings);
* a key whose names are not plain (``[A-Za-z0-9_-]``: a dot, a quote, a space inside a
  name) and any query type this module does not know are checked on every candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from tiled import queries as tq

from ...query import And, Comparison, MatchAll, Not, Or, PartialUID, Query, ScanID, TimeRange
from ...query.text import Regex
from ...query.values import ORDERING, json_kind

__all__ = ["AllOf", "AnyOf", "Leaf", "NoneOf", "Plan", "plan", "OPEN"]


@dataclass(frozen=True, eq=False)
class Leaf:
    """Runs Tiled finds with ``queries`` (ANDed; none: every run), re-checked by ``check`` if given."""

    queries: tuple[Any, ...] = ()
    check: Query | None = None


@dataclass(frozen=True, eq=False)
class AllOf:
    """Runs every item matches."""

    items: tuple[Plan, ...]


@dataclass(frozen=True, eq=False)
class AnyOf:
    """Runs some item matches."""

    items: tuple[Plan, ...]


@dataclass(frozen=True, eq=False)
class NoneOf:
    """Runs ``item`` does not match."""

    item: Plan


Plan: TypeAlias = "Leaf | AllOf | AnyOf | NoneOf"

#: Runs without a stop document: a stop document always has a uid. (Not ``KeyPresent("stop")``:
#: bluesky-tiled-plugins' client reads a key without a ``start.``/``stop.`` prefix as
#: ``start.<key>``, so that one asks for ``start.stop``.)
OPEN = Leaf((tq.KeyPresent("stop.uid", exists=False),))

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
# JSON text of a list or an object starts with one of these: strings starting so may meet them.
_JSON_OPENERS = ("[", "{")
# The JSON kinds Tiled's Eq and In compare with (a list or null makes the server fail).
_SCALARS = ("str", "num", "bool")
# Integers printed the same inside JSON text by Python and SQLite (reals get an exponent later).
_PLAIN_INT = 10**14


def plan(query: Query) -> Plan:
    """The plan of a scandeck query.

    Examples
    --------
    >>> from scandeck.query import Key
    >>> plan(Key("sample") == "Ni")
    Leaf(queries=(Eq(key='start.sample', value='Ni'),), check=None)
    >>> plan(Key("flag") == True).check
    Key('flag') == True
    """
    if isinstance(query, MatchAll):
        return Leaf()
    if isinstance(query, And):
        return AllOf(tuple(plan(q) for q in query.items))
    if isinstance(query, Or):
        return _any_of([plan(q) for q in query.items])
    if isinstance(query, Not):
        return NoneOf(plan(query.query))
    if isinstance(query, TimeRange):
        bounds = []
        if query.since is not None:
            bounds.append(tq.Comparison("ge", "start.time", query.since))
        if query.until is not None:
            bounds.append(tq.Comparison("lt", "start.time", query.until))
        return Leaf(tuple(bounds))  # event-model makes time a number: exact
    if isinstance(query, ScanID):
        ids = list(query.scan_ids)
        return Leaf((tq.In("start.scan_id", ids),), None if all(map(_eq_exact, ids)) else query)
    if isinstance(query, PartialUID):
        likes = tuple(Leaf((tq.Like("start.uid", p + "%"),), PartialUID(p)) for p in query.prefixes)
        return likes[0] if len(likes) == 1 else AnyOf(likes)
    if isinstance(query, Comparison):
        key = _tiled_key(query.doc, query.path)
        return _comparison(query, key) if key else Leaf((), query)
    if isinstance(query, Regex):
        key = _tiled_key(query.doc, query.path)
        # the field must be a string: LIKE '%' keeps every non-null value, re.search decides
        return Leaf((tq.Like(key, "%"),) if key else (), query)
    # FullText (a substring of any string, where Tiled's FullText matches words) and any
    # query type added later: every candidate checked, correct and slow
    return Leaf((), query)


def _any_of(items: list[Plan]) -> Plan:
    """``|`` of plans; exact equalities on one key become one ``In`` (one request, no sets)."""
    merged: dict[str, list[Any]] = {}
    rest: list[Plan] = []
    for item in items:
        found = _equalities(item)
        if found is None:
            rest.append(item)
        else:
            merged.setdefault(found[0], []).extend(found[1])
    # each value came from an exact Eq or In, and In is exact for the same values
    rest += [Leaf((tq.In(key, sorted(values, key=_bind_order)),)) for key, values in merged.items()]
    return rest[0] if len(rest) == 1 else AnyOf(tuple(rest))


def _equalities(item: Plan) -> tuple[str, list[Any]] | None:
    """``(key, values)`` of an exact leaf that is one ``Eq`` or ``In``, else None."""
    if isinstance(item, Leaf) and item.check is None and len(item.queries) == 1:
        q = item.queries[0]
        if isinstance(q, tq.Eq):
            return q.key, [q.value]
        if isinstance(q, tq.In):
            return q.key, list(q.value)
    return None


def _tiled_key(doc: str, path: tuple[str, ...]) -> str | None:
    """``start.a.b`` for Tiled, or None when a name cannot be written in Tiled's dotted keys."""
    if not all(_PLAIN_NAME.match(name) for name in path):
        return None
    return ".".join((doc, *path))


def _comparison(q: Comparison, key: str) -> Plan:
    op, v = q.op, q.value
    present = Leaf((tq.KeyPresent(key),))
    if op == "==":
        return _equal(q, key, v)
    if op == "!=":
        return AllOf((present, NoneOf(_equal(Comparison(q.doc, q.path, "==", v), key, v))))
    if op == "in":
        assert isinstance(v, tuple)
        return _in(q, key, v)
    if op == "not in":
        assert isinstance(v, tuple)
        return AllOf((present, NoneOf(_in(q, key, v))))
    if op in ORDERING:
        return _ordering(q, key, op, v)
    lists = tq.Like(key, "[%")  # JSON text of a list: every run a 'contains' of a non-string can match
    if op == "contains":
        if isinstance(v, str):  # a list with the element, or a string with the substring
            return Leaf((tq.Contains(key, v),) if _plain_ascii(v) else (tq.KeyPresent(key),), q)
        if json_kind(v) == "num" and float(v).is_integer() and abs(v) < _PLAIN_INT:  # type: ignore[arg-type]
            return Leaf((lists, tq.Contains(key, int(v))), q)  # type: ignore[arg-type]
        return Leaf((lists,), q)
    assert op == "startswith" and isinstance(v, str)
    return Leaf((tq.Like(key, v + "%"),), q)


def _eq_exact(v: Any) -> bool:
    """Whether Tiled's ``Eq``/``In`` with the scalar ``v`` keeps exactly the runs equal to it.

    Not for a boolean or the numbers 0 and 1 (SQLite's true/false are 1/0), nor for a
    string that starts like JSON text (lists and objects compare as theirs).
    """
    kind = json_kind(v)
    if kind == "str":
        return not v.startswith(_JSON_OPENERS)
    return kind == "num" and v not in (0, 1)


def _equal(q: Query, key: str, v: Any) -> Leaf:
    kind = json_kind(v)
    if kind in _SCALARS:
        return Leaf((tq.Eq(key, v),), None if _eq_exact(v) else q)
    if kind == "list":
        return Leaf((tq.Like(key, "[%"),), q)
    return Leaf((tq.KeyPresent(key),), q)  # null: the server cannot compare with it


def _in(q: Comparison, key: str, values: tuple[Any, ...]) -> Plan:
    # The server types every value as the first one: a float or boolean first makes it fail
    # (500) on a string, while a string first carries numbers and booleans through.
    plain = sorted((v for v in values if json_kind(v) in _SCALARS), key=_bind_order)
    others = [v for v in values if json_kind(v) not in _SCALARS]
    parts: list[Plan] = []
    if plain or not others:
        sub = Comparison(q.doc, q.path, "in", tuple(plain))
        parts.append(Leaf((tq.In(key, plain),), None if all(map(_eq_exact, plain)) else sub))
    parts += [_equal(Comparison(q.doc, q.path, "==", v), key, v) for v in others]
    return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))


def _bind_order(v: Any) -> int:
    return 0 if isinstance(v, str) else 3 if isinstance(v, bool) else 1 if isinstance(v, int) else 2


def _ordering(q: Comparison, key: str, op: str, v: Any) -> Plan:
    names = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
    bound = tq.Comparison(names[op], key, v)
    compare = ORDERING[op]
    suspects: list[Any] = []
    if json_kind(v) == "num":
        # numbers sort below every string: an upward range must stop before "" (strings)
        queries = (bound, tq.Comparison("lt", key, "")) if op[0] == ">" else (bound,)
        # true/false are 1/0 to SQLite: in a range holding 0 or 1, the runs equal to 0 or 1
        # are suspects (numbers 0 and 1 belong, booleans do not)
        if compare(0, v) or compare(1, v):
            suspects.append(tq.In(key, [0, 1]))
    else:
        # strings sort above every number: a downward range must start at "" (the least string)
        queries = (bound,) if op[0] == ">" else (bound, tq.Comparison("ge", key, ""))
        # lists and objects compare as their JSON text, which starts with "[" or "{": in a
        # range reaching those, values that start so are suspects (strings belong, the rest not)
        for opener, after in (("[", "\\"), ("{", "|")):
            if compare(opener, v) if op[0] == "<" else v < after:
                suspects.append(tq.Like(key, opener + "%"))
    return _less_strays(q, queries, suspects)


def _less_strays(q: Query, queries: tuple[Any, ...], suspects: list[Any]) -> Plan:
    """``queries`` less the runs among ``suspects`` that ``q`` does not match.

    When every run the queries keep but ``q`` does not is among a few suspects, only
    the suspects are downloaded and checked, and what they rule out is dropped on the
    server (``NotIn``): counts and pages stay the server's.
    """
    if not suspects:
        return Leaf(queries)
    strays = tuple(NoneOf(Leaf((*queries, s), Not(q))) for s in suspects)
    return AllOf((Leaf(queries), *strays))


def _plain_ascii(s: str) -> bool:
    """Whether ``s`` reads the same inside JSON text (printable ASCII, no quote or backslash)."""
    return all(" " <= c <= "~" and c not in '"\\' for c in s)
