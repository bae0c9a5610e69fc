"""The runs this process has read, noted as they are read, and the values it published.

Catalog lookups, stream reads, bound cells, live pipelines and plots call
:func:`note`; ``%provenance`` and ``scandeck run`` turn the notes into the
record's ``inputs``, and the values given to ``scandeck.glue`` into its ``values``.
A kernel is one process, so one context per process.
Stdlib only: noting must cost nothing and import nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..uris import redact


class ProvenanceContext:
    """Ordered notes of runs read (uid -> scan_id, catalog, streams, fields) and glued values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}
        self._values: dict[str, Any] = {}

    def note(
        self,
        uid: str,
        *,
        scan_id: int | None = None,
        catalog: str = "",
        stream: str | None = None,
        fields: Iterable[str] = (),
    ) -> None:
        """Record that run ``uid`` was read (and which stream and fields of it).

        The catalog's URI is kept without its credentials: records travel in notebooks.
        """
        catalog = redact(catalog)
        with self._lock:
            entry = self._runs.get(uid)
            if entry is None:
                entry = self._runs[uid] = {
                    "uid": uid,
                    "scan_id": scan_id,
                    "catalog": catalog,
                    "streams": [],
                    "fields": [],
                }
            if entry["scan_id"] is None and scan_id is not None:
                entry["scan_id"] = scan_id
            if not entry["catalog"] and catalog:
                entry["catalog"] = catalog
            if stream and stream not in entry["streams"]:
                entry["streams"].append(stream)
            for name in fields:
                if name not in entry["fields"]:
                    entry["fields"].append(name)

    def inputs(self) -> list[dict[str, Any]]:
        """The notes so far, in the order the runs were first read (copies)."""
        with self._lock:
            return [{**e, "streams": list(e["streams"]), "fields": list(e["fields"])} for e in self._runs.values()]

    def glue(self, name: str, value: Any) -> None:
        """Keep ``value`` (checked by :func:`scandeck.provenance.glue.glue`) as ``name``; the last one wins."""
        with self._lock:
            self._values[name] = value

    def values(self) -> dict[str, Any]:
        """The glued values, in the order each name was first glued (a copy)."""
        with self._lock:
            return dict(self._values)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._values.clear()

    def __len__(self) -> int:
        return len(self._runs)


_current = ProvenanceContext()
_pending_record: str | None = None


def pending_record_id() -> str:
    """The id the next record of this process will get (made on first use).

    ``scandeck.derive`` stamps it into derived runs (``provenance_record``), and
    the record made next — ``%provenance save``, or ``scandeck run`` / a rerun
    reading the kernel's report — takes it as its id, so the link holds both ways.
    """
    global _pending_record
    if _pending_record is None:
        import uuid

        _pending_record = uuid.uuid4().hex
    return _pending_record


def peek_pending_record_id() -> str | None:
    """The pending id if something (a derived run) already uses it, else None."""
    return _pending_record


def settle_pending_record_id() -> None:
    """A record took the pending id: the next record gets a new one."""
    global _pending_record
    _pending_record = None


def current() -> ProvenanceContext:
    """This process's context."""
    return _current


def note(uid: str, **kwargs: Any) -> None:
    """Note a run read in this process (see :meth:`ProvenanceContext.note`)."""
    _current.note(uid, **kwargs)
