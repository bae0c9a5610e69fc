"""Which runs a query keeps, tested in Python with their facts: the one rule for every caller.

A source's ``search`` answers a query itself; code that holds run summaries already
(a uid lookup, a follower, the panel's watcher) tests them here, so that a query on
a run's facts (``tags contains "Ni"``) is given the facts it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..query import Query
from ..query.hints import uses_facts
from .protocol import RunFacts, RunSummary, Source

__all__ = ["keep_matching"]


def keep_matching(source: Source, query: Query | None, summaries: Sequence[RunSummary]) -> list[RunSummary]:
    """Those of ``summaries`` (runs of ``source``) that ``query`` matches, in order.

    The facts of the runs are read in one call, and only when the query reads them.

    Examples
    --------
    >>> from scandeck.sources.memory import MemorySource
    >>> keep_matching(MemorySource(), Query.all(), [])
    []
    """
    if query is None or query == Query.all():
        return list(summaries)
    facts: dict[str, dict[str, Any]] = {}
    if summaries and isinstance(source, RunFacts) and uses_facts(query):
        facts = source.facts([s.uid for s in summaries])
    return [s for s in summaries if query.matches(s.start, s.stop, facts.get(s.uid))]
