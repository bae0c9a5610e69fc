"""The server's standing analyses: ``scandeck auto`` services run inside the Jupyter server.

:class:`AutoServices` starts an :class:`~scandeck.provenance.auto.AutoService` (a
thread; its reruns in worker processes with their own kernels) for each standing
analysis started from the panel, marks it *managed* in the ledger, and at server
start resumes every managed analysis (``ScandeckApp.auto_resume``). A stop from the
panel ends the service and clears the mark; a server stop ends every service and
keeps the marks, so the next server start resumes them.

The lease of :mod:`~scandeck.provenance.standing` makes this safe beside other
services: a server asked to run an analysis that a ``scandeck auto`` process already
runs waits as its standby.

Examples
--------
>>> services = AutoServices(store, catalogs)                     # doctest: +SKIP
>>> services.resume()                                            # doctest: +SKIP
>>> services.start(record="1a2b", query='sample == "Ni"')        # doctest: +SKIP
>>> services.list()["analyses"][0]["state"]                      # doctest: +SKIP
'running'
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..exceptions import RecordNotFound, ScandeckError
from ..provenance.auto import AutoService, define, describe, ledger_of
from ..provenance.standing import owner_text
from ..safe_text import printable
from ..uris import redact

if TYPE_CHECKING:
    from ..provenance.standing import Standing
    from ..provenance.store import ProvStore
    from .catalogs import CatalogPool

__all__ = ["AutoNotHere", "AutoServices"]

log = logging.getLogger(__name__)

#: Latest runs shown per analysis.
LATEST = 5
#: Rerun records whose published values are kept in memory (records never change).
VALUES_CACHE = 500


class AutoNotHere(ScandeckError, RuntimeError):
    """The analysis is run by another process (a ``scandeck auto`` command): this server cannot stop it."""


def holder_text(holder: str | None) -> str | None:
    """``host:pid`` of a lease owner (``host:pid:random``), for people."""
    return printable(owner_text(holder)) if holder else None


class AutoServices:
    """The standing analyses this server runs, by id.

    Parameters
    ----------
    store
        The provenance store of the server (the Provenance tab's): records are read from it,
        reruns recorded in it, and its ledger (``standing.sqlite``) holds the analyses.
    catalogs
        The server's catalogs, to turn a catalog name of the panel into what a service opens.
    """

    def __init__(self, store: ProvStore, catalogs: CatalogPool) -> None:
        self.store = store
        self.catalogs = catalogs
        self.ledger = ledger_of(store)
        self.services: dict[str, AutoService] = {}
        #: Ids whose service here was asked to stop (it ends when its reruns in flight are noted).
        self.stopping: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._values: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._resumer: threading.Thread | None = None
        #: Set once :meth:`resume` has started the managed analyses.
        self.resumed = threading.Event()

    # -- starting ----------------------------------------------------------------------------------

    def resume(self) -> None:
        """Start a service for every managed analysis, in a thread (the ledger is read from disk)."""
        if self._resumer is None:
            self._resumer = threading.Thread(target=self._resume_all, name="scandeck-auto-resume", daemon=True)
            self._resumer.start()

    def _resume_all(self) -> None:
        try:
            if not self.ledger.db_path.exists():
                return  # no analysis was ever defined here: create nothing
            for standing in self.ledger.all():
                if standing.managed:
                    try:
                        self._run(standing)
                    except ScandeckError as err:
                        log.warning(
                            "scandeck: cannot resume standing analysis %s: %s",
                            standing.id[:8],
                            printable(str(err)),
                        )
        except ScandeckError as err:
            log.warning("scandeck: cannot read the standing analyses: %s", printable(str(err)))
        finally:
            self.resumed.set()

    def start(
        self,
        record: str,
        *,
        query: str = "",
        catalog: str | None = None,
        status: str = "success",
        workers: int = 2,
    ) -> dict[str, Any]:
        """Define (or find) the analysis, mark it managed and run it here; its JSON. Blocking.

        ``catalog`` is a name of the server's catalogs ("" its default); None: the catalog
        the record read from. A bad query, record or catalog raises before anything is stored.
        """
        if self._closed:
            raise ScandeckError("the server is stopping; no new standing analyses")
        where = None if catalog is None else _stored_target(self.catalogs.target(catalog))
        standing = define(record, query=query, catalog=where, status=status, workers=workers, store=self.store)
        self.ledger.set_managed(standing.id, True)
        self._run(self.ledger.get(standing.id))
        return self.describe(self.ledger.get(standing.id))

    def _run(self, standing: Standing) -> None:
        with self._lock:
            if self._closed:
                return
            current = self.services.get(standing.id)
            if current is not None and current.running and standing.id not in self.stopping:
                return  # already running (or standing by) here
            service = AutoService(standing.id, store=self.store, say=_say(standing))
            self.services[standing.id] = service
            self.stopping.discard(standing.id)
        service.start()
        log.info("scandeck: running standing analysis %s (%s)", standing.id[:8], printable(standing.name))

    # -- stopping ----------------------------------------------------------------------------------

    def stop(self, ident: str) -> dict[str, Any]:
        """Stop the analysis's service here and clear its managed mark; its JSON. Reruns in
        flight finish in the background (the analysis shows ``stopping`` meanwhile).

        Raises :class:`AutoNotHere` when another process runs it (nothing is changed).
        """
        standing = self.ledger.get(ident)
        with self._lock:
            service = self.services.get(standing.id)
        if service is None or not service.running:
            holder = self.ledger.holder(standing.id)
            if holder is not None:
                raise AutoNotHere(
                    f"standing analysis {standing.id[:8]} is run by {holder_text(holder)}, not by this server; "
                    "stop it there (Ctrl-C in its `scandeck auto` terminal)"
                )
        self.ledger.set_managed(standing.id, False)
        if service is not None:
            with self._lock:
                self.stopping.add(standing.id)
            service.stop()
        return self.describe(self.ledger.get(standing.id))

    def close(self, timeout: float = 30.0) -> None:
        """Stop every service (server stop); managed marks stay for the next start. Idempotent.

        Reruns in flight get ``timeout`` seconds to finish and be noted; a rerun still going
        then is left claimed, and the next service recovers it from its record or runs it again.
        """
        with self._lock:
            self._closed = True
            services = list(self.services.values())
        for service in services:
            service.stop()
        deadline = time.monotonic() + timeout  # one wait for them all, not one per service
        for service in services:
            service.join(max(0.0, deadline - time.monotonic()))
        if self._resumer is not None:
            self._resumer.join(max(0.0, deadline - time.monotonic()))
        self.ledger.close()

    # -- reading -----------------------------------------------------------------------------------

    def list(self) -> dict[str, Any]:
        """The API's ``GET auto``: every analysis of the store, newest first. Blocking."""
        if not self.ledger.db_path.exists():
            return {"analyses": []}  # a look creates no store
        return {"analyses": [self.describe(s) for s in self.ledger.all()]}

    def describe(self, standing: Standing) -> dict[str, Any]:
        """One analysis as the API shows it: :func:`~scandeck.provenance.auto.describe` with the
        catalog redacted, ``state`` (running, standby, stopping, failed, elsewhere, stopped),
        ``here`` (this server runs a service for it), ``holder`` as ``host:pid``, ``error``
        and each latest run's published ``values``."""
        info = describe(self.ledger, standing, latest=LATEST)
        with self._lock:
            service = self.services.get(standing.id)
        holder = info["holder"]
        here = service is not None and service.running
        error = None
        if here and service is not None:
            if standing.id in self.stopping:
                state = "stopping"
            else:
                state = "running" if service.holding and holder == service.owner else "standby"
        elif service is not None and service.failed is not None:
            state, error = "failed", printable(f"{type(service.failed).__name__}: {service.failed}")
        elif holder is not None:
            state = "elsewhere"
        else:
            state = "stopped"
        for run in info["latest"]:
            run["values"] = self._values_of(run.get("record_id"))
        info.update(
            catalog=redact(standing.catalog) if standing.catalog else "",
            holder=holder_text(holder),
            here=here,
            state=state,
            error=error,
        )
        return info

    def _values_of(self, record_id: str | None) -> dict[str, Any]:
        """The values a rerun record published (``scandeck.glue``); {} without a record."""
        if not record_id:
            return {}
        with self._lock:
            if record_id in self._values:
                return self._values[record_id]
        try:
            values = dict(self.store.get(record_id).values)
        except RecordNotFound:
            return {}
        with self._lock:
            self._values[record_id] = values
            while len(self._values) > VALUES_CACHE:
                self._values.popitem(last=False)
        return values


def _stored_target(target: str) -> str:
    """What the ledger keeps to open a catalog: never a Tiled API key (the service's process
    takes its own from $TILED_API_KEY or the token cache, as every ``open_catalog`` does)."""
    if target.startswith("tiled+"):
        from ..sources.tiled.connect import without_key

        return without_key(target)
    return target


def _say(standing: Standing) -> Any:
    def say(line: str) -> None:
        log.info("scandeck auto [%s %s]: %s", standing.id[:8], printable(standing.name), printable(line))

    return say
