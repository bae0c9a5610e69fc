"""Peak statistics of a 1-D scan, as bluesky's ``PeakStats`` computes them, from any run.

:func:`peaks` reads two columns of a stored or running run (only those: the
embedded store reads their column blocks) and gives the maximum and minimum with
their positions, the centre of mass, the centre between the half-maximum crossings
and the full width at half maximum. The rules are ``PeakStats``' (bluesky's
``callbacks.fitting``); ``tests/test_peaks.py`` runs both on the same scans. Also ``scandeck.peaks``.

Examples
--------
>>> p = scandeck.peaks(cat[-1])                 # first hinted detector against the motor  # doctest: +SKIP
>>> p.cen, p.fwhm, p.max_at                                                                   # doctest: +SKIP
(0.02, 2.35, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ScandeckError
from .safe_text import printable

if TYPE_CHECKING:
    import numpy as np

    from .catalog import Run

__all__ = ["NotAScan", "Peaks", "peak_stats", "peaks"]


class NotAScan(ScandeckError, ValueError):
    """A run whose scanned motor or detector cannot be told: pass ``x=`` and ``y=``."""


@dataclass(frozen=True)
class Peaks:
    """Peak statistics of ``y`` against ``x``; None where the data give none (no rows, no crossing)."""

    x: str
    y: str
    points: int
    max: float | None  # the largest y ...
    max_at: float | None  # ... and its x (PeakStats' ``max`` is ``(max_at, max)``)
    min: float | None
    min_at: float | None
    com: float | None  # x of the centre of mass of y
    cen: float | None  # mean x of the crossings of the half-way line
    fwhm: float | None  # distance between the first and last crossings (two or more)
    crossings: tuple[float, ...] = ()


def peaks(
    run: Run, x: str | None = None, y: str | None = None, *, stream: str = "primary", edge_count: int | None = None
) -> Peaks:
    """Peak statistics of ``y`` against ``x`` in ``stream`` of ``run`` (so far, for a running run).

    ``y`` defaults to the first hinted field of the first detector, ``x`` to the scanned
    motor (the start document's ``hints.dimensions``, else ``motors``). ``edge_count``
    subtracts a line through the means of that many points at each edge first, as
    ``PeakStats(edge_count=...)`` does. Rows where ``x`` or ``y`` is missing are left out.

    Raises
    ------
    NotAScan
        ``x`` or ``y`` not given and not to be told from the run (a ``count``, a grid).
    """
    import numpy as np

    events = run[stream]  # one look-up of the descriptors (a request, for a remote source)
    if x is None:
        x = _motor(run.start, stream)
        if x not in events.data_keys:  # a count's dimension is time
            raise NotAScan(printable(f"the run scans {x!r}, which is not a data key of {stream!r}; pass x="))
    y = y if y is not None else _detector(run.start, events.descriptors)
    ds = events.read([x] if x == y else [x, y])
    xs = np.asarray(ds[x].values, dtype=float)
    ys = np.asarray(ds[y].values, dtype=float)
    if xs.ndim != 1 or ys.ndim != 1:
        raise NotAScan(printable(f"{x!r} and {y!r} must hold one number per event; {y!r} has shape {ys.shape}"))
    keep = ~(np.isnan(xs) | np.isnan(ys))
    return Peaks(x=x, y=y, points=int(keep.sum()), **peak_stats(xs[keep], ys[keep], edge_count=edge_count))


def peak_stats(x: np.ndarray, y: np.ndarray, *, edge_count: int | None = None) -> dict[str, Any]:
    """``max``, ``max_at``, ``min``, ``min_at``, ``com``, ``cen``, ``fwhm``, ``crossings`` of ``y(x)``."""
    import numpy as np

    out: dict[str, Any] = dict.fromkeys(("max", "max_at", "min", "min_at", "com", "cen", "fwhm"))
    if not len(x):
        return out
    original = y
    # Flat data, repeated x: PeakStats divides by zero there too (NaN or inf), silently.
    with np.errstate(divide="ignore", invalid="ignore"):
        if edge_count is not None:
            left_x, left_y = np.mean(x[:edge_count]), np.mean(y[:edge_count])
            right_x, right_y = np.mean(x[-edge_count:]), np.mean(y[-edge_count:])
            slope = (right_y - left_y) / (right_x - left_x)
            y = y - (slope * x + left_y - slope * left_x)
        low, high = int(np.argmin(y)), int(np.argmax(y))
        out.update(
            max=float(original[high]), max_at=float(x[high]), min=float(original[low]), min_at=float(x[low])
        )
        index = np.arange(len(x))
        out["com"] = float(np.interp(np.sum(y * index) / np.sum(y), index, x))
        mid = (np.max(y) + np.min(y)) / 2
        crossings = []
        for i in np.where(np.diff((y > mid).astype(int)))[0]:
            slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
            crossings.append(float(x[i] - (y[i] - mid) / slope))
    if crossings:
        out["cen"] = float(np.mean(crossings))
        out["crossings"] = tuple(crossings)
        if len(crossings) >= 2:
            out["fwhm"] = abs(crossings[-1] - crossings[0])
    return out


def _motor(start: Mapping[str, Any], stream: str) -> str:
    hints = start.get("hints")
    dims = hints.get("dimensions") if isinstance(hints, Mapping) else None
    if isinstance(dims, list) and dims:
        if len(dims) > 1:
            raise NotAScan(f"the run scans {len(dims)} dimensions; pass x= (and y=) for peaks of one of them")
        fields, dim_stream = dims[0] if isinstance(dims[0], (list, tuple)) and len(dims[0]) == 2 else ([], None)
        if dim_stream == stream and isinstance(fields, list) and fields and isinstance(fields[0], str):
            return fields[0]
    motors = start.get("motors")
    if isinstance(motors, list) and len(motors) == 1 and isinstance(motors[0], str):
        return motors[0]
    raise NotAScan("the run names no single scanned motor (hints.dimensions or motors); pass x=")


def _detector(start: Mapping[str, Any], descriptors: list[dict[str, Any]]) -> str:
    detectors = [d for d in start.get("detectors") or [] if isinstance(d, str)]
    for desc in descriptors:
        hints = desc.get("hints") or {}
        for name in [*detectors, *hints]:
            fields = (hints.get(name) or {}).get("fields") if isinstance(hints.get(name), Mapping) else None
            if isinstance(fields, list) and fields and isinstance(fields[0], str):
                return fields[0]
    raise NotAScan("no detector of the run hints a field; pass y=")
