"""The one rule for explaining an empty search: a field that no run of the source has."""

from __future__ import annotations

from ..query import Query
from ..query.hints import query_fields, unknown_field_hint
from .protocol import FieldIndex, Source

__all__ = ["empty_search_hint"]


def empty_search_hint(source: Source, query: Query) -> str | None:
    """Why ``query`` may match nothing in ``source``: a sentence naming the fields no run has.

    ``None`` when the query names no unknown field, or the source keeps no
    :class:`~scandeck.sources.protocol.FieldIndex`. Ask it only once a search came
    back empty: a legal query is never refused for a field no run has yet.

    Examples
    --------
    >>> empty_search_hint(cat.source, parse('smaple == "Cu"'))  # doctest: +SKIP
    'no run has the field smaple (did you mean sample?)'
    """
    if not isinstance(source, FieldIndex) or next(query_fields(query), None) is None:
        return None
    return unknown_field_hint(query, source.fields())
