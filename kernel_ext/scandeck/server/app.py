"""``ScandeckApp``: the jupyter_server extension behind the Scans panel.

It owns what every request shares: the open catalogs, the provenance store, a
thread pool for blocking reads, the rerun jobs and the push hub; and closes them
all when the server stops. Configure it like any Jupyter application::

    jupyter lab --ScandeckApp.open_panel=True --ScandeckApp.catalog=local

or in ``jupyter_server_config.py``: ``c.ScandeckApp.provenance_dir = "/data/provenance"``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Integer, List, Type, Unicode

from .. import __version__
from .auto_services import AutoServices
from .catalogs import CatalogPool
from .column_service import ColumnServices
from .jobs import JobManager
from .push import PushHub

__all__ = ["ScandeckApp"]

log = logging.getLogger(__name__)

API = r"scandeck/api"


def _handlers() -> list[tuple[str, type]]:
    from .base import NotFoundHandler
    from .handlers_auto import AutoHandler, AutoStopHandler
    from .handlers_provenance import OpenRecordHandler, RecordHandler, RecordsHandler
    from .handlers_reruns import JobHandler, JobsHandler
    from .handlers_runs import CatalogsHandler, CodeHandler, PreviewHandler, RunHandler, RunsHandler
    from .handlers_table import AnnotationsHandler, ColumnsHandler, TableCsvHandler, TableHandler
    from .push import EventsHandler

    return [
        (rf"{API}/catalogs", CatalogsHandler),
        (rf"{API}/runs", RunsHandler),
        (rf"{API}/runs/([^/]+)", RunHandler),
        (rf"{API}/runs/([^/]+)/code", CodeHandler),
        (rf"{API}/runs/([^/]+)/preview", PreviewHandler),
        (rf"{API}/runs/([^/]+)/annotations", AnnotationsHandler),
        (rf"{API}/table", TableHandler),
        (rf"{API}/table\.csv", TableCsvHandler),
        (rf"{API}/columns", ColumnsHandler),
        (rf"{API}/provenance", RecordsHandler),
        (rf"{API}/provenance/([^/]+)", RecordHandler),
        (rf"{API}/provenance/([^/]+)/open", OpenRecordHandler),
        (rf"{API}/reruns", JobsHandler),
        (rf"{API}/reruns/([^/]+)", JobHandler),
        (rf"{API}/auto", AutoHandler),
        (rf"{API}/auto/([^/]+)/stop", AutoStopHandler),
        (rf"{API}/events", EventsHandler),
        (rf"{API}/(.*)", NotFoundHandler),
    ]


class ScandeckApp(ExtensionApp):
    """The ``scandeck`` server extension: REST and push for the Scans panel (``labextension/API.md``)."""

    name = "scandeck"
    description = "Bluesky runs, provenance records and reruns for the JupyterLab Scans panel"
    version = __version__
    # Not a page of its own: it serves JupyterLab, it does not replace it.
    load_other_extensions = True

    catalog = Unicode(
        "",
        config=True,
        help="What the default catalog (name '') opens: a catalog name, store path or URI as "
        "scandeck.open_catalog takes. Empty: $SCANDECK_CATALOG, else the embedded default store.",
    )
    provenance_dir = Unicode(
        "",
        config=True,
        help="The provenance store directory. Empty: <data dir>/provenance ($SCANDECK_DATA/provenance).",
    )
    open_panel = Bool(
        False,
        config=True,
        help="Tell the lab extension to open the Scans panel when JupyterLab starts (GET catalogs).",
    )
    offline_plots = Bool(
        True,
        config=True,
        help="Give the kernels this server starts the environment that makes Bokeh, Panel and HoloViews "
        "embed their JavaScript, so plots draw with no internet (scandeck.offline; BOKEH_RESOURCES=cdn "
        "set by the user switches it off too).",
    )
    tiled_api_key = Unicode(
        "",
        config=True,
        help="The Jupyter user's own Tiled API key: every Tiled catalog this server opens uses it. Empty: the "
        "server process's $TILED_API_KEY, else the user's `tiled login` token cache. Never sent to the browser.",
    )
    catalog_file_keys = Bool(
        False,
        config=True,
        help="Use an api_key written in a catalog file's Tiled URI (or in $SCANDECK_CATALOG). Off: catalog files "
        "are often shared site-wide, and their key would show every user what that key sees.",
    )
    threads = Integer(8, config=True, help="Threads for blocking work (store reads, searches, reruns' checks).")
    column_service = Bool(
        True,
        config=True,
        help="Compute the run table's computed columns of the catalogs in column_catalogs while the server "
        "runs (user code in worker processes, never on the event loop). Off: run 'scandeck columns serve'.",
    )
    column_catalogs = List(
        Unicode(),
        default_value=[""],
        config=True,
        help="The catalogs whose columns the server computes: '' is the default catalog, other names are "
        "catalog-file entries. Catalogs whose store keeps no computed cells are passed over.",
    )
    column_workers = Integer(2, config=True, help="Worker processes computing columns, per catalog.")
    column_interval = Float(
        3.0, config=True, help="Least seconds between two computations of a running run's columns."
    )
    auto_resume = Bool(
        True,
        config=True,
        help="At start, resume the standing analyses started from the panel (scandeck auto run by this "
        "server) that were not stopped there. Off: they stay stopped until started again.",
    )
    auto_stop_timeout = Float(
        30.0,
        config=True,
        help="Seconds the standing analyses' reruns in flight get to finish when the server stops; one "
        "still going is left to the next start, which finds its record or reruns it.",
    )
    job_manager_class = Type(
        default_value=JobManager,
        klass=JobManager,
        config=True,
        help="The class that runs rerun jobs (a subclass may submit them elsewhere).",
    )
    catalog_pool_class = Type(
        default_value=CatalogPool,
        klass=CatalogPool,
        config=True,
        help="The class that opens and keeps the catalogs by name.",
    )

    def initialize_settings(self) -> None:
        from ..provenance.store import ProvStore

        assert self.serverapp is not None
        self.offline_environment: dict[str, str] = {}  # what it set, unset again at stop
        if self.offline_plots:
            from ..offline import environment, set_environment

            # Kernels inherit the server's environment: every notebook's plots draw offline.
            self.offline_environment = set_environment()
            if self.offline_environment or environment():
                self.log.info("scandeck: kernels' plots embed BokehJS and Panel's JS (they draw offline)")
            else:
                self.log.info("scandeck: BOKEH_RESOURCES is set: plots load their JavaScript as it says")
        self.root_dir = Path(self.serverapp.root_dir).expanduser().resolve()
        self.executor = ThreadPoolExecutor(max_workers=max(1, self.threads), thread_name_prefix="scandeck")
        self.catalogs: CatalogPool = self.catalog_pool_class(
            self.catalog, tiled_api_key=self.tiled_api_key, catalog_file_keys=self.catalog_file_keys
        )
        self.store = ProvStore(self.provenance_dir or None)
        self.push = PushHub()
        self.jobs: JobManager = self.job_manager_class(self.root_dir, self.store, self.catalogs, self._job_changed)
        self.io_loop: IOLoop | None = None
        self.column_services = ColumnServices(
            self.catalogs,
            self.column_catalogs if self.column_service else [],
            workers=max(1, self.column_workers),
            interval=self.column_interval,
        )
        self.column_services.start()
        self.auto = AutoServices(self.store, self.catalogs)
        if self.auto_resume:
            self.auto.resume()
        self.log.info(
            "scandeck: serving the Scans panel API at %sscandeck/api/ (provenance in %s)",
            self.serverapp.base_url,
            self.store.directory,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(_handlers())

    def remember_loop(self) -> None:
        """Note the server's event loop (called from handlers, which run on it)."""
        if self.io_loop is None:
            self.io_loop = IOLoop.current()

    def _job_changed(self, job: dict[str, Any]) -> None:
        """From any thread: push a job's new state to every client."""
        if self.io_loop is not None:
            self.io_loop.add_callback(self.push.broadcast, {"type": "job", "job": job})

    async def stop_extension(self) -> None:
        """Stop watchers, column services and jobs, then close the catalogs and the store (server stop)."""
        self.push.close()
        self.auto.close(self.auto_stop_timeout)
        self.column_services.close()
        self.jobs.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.catalogs.close()
        self.store.close()
        for name, value in self.offline_environment.items():
            if os.environ.get(name) == value:  # a server in a longer-lived process (tests) leaves it as it was
                del os.environ[name]
