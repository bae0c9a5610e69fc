"""``cat.writer()`` on a Tiled catalog: bluesky-tiled-plugins' ``TiledWriter`` behind scandeck's checks.

Every document passes :class:`~scandeck.documents.RunOrder` (values, schema,
order: the checks every scandeck store applies) before ``TiledWriter`` sees it, so
a malformed document is refused with an :class:`~scandeck.exceptions.InvalidDocument`
and the run goes on. Tiled's own failures (refused credentials, a dead server)
become :class:`~scandeck.exceptions.StoreError`. The batch size (events per write)
is the source's: 1 by default, so a live reader sees each event as it is written
(about 45 ms per event on a local server); raise it for fast scans with
``?batch_size=N`` in the catalog URI.
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

from ...documents import RunOrder, normalize
from ...exceptions import InvalidDocument, StoreError
from .connect import TiledTarget, tiled_errors

__all__ = ["TiledRunWriter"]

#: Run metadata key under which a writer that closes without a stop document marks its
#: runs (Tiled keeps no writer heartbeat; the key is scandeck's, beside start and stop).
INCOMPLETE_KEY = "scandeck_incomplete"


def _mark_incomplete(container: Any, target: TiledTarget, uids: Iterable[str]) -> None:
    for uid in list(uids):
        try:
            with tiled_errors(target, f"marking run {uid} incomplete"):
                container[uid].update_metadata({INCOMPLETE_KEY: True})
        except Exception:  # noqa: BLE001 - best effort, maybe in a finalizer: the server or client is gone
            return  # the run stays "running", as its writer left it


#: Whole numbers Tiled's metadata keeps exactly: TiledWriter clamps others (JSON's safe integers).
_SAFE_WHOLE = 2**53 - 1


def _altered(value: Any, path: str) -> tuple[str, Any] | None:
    """The first value (and its path, ``"edges/1"``) that TiledWriter would store changed, if any.

    TiledWriter (``truncate_json_overflow``) clamps whole numbers beyond +-(2**53 - 1),
    1e308 included, and the catalog stores NaN and infinities as null.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            found = _altered(item, f"{path}/{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _altered(item, f"{path}/{i}")
            if found:
                return found
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return path, value
        if value % 1 == 0 and abs(value) > _SAFE_WHOLE:
            return path, value
    return None


class TiledRunWriter:
    """A ``(name, doc)`` callable: validate with scandeck's rules, then write with ``TiledWriter``."""

    def __init__(self, container: Any, target: TiledTarget, *, batch_size: int = 1) -> None:
        from bluesky_tiled_plugins import TiledWriter

        self._target = target
        self._container = container
        self._batch_size = batch_size
        # max_array_size=0: every array key becomes a Tiled array (read by slice), none a table
        # column of lists, which only some of Tiled's SQL backends hold (SQLite holds none).
        self._writer = TiledWriter(container, batch_size=batch_size, max_array_size=0)
        self._order = RunOrder()
        self._lock = threading.Lock()
        self._closed = False
        # A writer dropped without close() (its RunEngine gone) marks its open runs incomplete.
        self._finalizer = weakref.finalize(self, _mark_incomplete, container, target, self._order.open_runs_view())

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("this writer is closed; get a new one with catalog.writer()")
            placed = self._order.check(name, doc)
            if name == "start" and self._holds(doc["uid"]):
                # Asked first: TiledWriter's 409 would come back as a warning from event-model's router.
                raise InvalidDocument(name, doc, "a run with this uid is already in the store")
            with tiled_errors(self._target, f"storing a {name} document"):
                try:
                    self._send(name, doc)
                except InvalidDocument:
                    raise
                except (KeyError, ValueError, TypeError) as err:
                    # TiledWriter refused a document scandeck's checks accepted: say so, keep going.
                    why = f"Tiled's writer refused it ({type(err).__name__}: {err})"
                    raise InvalidDocument(name, doc, why) from err
            self._order.commit(name, doc, placed)

    def _send(self, name: str, doc: dict[str, Any]) -> None:
        if name in ("start", "descriptor", "stop"):
            doc = normalize(doc)  # metadata as every store gives it back: plain JSON values, no numpy
            found = _altered(doc, "")
            if found:
                raise InvalidDocument(
                    name,
                    doc,
                    f"Tiled would not keep the value {found[1]!r} at {found[0]} (TiledWriter and Tiled's "
                    "JSON metadata change whole numbers beyond +-(2**53 - 1), NaN and infinities); "
                    "store it as a string or in an event",
                    field=found[0],
                )
        if name != "start":
            self._writer(name, doc)
            return
        # event-model's RunRouter turns an error of TiledWriter's start into a warning and goes
        # on without the run: caught here, so that the refusal is an error (and nothing is stored).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self._writer(name, doc)
        for warning in caught:
            text = str(warning.message)
            if "raised" in text and "start" in text:
                why = text.split(" when RunRouter", 1)[0].split(" raised ", 1)[-1]
                raise InvalidDocument(name, doc, f"Tiled's writer refused it ({why})")
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    def _holds(self, uid: str) -> bool:
        from tiled.queries import KeysFilter

        with tiled_errors(self._target, "looking up a run's uid"):
            return len(self._container.new_variation().search(KeysFilter(keys=[uid]))) > 0

    def close(self) -> None:
        """Runs left without a stop document are marked incomplete in Tiled.

        With a batch size above 1, their events not yet sent (fewer than a batch per
        stream: TiledWriter sends at a full batch or at the stop) are lost, and a
        ``RuntimeWarning`` names the runs.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                open_runs = self._order.open_runs
                if open_runs and self._batch_size > 1:
                    warnings.warn(
                        f"closing a Tiled writer with {len(open_runs)} run(s) without a stop document "
                        f"({', '.join(u[:8] for u in open_runs)}): up to {self._batch_size - 1} of their last "
                        "events per stream were never sent (batch_size > 1); they are marked incomplete",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                self._finalizer()
