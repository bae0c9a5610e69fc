"""Watched runs in the panel: how many files a run holds so far and the newest one's name.

A watched run (``scandeck watch``, :func:`scandeck.files.layout.is_watched`) has one
event per complete file version, in streams named by reader. Its RUN gets a ``files``
field, ``{"count": N, "newest": "sample-3/spectrum_0042.csv"}``: ``count`` is the run's
events so far, all streams (from the index row: nothing read) and ``newest`` the ``path``
of its newest event. Finding that path reads only the end of the run:

- a run seen before is read from where the last look stopped (its new documents only),
  so a running run costs one short read per change and an ended one nothing;
- a run seen first is read backwards from its end, a window of documents at a time,
  until an event turns up.

What was found is kept per run and renewed when the run's document count (its own
change token: every stored document raises it) or status changed. ``watch_detail``
gives the detail's ``watch``: the roots, patterns, host and layout the watcher used.
Texts are bounded and control characters escaped; the panel renders them as text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound, ScandeckError
from ..files.layout import is_watched
from ..listing import cell
from .serialize import run_summary

if TYPE_CHECKING:
    from ..sources.protocol import Entry, RunSummary, Source

__all__ = ["MAX_PATH", "files_of", "newest_event", "path_of", "summaries", "summary", "watch_detail"]

#: Longest relative path sent (a bound on hostile names, not a display width).
MAX_PATH = 1000
#: Documents read at the end of a run first, doubled until an event turns up.
TAIL = 64
#: Runs remembered (least recently used forgotten first).
KEEP = 2000
#: Roots and patterns listed in a detail, at most.
MAX_ITEMS = 50

_EVENTS = ("event", "event_page")


@dataclass
class _Seen:
    """What a look found: the run's document count and status then, and its newest path."""

    num_documents: int
    status: str
    newest: str | None


_seen: OrderedDict[tuple[str, str], _Seen] = OrderedDict()
_lock = threading.Lock()


def path_of(name: str, doc: Mapping[str, Any]) -> str | None:
    """The ``path`` of an event (of an event page: its last row's), bounded; None without one."""
    data = doc.get("data")
    if not isinstance(data, Mapping):
        return None
    value = data.get("path")
    if name == "event_page":
        value = value[-1] if isinstance(value, list) and value else None
    return None if value is None else cell(value, MAX_PATH)


def _last_path(source: Source, uid: str, start: int) -> str | None:
    newest = None
    for entry in source.documents(uid, start=start, names=_EVENTS):
        newest = path_of(entry.name, entry.doc) or newest
    return newest


def newest_event(source: Source, uid: str, end: int, *, descriptors: list[str] | None = None) -> Entry | None:
    """The run's last event (of ``descriptors`` when given) before document ``end``, reading
    backwards from it a window at a time (an event page counts as its last event)."""
    window = TAIL
    stop = end
    while stop > 0:
        start = max(0, stop - window)
        newest = None
        for entry in source.documents(uid, start=start, names=_EVENTS, descriptors=descriptors):
            if entry.pos >= stop:
                break
            if entry.name in _EVENTS and (descriptors is None or entry.doc.get("descriptor") in descriptors):
                newest = entry
        if newest is not None:
            return newest
        stop, window = start, window * 2
    return None


def _tail_path(source: Source, uid: str, end: int) -> str | None:
    """The newest event's path (see :func:`newest_event`)."""
    entry = newest_event(source, uid, end)
    return None if entry is None else path_of(entry.name, entry.doc)


def files_of(source: Source, s: RunSummary) -> dict[str, Any] | None:
    """``{"count", "newest"}`` of a watched run, None for any other run.

    ``newest`` is None while the run holds no file, and when the store cannot read
    the run's documents (the panel then shows the count alone).
    """
    if not is_watched(s.start or {}):
        return None
    key = (source.uri, s.uid)
    with _lock:
        seen = _seen.get(key)
        if seen is not None:
            _seen.move_to_end(key)
    if seen is not None and (seen.num_documents, seen.status) == (s.num_documents, s.status):
        return {"count": s.num_events, "newest": seen.newest}
    try:
        if s.num_events == 0:
            newest = None
        elif seen is not None and seen.num_documents <= s.num_documents:
            newest = _last_path(source, s.uid, seen.num_documents) or seen.newest
        else:
            newest = _tail_path(source, s.uid, max(s.num_documents, 1))
    except (RunNotFound, ScandeckError):
        # The store cannot say (a Tiled server that does not read the file key): the count alone,
        # and not asked again until the run changes.
        newest = seen.newest if seen is not None else None
    with _lock:
        _seen[key] = _Seen(s.num_documents, s.status, newest)
        _seen.move_to_end(key)
        while len(_seen) > KEEP:
            _seen.popitem(last=False)
    return {"count": s.num_events, "newest": newest}


def summary(source: Source, s: RunSummary) -> dict[str, Any]:
    """The API's RUN (:func:`~scandeck.server.serialize.run_summary`), with ``files`` for a watched run."""
    out = run_summary(s)
    files = files_of(source, s)
    if files is not None:
        out["files"] = files
    return out


def summaries(source: Source, rows: Iterable[RunSummary]) -> list[dict[str, Any]]:
    """:func:`summary` of each row."""
    return [summary(source, s) for s in rows]


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [] if value is None else [value]
    return [cell(v, MAX_PATH) for v in items[:MAX_ITEMS]]


def watch_detail(start: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The detail's ``watch`` of a watched run: ``roots``, ``patterns`` (lists of text),
    ``host``, ``run_per``, ``part`` (text or None) and ``transfer``; None for other runs.

    Examples
    --------
    >>> watch_detail({"plan_name": "watch", "watch": {"roots": ["/data/xrd"], "patterns": ["*.tif"],
    ...     "run_per": "session", "host": "lab-pc", "transfer": False}})["roots"]
    ['/data/xrd']
    >>> watch_detail({"plan_name": "scan"}) is None
    True
    """
    start = dict(start or {})
    if not is_watched(start):
        return None
    watch = start["watch"]

    def text(name: str) -> str | None:
        value = watch.get(name)
        return None if value is None else cell(value, MAX_PATH)

    return {
        "roots": _texts(watch.get("roots")),
        "patterns": _texts(watch.get("patterns")),
        "host": text("host"),
        "run_per": text("run_per"),
        "part": text("part"),
        "transfer": watch.get("transfer") is True,
    }
