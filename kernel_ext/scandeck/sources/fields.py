"""The one rule for explaining an empty search: a field that no run of the source has."""

from __future__ import annotations

from collections.abc import Collection

from ..query import Query
from ..query.hints import facts_fields, query_fields, unknown_facts_hint, unknown_field_hint
from .protocol import FactNames, FieldIndex, Source

__all__ = ["empty_search_hint"]


def empty_search_hint(source: Source, query: Query, declared: Collection[str] = ()) -> str | None:
    """Why ``query`` may match nothing in ``source``: a sentence naming the fields no run has.

    Start fields are checked against the source's :class:`~scandeck.sources.protocol.FieldIndex`,
    computed columns and data keys against its :class:`~scandeck.sources.protocol.FactNames`
    and the ``declared`` names (``columns.<name>`` of the catalog's columns file).
    ``None`` when the query names no unknown field, or the source keeps no such
    index. Ask it only once a search came
    back empty: a legal query is never refused for a field no run has yet.

    Examples
    --------
    >>> empty_search_hint(cat.source, parse('smaple == "Cu"'))  # doctest: +SKIP
    'no run has the field smaple (did you mean sample?)'
    """
    hints = []
    if isinstance(source, FieldIndex) and next(query_fields(query), None) is not None:
        hints.append(unknown_field_hint(query, source.fields()))
    if isinstance(source, FactNames) and next(facts_fields(query), None) is not None:
        hints.append(unknown_facts_hint(query, source.fact_names() | set(declared)))
    return "; ".join(h for h in hints if h) or None
