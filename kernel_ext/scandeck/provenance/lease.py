"""Keeping a standing analysis's lease from a thread of its own.

A service holds the lease of its analysis (:meth:`~.standing.Ledger.acquire`) for
``ttl`` seconds at a time; a standby takes over when it runs out. Reruns often
take longer than the lease, and a stopping service waits for the reruns in
flight: renewing between looks at the catalog would let the lease run out
meanwhile, and the standby would rerun the same scans a second time.
:class:`LeaseKeeper` renews every third of ``ttl`` whatever the service is doing,
and says when the lease was lost (another holder took it, or the ledger could
not be written for a whole ``ttl``).

Examples
--------
>>> keeper = LeaseKeeper(ledger, standing.id, owner, ttl=15.0)   # doctest: +SKIP
>>> keeper.start(); ...; keeper.held; keeper.stop()              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..exceptions import ScandeckError

if TYPE_CHECKING:
    from .standing import Ledger

__all__ = ["LeaseKeeper"]

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews ``owner``'s lease of analysis ``sid`` every ``ttl / 3`` seconds until :meth:`stop`.

    Start it just after :meth:`~.standing.Ledger.acquire` succeeded. :attr:`held` turns
    False (for good) when another service holds the lease, or when no renewal got
    through for ``ttl`` seconds (the lease may have run out: a successor may rerun).
    """

    def __init__(self, ledger: Ledger, sid: str, owner: str, ttl: float) -> None:
        self.ledger = ledger
        self.sid = sid
        self.owner = owner
        self.ttl = float(ttl)
        self.holder: str | None = None  #: who took the lease, when it was lost to another service
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LeaseKeeper({self.sid[:8]}, held={self.held})"

    @property
    def held(self) -> bool:
        """Whether the lease is still ours (False once lost; a new keeper is needed after a new acquire)."""
        return self._thread is not None and not self._lost.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"scandeck-lease-{self.sid[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease runs out after ``ttl`` unless released)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                holder = self.ledger.acquire(self.sid, self.owner, self.ttl)
            except (ScandeckError, OSError) as err:  # the ledger is busy or away: try again, up to ttl
                log.warning("scandeck: could not renew the lease of standing analysis %s: %s", self.sid[:8], err)
                if time.monotonic() - renewed >= self.ttl:
                    self._lost.set()
                    return
                continue
            if holder is not None:
                self.holder = holder
                self._lost.set()
                return
            renewed = time.monotonic()
