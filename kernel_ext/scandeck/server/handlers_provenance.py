"""``GET provenance``, ``GET provenance/ID``, ``POST provenance/ID/open``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import ScandeckHandler, check_id
from .errors import json_errors
from .paths import inside_root, safe_stem
from .serialize import record_summary

if TYPE_CHECKING:
    from ..provenance.store import ProvStore

__all__ = ["OpenRecordHandler", "RecordHandler", "RecordsHandler", "open_copy", "records_page"]

#: Deepest ``offset`` a listing accepts (records are paged in memory, newest first).
MAX_OFFSET = 100_000


def records_page(store: ProvStore, limit: int, offset: int) -> dict[str, Any]:
    """``{"records", "total"}``: ``limit`` record summaries from ``offset``, newest first."""
    records = store.list(limit=offset + limit)[offset:]
    return {"records": [record_summary(r) for r in records], "total": len(store)}


def open_copy(store: ProvStore, root: str | Path, ident: str) -> dict[str, Any]:
    """Copy a record's executed notebook to ``<root>/provenance/<name>-<id8>.ipynb``.

    An existing copy is kept as it is (it may hold the user's edits): ``created`` says
    whether this call wrote it.
    """
    rec = store.get(ident)
    data = store.notebook_bytes(rec)
    rel = Path("provenance") / f"{safe_stem(rec.name)}-{rec.id[:8]}.ipynb"
    path = inside_root(root, rel)
    created = False
    if not path.exists():
        # O_EXCL: a name taken meanwhile (or a dangling symlink) is never written through.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            created = True
    return {"path": rel.as_posix(), "created": created}


class RecordsHandler(ScandeckHandler):
    """``GET provenance?limit=50&offset=0``."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, 1, 500)
        offset = self.int_arg("offset", 0, 0, MAX_OFFSET)
        self.reply(await self.blocking(records_page, self.app.store, limit, offset))


class RecordHandler(ScandeckHandler):
    """``GET provenance/ID``: the whole record, as ``scandeck provenance show --json`` prints it."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, ident: str) -> None:
        check_id(ident, "record id")
        record = await self.blocking(self.app.store.get, ident)
        self.reply(record.to_metadata())


class OpenRecordHandler(ScandeckHandler):
    """``POST provenance/ID/open``: a copy of the executed notebook under the server root."""

    @web.authenticated
    @authorized
    @json_errors
    async def post(self, ident: str) -> None:
        check_id(ident, "record id")
        self.reply(await self.blocking(open_copy, self.app.store, self.app.root_dir, ident))
