"""``POST reruns``, ``GET reruns``, ``GET reruns/JOB``, ``DELETE reruns/JOB``."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import AmbiguousRecord, AmbiguousUID, RecordNotFound, RerunSetupError, RunNotFound
from .base import ScandeckHandler, check_id
from .errors import ApiError, api_error, json_errors

__all__ = ["JobHandler", "JobsHandler", "parse_rerun_request"]

#: Most scans one request may name.
MAX_SCANS = 5000
#: Most kernels one job may run at once.
MAX_WORKERS = 16


def parse_rerun_request(body: dict[str, Any]) -> tuple[str, list[str], str, int]:
    """``(record, scans, catalog, workers)`` of a ``POST reruns`` body; 400 ``BadRequest`` naming the field."""

    def bad(message: str) -> ApiError:
        return ApiError(400, "BadRequest", message)

    record = body.get("record")
    if not isinstance(record, str) or not record.strip():
        raise bad("'record' is missing: give the id (or id prefix) of a provenance record")
    check_id(record, "record id")
    scans = body.get("scans")
    if not isinstance(scans, list) or not scans:
        raise bad("'scans' is missing: give a non-empty list of run uids (or uid prefixes)")
    if len(scans) > MAX_SCANS or not all(isinstance(s, str) and s.strip() for s in scans):
        raise bad(f"'scans' must be a list of 1 to {MAX_SCANS} run uids (strings)")
    catalog = body.get("catalog", "")
    if not isinstance(catalog, str):
        raise bad("'catalog' must be a catalog name from GET catalogs")
    workers = body.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise bad(f"'workers' must be an integer from 1 to {MAX_WORKERS}")
    return record.strip(), [s.strip() for s in scans], catalog, workers


class JobsHandler(ScandeckHandler):
    """``GET reruns`` (every job, newest first) and ``POST reruns`` (start one)."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        self.reply({"jobs": self.app.jobs.list()})

    @web.authenticated
    @authorized("execute")  # a rerun executes notebooks in new kernels
    @json_errors
    async def post(self) -> None:
        record, scans, catalog, workers = parse_rerun_request(self.json_body())
        try:
            job = await self.blocking(self.app.jobs.create, record, scans, catalog, workers)
        except (RecordNotFound, AmbiguousRecord, RunNotFound, AmbiguousUID, RerunSetupError) as err:
            # The request names what cannot run: nothing ran, the request is to fix (400, not 404).
            raise api_error(err, status=400) from err
        self.reply({"job": job}, status=202)


class JobHandler(ScandeckHandler):
    """``GET reruns/JOB`` and ``DELETE reruns/JOB`` (cancel)."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, job_id: str) -> None:
        check_id(job_id, "job id")
        self.reply({"job": self.app.jobs.get(job_id)})

    @web.authenticated
    @authorized
    @json_errors
    async def delete(self, job_id: str) -> None:
        check_id(job_id, "job id")
        self.reply({"job": await self.blocking(self.app.jobs.cancel, job_id)})
