"""scandeck: Bluesky scans in Jupyter.

Examples
--------
>>> import scandeck
>>> cat = scandeck.open_catalog()          # the embedded default store  # doctest: +SKIP
>>> RE.subscribe(cat.writer())             # record every run            # doctest: +SKIP
>>> cat[-1].primary.read()                 # the newest run as xarray    # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

# The one place a catalog's name is read and the catalog opened; light (standard library only).
from .exceptions import QueryError
from .opening import open_catalog

__version__ = "0.1.0"

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pandas

    from .catalog import Catalog, Run
    from .files.follow import RunFiles
    from .livestream import Live
    from .peak_stats import Peaks

__all__ = [
    "open_catalog",
    "QueryError",
    "live",
    "files",
    "derive",
    "peaks",
    "column",
    "glue",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
]


def live(target: object = None, *, catalog: Catalog | None = None, interval: float = 0.02) -> Live:
    """Follow runs as they are written, as ``streamz`` streams (imported on first use).

    ``target``: a Run, a Catalog (its newest run and each new one), a uid or
    uid prefix, a scan_id, or ``None`` (the newest run of ``catalog``, default
    the embedded store, and each new one). See :class:`scandeck.livestream.Live`.

    Examples
    --------
    >>> scandeck.live().stream().map(lambda r: r["det"]).accumulate(max).sink(print)  # doctest: +SKIP
    """
    from .livestream import Live

    return Live(target, catalog=catalog, interval=interval)


def files(target: object = None, *, catalog: Catalog | None = None) -> RunFiles:
    """The files of a run that ``scandeck watch`` recorded, each complete, verified and on this machine.

    ``target``: a Run, a uid (or prefix) or scan_id (looked up in ``catalog``), a
    Catalog or ``None`` (its newest watched run; default catalog the embedded store).
    Iterating gives the files stored so far; ``.follow()`` each one as it arrives,
    until the run stops. Each is a :class:`~scandeck.files.follow.FileEntry`: a
    path-like (``open(f)``) with ``relpath``, ``version``, ``size``, ``sha256``,
    ``mtime``, ``reader``, ``info`` and ``read(key)``. A file not on this machine is
    fetched from the Redis bus or the archive (runs watched with ``--transfer``).

    Raises :class:`~scandeck.exceptions.NotWatchedRun` for a run ``scandeck watch`` did not write.

    Examples
    --------
    >>> for f in scandeck.files(cat[-1]).follow():        # doctest: +SKIP
    ...     print(f.relpath, f.read().mean())
    """
    from .files.follow import files as _files

    return _files(target, catalog=catalog)


def derive(
    catalog: Catalog | str | Path,
    parents: Run | str | Iterable[Run | str],
    data: pandas.DataFrame | dict[str, list[Any]],
    **kwargs: Any,
) -> Run:
    """Write ``data`` computed from ``parents`` as a new run of ``catalog``: see :func:`scandeck.derived.derive`.

    The start document carries ``parent_uids``, so ``cat.search('parent_uids contains "<uid>"')``
    finds what was derived from a run.
    """
    from .derived import derive as _derive

    return _derive(catalog, parents, data, **kwargs)


def peaks(run: Run, x: str | None = None, y: str | None = None, **kwargs: Any) -> Peaks:
    """Peak statistics of a 1-D scan, as bluesky's ``PeakStats``: see :func:`scandeck.peak_stats.peaks`.

    Examples
    --------
    >>> scandeck.peaks(cat[-1]).cen                  # doctest: +SKIP
    """
    from .peak_stats import peaks as _peaks

    return _peaks(run, x, y, **kwargs)


def column(
    name: str, *, title: str | None = None, units: str | None = None, timeout: float | None = None
) -> Callable[[Callable[[Run], Any]], Callable[[Run], Any]]:
    """Declare a computed column of the run table: see :func:`scandeck.runtable.columns.column`.

    Examples
    --------
    >>> @scandeck.column("peak_cen", title="Peak centre", units="mm")   # doctest: +SKIP
    ... def peak_cen(run):
    ...     return scandeck.peaks(run).cen
    """
    from .runtable.columns import column as _column

    return _column(name, title=title, units=units, timeout=timeout)


def glue(name: str, value: object) -> None:
    """Publish a named result of this notebook with its provenance record, as scrapbook's glue does.

    ``value``: a number, string, boolean, None, or a list of those (at most 1000 items,
    64 KiB as JSON; numpy scalars and 1-D arrays too). The record made next (``%provenance
    save``, ``scandeck run``, a rerun) keeps the values in ``values``; gluing a name again
    replaces its value. A rerun's values become columns of the run it was pointed at:
    ``<record name>.<name>`` in the run table, ``columns.<record name>.<name>`` in searches.
    See :mod:`scandeck.provenance.glue`.

    Raises
    ------
    InvalidGlue
        A bad name, NaN or infinity, too long a list, too big a value (a ``ValueError``).
    UnsupportedGlueType
        A value of another type: a dict, an object, a 2-D array (also a ``TypeError``).

    Examples
    --------
    >>> scandeck.glue("cen", scandeck.peaks(run).cen)          # doctest: +SKIP
    >>> scandeck.glue("fit_ok", True)                          # doctest: +SKIP
    """
    from .provenance.glue import glue as _glue

    _glue(name, value)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext scandeck``: the magics %catalog, %scans, %%bind, %bindings, %unbind.

    Also makes plots draw offline (:func:`scandeck.offline.enable`).
    """
    from .notebook.magics import load
    from .offline import enable

    enable()
    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext scandeck``: end every binding."""
    from .notebook.magics import unload

    unload(ipython)
