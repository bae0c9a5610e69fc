"""``GET auto``, ``POST auto`` (start a standing analysis here), ``POST auto/ID/stop``.

The services themselves are :mod:`.auto_services`'s.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import AmbiguousRecord, InvalidQuery, QuerySyntaxError, RecordNotFound, RerunSetupError
from ..provenance.standing import EXIT_STATUSES
from .auto_services import AutoNotHere
from .base import ScandeckHandler, check_id
from .errors import ApiError, api_error, json_errors

__all__ = ["AutoHandler", "AutoStopHandler", "parse_auto_request"]

#: Most reruns one analysis runs at once on the server's machine.
MAX_WORKERS = 16
#: Longest query text.
MAX_QUERY = 2000


def parse_auto_request(body: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :meth:`AutoServices.start` from a ``POST auto`` body; 400 naming the field."""

    def bad(message: str) -> ApiError:
        return ApiError(400, "BadRequest", message)

    record = body.get("record")
    if not isinstance(record, str) or not record.strip():
        raise bad("'record' is missing: give the id (or id prefix) of a provenance record")
    check_id(record.strip(), "record id")
    query = body.get("query", "")
    if not isinstance(query, str) or len(query) > MAX_QUERY:
        raise bad(f"'query' must be a query text of at most {MAX_QUERY} characters ('' for every run)")
    catalog = body.get("catalog")
    if catalog is not None and not isinstance(catalog, str):
        raise bad("'catalog' must be a catalog name from GET catalogs (or null: the record's catalog)")
    status = body.get("status", "success")
    if status not in EXIT_STATUSES:
        raise bad(f"'status' must be one of {', '.join(EXIT_STATUSES)}")
    workers = body.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise bad(f"'workers' must be an integer from 1 to {MAX_WORKERS}")
    return {
        "record": record.strip(),
        "query": query.strip(),
        "catalog": catalog,
        "status": status,
        "workers": workers,
    }


class AutoHandler(ScandeckHandler):
    """``GET auto`` (every standing analysis) and ``POST auto`` (start one in this server)."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        self.reply(await self.blocking(self.app.auto.list))

    @web.authenticated
    @authorized("execute")  # its reruns execute notebooks in new kernels
    @json_errors
    async def post(self) -> None:
        request = parse_auto_request(self.json_body())
        record = request.pop("record")
        try:
            analysis = await self.blocking(self.app.auto.start, record, **request)
        except (RecordNotFound, AmbiguousRecord, RerunSetupError) as err:
            # The request names what cannot run: nothing started, the request is to fix (400, not 404).
            raise api_error(err, status=400) from err
        except (QuerySyntaxError, InvalidQuery) as err:
            raise api_error(err) from err
        self.reply({"analysis": analysis}, status=201)


class AutoStopHandler(ScandeckHandler):
    """``POST auto/ID/stop``: stop the service this server runs for the analysis."""

    @web.authenticated
    @authorized
    @json_errors
    async def post(self, ident: str) -> None:
        check_id(ident, "standing analysis id")
        try:
            analysis = await self.blocking(self.app.auto.stop, ident)
        except AutoNotHere as err:
            raise api_error(err, status=409) from err
        self.reply({"analysis": analysis})
