"""scandeck's built-in computed columns: what each means, exactly.

From the run's index row alone (``summary_only``: any reader computes them at once):

``duration``
    The stop document's ``time`` minus the start document's ``time``, in seconds;
    None while the run has no stop document (running, or incomplete).
``events``
    Events stored in all the run's streams (``num_events``; so far, for a running run).
``status``
    ``running``, ``success``, ``abort``, ``fail`` or ``incomplete``.

From the run's data (computed in worker processes, as the columns files' are):

``cen``, ``fwhm``, ``max``
    :func:`scandeck.peaks` of the run with its defaults (the first hinted field of the
    first detector against the scanned motor, in the ``primary`` stream): the mean
    position of the half-maximum crossings, the distance between the first and last
    of them, and the largest detector value. None when the run is not a 1-D scan
    (a count, a grid; :class:`~scandeck.peak_stats.NotAScan`), has no ``primary``
    stream, or its data give none (no crossing).
``frame_sum``
    For a run whose first detector's first hinted field (its first field when it hints
    none, as ophyd.sim's ``img``) is declared an image (two or more dimensions): the
    sum of every pixel of every frame of ``primary``, as a float. Frames are read a
    few at a time (at most :data:`FRAME_BYTES` per read), so memory stays bounded
    whatever the run's size. None for any other run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..catalog import Run
    from ..peak_stats import Peaks

__all__ = ["BUILTIN_COLUMNS", "FRAME_BYTES", "image_key"]

#: Most bytes of frames ``frame_sum`` reads at once.
FRAME_BYTES = 64 * 2**20


def duration(run: Run) -> float | None:
    s = run.summary
    if s.stop is None or not isinstance(s.stop.get("time"), (int, float)):
        return None
    start = s.start.get("time")
    return float(s.stop["time"] - start) if isinstance(start, (int, float)) else None


def events(run: Run) -> int:
    return run.summary.num_events


def status(run: Run) -> str:
    return run.summary.status


# cen, fwhm and max of one run read its data once: the last run's peaks are kept.
_last: dict[str, Any] = {}
_last_lock = threading.Lock()


def _peaks(run: Run) -> Peaks | None:
    from ..exceptions import StreamNotFound
    from ..peak_stats import NotAScan, peaks

    key = (run.uid, run.summary.num_events, run.summary.status)
    with _last_lock:
        if _last.get("key") == key:
            return _last["peaks"]
    try:
        found: Peaks | None = peaks(run)
    except (NotAScan, StreamNotFound):
        found = None
    with _last_lock:
        _last.update(key=key, peaks=found)
    return found


def cen(run: Run) -> float | None:
    p = _peaks(run)
    return None if p is None else p.cen


def fwhm(run: Run) -> float | None:
    p = _peaks(run)
    return None if p is None else p.fwhm


def peak_max(run: Run) -> float | None:
    p = _peaks(run)
    return None if p is None else p.max


def image_key(start: Mapping[str, Any], descriptors: list[dict[str, Any]]) -> str | None:
    """The key ``frame_sum`` sums: the first detector's first hinted field, if declared an image."""
    detectors = [d for d in start.get("detectors") or [] if isinstance(d, str)]
    for desc in descriptors:
        hints = desc.get("hints") or {}
        object_keys = desc.get("object_keys") or {}
        data_keys = desc.get("data_keys") or {}
        for name in [*detectors, *(h for h in hints if h not in detectors)]:
            hint = hints.get(name)
            fields = hint.get("fields") if isinstance(hint, Mapping) else None
            if not fields:  # a detector hinting no field (ophyd.sim's img): its own first key
                fields = object_keys.get(name) if name in hints else None
            if isinstance(fields, list) and fields and isinstance(fields[0], str):
                shape = (data_keys.get(fields[0]) or {}).get("shape") or []
                return fields[0] if len(shape) >= 2 else None
    return None


def frame_sum(run: Run) -> float | None:
    import numpy as np

    if "primary" not in run:
        return None
    stream = run["primary"]
    key = image_key(run.start, stream.descriptors)
    if key is None:
        return None
    shape = stream.data_keys[key].get("shape") or []
    frame = 8
    for n in shape:
        frame *= max(int(n), 1) if isinstance(n, int) else 1
    step = max(1, FRAME_BYTES // frame)
    total = 0.0
    rows = len(stream)
    for first in range(0, rows, step):
        part = stream.read([key], rows=slice(first, min(first + step, rows)))[key].values
        total += float(np.sum(part, dtype=np.float64))
    return total


#: ``(name, function, title, units, summary_only)`` of each built-in column, in the order a table shows
#: them (:data:`scandeck.runtable.columns.BUILTINS` makes them ColumnSpecs).
BUILTIN_COLUMNS: tuple[tuple[str, Callable[[Run], Any], str, str | None, bool], ...] = (
    ("duration", duration, "Duration", "s", True),
    ("events", events, "Events", None, True),
    ("status", status, "Status", None, True),
    ("cen", cen, "Peak centre", None, False),
    ("fwhm", fwhm, "FWHM", None, False),
    ("max", peak_max, "Peak max", None, False),
    ("frame_sum", frame_sum, "Frame sum", None, False),
)
