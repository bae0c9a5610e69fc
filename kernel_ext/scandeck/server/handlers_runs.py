"""``GET catalogs``, ``GET runs``, ``GET runs/UID``, ``GET runs/UID/code``, ``GET runs/UID/preview``."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import InvalidQuery, QuerySyntaxError, UnsafeValue
from ..files.layout import is_watched
from ..sources.fields import empty_search_hint
from . import watched_runs
from .base import ScandeckHandler, check_uid
from .catalogs import live_runs
from .cells import run_cells
from .derived_runs import derived_detail, page_parents
from .errors import ApiError, api_error, json_errors
from .preview import lookup, preview, run_detail, streams_of
from .serialize import decode_cursor, encode_cursor, run_summary
from .snippets import code_for
from .watched_preview import watched_preview

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary
    from .catalogs import CatalogPool

__all__ = [
    "CatalogsHandler",
    "CodeHandler",
    "PreviewHandler",
    "RunHandler",
    "RunsHandler",
    "runs_page",
    "search_page",
]

#: Longest query text accepted.
MAX_QUERY = 10_000


def _search(cat: Catalog, q: str) -> Catalog:
    if not q.strip():
        return cat
    try:
        return cat.search(q)
    except QuerySyntaxError:
        raise
    except InvalidQuery as err:
        raise api_error(err, query=q) from err


def search_page(
    pool: CatalogPool, name: str, q: str, limit: int, before: tuple[float, int] | None
) -> tuple[Catalog, list[RunSummary], list[RunSummary], dict[str, Any]]:
    """One page of a search: the searched catalog, the page's and the live runs' index rows, and
    the ``GET runs`` answer for them. Keyset paging on ``(time, seq)``, never an offset."""
    cat = pool.get(name)
    view = _search(cat, q)
    page = view.source.search(view.query, limit=limit + 1, before=before)
    more = len(page) > limit
    page = page[:limit]
    live = live_runs(view) if before is None else []
    answer = {
        "runs": watched_runs.summaries(view.source, page),
        "live": watched_runs.summaries(view.source, live),
        "total": _total(view, (view.source.uri, q), fresh=before is None),
        "next": encode_cursor(page[-1]) if more and page else None,
        # Nothing matched: a field no run has (a typo?), and the closest one runs have.
        "hint": empty_search_hint(view.source, view.query) if not page and before is None else None,
        # Derived runs listed without their parents: which scans those are (one search).
        "parents": page_parents(cat, [*live, *page]),
    }
    return view, page, live, answer


def runs_page(
    pool: CatalogPool, name: str, q: str, limit: int, before: tuple[float, int] | None
) -> dict[str, Any]:
    """One page of ``GET runs`` (see :func:`search_page`)."""
    return search_page(pool, name, q, limit, before)[3]


#: Counts of recent searches: a first page counts afresh, the pages after it (a user
#: scrolling) reuse the count for a few seconds instead of scanning 100k rows each.
_TOTAL_FOR = 5.0
_totals: dict[tuple[str, str], tuple[float, int]] = {}
_totals_lock = threading.Lock()


def _total(view: Catalog, key: tuple[str, str], *, fresh: bool) -> int:
    now = time.monotonic()
    with _totals_lock:
        known = _totals.get(key)
    if not fresh and known is not None and now - known[0] < _TOTAL_FOR:
        return known[1]
    total = len(view)
    with _totals_lock:
        if len(_totals) > 256:
            _totals.clear()
        _totals[key] = (now, total)
    return total


def _detail(pool: CatalogPool, name: str, uid: str) -> dict[str, Any]:
    cat = pool.get(name)
    found = lookup(cat, uid)
    out = run_detail(cat, found)
    out["run"] = watched_runs.summary(cat.source, found)
    out.update(derived_detail(cat, found, out["start"]))
    watch = watched_runs.watch_detail(out["start"])
    if watch is not None:  # a watched run: what its watcher watched
        out["watch"] = watch
    try:
        out["code"] = code_for(found.uid, pool.code_target(name), [s["name"] for s in out["streams"]])
    except UnsafeValue:
        out["code"] = None  # GET runs/UID/code says why
    cells = run_cells(cat, found)
    if cells is not None:
        out["cells"] = cells
    return out


def _code(pool: CatalogPool, name: str, uid: str) -> dict[str, Any]:
    """``GET runs/UID/code``: the cells for the run, or 400 ``UnsafeValue`` (nothing to insert)."""
    cat = pool.get(name)
    summary = lookup(cat, uid)
    streams = list(streams_of(cat.source, summary.uid))
    return {"run": run_summary(summary), "code": code_for(summary.uid, pool.code_target(name), streams)}


def _preview(pool: CatalogPool, name: str, uid: str, stream: str | None, max_points: int) -> dict[str, Any]:
    cat = pool.get(name)
    found = lookup(cat, uid)
    if is_watched(found.start or {}):  # its newest file, as an image or lines
        return watched_preview(cat, found, stream, max_points)
    return preview(cat, found, stream or "primary", max_points)


class CatalogsHandler(ScandeckHandler):
    """``GET catalogs``: the catalogs a ``catalog`` parameter may name."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        catalogs = await self.blocking(self.app.catalogs.describe)
        self.reply({"catalogs": catalogs, "default": "", "open_panel": bool(self.app.open_panel)})


class RunsHandler(ScandeckHandler):
    """``GET runs?catalog=&q=&limit=&before=``."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, 500)
        cursor = self.get_argument("before", None)
        before = decode_cursor(cursor) if cursor else None
        q = self.get_argument("q", "")
        if len(q) > MAX_QUERY:
            raise ApiError(400, "BadParameter", f"q is {len(q)} characters long; at most {MAX_QUERY}")
        self.reply(await self.blocking(runs_page, self.app.catalogs, self.catalog_arg(), q, limit, before))


class RunHandler(ScandeckHandler):
    """``GET runs/UID?catalog=``: start and stop documents, streams, code cells."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, uid: str) -> None:
        check_uid(uid)
        self.reply(await self.blocking(_detail, self.app.catalogs, self.catalog_arg(), uid))


class CodeHandler(ScandeckHandler):
    """``GET runs/UID/code?catalog=``: the cells the panel inserts; 400 for a run code must not name."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, uid: str) -> None:
        check_uid(uid)
        self.reply(await self.blocking(_code, self.app.catalogs, self.catalog_arg(), uid))


class PreviewHandler(ScandeckHandler):
    """``GET runs/UID/preview?catalog=&stream=primary&max_points=500``."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, uid: str) -> None:
        check_uid(uid)
        max_points = self.int_arg("max_points", 500, 1, 5000)
        stream = self.get_argument("stream", "") or None  # primary; a watched run's newest file's
        self.reply(await self.blocking(_preview, self.app.catalogs, self.catalog_arg(), uid, stream, max_points))
