"""The rows of one stream of one run, growing as events arrive."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..documents import is_scalar
from ..exceptions import LateStreamValue
from ..timestamps import local_datetimes
from .columns import Growing

if TYPE_CHECKING:
    import pandas
    from event_model.documents import StreamDatum

    from ..external import Filler


class LiveTable:
    """Column lists of a stream's keys, appended from any thread.

    Events and event pages land as rows; readers take consistent snapshots with
    :meth:`frame` (pandas) or :meth:`row`. External (file-backed) data is read
    as it arrives, through :class:`scandeck.handlers.Filler`: scalar keys always
    (a value, never a datum id), array keys (images) only those named in
    ``fill`` (``True`` for all); the others are not columns at all. Rows of a
    stream without events (a fly scan) come from its stream_datum documents,
    once every stream key has reached them; they have no ``time`` column.

    A value that cannot be read (file missing, out of range) becomes None and
    its error is kept in :attr:`errors` for the owner to report.

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

    def __init__(self, stream: str = "primary", *, fill: bool | Collection[str] = ()) -> None:
        self.stream = stream
        self.fill = fill if isinstance(fill, bool) else frozenset((fill,) if isinstance(fill, str) else fill)
        self._lock = threading.Lock()
        self._descriptors: set[str] = set()
        self.keys: list[str] = []
        self.data_keys: dict[str, dict[str, Any]] = {}
        self._time: list[float] = []
        self._seq: list[int] = []
        self._cols: dict[str, list[Any]] = {}
        # numpy copies of the columns, extended by the rows added since the last
        # frame(): building a DataFrame then costs the new rows, not the whole table.
        self._arrays: dict[str, Growing] = {}
        # External data: datum keys filled at add time, stream keys by seq_num until
        # their row exists; skipped keys are external arrays nobody asked for.
        self._filler: Filler | None = None
        self._datum_keys: list[str] = []
        self._stream_keys: list[str] = []
        self._skipped: set[str] = set()
        self._sres_key: dict[str, str] = {}
        self._pending: dict[int, dict[str, Any]] = {}
        self._row_of: dict[int, int] = {}  # seq_num -> row, for stream data after its event
        self._events_seen = False
        self._released = 0
        #: Rows before this one were dropped (:meth:`drop`): every consumer took them.
        self.base = 0
        #: The most rows held at once: what following this stream cost in rows.
        self.peak_held = 0
        self.errors: list[BaseException] = []

    def __len__(self) -> int:
        """Rows of the stream so far, dropped ones included (the next row's number)."""
        return self.base + len(self._seq)

    @property
    def held(self) -> int:
        """Rows held in memory: not dropped yet."""
        return len(self._seq)

    @property
    def described(self) -> bool:
        """True once a descriptor of this stream arrived: the table knows its columns."""
        return bool(self._descriptors)

    @property
    def timed(self) -> bool:
        """False for a stream whose rows came from stream_datum documents alone (no times)."""
        return self._events_seen or not len(self)

    def wanted(self, key: str, info: Mapping[str, Any]) -> bool:
        """Is ``key`` a column: internal, an external scalar, or an external array asked for."""
        if not info.get("external"):
            return True
        if is_scalar(info):
            return True
        return self.fill is True or (not isinstance(self.fill, bool) and key in self.fill)

    def add_descriptor(self, doc: dict[str, Any]) -> bool:
        """Take a descriptor if it belongs to this stream; True if it does."""
        if doc.get("name", "primary") != self.stream:
            return False
        with self._lock:
            self._descriptors.add(doc["uid"])
            for key, info in doc["data_keys"].items():
                if key in self._cols or key in self._skipped:
                    continue
                if not self.wanted(key, info):
                    self._skipped.add(key)
                    continue
                self.keys.append(key)
                self.data_keys[key] = dict(info)
                self._cols[key] = [None] * len(self._seq)
                if info.get("external"):
                    stream = str(info["external"]).startswith("STREAM:")
                    (self._stream_keys if stream else self._datum_keys).append(key)
        if doc["data_keys"] and any(v.get("external") for v in doc["data_keys"].values()):
            self._filler_for()("descriptor", doc)
        return True

    def _filler_for(self) -> Filler:
        if self._filler is None:
            from ..external import Filler

            self._filler = Filler()
        return self._filler

    def close(self) -> None:
        """Close the files the filler holds open."""
        if self._filler is not None:
            self._filler.close()

    def _fill(self, key: str, datum_id: Any) -> Any:
        if datum_id is None:
            return None
        try:
            return self._filler_for().fill_datum(datum_id)
        except Exception as err:  # noqa: BLE001 - kept for the owner to report; the follow goes on
            with self._lock:
                self.errors.append(err)
            return None

    def take_errors(self) -> list[BaseException]:
        """The fill errors since the last call (each reported once)."""
        with self._lock:
            errors, self.errors = self.errors, []
        return errors

    def release(self, stop: int) -> None:
        """Forget the filled arrays of rows before ``stop``: their consumer took them.

        A live pipeline (``live().stream(fill=...)``, ``plot.image``) hands rows on
        and never reads them again; releasing keeps its memory to the rows in flight,
        not every frame of the run. ``%%bind`` keeps them: its ``df`` holds them.
        """
        with self._lock:
            keys = [
                k for k in self._cols if self.data_keys[k].get("external") and not is_scalar(self.data_keys[k])
            ]
            for key in keys:
                column = self._cols[key]
                for i in range(max(self._released, self.base), min(stop, len(self))):
                    column[i - self.base] = None
                self._arrays.pop(key, None)
            self._released = max(self._released, stop)

    def drop(self, stop: int) -> int:
        """Forget rows before ``stop`` (numbered from the run's first): every consumer took them.

        A shared follower (:mod:`scandeck.pipeline.hub`) calls this as its slowest
        consumer moves on, so the table holds the rows in flight, not the run.
        Returns the rows dropped.
        """
        with self._lock:
            count = min(stop, len(self)) - self.base
            if count <= 0:
                return 0
            if self._row_of:
                for seq in self._seq[:count]:
                    self._row_of.pop(seq, None)
            del self._seq[:count]
            if self._time:
                del self._time[:count]
            for column in self._cols.values():
                del column[:count]
            self._arrays.clear()  # frame() is for tables that keep every row
            self.base += count
            return count

    def _event_values(self, data: Mapping[str, Any], rows: int | None) -> dict[str, Any]:
        """``{key: value or column}`` of the datum keys, filled (file reads outside the lock)."""
        out: dict[str, Any] = {}
        for key in self._datum_keys:
            value = data.get(key)
            if rows is None:
                out[key] = self._fill(key, value)
            else:
                out[key] = [self._fill(key, v) for v in (value or [None] * rows)]
        return out

    def add_event(self, doc: Mapping[str, Any]) -> int:
        """Append an event of this stream; returns the rows added (0 if not ours)."""
        if doc["descriptor"] not in self._descriptors:
            return 0
        data = doc["data"]
        if self._datum_keys:  # a copy only when there is something to fill in
            data = {**data, **self._event_values(data, None)}
        with self._lock:
            self._events_seen = True
            seq = doc["seq_num"]
            streamed = self._pending.pop(seq, None)
            if streamed:
                data = {**data, **streamed}
            if self._stream_keys:  # only stream data arriving after its event needs the row
                self._row_of[seq] = len(self)
            self._time.append(doc["time"])
            self._seq.append(seq)
            for key, col in self._cols.items():
                col.append(data.get(key))
            self.peak_held = max(self.peak_held, len(self._seq))
        return 1

    def add_event_page(self, doc: Mapping[str, Any]) -> int:
        """Append the rows of an event page of this stream."""
        if doc["descriptor"] not in self._descriptors:
            return 0
        n = len(doc["seq_num"])
        data = doc["data"]
        if self._datum_keys:
            data = {**data, **self._event_values(data, n)}
        with self._lock:
            self._events_seen = True
            if self._stream_keys:
                first = len(self)
                self._row_of.update((seq, first + i) for i, seq in enumerate(doc["seq_num"]))
            self._time.extend(doc["time"])
            self._seq.extend(doc["seq_num"])
            for key, col in self._cols.items():
                values = data.get(key)
                col.extend(values if values is not None else [None] * n)
            self.peak_held = max(self.peak_held, len(self._seq))
            for i, seq in enumerate(doc["seq_num"]):
                streamed = self._pending.pop(seq, None)
                for key, value in (streamed or {}).items():
                    if key in self._cols:
                        self._cols[key][len(self._seq) - n + i] = value
        return n

    def add_stream_datum(self, doc: Mapping[str, Any]) -> int:
        """Take a stream_datum of this stream: its values wait for their events, or
        (in a stream without events) become rows once every stream key has them."""
        if doc["descriptor"] not in self._descriptors:
            return 0
        key = self._sres_key.get(doc["stream_resource"])
        if key is None or key in self._skipped:
            return 0
        try:
            values = list(self._filler_for().fill_stream_datum(cast("StreamDatum", doc)))
        except Exception as err:  # noqa: BLE001 - kept for the owner to report; no rows made up
            with self._lock:
                self.errors.append(err)
            return 0
        first = doc["seq_nums"]["start"]
        with self._lock:
            column = self._cols.get(key)
            for i, value in enumerate(values):
                row = self._row_of.get(first + i)
                if row is not None and column is not None:  # its event came first
                    if row < self.base:  # consumers took that row already: say so, never drop it silently
                        self.errors.append(LateStreamValue(key, first + i))
                        continue
                    column[row - self.base] = value
                    self._arrays.pop(key, None)  # frame()'s copy of this column is stale
                else:
                    self._pending.setdefault(first + i, {})[key] = value
            many = len(values) > 1  # a step scan's stream_datum covers one event
            return self._rows_from_stream(before=first + (len(values) if many else 0))

    def finish(self) -> int:
        """The run ended: rows of a stream without events that still wait become rows."""
        with self._lock:
            return self._rows_from_stream(before=None)

    def _rows_from_stream(self, before: int | None) -> int:
        """Turn complete waiting stream rows with seq_num < ``before`` into rows (lock held)."""
        if self._events_seen or not self._pending:
            return 0
        ready = sorted(
            s
            for s, v in self._pending.items()
            if (before is None or s < before) and len(v) == len(self._stream_keys)
        )
        for seq in ready:
            values = self._pending.pop(seq)
            self._time.append(float("nan"))
            self._seq.append(seq)
            for key, col in self._cols.items():
                col.append(values.get(key))
        return len(ready)

    def add(self, name: str, doc: dict[str, Any]) -> int:
        """Route any document; returns the rows it added."""
        if name == "event":
            return self.add_event(doc)
        if name == "event_page":
            return self.add_event_page(doc)
        if name == "descriptor":
            self.add_descriptor(doc)
        elif name == "stream_datum":
            return self.add_stream_datum(doc)
        elif name == "stream_resource":
            self._sres_key[doc["uid"]] = doc["data_key"]
            self._filler_for()(name, doc)
        elif name in ("resource", "datum", "datum_page"):
            self._filler_for()(name, doc)
        elif name == "stop":
            return self.finish()
        return 0

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, list[Any]]:
        """A snapshot of rows ``start:stop`` as plain lists (``time``, ``seq_num``, keys).

        A stream without events (a fly scan's) has no ``time``: its rows have none.
        Rows are numbered from the run's first; asking for a dropped row (see
        :meth:`drop`) raises ``IndexError``.
        """
        with self._lock:
            if start < self.base:
                raise IndexError(f"rows before {self.base} of {self.stream!r} were dropped; asked from {start}")
            start -= self.base
            stop = None if stop is None else max(0, stop - self.base)
            out: dict[str, list[Any]] = {"seq_num": self._seq[start:stop]}
            if self.timed:
                out["time"] = self._time[start:stop]
            for key, col in self._cols.items():
                out[key] = col[start:stop]
        return out

    def row(self, index: int = -1) -> dict[str, Any] | None:
        """One row as a dict (the newest by default), or None when empty."""
        with self._lock:
            if not self._seq:
                return None
            if index >= 0:
                index -= self.base
            out: dict[str, Any] = {"seq_num": self._seq[index]}
            if self.timed:
                out["time"] = self._time[index]
            for key, col in self._cols.items():
                out[key] = col[index]
        return out

    def frame(self, start: int = 0, stop: int | None = None) -> pandas.DataFrame:
        """Rows ``start:stop`` as a ``pandas.DataFrame`` indexed by ``seq_num``.

        The columns are copied (a memcpy) from arrays kept up to date incrementally,
        so a frame of a million rows costs milliseconds, and editing it never
        touches the table. ``time`` holds local, timezone-aware dates
        (:func:`scandeck.timestamps.local_datetimes`), converted here, not per
        event; :meth:`columns` and :meth:`row` keep float seconds for arithmetic.
        Before any row the columns have the dtypes their descriptor declares.
        """
        import pandas as pd

        with self._lock:
            if self.base:
                raise IndexError(f"rows before {self.base} of {self.stream!r} were dropped: no frame of the run")
            n = len(self._seq)
            named: dict[str, list[Any]] = {
                "seq_num": self._seq,
                **({"time": self._time} if self.timed else {}),
                **self._cols,
            }
            for key, values in named.items():
                grown = self._arrays.get(key)
                if grown is None or grown.n > len(values):
                    grown = self._arrays[key] = Growing()
                grown.extend(values[grown.n : n])
        lo, hi, _ = slice(start, stop).indices(n)
        views: dict[str, Any] = {key: self._arrays[key].view(lo, hi, self.empty_dtype(key)) for key in named}
        seq = views.pop("seq_num")
        if "time" in views:  # for people: local dates; the rows keep the float seconds
            views["time"] = local_datetimes(views["time"])
        return pd.DataFrame(views, index=pd.Index(seq, name="seq_num"), copy=True)

    def empty_dtype(self, key: str) -> str:
        """The dtype of ``key``'s column before any row: from its descriptor, so an empty
        ``df`` at the start of a run already has numbers where numbers will come."""
        if key in ("seq_num", "time"):
            return "int64" if key == "seq_num" else "float64"
        info = self.data_keys.get(key, {})
        if not is_scalar(info):
            return "object"  # one array per row
        return _EMPTY_DTYPES.get(str(info.get("dtype")), "object")


#: Column dtypes of a stream with no rows yet, by the descriptor's JSON type.
_EMPTY_DTYPES = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "object"}
