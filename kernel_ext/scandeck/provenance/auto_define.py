"""Defining a standing analysis, and what is said of one (:mod:`.auto` runs them).

:func:`define` makes (or finds) the analysis of a record, a query, a catalog and an
exit status, and notes what it starts with; :func:`describe` gives one as JSON for
``scandeck auto --list`` and the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..query import Query, TimeRange, parse
from .auto_facts import NOT_ENDED, ended_with, facts_mark_now
from .rerun_plan import safe_name
from .standing import Ledger, Standing
from .store import ProvStore, open_store

if TYPE_CHECKING:
    from ..sources.protocol import Source

__all__ = ["PAGE", "auto_tag", "define", "describe", "ledger_of"]

#: Runs asked of the catalog per page when catching up.
PAGE = 500


def ledger_of(store: ProvStore) -> Ledger:
    """The ledger of standing analyses kept beside ``store``'s records."""
    return Ledger(store.directory)


def auto_tag(standing_id: str) -> str:
    """The tag of the rerun records of one standing analysis."""
    return f"auto:{standing_id[:12]}"


def describe(ledger: Ledger, standing: Standing, latest: int = 5) -> dict[str, Any]:
    """One analysis as JSON: its settings, ``counts`` by state, the lease ``holder`` (None: stopped)
    and the ``latest`` runs rerun (done, failed or running), most recent first."""
    return {
        **standing.to_json(),
        "counts": ledger.counts(standing.id),
        "holder": ledger.holder(standing.id),
        "latest": [r.to_json() for r in ledger.runs(standing.id, ["done", "failed", "running"], limit=latest)],
    }


def define(
    record_id: str,
    *,
    query: str = "",
    catalog: str | None = None,
    status: str = "success",
    since: str | None = None,
    workers: int = 2,
    dask: str | None = None,
    output_dir: str | Path | None = None,
    store: ProvStore | str | Path | None = None,
) -> Standing:
    """The standing analysis of ``record_id`` on ``query`` in ``catalog`` (made if new).

    ``query`` is checked here (a typo raises QuerySyntaxError before anything is stored).
    ``catalog`` defaults to the catalog the record read from, else the default catalog.
    ``since`` (a date, ``2026-12-01`` or ``2026-12-01 10:30``) adds the runs that started
    since then and have already ended (to an existing analysis too: those it has not seen);
    otherwise only runs that end after the analysis is defined are rerun.
    """
    from ..opening import catalog_name, open_catalog
    from .rerun_plan import record_catalog

    prov = open_store(store)
    record = prov.get(record_id)
    text = parse(query) if query else Query.all()  # raises for a typo, before anything is stored
    since_time = TimeRange(since=since).since if since else None
    if catalog:
        where = catalog_name(catalog).portable()
    else:
        found = record_catalog(record)
        where = ""
        if found is not None:
            where = catalog_name(found.source.uri).portable() if "://" in found.source.uri else found.name
            found.close()
    cat = open_catalog(where or None)
    try:
        source = cat.source
        place = source.latest_seq()
        out = Path(output_dir) if output_dir else prov.directory / "auto" / f"{safe_name(record.name)}"
        ledger = ledger_of(prov)
        standing, created = ledger.define(
            record.id,
            name=record.name,
            query=str(text) if query else "",
            catalog=where,
            status=status,
            since=since_time,
            workers=workers,
            dask=dask,
            output_dir=str(out.expanduser().absolute()),
            seq=place,
        )
        if created or since_time is not None:  # --since again: catch up on the runs since then
            _first_look(ledger, standing, source, text, since_time, new=created)
        return ledger.get(standing.id)
    finally:
        cat.close()


def _first_look(
    ledger: Ledger, standing: Standing, source: Source, query: Query, since: float | None, *, new: bool = True
) -> None:
    """Note what the new analysis starts with: the runs still going, and with ``since`` the ended ones.

    With ``since``, an existing analysis (not ``new``) notes the ended runs since then it has
    no row for (rows it has, done or not, stay as they are).
    """
    from ..sources.protocol import OpenRuns

    # Before the runs are read, so that a later change is followed; an existing analysis keeps its mark.
    mark = facts_mark_now(source, query) if new else None
    opened: list[tuple[str, int | None]] = []
    ended: list[tuple[str, int | None]] = []
    if since is None:
        if isinstance(source, OpenRuns):
            going = source.open_runs(query, limit=1000)
        else:  # runs started long before and still going are few: the newest pages hold them
            going = source.search(query, limit=PAGE)
        opened = [(s.uid, s.scan_id) for s in going if s.status == "running"]
    else:
        bound = query & TimeRange(since, None)
        offset = 0
        while True:
            page = source.search(bound, limit=PAGE, offset=offset, oldest_first=True)
            offset += len(page)
            for s in page:
                if s.status in NOT_ENDED:
                    opened.append((s.uid, s.scan_id))
                elif ended_with(s, standing.status):
                    ended.append((s.uid, s.scan_id))
            if len(page) < PAGE:
                break
    ledger.advance(standing.id, opened=opened, ended=ended, facts_mark=mark)
