"""SQL for queries: SQLite boolean expressions over the ``runs`` table's columns and JSON.

Every fragment is a :data:`Frag`, SQL text and its ``?`` parameters, and is 0 or
1, never NULL. Fields of ``start`` and ``stop`` (JSON text) are read with
``json_type``/``json_extract``; ``uid``, ``scan_id`` and ``time`` use the columns.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeAlias

from ..runtable.model import empty_facts
from .values import ORDERING, DocName, Value, json_kind

#: SQL text and its ``?`` parameters, in order.
Frag: TypeAlias = "tuple[str, list[Any]]"
_COLUMNS = frozenset({"uid", "scan_id", "time"})


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
        return f"(SELECT je.{column} FROM {self.each_of_parent} AS je WHERE je.key = {_lit(self.name)}{extra})"

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


def _sql_eq(node: _Json, v: Value) -> Frag:
    k = json_kind(v)
    t = node.type()
    if k == "null":
        return f"{t} IS 'null'", []
    if k == "bool":
        return f"{t} IS '{'true' if v else 'false'}'", []
    if k == "num":
        return f"({_is_number(t)} AND {node.value()} = ?)", [v]
    if k == "str":
        return f"({t} IS 'text' AND {node.value()} = ?)", [v]
    assert isinstance(v, tuple)  # the kind left: a list, which freeze() made a tuple
    parts: list[str] = [f"{t} IS 'array'", f"{node.length()} = {len(v)}"]
    params: list[Any] = []
    for i, item in enumerate(v):
        sql, ps = _sql_eq(node.child(i), item)
        parts.append(sql)
        params += ps
    return "(" + " AND ".join(parts) + ")", params


def _column_guard(column: str, v: Value) -> str:
    types = "'text'" if isinstance(v, str) else "'integer', 'real'"
    return f"typeof({column}) IN ({types})"


def _sql_in(node: _Json, column: str | None, values: tuple[Value, ...]) -> Frag:
    """Equal to one of ``values``: strings and numbers grouped into ``IN (...)``."""
    parts: list[str] = []
    params: list[Any] = []
    for k in ("str", "num"):
        group = [v for v in values if json_kind(v) == k]
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
        if json_kind(v) not in ("str", "num"):
            sql, ps = _sql_eq(node, v)
            parts.append(sql)
            params += ps
    if not parts:
        return "0", []
    return ("(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]), params


# ---------------------------------------------------------------- comparisons


#: The ``facts`` column as queries read it: a run without a document (nothing recorded about
#: it, or a store made before facts) reads as the empty one, as ``facts()`` returns it.
_FACTS = f"coalesce(facts, {_lit(json.dumps(empty_facts()))})"


def _field(doc: DocName, path: tuple[str, ...]) -> tuple[_Json, str | None]:
    """The JSON node of field ``path`` of ``doc``, and the table's column holding it, if any."""
    node: _Json = _Path(_FACTS if doc == "facts" else doc)
    for seg in path:
        node = node.key(seg)
    column = path[0] if doc == "start" and len(path) == 1 and path[0] in _COLUMNS else None
    return node, column


def comparison_sql(doc: DocName, path: tuple[str, ...], op: str, v: Value) -> Frag:
    """The SQL test that field ``path`` of ``doc`` compares by ``op`` with ``v``.

    ``uid``, ``scan_id`` and ``time`` of the start document use the table's columns.
    """
    node, column = _field(doc, path)
    t = node.type()
    simple = json_kind(v) in ("str", "num")
    if op == "==":
        if column is not None and simple:
            return f"({_column_guard(column, v)} AND {column} = ?)", [v]
        return _sql_eq(node, v)
    if op == "!=":
        sql, ps = _sql_eq(node, v)
        return f"({t} IS NOT NULL AND NOT {sql})", ps
    if op in ORDERING:
        if column is not None:
            return f"({_column_guard(column, v)} AND {column} {op} ?)", [v]
        guard = f"{t} IS 'text'" if isinstance(v, str) else _is_number(t)
        return f"({guard} AND {node.value()} {op} ?)", [v]
    if op in ("in", "not in"):
        assert isinstance(v, tuple)  # check_value() froze the list of an 'in'
        sql, ps = _sql_in(node, column, v)
        return (sql, ps) if op == "in" else (f"({t} IS NOT NULL AND NOT {sql})", ps)
    if op == "contains":
        sql, ps = _sql_eq(_Row(), v)
        exists = f"EXISTS (SELECT 1 FROM {node.each()} AS je WHERE {sql})"
        if isinstance(v, str):  # a string field contains a substring, a list an element
            text = f"({t} IS 'text' AND {CONTAINS_FUNCTION}({node.value()}, ?))"
            return f"(({t} IS 'array' AND {exists}) OR {text})", [*ps, v]
        return f"({t} IS 'array' AND {exists})", ps
    # startswith: substr is case-sensitive and has no wildcards, unlike LIKE
    assert isinstance(v, str)  # check_value(): 'startswith' takes a string
    n = len(v)
    if column is not None:
        return f"(typeof({column}) = 'text' AND substr({column}, 1, {n}) = ?)", [v]
    return f"({t} IS 'text' AND substr({node.value()}, 1, {n}) = ?)", [v]


# ------------------------------------------------- Python functions SQLite calls

#: Names of the SQL functions :func:`register_functions` adds (SQLite has no REGEXP of its own).
REGEX_FUNCTION = "scandeck_regex"
TEXT_FUNCTION = "scandeck_has_text"
CONTAINS_FUNCTION = "scandeck_contains"


def _regex_search(pattern: str, value: object) -> int:
    # re caches compiled patterns; a non-string is never a match (json_extract of text is str)
    return int(isinstance(value, str) and re.search(pattern, value) is not None)


def _has_text(value: object, needle: str) -> int:
    return int(isinstance(value, str) and needle in value.casefold())


def _contains(value: object, needle: object) -> int:
    # Python's substring test, not instr(): SQLite's string functions stop at a NUL character
    return int(isinstance(value, str) and isinstance(needle, str) and needle in value)


def register_functions(conn: Any) -> None:
    """Add the functions :class:`~scandeck.query.text.Regex` and ``FullText`` compile to.

    The same Python code answers both compilations, so SQL and ``matches()`` agree.
    """
    conn.create_function(REGEX_FUNCTION, 2, _regex_search, deterministic=True)
    conn.create_function(TEXT_FUNCTION, 2, _has_text, deterministic=True)
    conn.create_function(CONTAINS_FUNCTION, 2, _contains, deterministic=True)


def regex_sql(doc: DocName, path: tuple[str, ...], pattern: str) -> Frag:
    """The SQL test that field ``path`` of ``doc`` is a string in which ``pattern`` is found."""
    node, column = _field(doc, path)
    if column is not None:
        return f"(typeof({column}) = 'text' AND {REGEX_FUNCTION}(?, {column}))", [pattern]
    return f"({node.type()} IS 'text' AND {REGEX_FUNCTION}(?, {node.value()}))", [pattern]


def full_text_sql(needle: str) -> Frag:
    """The SQL test that a string anywhere in the start document contains ``needle`` (casefolded)."""
    found = f"SELECT 1 FROM json_tree(start) AS jt WHERE jt.type = 'text' AND {TEXT_FUNCTION}(jt.atom, ?)"
    return f"EXISTS ({found})", [needle]
