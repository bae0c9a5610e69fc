"""The rows of one stream of one run, growing as events arrive."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class LiveTable:
    """Column lists of a stream's scalar and array keys, appended from any thread.

    Events and event pages land as rows; readers take consistent snapshots with
    :meth:`frame` (pandas) or :meth:`row`. External (file-backed) keys keep their
    datum ids; ``run.primary.read()`` fills them.

    Examples
    --------
    >>> t = LiveTable("primary")
    >>> t.add_descriptor({"uid": "d", "name": "primary", "data_keys": {"x": {}}})
    True
    >>> t.add_event({"descriptor": "d", "seq_num": 1, "time": 0.0, "data": {"x": 1.5}})
    1
    >>> len(t)
    1
    """

    def __init__(self, stream: str = "primary") -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._descriptors: set[str] = set()
        self.keys: list[str] = []
        self.data_keys: dict[str, dict[str, Any]] = {}
        self._time: list[float] = []
        self._seq: list[int] = []
        self._cols: dict[str, list[Any]] = {}
        # numpy copies of the columns, extended by the rows added since the last
        # frame(): building a DataFrame then costs the new rows, not the whole table.
        self._arrays: dict[str, _Growing] = {}

    def __len__(self) -> int:
        return len(self._seq)

    def add_descriptor(self, doc: Mapping[str, Any]) -> bool:
        """Take a descriptor if it belongs to this stream; True if it does."""
        if doc.get("name", "primary") != self.stream:
            return False
        with self._lock:
            self._descriptors.add(doc["uid"])
            for key, info in doc["data_keys"].items():
                if key not in self._cols:
                    self.keys.append(key)
                    self.data_keys[key] = dict(info)
                    self._cols[key] = [None] * len(self._seq)
        return True

    def add_event(self, doc: Mapping[str, Any]) -> int:
        """Append an event of this stream; returns the rows added (0 if not ours)."""
        if doc["descriptor"] not in self._descriptors:
            return 0
        data = doc["data"]
        with self._lock:
            self._time.append(doc["time"])
            self._seq.append(doc["seq_num"])
            for key, col in self._cols.items():
                col.append(data.get(key))
        return 1

    def add_event_page(self, doc: Mapping[str, Any]) -> int:
        """Append the rows of an event page of this stream."""
        if doc["descriptor"] not in self._descriptors:
            return 0
        data = doc["data"]
        n = len(doc["seq_num"])
        with self._lock:
            self._time.extend(doc["time"])
            self._seq.extend(doc["seq_num"])
            for key, col in self._cols.items():
                values = data.get(key)
                col.extend(values if values is not None else [None] * n)
        return n

    def add(self, name: str, doc: Mapping[str, Any]) -> int:
        """Route any document; returns the rows it added."""
        if name == "event":
            return self.add_event(doc)
        if name == "event_page":
            return self.add_event_page(doc)
        if name == "descriptor":
            self.add_descriptor(doc)
        return 0

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, list[Any]]:
        """A snapshot of rows ``start:stop`` as plain lists (``time``, ``seq_num``, keys)."""
        with self._lock:
            out = {"seq_num": self._seq[start:stop], "time": self._time[start:stop]}
            for key, col in self._cols.items():
                out[key] = col[start:stop]
        return out

    def row(self, index: int = -1) -> dict[str, Any] | None:
        """One row as a dict (the newest by default), or None when empty."""
        with self._lock:
            if not self._seq:
                return None
            out = {"seq_num": self._seq[index], "time": self._time[index]}
            for key, col in self._cols.items():
                out[key] = col[index]
        return out

    def frame(self, start: int = 0, stop: int | None = None) -> Any:
        """Rows ``start:stop`` as a ``pandas.DataFrame`` indexed by ``seq_num``.

        The columns are copied (a memcpy) from arrays kept up to date incrementally,
        so a frame of a million rows costs milliseconds, and editing it never
        touches the table.
        """
        import pandas as pd

        with self._lock:
            n = len(self._seq)
            named = {"seq_num": self._seq, "time": self._time, **self._cols}
            for key, values in named.items():
                grown = self._arrays.get(key)
                if grown is None or grown.n > len(values):
                    grown = self._arrays[key] = _Growing()
                grown.extend(values[grown.n:n])
        lo, hi, _ = slice(start, stop).indices(n)
        views = {key: self._arrays[key].view(lo, hi) for key in named}
        seq = views.pop("seq_num")
        return pd.DataFrame(views, index=pd.Index(seq, name="seq_num"), copy=True)


class _Growing:
    """A numpy array grown by doubling; values keep the dtype numpy infers for them."""

    __slots__ = ("array", "n")

    def __init__(self) -> None:
        self.array: Any = None
        self.n = 0

    def extend(self, values: list[Any]) -> None:
        import numpy as np

        if not values:
            return
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
        if self.array is None:
            self.array = np.empty(max(1024, 2 * len(new)), dtype=new.dtype)
        elif new.dtype != self.array.dtype:
            dtype = np.result_type(self.array.dtype, new.dtype)
            if dtype.kind not in "biufc" and self.array.dtype != object:
                dtype = np.dtype(object)
            self.array = self.array.astype(dtype)
        need = self.n + len(new)
        if need > len(self.array):
            bigger = np.empty(max(need, 2 * len(self.array)), dtype=self.array.dtype)
            bigger[: self.n] = self.array[: self.n]
            self.array = bigger
        self.array[self.n : need] = new
        self.n = need

    def view(self, start: int, stop: int) -> Any:
        import numpy as np

        if self.array is None:
            return np.empty(0)
        return self.array[start:stop]
