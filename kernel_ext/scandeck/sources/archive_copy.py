"""Whether an archive's copy of a run is whole: what the keeper checks before Redis lets the run go.

An archive that keeps documents as they came (SQLite, Redis: the
:class:`~scandeck.sources.protocol.RawDocuments` sources) holds a whole copy
when it holds as many documents as the bus. An archive that rebuilds documents
from what it stores (Tiled: event uids are made up, resources are re-cut per
stream) gives a document count that is only an estimate, so for every archive
the copy is also compared by what each source says exactly: the stop document,
the descriptors, and the events of each descriptor.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .protocol import RawDocuments, RunSummary, Source
from .tiled.connect import uri_option

__all__ = ["TILED_BATCH", "lacking", "verbatim", "writing_uri"]

#: Events per write into a Tiled archive: the keeper copies finished runs, which no
#: reader follows live, so a whole run goes in one table write (TiledWriter's own default).
TILED_BATCH = 10_000


def writing_uri(target: str, *, batch: int = TILED_BATCH) -> str:
    """The archive URI a copy is written through: a Tiled one gets ``batch_size`` unless it has one.

    Examples
    --------
    >>> writing_uri("tiled+http://host:8000/raw?api_key=K")
    'tiled+http://host:8000/raw?api_key=K&batch_size=10000'
    >>> writing_uri("/data/store")
    '/data/store'
    """
    if not target.startswith("tiled+") or uri_option(target, "batch_size") is not None:
        return target
    parts = urlsplit(target)
    query = f"{parts.query}&batch_size={batch}" if parts.query else f"batch_size={batch}"
    return parts._replace(query=query).geturl()


def verbatim(source: Source) -> bool:
    """True when ``source`` keeps a run's documents as written, so their count is exact."""
    return isinstance(source, RawDocuments)


def lacking(bus: Source, archive: Source, ours: RunSummary, held: RunSummary) -> str | None:
    """What ``archive``'s copy (``held``) holds short of the bus's run (``ours``); None when whole.

    The answer completes "the archive holds ...": ``"3 of the 5 events of descriptor D"``.

    A copy with *more* than the bus's run (a stop, a stream) is reported too: it
    is another run under the same uid, and neither side can be trusted then.
    """
    uid = ours.uid
    if verbatim(archive) and held.num_documents != ours.num_documents:
        return f"{held.num_documents} of its {ours.num_documents} documents"
    if ours.stop is not None and held.stop is None:
        return "no stop document"
    if ours.stop is None and held.stop is not None:
        return "a stop document the bus's run does not have (a different run under this uid?)"
    if ours.stop is not None and held.stop is not None and held.stop.get("uid") != ours.stop.get("uid"):
        return "another stop document (a different run under this uid)"
    mine = [d["uid"] for d in bus.descriptors(uid)]
    theirs = {d.get("uid") for d in archive.descriptors(uid)}
    missing = [d for d in mine if d not in theirs]
    if missing:
        return f"{len(mine) - len(missing)} of its {len(mine)} streams (none of descriptor {missing[0]})"
    if theirs - set(mine):
        return "streams the bus's run does not have (a different run under this uid)"
    want, have = bus.stream_counts(uid), archive.stream_counts(uid)
    for desc in mine:
        a, b = int(have.get(desc, 0)), int(want.get(desc, 0))
        if a != b:
            return f"{a} of the {b} events of descriptor {desc}"
    return None
