"""Queries written for other tools: Tiled's query objects, databroker's dictionaries.

:func:`as_query` is what :meth:`scandeck.catalog.Catalog.search` calls: a scandeck
query passes through, a text is parsed, a dict is a MongoDB-style query
(:mod:`scandeck.query.mongo`), and an object of ``tiled.queries`` or
``bluesky_tiled_plugins.queries`` is translated by :func:`from_tiled`. Tiled is
never imported here: objects are recognised by the module their type comes from,
so scandeck works without Tiled installed.

Tiled's keys are paths into a run's metadata ``{"start": ..., "stop": ...}``:
``"start.sample"`` and ``"stop.exit_status"``; a key with neither prefix means the
start document (as bluesky-tiled-plugins' catalog treats it). The answers follow
scandeck's rules (:mod:`scandeck.query`), which are what Tiled's queries promise
where Tiled's SQL backend is loose: ``Contains`` tests list elements (not a
substring of the JSON text), a boolean never equals a number, ``Like`` is
case-sensitive (as in PostgreSQL; SQLite's LIKE ignores ASCII case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import InvalidQuery
from ..safe_text import printable
from .fields import Key
from .mongo import from_mongo
from .parser import parse_query
from .text import FullText
from .tree import PartialUID, Query, ScanID, TimeRange, all_of, any_of, negate

_ACCEPTED = (
    "search() takes a scandeck query (Key('sample') == 'Ni'), a text ('sample == \"Ni\"'), "
    'a dictionary query ({"sample": "Ni"}) or a Tiled query (tiled.queries.Key("sample") == "Ni", '
    "Eq, NotEq, Comparison, Contains, In, NotIn, FullText, Like, KeyPresent, Regex, KeysFilter; "
    "bluesky_tiled_plugins.queries ScanID, ScanIDRange, PartialUID, TimeRange)"
)
_TILED_MODULES = ("tiled.", "bluesky_tiled_plugins.", "databroker.")


def as_query(query: object) -> Query:
    """A scandeck query for anything :meth:`~scandeck.catalog.Catalog.search` accepts.

    Raises
    ------
    InvalidQuery
        For anything else (``search(42)``), or a dict or Tiled query that cannot
        be translated, naming what is wrong and the accepted forms.

    Examples
    --------
    >>> as_query({"sample": "Ni"}) == as_query('sample == "Ni" or sample contains "Ni"')
    True
    """
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return parse_query(query)
    if isinstance(query, Mapping):
        return from_mongo(query)
    if type(query).__module__.startswith(_TILED_MODULES):
        return from_tiled(query)
    raise InvalidQuery(printable(f"cannot search with {type(query).__name__} {query!r}: {_ACCEPTED}"))


def _key(name: object) -> Key:
    if not isinstance(name, str) or not name:
        raise InvalidQuery(printable(f"a Tiled query's key is a non-empty string, not {name!r}"))
    doc, _, rest = name.partition(".")
    if doc == "start" and rest:
        return Key(rest, doc="start")
    return Key(name)  # "stop.x", "tags", "columns.x": Key's own rule; other names: the start document


def _like(pattern: str) -> str:
    """A SQL LIKE pattern (``%`` any text, ``_`` one character) as an anchored regular expression."""
    out = ["^"]
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "".join(out) + "$"


def from_tiled(query: Any) -> Query:
    """The scandeck query for a Tiled (or bluesky-tiled-plugins) query object.

    Raises
    ------
    InvalidQuery
        For query types that say nothing about a run's metadata
        (``SpecsQuery``, ``StructureFamilyQuery``, ``AccessTagsFilter``) or that
        no scandeck query answers; the message names the accepted ones.

    Examples
    --------
    >>> from tiled.queries import Key as TiledKey             # doctest: +SKIP
    >>> from_tiled(TiledKey("start.num_points") > 5)           # doctest: +SKIP
    Key('num_points') > 5
    """
    kind = type(query).__name__
    if kind == "Eq":
        return _key(query.key) == query.value
    if kind == "NotEq":
        return _key(query.key) != query.value
    if kind == "Comparison":
        op = {"lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}[str(query.operator.value)]
        result: Query = getattr(_key(query.key), op)(query.value)
        return result
    if kind == "Contains":
        return _key(query.key).contains(query.value)
    if kind == "In":
        return _key(query.key).in_(query.value)
    if kind == "NotIn":
        return _key(query.key).not_in(query.value)
    if kind == "KeyPresent":
        present = _key(query.key).exists()
        return present if query.exists else negate(present)
    if kind == "Regex":
        return _key(query.key).regex(query.pattern if query.case_sensitive else f"(?i){query.pattern}")
    if kind == "Like":
        if not isinstance(query.pattern, str):
            raise InvalidQuery(printable(f"Like takes a string pattern, not {query.pattern!r}"))
        return _key(query.key).regex(_like(query.pattern))
    if kind == "FullText":
        return FullText(query.text)
    if kind == "KeysFilter":
        return Key("uid").in_(list(query.keys))
    if kind == "_ScanID":  # bluesky_tiled_plugins.queries.ScanID(...): every run with those ids, as its catalog
        return ScanID(*query.scan_ids)
    if kind == "ScanIDRange":
        return all_of(Key("scan_id") >= query.start_id, Key("scan_id") < query.end_id)
    if kind == "_PartialUID":
        return any_of(*(PartialUID(p) for p in query.partial_uids))
    if kind == "TimeRange" and hasattr(query, "timezone"):  # the plugin's: since/until are timestamps
        if query.since is None and query.until is None:
            return Query.all()  # as the plugin's catalog: no bound, no condition
        return TimeRange(since=query.since, until=query.until)
    if kind == "Key":
        raise InvalidQuery(f"a Tiled Key is not a query yet: compare it, e.g. Key({query.key!r}) == 'Ni'")
    raise InvalidQuery(printable(f"the Tiled query {kind} has no scandeck equivalent; {_ACCEPTED}"))
