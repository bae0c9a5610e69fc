"""Data summaries: the one rule for a data key's range, which every writer records.

A key's summary is the ``min`` and ``max`` of its numeric values over a run's
events, per descriptor (:func:`scandeck.runtable.model.merge_summaries` joins
the descriptors). Array elements count (an image's pixels), an infinity counts,
NaN does not (it has no place in an order); booleans and strings (datum ids of
external data) have no range, nor has an integer past 64 bits (SQLite cannot
hold it). The embedded store applies :func:`array_range` to its column blocks,
the Redis writer :class:`RunRanges` to each event as it is written.

numpy is imported only for readings that are not Python numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["RunRanges", "array_range", "column_range", "reading_range"]

_INT64 = (-(2**63), 2**63)
_NO_RANGE = {str, bytes, bool, dict, type(None)}


def array_range(arr: Any) -> tuple[float, float] | None:
    """``(min, max)`` of a numpy array's elements by the summary rule; None when it has none.

    Examples
    --------
    >>> import numpy as np
    >>> array_range(np.array([[3.0, np.nan], [-np.inf, 1.0]]))
    (-inf, 3.0)
    >>> array_range(np.array([True, False])) is None
    True
    """
    import numpy as np

    if arr.dtype.kind not in "iuf":
        return None
    if arr.dtype.kind == "f":
        arr = arr[~np.isnan(arr)]
    if not arr.size:
        return None
    lo, hi = arr.min().item(), arr.max().item()
    if isinstance(lo, int) and not _INT64[0] <= lo <= hi < _INT64[1]:
        return None  # an uint64 past SQLite's integers
    return lo, hi


def reading_range(value: Any) -> tuple[float, float] | None:
    """``(min, max)`` of one reading (a number, an array, nested lists) or of an event page's column.

    Python numbers take a fast path; anything else goes through numpy as the
    embedded store's blocks do.

    Examples
    --------
    >>> reading_range(2.5), reading_range(float("nan")), reading_range(True), reading_range("datum-1")
    ((2.5, 2.5), None, None, None)
    >>> reading_range([[1, 5], [-2, 0]])
    (-2, 5)
    """
    kind = type(value)
    if kind is float:
        return None if value != value else (value, value)
    if kind is int:
        return (value, value) if _INT64[0] <= value < _INT64[1] else None
    if kind in (bool, str, bytes, dict, type(None)):
        return None
    if kind is list:  # an event page's column of scalars: no numpy needed
        types = set(map(type, value))
        if types == {float}:
            kept = [v for v in value if v == v]
            return (min(kept), max(kept)) if kept else None
        if types == {int}:
            lo, hi = min(value), max(value)
            return (lo, hi) if _INT64[0] <= lo <= hi < _INT64[1] else None
    import numpy as np

    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):  # ragged, or not numbers
        return None
    if arr.dtype.kind not in "iuf":
        return None
    if (kind is list or kind is tuple) and not _one_kind(value, "f" if arr.dtype.kind == "f" else "i"):
        return None
    return array_range(arr)


def column_range(values: list[Any]) -> tuple[float, float] | None:
    """``(min, max)`` of a column of readings (an event page's, a block's): each row's, joined.

    A column of one number type is one array; a column mixing them (``[0, 2.5, 5]``, a
    motor moved to list positions, which the embedded store keeps as a list) still has the
    range its events have one by one.

    Examples
    --------
    >>> column_range([0, 2.5, True, 5]), column_range(["datum-1", None])
    ((0, 5), None)
    """
    kinds = set(map(type, values))
    if kinds <= _NO_RANGE:  # strings (datum ids), booleans, gaps: the usual columns without one
        return None
    if len(kinds) == 1 and (found := reading_range(values)) is not None:  # the usual numeric column
        return found
    lo = hi = None
    for value in values:
        bounds = reading_range(value)
        if bounds is not None:
            lo = bounds[0] if lo is None or bounds[0] < lo else lo
            hi = bounds[1] if hi is None or bounds[1] > hi else hi
    return None if lo is None or hi is None else (lo, hi)


def _one_kind(values: list[Any] | tuple[Any, ...], kind: str) -> bool:
    """Whether every number in nested lists is of ``kind`` (``i``: integers, ``f``: floats).

    The embedded store keeps ``[1, 2.5]`` as a list, not as a float array (it would read
    back ``[1.0, 2.5]``), so it has no range there: nor here.
    """
    todo: list[Any] = list(values)
    while todo:
        v = todo.pop()
        t = type(v)
        if t is list or t is tuple:
            todo.extend(v)
        elif t is float:
            if kind != "f":
                return False
        elif t is int:
            if kind != "i":
                return False
        elif ("f" if getattr(v, "dtype", None) is not None and v.dtype.kind == "f" else "i") != kind:
            return False  # a numpy array or scalar: its kind
    return True


class RunRanges:
    """The ranges of one run's keys per descriptor, widened event by event (the Redis writer's).

    Examples
    --------
    >>> r = RunRanges()
    >>> r.add("d1", {"th": 1.0, "ok": True}), r.add("d1", {"th": 0.5}), r.add("d1", {"th": 0.75})
    (True, True, False)
    >>> r.fields()
    ['d1', '{"th": [0.5, 1.0]}']
    """

    __slots__ = ("by_descriptor", "changed", "stored_at")

    def __init__(self) -> None:
        self.by_descriptor: dict[str, dict[str, list[float]]] = {}
        self.changed = False
        self.stored_at = 0.0  # time.monotonic() of the last store

    def add(self, descriptor: str, data: Mapping[str, Any], *, page: bool = False) -> bool:
        """Widen by an event's ``data``, or an event page's (``page=True``: each key a column of
        readings, joined row by row as :func:`column_range` does); whether a range moved."""
        mine = self.by_descriptor.get(descriptor)
        if mine is None:
            mine = self.by_descriptor[descriptor] = {}
        moved = False
        for key, value in data.items():
            bounds = column_range(value) if page else reading_range(value)
            if bounds is None:
                continue
            have = mine.get(key)
            if have is None:
                mine[key] = [bounds[0], bounds[1]]
                moved = True
                continue
            if bounds[0] < have[0]:
                have[0] = bounds[0]
                moved = True
            if bounds[1] > have[1]:
                have[1] = bounds[1]
                moved = True
        self.changed = self.changed or moved
        return moved

    def fields(self) -> list[str]:
        """``[descriptor, JSON {key: [min, max]}, ...]``: the hash fields the Redis bus keeps.

        JSON has no infinity; Python's ``Infinity`` extension keeps it, and only Python reads it.
        """
        out: list[str] = []
        for desc, keys in self.by_descriptor.items():
            if keys:
                out += [desc, json.dumps(keys)]
        return out
