"""The server's column services: computed columns kept current for the catalogs it serves.

:class:`ColumnServices` runs one :class:`~scandeck.runtable.service.ColumnService`
per catalog named in ``ScandeckApp.column_catalogs`` (the default catalog unless
configured otherwise) whose store keeps facts. Each runs in a thread of the
server; the columns' code runs in the service's worker processes, never on the
event loop or in the server process. Catalogs are opened in a starter thread,
since opening blocks; everything stops with the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..exceptions import ScandeckError
from ..safe_text import printable

if TYPE_CHECKING:
    from ..runtable.service import ColumnService
    from .catalogs import CatalogPool

__all__ = ["ColumnServices"]

log = logging.getLogger(__name__)


class ColumnServices:
    """Column services for ``names`` of ``catalogs``, started by :meth:`start`, ended by :meth:`close`.

    Examples
    --------
    >>> services = ColumnServices(pool, [""], workers=2)   # doctest: +SKIP
    >>> services.start(); ...; services.close()              # doctest: +SKIP
    """

    def __init__(
        self,
        catalogs: CatalogPool,
        names: Sequence[str],
        *,
        workers: int = 2,
        interval: float = 3.0,
        timeout: float | None = None,
    ) -> None:
        self.catalogs = catalogs
        self.names = list(dict.fromkeys(names))
        self.workers = workers
        self.interval = interval
        self.timeout = timeout
        #: The running services, by catalog name.
        self.services: dict[str, ColumnService] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._starter: threading.Thread | None = None
        #: Set when every catalog was opened (or found unable to keep cells).
        self.ready = threading.Event()

    def start(self) -> None:
        """Open the catalogs and start their services, in a thread (opening blocks)."""
        if self._starter is None:
            self._starter = threading.Thread(target=self._start_all, name="scandeck-columns-start", daemon=True)
            self._starter.start()

    def _start_all(self) -> None:
        from ..runtable.service import ColumnService
        from ..sources.protocol import RunFacts

        try:
            for name in self.names:
                try:
                    cat = self.catalogs.get(name)
                    if not isinstance(cat.source, RunFacts):
                        log.info(
                            "scandeck: catalog %r (%s) keeps no computed cells; no column service for it",
                            name,
                            cat.name,
                        )
                        continue
                    service = ColumnService(
                        cat, workers=self.workers, interval=self.interval, timeout=self.timeout, say=_say(name)
                    )
                except ScandeckError as err:
                    log.warning("scandeck: no column service for catalog %r: %s", name, printable(str(err)))
                    continue
                with self._lock:
                    if self._closed:
                        service.close()
                        return
                    self.services[name] = service
                service.start()
                log.info("scandeck: computing the columns of catalog %r (%s)", name, cat.name)
        finally:
            self.ready.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every service and end its workers; idempotent."""
        with self._lock:
            self._closed = True
            services, self.services = list(self.services.values()), {}
        for service in services:
            service.stop()
        for service in services:
            try:
                service.close(timeout)
            except Exception as err:  # noqa: BLE001 - stop the others anyway
                log.warning("scandeck: stopping a column service: %s", err)
        if self._starter is not None:
            self._starter.join(timeout)


def _say(name: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        log.info("scandeck columns [%s]: %s", name or "default", printable(line))

    return say
