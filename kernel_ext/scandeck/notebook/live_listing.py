"""Run listings that stay true: ``%scans`` and a shown catalog, updated in place while runs run.

A listing is displayed with a display id. While a run it shows is running, the
kernel's event loop looks at the store every :data:`UPDATE_EVERY` seconds and,
when the store changed (or every :data:`RESCAN_EVERY` seconds, so a run whose
writer went quiet turns ``incomplete``), re-reads the listing and replaces the
output in place (``update_display_data``): "running 35/49" becomes "success 49".
Once nothing shown is running, one last update says when the table was taken,
and the updates stop. Where nothing updates (papermill, nbclient, a terminal)
the footer says when the table was taken from the start.

Only index rows are read (never events), on the kernel's loop between cells;
the updates run no user code.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..listing import local_time
from .cellexec import cell_id
from .display import catalog_listing, runs_table_html, snapshot_note

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary
    from .run_columns import ColumnCells

__all__ = [
    "RESCAN_EVERY",
    "UPDATE_EVERY",
    "LiveListing",
    "current_cell",
    "install_catalog_display",
    "show_catalog",
    "show_listing",
    "uninstall_catalog_display",
]

log = logging.getLogger(__name__)

#: Seconds between looks at the store while a shown run is running.
UPDATE_EVERY = 1.0
#: Seconds after which a live listing is re-read even when the store did not change.
RESCAN_EVERY = 10.0

#: What a listing shows: ``(runs, how many in all or None, title)``.
Listing = tuple[Sequence["RunSummary"], "int | None", str]

# Live listings by the cell that showed them: a cell run again replaces its outputs,
# so the listings of its earlier run stop updating (their display ids are gone).
_live: dict[str, list[tuple[int, LiveListing]]] = {}


class LiveListing:
    """One shown run table, updated in place while a run it lists is running.

    Parameters
    ----------
    fetch
        Reads the listing: ``(runs, total, title)`` (index rows only).
    source
        The store's source: its ``change_token()`` says whether to read again.
    loop
        The kernel's event loop (``call_later(delay, fn)``), or None for a
        snapshot that is never updated (papermill, a terminal).
    columns
        More columns (``%scans --columns``): their cells for the runs read, and
        a footer line explaining their marks (:mod:`scandeck.notebook.run_columns`).

    Examples
    --------
    >>> newest = lambda: (cat.summaries(limit=5), None, "newest runs")              # doctest: +SKIP
    >>> LiveListing(newest, source=cat.source, loop=kernel.io_loop).show()         # doctest: +SKIP
    """

    def __init__(
        self, fetch: Callable[[], Listing], *, source: Any, loop: Any | None, columns: ColumnCells | None = None
    ) -> None:
        self.fetch = fetch
        self.columns = columns
        self.source = source
        self.loop = loop
        self.display_id = f"scandeck-listing-{uuid.uuid4().hex}"
        self.live = False
        self.updates = 0
        self.closed = False
        self._token: object = None
        self._read_at = 0.0
        self._shown: Listing | None = None

    def html(self) -> str:
        """Read the listing and render it; sets :attr:`live` (a shown run is running)."""
        self._token = self.source.change_token()  # before reading: no change between is missed
        self._read_at = time.monotonic()
        self._shown = self.fetch()
        summaries, total, title = self._shown
        self.live = self.loop is not None and not self.closed and any(s.status == "running" for s in summaries)
        now = time.time()
        note = f"live · updated {local_time(now)[-8:]} while a run is running" if self.live else snapshot_note(now)
        if self.columns is None:
            return runs_table_html(summaries, total=total, title=title, note=note)
        extra, marks = self.columns(summaries)
        note = f"{note} · {marks}" if marks else note
        return runs_table_html(summaries, total=total, title=title, note=note, columns=extra)

    def show(self) -> None:
        """Display the listing; keep it updated while a run it shows is running."""
        from IPython.display import HTML, display

        display(HTML(self.html()), display_id=self.display_id)
        if self.live:
            self._schedule()

    def stop(self) -> None:
        """Stop updating (idempotent); the output stays as last shown."""
        self.closed = True

    def _schedule(self) -> None:
        if self.loop is not None:
            self.loop.call_later(UPDATE_EVERY, self._tick)

    def _tick(self) -> None:
        if self.closed:
            return
        try:
            quiet = self.source.change_token() == self._token
            if quiet and time.monotonic() - self._read_at < RESCAN_EVERY:
                self._schedule()
                return
            self._update(self.html())
        except Exception as err:  # noqa: BLE001 - a listing must never take the kernel down
            log.warning("scandeck: the run table stopped updating (%s: %s)", type(err).__name__, err)
            self.closed = True
            if self._shown is not None:  # say so in place: the footer would still claim "live"
                summaries, total, title = self._shown
                note = f"{snapshot_note()} · updates stopped: {type(err).__name__}"
                self._update(runs_table_html(summaries, total=total, title=title, note=note))
            return
        if self.live:
            self._schedule()

    def _update(self, html: str) -> None:
        from IPython.display import HTML, update_display

        update_display(HTML(html), display_id=self.display_id)
        self.updates += 1


def current_cell(shell: Any) -> tuple[str, int] | None:
    """``(cell id, execution count)`` of the executing cell when the front end sends its id."""
    found = cell_id(shell)
    return (str(found), int(getattr(shell, "execution_count", 0))) if found else None


def show_listing(
    shell: Any, fetch: Callable[[], Listing], source: Any, *, live: bool, columns: ColumnCells | None = None
) -> LiveListing:
    """Show a run table; with ``live`` (a kernel with a front end) keep it updated in place.

    The listings an earlier run of the same cell showed stop updating.
    ``columns``: more columns, as :class:`LiveListing` takes them.
    """
    kernel = getattr(shell, "kernel", None)
    loop = getattr(kernel, "io_loop", None) if live else None
    listing = LiveListing(fetch, source=source, loop=loop, columns=columns)
    cell = current_cell(shell)
    if cell is not None:
        cell_id, count = cell
        kept = []
        for shown_count, old in _live.get(cell_id, []):
            if shown_count == count:
                kept.append((shown_count, old))
            else:
                old.stop()
        _live[cell_id] = kept
    listing.show()
    if cell is not None and listing.live:
        _live[cell[0]].append((cell[1], listing))
    return listing


def show_catalog(shell: Any, cat: Catalog, *, live: bool) -> LiveListing:
    """Show a catalog (its newest runs, running first) as a listing; see :func:`show_listing`."""
    return show_listing(shell, lambda: catalog_listing(cat), cat.source, live=live)


_CATALOG = ("scandeck.catalog", "Catalog")


def install_catalog_display(shell: Any, live: Callable[[], bool]) -> bool:
    """Show catalogs in ``shell``'s kernel as live listings (``%catalog``, ``cat`` at a cell's end).

    IPython's ``_ipython_display_`` formatter publishes a display with an id,
    which an execute result cannot have. ``live()`` says whether the front end
    takes updates (not under papermill). Outside a kernel nothing changes: the
    HTML repr stays. Returns whether it was installed.
    """
    if getattr(shell, "kernel", None) is None:
        return False
    formatter = shell.display_formatter.ipython_display_formatter

    def display_catalog(cat: Catalog) -> None:
        show_catalog(shell, cat, live=live())

    module = sys.modules.get(_CATALOG[0])
    cls = getattr(module, _CATALOG[1], None) if module is not None else None
    if cls is not None:
        formatter.for_type(cls, display_catalog)
    else:
        formatter.for_type_by_name(*_CATALOG, display_catalog)
    return True


def uninstall_catalog_display(shell: Any) -> None:
    """Undo :func:`install_catalog_display`; stop every live listing."""
    formatter = getattr(getattr(shell, "display_formatter", None), "ipython_display_formatter", None)
    if formatter is not None:
        formatter.pop(".".join(_CATALOG), None)
        module = sys.modules.get(_CATALOG[0])
        cls = getattr(module, _CATALOG[1], None) if module is not None else None
        if cls is not None:
            formatter.pop(cls, None)
    for listings in _live.values():
        for _, listing in listings:
            listing.stop()
    _live.clear()
