"""Queries answered from an index of start-document values, with the same answers as :meth:`Query.to_sql`.

The embedded store keeps a table ``start_values(field, value, run_id)`` (see
:mod:`scandeck.sources.sqlite_index`) with one row per scalar field of each run's
start document, nested dictionaries' fields included, and one row per scalar
element of a list field. This module holds its two rules, used by the writer and by
the compiler alike:

* :func:`index_rows`: which rows a start document gets. A field is named by
  :func:`field_key`, the JSON text of its path (``["md", "sample"]``), which no
  dot or quote in a key can make ambiguous; the elements of a list field by
  :func:`element_key` (the same with a ``*`` in front, which no JSON array starts
  with). A value is typed as SQLite compares it (:func:`index_value`): numbers as
  INTEGER or REAL (so ``1 == 1.0``), strings as TEXT, and ``null``, ``false`` and
  ``true`` as the BLOBs ``x''``, ``x'00'`` and ``x'01'``, which equal no number and no
  string (a boolean is not ``1``). SQLite orders numbers < TEXT < BLOB, so a range
  of one type is bounded by ``''`` or ``x''``.
* :func:`indexed_sql`: a query's SQL where each condition the index answers
  exactly (``==``, ``in``, ``<``, ``<=``, ``>``, ``>=``, ``startswith``, ``contains``
  with scalar values, ``matches``, on start-document fields, and on a run's facts
  under ``@`` names unless the empty facts document meets the condition, as a run
  nothing was recorded about has no rows but meets ``comments == ""``) becomes a lookup in
  the index: a set (``id IN (SELECT run_id FROM start_values WHERE ...)``) or a
  probe of one run (``EXISTS``, for ``==``, ``in`` and ``contains``, which are seeks;
  a probed range reads the run's JSON instead). Every other condition (``!=``,
  ``not in``, lists compared whole, the ``stop`` document, full text, the run
  columns) keeps :meth:`Query.to_sql`'s SQL. The index only makes the search
  faster: the agreement tests run every query in every shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from ..runtable.model import empty_facts
from .fields import Comparison
from .sql import CONTAINS_FUNCTION, REGEX_FUNCTION, Frag
from .text import Regex
from .tree import And, Not, Or, Query
from .values import INT_MAX, INT_MIN, ORDERING, Value, json_kind

__all__ = [
    "INDEX_TABLE",
    "conjuncts",
    "element_key",
    "field_key",
    "index_condition",
    "index_count_sql",
    "index_rows",
    "index_value",
    "indexed_sql",
    "uses_index",
]

#: The index table's name.
INDEX_TABLE = "start_values"
#: Top-level fields the ``runs`` table has as columns: queries on them use the columns.
_COLUMNS = frozenset({"uid", "scan_id", "time"})
#: What ``null``, ``false`` and ``true`` are stored as.
_NULL, _FALSE, _TRUE = b"", b"\x00", b"\x01"


@lru_cache(maxsize=4096)  # a store's runs share a few hundred paths; the writer asks for each
def field_key(path: tuple[str, ...], doc: str = "start") -> str:
    """The index's name for field ``path`` of ``doc`` (JSON text of the path; ``@`` before a facts path).

    Examples
    --------
    >>> field_key(("md", "weird.key")), field_key(("columns", "cen"), "facts")
    ('["md", "weird.key"]', '@["columns", "cen"]')
    """
    return ("@" if doc == "facts" else "") + json.dumps(list(path), ensure_ascii=False)


def element_key(path: tuple[str, ...], doc: str = "start") -> str:
    """The index's name for the elements of list field ``path``.

    Examples
    --------
    >>> element_key(("detectors",))
    '*["detectors"]'
    """
    return "*" + field_key(path, doc)


def index_value(v: Any) -> int | float | str | bytes:
    """A JSON scalar as the index stores it (booleans and null as BLOBs, numbers as numbers).

    An integer outside SQLite's 64 bits becomes a float, as ``json_extract`` reads it.

    Examples
    --------
    >>> index_value(True), index_value(1), index_value(None)
    (b'\\x01', 1, b'')
    """
    if v is None:
        return _NULL
    if v is True:
        return _TRUE
    if v is False:
        return _FALSE
    if isinstance(v, int) and not INT_MIN <= v <= INT_MAX:
        return float(v)
    return v  # str, int or float: the rest of JSON's scalars


def index_rows(start: Mapping[str, Any], doc: str = "start") -> Iterator[tuple[str, int | float | str | bytes]]:
    """``(field, value)`` rows of a start document, decoded from the JSON the store keeps.

    The document must be what ``json.loads`` gives for the store's JSON copy (lists,
    dicts with string keys, finite numbers), so that the index sees what
    ``json_extract`` sees. ``uid``, ``scan_id`` and ``time`` are left out: they are
    columns. Objects inside lists are not indexed (a query cannot name their fields).
    ``doc="facts"``: the rows of a run's facts document, named with ``@`` (:func:`field_key`).

    Examples
    --------
    >>> sorted(index_rows({"uid": "a", "time": 1.0, "md": {"n": 1}, "det": ["x", ["y"]]}))
    [('*["det"]', 'x'), ('["md", "n"]', 1)]
    """
    todo: list[tuple[tuple[str, ...], Mapping[str, Any]]] = [((), start)]
    while todo:
        prefix, node = todo.pop()
        for key, value in node.items():
            if not prefix and key in _COLUMNS and doc == "start":
                continue
            path = (*prefix, key)
            if isinstance(value, dict):
                todo.append((path, value))
            elif isinstance(value, list):
                name = element_key(path, doc)
                for item in value:
                    if not isinstance(item, (list, dict)):
                        yield name, index_value(item)
            else:
                yield field_key(path, doc), index_value(value)


# ------------------------------------------------------------------ compiling


def _scalar(v: Value) -> bool:
    return json_kind(v) != "list"


def _successor(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (None: there is none).

    SQLite compares TEXT as UTF-8 bytes, which orders as code points do.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000  # no string holds a lone surrogate (the store refuses them)
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def _where(field: str, condition: str, params: list[Any]) -> Frag:
    return f"field = ? AND {condition}", [field, *params]


def index_condition(q: Query) -> Frag | None:
    """The condition on ``start_values`` rows that finds the runs matching ``q``, or None.

    None when the index cannot answer ``q`` exactly (see the module's docstring).
    Each matching run has exactly one matching row: a scalar field has one row per
    run, a list's equal elements share one row.
    """
    if not _indexed_field(q):
        return None
    if isinstance(q, Regex):
        condition = f"value >= '' AND value < x'' AND {REGEX_FUNCTION}(?, value)"
        return _where(field_key(q.path, q.doc), condition, [q.pattern])
    assert isinstance(q, Comparison)
    op, v, path = q.op, q.value, q.path
    name = field_key(path, q.doc)
    if op == "==" and _scalar(v):
        return _where(name, "value = ?", [index_value(v)])
    if op == "in":
        assert isinstance(v, tuple)  # check_value() froze the list of an 'in'
        if not v or not all(_scalar(x) for x in v):
            return None  # to_sql() answers an empty list with 0, lists compared whole need the JSON
        marks = ", ".join("?" * len(v))
        return _where(name, f"value IN ({marks})", [index_value(x) for x in v])
    if op in ORDERING:
        # A bound of the value's own type keeps the range inside it: numbers < TEXT < BLOB.
        if isinstance(v, str):
            bound = "value < x''" if op[0] == ">" else "value >= ''"
        else:
            bound = "value < ''" if op[0] == ">" else "1"  # no row holds SQL NULL, below numbers
        return _where(name, f"value {op} ? AND {bound}", [v])
    if op == "startswith":
        assert isinstance(v, str)  # check_value(): 'startswith' takes a string
        upper = _successor(v)
        if upper is None:
            return _where(name, "value >= ? AND value < x''", [v])
        return _where(name, "value >= ? AND value < ?", [v, upper])
    if op == "contains":
        element = _where(element_key(path, q.doc), "value = ?", [index_value(v)])
        if not isinstance(v, str):
            return element
        # A string field contains a substring: a field is a list or a string, never both,
        # so each matching run still has one matching row.
        text = _where(name, f"value >= '' AND value < x'' AND {CONTAINS_FUNCTION}(value, ?)", [v])
        return f"(({element[0]}) OR ({text[0]}))", [*element[1], *text[1]]
    return None


def _lookup(condition: Frag, probe: str | None) -> Frag:
    """``id IN (...)`` (a set: SQLite can drive from it), or a probe of run ``probe`` (``EXISTS``)."""
    where, params = condition
    if probe is None:
        return f"id IN (SELECT run_id FROM {INDEX_TABLE} WHERE {where})", params
    return f"EXISTS (SELECT 1 FROM {INDEX_TABLE} WHERE {where} AND run_id = {probe})", params


def _compile(q: Query, probe: str | None) -> Frag:
    if isinstance(q, (And, Or)):
        if not q.items:
            return q.to_sql()
        sqls, params = [], []
        for item in q.items:
            sql, ps = _compile(item, probe)
            sqls.append(sql)
            params += ps
        word = " AND " if isinstance(q, And) else " OR "
        return "(" + word.join(sqls) + ")", params
    if isinstance(q, Not):
        sql, params = _compile(q.query, probe)
        return f"(NOT {sql})", params
    condition = index_condition(q)
    if condition is None or (probe is not None and not _seeks(q)):
        # A range probed for one run would scan the whole range: its JSON is cheaper.
        return q.to_sql()
    return _lookup(condition, probe)


def _seeks(q: Query) -> bool:
    """Whether probing ``q`` for one run is a seek in the index (``==``, ``in``, ``contains``)."""
    if not isinstance(q, Comparison) or q.op not in ("==", "in", "contains"):
        return False
    return q.op != "contains" or not isinstance(q.value, str)  # a substring is tested on every row


def _index_only(q: Query) -> bool:
    """Whether every condition in ``q`` is probed by an index seek (so no run's JSON is read)."""
    if isinstance(q, (And, Or)):
        return bool(q.items) and all(_index_only(item) for item in q.items)
    if isinstance(q, Not):
        return _index_only(q.query)
    return _seeks(q) and index_condition(q) is not None


def _indexed_field(q: Query) -> bool:
    """Whether ``q`` is a condition on a start-document or facts field the index holds."""
    if not isinstance(q, (Comparison, Regex)) or q.doc == "stop":
        return False
    if q.doc == "facts":  # a run nothing was recorded about has no rows: the index misses
        return not q.matches({}, None, empty_facts())  # it where the empty facts match (comments == "")
    return not (len(q.path) == 1 and q.path[0] in _COLUMNS)


def uses_index(query: Query) -> bool:
    """Whether :func:`indexed_sql` would read the index for ``query`` (else it is ``to_sql()``)."""
    if isinstance(query, (And, Or)):
        return any(uses_index(q) for q in query.items)
    if isinstance(query, Not):
        return uses_index(query.query)
    return index_condition(query) is not None


def conjuncts(query: Query) -> tuple[Query, ...]:
    """The conditions a run must all meet: the items of a top-level ``and``, else the query itself."""
    return query.items if isinstance(query, And) else (query,)


def indexed_sql(query: Query, *, probe: bool = False, driver: Query | None = None) -> tuple[str, list[Any]]:
    """An SQLite boolean expression over ``runs`` and the ``start_values`` index, and its parameters.

    It matches exactly the runs ``query.to_sql()`` matches, on a store whose index
    holds :func:`index_rows` of every run; conditions the index cannot answer keep
    ``to_sql()``'s SQL. The same answer in three shapes, for SQLite's planner:

    * default: each lookup is a set, ``id IN (SELECT run_id ...)``;
    * ``probe=True``: each lookup is a probe of the run at hand, ``EXISTS (... run_id
      = runs.id)``: cheap per row, for walking runs in time order to a first page;
    * ``driver``: one of :func:`conjuncts` whose set the search starts from, the rest
      probed for each of its runs.

    Examples
    --------
    >>> from scandeck.query import Key
    >>> indexed_sql(Key("sample") == "Ni")
    ('id IN (SELECT run_id FROM start_values WHERE field = ? AND value = ?)', ['["sample"]', 'Ni'])
    """
    if driver is None:
        sql, params = _compile(query, "runs.id" if probe else None)
        return sql, list(params)
    condition = index_condition(driver)
    if condition is None or not any(c is driver for c in conjuncts(query)):
        raise ValueError(f"the driver {driver!r} is not an indexed condition that {query!r} requires")
    sqls, params = [], []
    for q in (driver, *(c for c in conjuncts(query) if c is not driver)):
        sql, ps = _lookup(condition, None) if q is driver else _compile(q, "runs.id")
        sqls.append(sql)
        params += ps
    return " AND ".join(sqls), params


def index_count_sql(query: Query, driver: Query) -> tuple[str, list[Any]] | None:
    """``SELECT count(*)`` of the runs matching ``query`` from the index alone, or None.

    ``driver`` is one of :func:`conjuncts` with an :func:`index_condition`: its rows
    are the candidates (one per run), and each other conjunct is probed for each
    candidate by index seeks. None when some other conjunct needs the run itself
    (the JSON, a column, or a range that a seek cannot probe). Exact on a store whose
    runs are never deleted (a row of the index is a stored run).
    """
    condition = index_condition(driver)
    others = [c for c in conjuncts(query) if c is not driver]
    if condition is None or len(others) == len(conjuncts(query)) or not all(_index_only(c) for c in others):
        return None
    sql, params = f"SELECT count(*) FROM {INDEX_TABLE} AS d WHERE {condition[0]}", list(condition[1])
    for q in others:
        probe, ps = _compile(q, "d.run_id")
        sql += f" AND {probe}"
        params += ps
    return sql, params
