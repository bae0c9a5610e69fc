"""Why a legal query matched nothing: a field that no run has, and the closest one that runs have.

A typo in a field name (``smaple == "Cu"``) is a legal query that matches no run.
:func:`unknown_field_hint` names such fields given the fields runs have (a
source's field index, :func:`start_fields` of each start document), and suggests
the closest known field (``difflib``).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..safe_text import printable
from .fields import Comparison
from .text import Regex
from .tree import And, Not, Or, Query

__all__ = [
    "facts_fields",
    "query_fields",
    "start_fields",
    "unknown_facts_hint",
    "unknown_field_hint",
    "uses_facts",
]

#: Nested dictionaries deeper than this are not indexed (a hostile start document
#: could nest thousands deep); nor more than this many fields of one document.
MAX_DEPTH = 8
MAX_FIELDS = 2000
#: Keys that are the runs table's own columns: every run has them.
RUN_COLUMNS = frozenset({"uid", "scan_id", "time"})


def uses_facts(query: Query) -> bool:
    """Whether ``query`` reads a run's facts (``columns.x``, ``tags``, ``comments``, ``data.k.min``).

    Examples
    --------
    >>> from scandeck.query import parse
    >>> uses_facts(parse('sample == "Ni" and not tags contains "bad"')), uses_facts(parse("x > 1"))
    (True, False)
    """
    return any(node.doc == "facts" for node in _conditions(query))


def _conditions(query: Query) -> Iterator[Comparison | Regex]:
    """The field conditions of ``query``, in order (what the functions here look at)."""
    todo = [query]
    while todo:
        node = todo.pop()
        if isinstance(node, (And, Or)):
            todo.extend(reversed(node.items))
        elif isinstance(node, Not):
            todo.append(node.query)
        elif isinstance(node, (Comparison, Regex)):
            yield node


def start_fields(start: Mapping[str, Any]) -> set[str]:
    """Dotted names of a start document's fields, nested dictionaries' included.

    Examples
    --------
    >>> sorted(start_fields({"uid": "a", "md": {"sample": "Ni"}, "detectors": ["det"]}))
    ['detectors', 'md', 'md.sample', 'uid']
    """
    found: set[str] = set()
    todo: list[tuple[str, Mapping[str, Any], int]] = [("", start, 1)]
    while todo and len(found) < MAX_FIELDS:
        prefix, node, depth = todo.pop()
        for key, value in node.items():
            name = f"{prefix}{key}"
            found.add(name)
            if isinstance(value, Mapping) and depth < MAX_DEPTH:
                todo.append((f"{name}.", value, depth + 1))
    return found


def query_fields(query: Query) -> Iterator[str]:
    """Dotted names of the start-document fields ``query`` compares (the run columns left out)."""
    for node in _conditions(query):
        if node.doc == "start" and node.path[0] not in RUN_COLUMNS:
            yield ".".join(node.path)


def unknown_field_hint(query: Query, known: Collection[str]) -> str | None:
    """A sentence naming the fields of ``query`` that no run has, with the closest known ones.

    ``None`` when every field of the query is known. Names are run-carried text,
    so they are escaped (:func:`~scandeck.safe_text.printable`).

    Examples
    --------
    >>> from scandeck.query import parse
    >>> unknown_field_hint(parse('smaple == "Cu"'), {"sample", "scan_id", "plan_name"})
    'no run has the field smaple (did you mean sample?)'
    >>> unknown_field_hint(parse('sample == "Cu"'), {"sample"}) is None
    True
    """
    return _named_unknown([name for name in query_fields(query) if name not in known], known)


def facts_fields(query: Query) -> Iterator[str]:
    """Dotted names of the computed columns and data summaries ``query`` compares (``columns.x``,
    ``data.theta.min``); ``tags`` and ``comments`` every run has."""
    for node in _conditions(query):
        if node.doc == "facts" and node.path[0] in ("columns", "data"):
            yield ".".join(node.path)


def unknown_facts_hint(query: Query, known: Collection[str]) -> str | None:
    """A sentence naming the computed columns or data keys of ``query`` no run has, with the closest.

    Examples
    --------
    >>> from scandeck.query import parse
    >>> unknown_facts_hint(parse("columns.peak_cn > 1"), {"columns.peak_cen", "data.theta.min"})
    'no run has the field columns.peak_cn (did you mean columns.peak_cen?)'
    """
    return _named_unknown([name for name in facts_fields(query) if name not in known], known)


def _named_unknown(names: list[str], known: Collection[str]) -> str | None:
    unknown = list(dict.fromkeys(names))
    if not unknown:
        return None
    choices = sorted(known)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        parts.append(printable(name) + (f" (did you mean {printable(close[0])}?)" if close else ""))
    fields = "field" if len(parts) == 1 else "fields"
    return f"no run has the {fields} " + ", ".join(parts)
