"""Which runs a standing analysis reruns: ended ones, and for a query on facts, those whose facts match late.

A standing analysis asks its query of each run once, when the run ends
(:mod:`.auto`). A query that reads a run's facts (``tags contains "good"``,
``columns.peak_cen > 0.5``) may not match yet then: a person tags the run later,
the column service computes the run's final cells after its stop. So such an
analysis also follows the catalog's facts changes (``RunFacts.facts_since``, from a
mark kept in the ledger) and asks the query again of each ended run whose facts
changed and that it has not rerun: those that match now are rerun, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import RunNotFound
from ..query.hints import uses_facts
from ..sources.matching import keep_matching
from ..sources.protocol import RunFacts

if TYPE_CHECKING:
    from collections.abc import Collection

    from ..query import Query
    from ..sources.protocol import RunSummary, Source
    from .standing import Ledger, Standing

__all__ = ["NOT_ENDED", "ended_with", "facts_mark_now", "late_matches"]

#: Runs without a stop document: still going, or ``incomplete`` (their writer went away). An
#: incomplete run has not ended: it may yet be taken over and stopped (the Redis keeper's archive
#: resumes it, a Redis writer whose heartbeat lapsed comes back), so it is watched, not rerun.
NOT_ENDED = ("running", "incomplete")


def ended_with(summary: RunSummary, wanted: str) -> bool:
    """Whether the run ended (a stop document) with the exit status asked for (``any``: every one)."""
    return summary.status not in NOT_ENDED and (wanted == "any" or summary.status == wanted)


def _ended_in_scope(summary: RunSummary, standing: Standing) -> bool:
    """Whether the run is the analysis's to consider: it ended after the analysis was made, or it
    started since ``--since``."""
    if standing.since is not None and summary.time >= standing.since:
        return True
    stopped = (summary.stop or {}).get("time")
    return isinstance(stopped, (int, float)) and stopped >= standing.created


def facts_mark_now(source: Source, query: Query) -> int | None:
    """The store's facts change mark now, for a new analysis whose query reads facts (else None)."""
    if not isinstance(source, RunFacts) or not uses_facts(query):
        return None
    return source.facts_since(0)[0]


def late_matches(
    ledger: Ledger, standing: Standing, source: Source, query: Query, asked: Collection[str]
) -> tuple[int | None, list[RunSummary]]:
    """``(facts mark, runs)``: the ended runs, not yet in the ledger nor in ``asked`` (the runs
    asked this round), whose facts changed since the ledger's mark and that the query matches now.

    The mark is None when the query reads no facts or the store keeps none (nothing to
    follow), or when no facts changed. The first time (an analysis made before marks were
    kept) the mark is the store's current one and no run is returned: runs whose facts
    change from then on are asked again.
    """
    if not isinstance(source, RunFacts) or not uses_facts(query):
        return None, []
    mark = ledger.facts_mark(standing.id)
    new_mark, uids = source.facts_since(mark or 0)
    if mark is None:
        return new_mark, []
    if new_mark == mark:
        return None, []  # nothing changed: nothing to note
    todo = [uid for uid in dict.fromkeys(uids) if uid not in asked]
    known = ledger.known(standing.id, todo)
    ended: list[RunSummary] = []
    for uid in todo:
        if uid in known:
            continue
        try:
            summary = source.get(uid)
        except RunNotFound:
            continue
        if ended_with(summary, standing.status) and _ended_in_scope(summary, standing):
            ended.append(summary)
    return new_mark, keep_matching(source, query, ended)
