"""What the API answers, as JSON: run summaries, provenance records, cursors, strict JSON text.

JSON here is strict (no ``NaN``, which ``JSON.parse`` rejects): non-finite numbers
become ``null``, numpy values become Python ones, anything else unknown its ``str``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ..listing import cell, num_points
from .errors import ApiError

if TYPE_CHECKING:
    from ..provenance.record import ProvenanceRecord
    from ..sources.protocol import RunSummary

__all__ = [
    "decode_cursor",
    "dumps",
    "encode_cursor",
    "iso",
    "jsonable",
    "parent_uids_of",
    "record_summary",
    "run_summary",
]


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data: NaN and infinities as None, numpy scalars and arrays unwrapped.

    Examples
    --------
    >>> jsonable({"a": float("nan"), "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}
    """
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    item = getattr(obj, "tolist", None)  # numpy scalars and arrays, without importing numpy
    if callable(item):
        return jsonable(item())
    return str(obj)


def dumps(obj: Any) -> str:
    """Strict JSON text of ``obj`` (see :func:`jsonable`)."""
    return json.dumps(jsonable(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def iso(t: float | None) -> str | None:
    """A unix time as ISO 8601 in UTC (``2026-11-21T08:20:22.123+00:00``), or None."""
    if t is None or not isinstance(t, (int, float)) or not math.isfinite(t):
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


# -- runs ------------------------------------------------------------------------------------------


#: The panel cuts names to its width itself and shows them whole on hover: send them
#: whole, up to this many characters (a bound on hostile metadata, not a column width).
MAX_PANEL_TEXT = 200


def _text(value: Any) -> str | None:
    """A metadata value as text (a sample dict by its name), None when absent."""
    return None if value is None else cell(value, MAX_PANEL_TEXT)


#: Parents kept of one run (a derived run of many scans names the first ones).
MAX_PARENTS = 20
#: Longest uid kept in ``parent_uids`` (event-model's uids are 36 characters).
MAX_UID = 200


def parent_uids_of(start: Mapping[str, Any] | None) -> list[str]:
    """The start document's ``parent_uids``: the strings of it, once each, at most :data:`MAX_PARENTS`.

    Examples
    --------
    >>> parent_uids_of({"parent_uids": ["a", "b", "a", 3]})
    ['a', 'b']
    >>> parent_uids_of({"parent_uids": "a"})
    []
    """
    value = (start or {}).get("parent_uids")
    if not isinstance(value, (list, tuple)):
        return []
    # As a uid the API takes (GET runs/UID): no control characters, no slashes.
    uids = dict.fromkeys(
        u
        for u in value
        if isinstance(u, str) and 0 < len(u) <= MAX_UID and not any(c < " " or c in "/\\" for c in u)
    )
    return list(uids)[:MAX_PARENTS]


def run_summary(s: RunSummary) -> dict[str, Any]:
    """The API's RUN: what a listing row shows, from the index row alone (no events read)."""
    start = s.start or {}
    duration = None
    stop_time = (s.stop or {}).get("time")
    if isinstance(stop_time, (int, float)) and math.isfinite(stop_time) and math.isfinite(s.time):
        duration = max(float(stop_time) - float(s.time), 0.0)
    plan = start.get("plan_name")
    out: dict[str, Any] = {
        "uid": s.uid,
        "scan_id": s.scan_id,
        "time": s.time,
        "plan_name": None if plan is None else str(plan),
        "sample": _text(start.get("sample")),
        "operator": _text(start.get("operator")),
        "purpose": _text(start.get("purpose")),
        "status": s.status,
        "num_events": s.num_events,
        "num_points": num_points(start),
        "duration": duration,
    }
    parents = parent_uids_of(start)
    if parents:  # a derived run: the panel nests it under its parent
        out["parent_uids"] = parents
    return out


def encode_cursor(s: RunSummary) -> str:
    """The ``before`` cursor that continues after run ``s``: ``"<time>:<seq>"``."""
    return f"{float(s.time)!r}:{int(s.seq)}"


def decode_cursor(text: str) -> tuple[float, int]:
    """``(time, seq)`` of a cursor; 400 ``BadCursor`` for anything :func:`encode_cursor` did not make."""
    head, sep, tail = text.rpartition(":")
    try:
        if not sep:
            raise ValueError(text)
        t, seq = float(head), int(tail)
        if not math.isfinite(t) or not 0 <= seq < 2**63:
            raise ValueError(text)
    except ValueError:
        raise ApiError(
            400, "BadCursor", f"'before' must be a cursor from a previous page's 'next', not {text[:60]!r}"
        ) from None
    return t, seq


# -- provenance ------------------------------------------------------------------------------------


def record_summary(rec: ProvenanceRecord) -> dict[str, Any]:
    """The API's RECORD: a provenance record without its environment."""
    notebook = PurePath(rec.notebook_path).name if rec.notebook_path else f"{rec.name}.ipynb"
    return {
        "id": rec.id,
        "name": rec.name,
        "kind": rec.kind,
        "created": iso(rec.created),
        "notebook": notebook,
        "status": rec.status,
        "parameters": jsonable(rec.parameters),
        "inputs": [{"uid": i.uid, "scan_id": i.scan_id} for i in rec.inputs],
        "outputs": [{"uid": o.uid, "catalog": o.catalog} for o in rec.outputs],
        "parent": rec.parent,
        "target_scan": rec.target_scan,
        "error": rec.error.model_dump(mode="json") if rec.error is not None else None,
    }
