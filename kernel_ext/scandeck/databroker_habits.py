"""Databroker's names on scandeck objects: what they are here, in one table.

A databroker user types ``run.table()`` or ``db.v2``; on a scandeck run a name
that is not an attribute is looked up as a stream, which would answer "no stream
'table'". :func:`habit_hint` gives the scandeck equivalent instead, from
:data:`RUN_HABITS` and :data:`CATALOG_HABITS`. :func:`stream_metadata` builds
the ``stream.metadata`` databroker 2 (bluesky-tiled-plugins) users know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: databroker method or attribute of a run (v1 Header or v2 BlueskyRun) -> the scandeck way.
RUN_HABITS: dict[str, str] = {
    "table": "run.primary.to_pandas() (another stream: run['baseline'].to_pandas())",
    "get_table": "run.primary.to_pandas()",
    "events": "run.documents() (the ('event', doc) pairs) or run.primary.documents()",
    "get_events": "run.documents() or run.primary.documents()",
    "documents_to_xarray": "run.primary.read()",
    "canonical": "run.documents()",
    "read": "run.primary.read() (a run holds streams: read one of them)",
    "to_dask": "run.primary.to_dask()",
    "get_images": "run.primary.read(['<image key>'])['<image key>'] (or .to_dask() to read lazily)",
    "data": "run.primary.read(['<key>'])['<key>']",
    "fields": "run.primary.data_keys (the keys of one stream)",
    "stream_names": "list(run) (the names of the run's streams)",
    "config_data": "run.primary.metadata['configuration']",
    "v1": "the run itself: scandeck has one API (run.start, run.primary.read())",
    "v2": "the run itself: scandeck has one API (run.start, run.primary.read())",
    "get_file_list": "the external data's stream_resource/resource documents in run.documents()",
}

#: databroker method or attribute of a catalog (v1 Broker or v2 catalog) -> the scandeck way.
CATALOG_HABITS: dict[str, str] = {
    "v1": "the catalog itself: scandeck has one API (cat[-1], cat[scan_id], cat.search(...))",
    "v2": "the catalog itself: scandeck has one API (cat[-1], cat[scan_id], cat.search(...))",
    "get_table": "cat[-1].primary.to_pandas()",
    "get_events": "cat[-1].documents()",
    "get_images": "cat[-1].primary.read(['<image key>'])",
    "get_fields": "cat[-1].primary.data_keys",
    "restream": "cat[-1].documents()",
    "stream": "cat[-1].documents()",
    "process": "for name, doc in cat[-1].documents(): callback(name, doc)",
    "insert": "RE.subscribe(cat.writer())",
    "fill_event": "run.primary.read() (external data is filled on read)",
}


def habit_hint(kind: str, name: str, table: Mapping[str, str]) -> str | None:
    """``"'Run' has no attribute 'table': in scandeck, ..."`` for a known databroker name, else None."""
    way = table.get(name)
    if way is None:
        return None
    return f"{kind} has no {name!r} (a databroker habit): in scandeck use {way}"


def stream_metadata(name: str, descriptors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A stream's metadata as bluesky-tiled-plugins gives it, from its descriptor documents.

    ``{"stream_name", "descriptors", "data_keys", "configuration", "hints",
    "object_keys", "time", "uid"}``: the descriptors whole, and the fields of the
    first descriptor with ``data_keys``, ``configuration``, ``hints`` and
    ``object_keys`` merged over all of them (a later descriptor adds keys).
    """
    descs = [dict(d) for d in descriptors]
    merged: dict[str, dict[str, Any]] = {"data_keys": {}, "configuration": {}, "hints": {}, "object_keys": {}}
    for desc in descs:
        for field, into in merged.items():
            for key, value in (desc.get(field) or {}).items():
                into.setdefault(key, value)
    first = descs[0] if descs else {}
    return {
        "stream_name": name,
        "descriptors": descs,
        **merged,
        "time": first.get("time"),
        "uid": first.get("uid"),
    }
