"""The run table: ``GET table``, ``GET columns``, ``GET table.csv``, ``GET|POST runs/UID/annotations``.

The pages of ``GET table`` are those of ``GET runs`` (same search, same ``before``
cursor), with the picked columns' cells of their runs beside them (:mod:`.cells`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import ColumnsFileError, RunNotFound
from ..runtable.model import current_tags
from ..runtable.rows import resolve_columns
from . import watched_runs
from .base import ScandeckHandler, check_uid
from .cells import cells_of, column_info, names_arg, offered_columns, specs_of
from .csv_export import CsvExport, csv_filename
from .errors import ApiError, json_errors
from .handlers_runs import MAX_QUERY, search_page
from .preview import lookup
from .serialize import decode_cursor

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .catalogs import CatalogPool

__all__ = [
    "AnnotationsHandler",
    "ColumnsHandler",
    "TableCsvHandler",
    "TableHandler",
    "annotations_of",
    "change_annotations",
    "table_cells",
    "table_page",
]

#: Most runs one ``uid=`` request names (the panel asks for the changed runs it shows).
MAX_UIDS = 200


def table_page(
    pool: CatalogPool, name: str, q: str, columns: list[str], limit: int, before: tuple[float, int] | None
) -> dict[str, Any]:
    """``GET table``: the ``GET runs`` page of the search, with the columns' cells of its runs.

    A columns file that does not load leaves the runs listed, without cells, and says why
    in ``columns_error``: a typo in the file does not hide the runs.
    """
    view, page, live, answer = search_page(pool, name, q, limit, before)
    try:
        specs = specs_of(view)  # also without columns: a broken file is said on every page
    except ColumnsFileError as err:
        answer.update(columns=[], cells={}, columns_error=str(err))
        return answer
    refs = resolve_columns(view, columns, specs) if columns else []
    answer["columns"] = [column_info(r) for r in refs]
    answer["cells"] = cells_of(view, [*live, *page], refs)
    return answer


def table_cells(pool: CatalogPool, name: str, columns: list[str], uids: list[str]) -> dict[str, Any]:
    """``GET table?uid=A&uid=B``: those runs (the ones still there) and their cells (after a push)."""
    cat = pool.get(name)
    refs = resolve_columns(cat, columns, specs_of(cat)) if columns else []
    summaries = []
    for uid in dict.fromkeys(uids):
        try:
            summaries.append(cat.source.get(uid))
        except RunNotFound:
            continue  # gone from a bus meanwhile: nothing to update
    return {
        "runs": watched_runs.summaries(cat.source, summaries),
        "columns": [column_info(r) for r in refs],
        "cells": cells_of(cat, summaries, refs),
    }


# -- annotations -----------------------------------------------------------------------------------


def annotations_of(cat: Catalog, uid: str) -> dict[str, Any]:
    """``GET runs/UID/annotations``: the run's current tags and its comments, oldest first."""
    from ..runtable.annotate import facts_of

    summary = lookup(cat, uid)
    history = facts_of(cat.source).annotations(summary.uid)
    return {
        "uid": summary.uid,
        "tags": current_tags(history),
        "comments": [
            {"text": n.text, "author": n.author, "host": n.host, "time": n.time}
            for n in history
            if n.kind == "comment"
        ],
    }


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, "BadRequest", f'{key} must be a list of strings, e.g. {{"{key}": ["Ni"]}}')
    return value


def change_annotations(cat: Catalog, uid: str, body: Mapping[str, Any], by: str | None = None) -> dict[str, Any]:
    """``POST runs/UID/annotations``: add a comment and tags, remove tags; every text is checked
    (and every tag to remove found on the run) before anything is stored. ``by``: the author."""
    from ..runtable.annotate import annotate, facts_of, untag
    from ..runtable.model import check_comment, check_tag

    unknown = sorted(set(body) - {"comment", "tags", "untag"})
    if unknown:
        raise ApiError(400, "BadRequest", f"unknown field {unknown[0][:40]!r}: give comment, tags and/or untag")
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ApiError(400, "BadRequest", "comment must be a string")
    tags, removed = _strings(body, "tags"), _strings(body, "untag")
    if comment is None and not tags and not removed:
        raise ApiError(
            400, "BadRequest", 'nothing to change: give a comment, tags or untag, e.g. {"tags": ["Ni"]}'
        )
    facts_of(cat.source)
    summary = lookup(cat, uid)
    if comment is not None:
        check_comment(comment)
    for tag in tags:
        check_tag(tag)
    if removed:
        untag(cat.source, summary.uid, removed, by=by)  # checks them all (and that the run has them) first
    if comment is not None or tags:
        annotate(cat.source, summary.uid, comment, tags, by=by)
    return annotations_of(cat, summary.uid)


# -- handlers --------------------------------------------------------------------------------------


class TableHandler(ScandeckHandler):
    """``GET table?catalog=&q=&columns=a,b&limit=&before=`` (or ``&uid=A&uid=B`` for those runs only)."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        columns = names_arg(self.get_argument("columns", ""))
        uids = self.get_arguments("uid")
        if uids:
            if len(uids) > MAX_UIDS:
                raise ApiError(400, "BadParameter", f"{len(uids)} uid arguments; at most {MAX_UIDS}")
            for uid in uids:
                check_uid(uid)
            self.reply(await self.blocking(table_cells, self.app.catalogs, self.catalog_arg(), columns, uids))
            return
        limit = self.int_arg("limit", 50, 1, 500)
        cursor = self.get_argument("before", None)
        before = decode_cursor(cursor) if cursor else None
        q = self.get_argument("q", "")
        if len(q) > MAX_QUERY:
            raise ApiError(400, "BadParameter", f"q is {len(q)} characters long; at most {MAX_QUERY}")
        page = await self.blocking(table_page, self.app.catalogs, self.catalog_arg(), q, columns, limit, before)
        self.reply(page)


class ColumnsHandler(ScandeckHandler):
    """``GET columns?catalog=``: the columns the table can show."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        cat = await self.blocking(self.app.catalogs.get, self.catalog_arg())
        self.reply(await self.blocking(offered_columns, cat))


class TableCsvHandler(ScandeckHandler):
    """``GET table.csv?catalog=&q=&columns=``: every run of the search as CSV, written page by page."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self) -> None:
        q = self.get_argument("q", "")
        if len(q) > MAX_QUERY:
            raise ApiError(400, "BadParameter", f"q is {len(q)} characters long; at most {MAX_QUERY}")
        name = self.catalog_arg()
        export = CsvExport(self.app.catalogs, name, q, names_arg(self.get_argument("columns", "")))
        chunk = await self.blocking(export.first)  # errors here are still a JSON 4xx
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{csv_filename(name)}"')
        self.set_header("Cache-Control", "no-store")
        while chunk:
            self.write(chunk)
            await self.flush()
            # A failure after the first page ends the answer unfinished (the download fails
            # visibly): half a table must not pass for the whole search.
            chunk = await self.blocking(export.next)
        self.finish()


class AnnotationsHandler(ScandeckHandler):
    """``GET runs/UID/annotations?catalog=``; ``POST`` ``{comment?, tags?, untag?}`` changes them."""

    @web.authenticated
    @authorized
    @json_errors
    async def get(self, uid: str) -> None:
        check_uid(uid)
        cat = await self.blocking(self.app.catalogs.get, self.catalog_arg())
        self.reply(await self.blocking(annotations_of, cat, uid))

    @web.authenticated
    @authorized
    @json_errors
    async def post(self, uid: str) -> None:
        check_uid(uid)
        body = self.json_body()
        cat = await self.blocking(self.app.catalogs.get, self.catalog_arg())
        self.reply(await self.blocking(change_annotations, cat, uid, body, self.author()))

    def author(self) -> str | None:
        """The Jupyter user's name when an identity provider names users (JupyterHub's); None (the
        server's login name, ``$SCANDECK_AUTHOR``) for jupyter_server's own, whose users are
        anonymous ("Anonymous Io") behind one token."""
        if type(self.identity_provider).__module__.startswith("jupyter_server."):
            return None
        user = self.current_user
        name = getattr(user, "username", None)
        return name if isinstance(name, str) and name.strip() else None
