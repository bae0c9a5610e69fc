"""Choosing a run's stored documents by name and stream: what ``Source.documents`` filters.

The sources that hold a run's documents as a list (the memory store, the rebuilt
documents of a Tiled run) filter them here, by the protocol's rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..documents import PER_DESCRIPTOR
from .protocol import Entry

__all__ = ["select"]


def select(
    entries: Iterable[Entry], names: Iterable[str] | None = None, descriptors: Iterable[str] | None = None
) -> Iterator[Entry]:
    """The ``entries`` called ``names``; of the per-stream ones, only ``descriptors``' (all when None).

    Examples
    --------
    >>> e = [Entry(0, "start", {}), Entry(1, "event", {"descriptor": "d1"})]
    >>> e.append(Entry(2, "event", {"descriptor": "d2"}))
    >>> [x.pos for x in select(e, descriptors=["d2"])]
    [0, 2]
    """
    keep_names = None if names is None else set(names)
    keep_desc = None if descriptors is None else set(descriptors)
    for entry in entries:
        if keep_names is not None and entry.name not in keep_names:
            continue
        if keep_desc is not None and entry.name in PER_DESCRIPTOR and entry.doc["descriptor"] not in keep_desc:
            continue
        yield entry
