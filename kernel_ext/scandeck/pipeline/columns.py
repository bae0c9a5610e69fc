"""A consumer's own copy of a stream's rows: numpy columns, the whole run or its newest rows.

A shared follower (:mod:`scandeck.pipeline.hub`) hands each consumer the rows it
has not taken yet, as column lists, and then forgets them. A consumer that needs
the rows again later (a ``%%bind`` cell's ``df``) keeps them here: one numpy
array per column, grown by doubling (at most twice the columns' bytes), or with a
``window`` only the newest rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas


class Growing:
    """A numpy array grown by doubling; values keep the dtype numpy infers for them.

    Examples
    --------
    >>> g = Growing()
    >>> g.extend([1.5, None])  # True: a new array
    True
    >>> g.view(0, g.n).tolist()
    [1.5, nan]
    """

    __slots__ = ("array", "n")

    def __init__(self) -> None:
        self.array: np.ndarray | None = None
        self.n = 0

    def extend(self, values: Sequence[Any], *, least: int = 1024) -> bool:
        """Append ``values``; True when the array was replaced (grown or retyped).

        Rows already written are never changed in place, so a frame viewing them
        stays as it was; a replaced array is a new one.
        """
        import numpy as np

        if not len(values):
            return False
        try:
            new = np.asarray(values)
            if new.dtype == object and (self.array is None or self.array.dtype.kind == "f"):
                new = np.asarray(values, dtype=float)  # numbers with gaps: None -> NaN
        except (ValueError, TypeError):  # ragged or mixed: keep them as objects
            new = np.empty(len(values), dtype=object)
            new[:] = values
        if new.ndim != 1:  # array-valued rows (spectra, images): one object per row
            obj = np.empty(len(values), dtype=object)
            obj[:] = list(values)
            new = obj
        replaced = False
        if self.array is None:
            self.array = np.empty(max(least, 2 * len(new)), dtype=new.dtype)
            replaced = True
        elif new.dtype != self.array.dtype:
            dtype = np.result_type(self.array.dtype, new.dtype)
            if dtype.kind not in "biufc" and self.array.dtype != object:
                dtype = np.dtype(object)
            if dtype != self.array.dtype:
                self.array, replaced = self.array.astype(dtype), True
        need = self.n + len(new)
        if need > len(self.array):
            bigger = np.empty(max(need, 2 * len(self.array)), dtype=self.array.dtype)
            bigger[: self.n] = self.array[: self.n]
            self.array, replaced = bigger, True
        self.array[self.n : need] = new
        self.n = need
        return replaced

    def keep_last(self, rows: int, capacity: int) -> None:
        """Keep only the newest ``rows`` values, in a new array of ``capacity``."""
        import numpy as np

        if self.array is None:
            return
        rows = min(rows, self.n)
        fresh = np.empty(max(capacity, rows), dtype=self.array.dtype)
        fresh[:rows] = self.array[self.n - rows : self.n]
        self.array, self.n = fresh, rows

    def view(self, start: int, stop: int, empty: str = "float64") -> np.ndarray:
        import numpy as np

        if self.array is None:
            return np.empty(0, dtype=empty)
        return self.array[start:stop]


class KeptColumns:
    """Rows taken from a follower, kept as numpy columns: every row, or the newest ``window``.

    Parameters
    ----------
    window
        Keep only the newest this many rows (``None``: all of them).

    Rows are numbered from the run's first row (:attr:`total` so far); with a
    window, rows before :attr:`first` are gone. :meth:`frame` costs no copy of
    the kept columns: a frame views them (pandas copies on write, so editing a
    frame never changes what is kept).

    Examples
    --------
    >>> kept = KeptColumns(window=2)
    >>> kept.extend({"seq_num": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    >>> kept.first, kept.total, kept.frame()["x"].tolist()
    (1, 3, [1.5, 2.5])
    """

    def __init__(self, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"a window keeps at least one row, not {window}")
        self.window = window
        self.first = 0
        self.total = 0
        self._lock = threading.Lock()
        self._cols: dict[str, Growing] = {}
        self._master: pandas.DataFrame | None = None  # views the arrays as they are now

    def __len__(self) -> int:
        return self.total - self.first

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held (capacity, not just rows)."""
        return sum(c.array.nbytes for c in self._cols.values() if c.array is not None)

    def extend(self, cols: dict[str, list[Any]]) -> None:
        """Append rows given as ``{column: values}`` (every list as long as ``seq_num``)."""
        rows = len(cols.get("seq_num", ()))
        if not rows:
            return
        least = 1024 if self.window is None else max(16, 2 * self.window)
        take = rows if self.window is None else min(rows, self.window)
        if take < rows:  # older than the window already: never stored
            cols = {k: v[rows - take :] for k, v in cols.items()}
        with self._lock:
            stored = self._cols["seq_num"].n if self._cols else 0  # every column holds as many
            for key in cols:
                if key not in self._cols:  # a key a later descriptor added: empty before
                    self._cols[key] = column = Growing()
                    if stored:
                        column.extend([None] * stored, least=least)
                    self._master = None
            if self.window is not None and any(
                c.array is not None and c.n + take > len(c.array) for c in self._cols.values()
            ):
                # The capacity is used up: the rows still in the window move to new arrays
                # (frames already shown keep viewing the old ones), about once per window.
                still = min(self.window - take, self.total - self.first)
                for column in self._cols.values():
                    column.keep_last(still, least)
                self._master = None
            for key, column in self._cols.items():
                values = cols.get(key)
                if column.extend(values if values is not None else [None] * take, least=least):
                    self._master = None
            self.total += rows
            if self.window is not None and self.total - self.first > self.window:
                self.first = self.total - self.window

    def frame(
        self,
        since: int | None = None,
        *,
        keys: Sequence[str] = (),
        empty_dtype: Callable[[str], str] = lambda key: "float64",
    ) -> pandas.DataFrame:
        """The kept rows (from row ``since`` of the run, if later than :attr:`first`) as a
        ``DataFrame`` indexed by ``seq_num``, ``time`` as local dates.

        ``keys`` and ``empty_dtype`` give the columns (and their dtypes) of a frame
        made before any row.
        """
        import pandas as pd

        from ..timestamps import local_datetimes

        with self._lock:
            names = list(self._cols) or ["seq_num", *(["time"] if "time" in keys else []), *keys]
            kept = self.total - self.first
            offset = max(0, (since or 0) - self.first)
            if not self._cols:
                views = {k: self._empty(k, empty_dtype) for k in dict.fromkeys(names)}
                master = pd.DataFrame(views, copy=False)
            else:
                if self._master is None:
                    self._master = pd.DataFrame({k: c.array for k, c in self._cols.items()}, copy=False)
                master = self._master
                # The tail of the arrays (not written yet) is beyond what the frame shows.
                start = self._cols["seq_num"].n - kept
                master = master.iloc[start + min(offset, kept) : start + kept]
        frame = master.set_index("seq_num")
        if "time" in frame.columns:  # for people: local dates; the kept rows stay float seconds
            frame["time"] = local_datetimes(frame["time"].to_numpy())
        return frame

    @staticmethod
    def _empty(key: str, empty_dtype: Callable[[str], str]) -> Any:
        import numpy as np

        return np.empty(0, dtype="int64" if key == "seq_num" else empty_dtype(key))

    def row(self) -> dict[str, Any] | None:
        """The newest row as a dict (``time`` in float seconds), or None before any."""
        with self._lock:
            if self.total == self.first:
                return None
            return {
                key: _plain(column.array[column.n - 1])
                for key, column in self._cols.items()
                if column.array is not None
            }


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value a row of lists held (arrays stay arrays)."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 1) == 0:
        return item()
    return value
