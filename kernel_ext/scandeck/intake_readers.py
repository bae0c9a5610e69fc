"""Intake 2 (``intake.readers``) datatype and reader for scandeck stores.

Intake imports this module through the ``intake.imports`` entry point when
``intake`` itself is imported; defining the classes is all the registration
Intake 2 needs (it finds readers as subclasses of ``BaseReader``).

This module is imported on *every* ``import intake`` in an environment with
scandeck installed, so it only defines classes: the store and the catalog are
imported inside :meth:`ScandeckReader._read`.

Examples
--------
>>> from scandeck.intake_readers import ScandeckStore
>>> cat = ScandeckStore("memory://scratch").to_reader().read()
>>> type(cat).__name__, len(cat)
('Catalog', 0)

In a catalog file (see ``catalogs/scandeck.yaml``)::

    data:
      beamtime:
        datatype: scandeck.intake_readers:ScandeckStore
        kwargs: {uri: /data/2024-06/store}
    entries:
      beamtime:
        reader: scandeck.intake_readers:ScandeckReader
        kwargs: {data: "{data(beamtime)}"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from intake.readers.datatypes import BaseData
from intake.readers.readers import BaseReader

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["ScandeckStore", "ScandeckReader", "CATALOG_TYPE"]

#: What :class:`ScandeckReader` produces, as Intake spells types.
CATALOG_TYPE = "scandeck.catalog:Catalog"


class ScandeckStore(BaseData):
    """A scandeck run store, as Intake data.

    Parameters
    ----------
    uri
        A store directory or ``.sqlite`` file path, a ``sqlite://`` or
        ``memory://`` URI, or any scheme registered with
        :func:`scandeck.sources.register`. ``None`` or ``""`` is the embedded
        default store (``$SCANDECK_DATA/store``). ``file://`` URLs, which is what
        Intake's ``{CATALOG_DIR}`` expands to, are taken as paths.
    metadata
        Free-form information kept with the entry (``description`` is shown by
        ``scandeck.catalog_files.list_entries``).

    Examples
    --------
    >>> ScandeckStore("~/beamtime/store").location()  # doctest: +SKIP
    '/home/me/beamtime/store'
    >>> ScandeckStore().location() is None
    True
    """

    structure = {"catalog"}

    def __init__(self, uri: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.uri = uri
        super().__init__(metadata)

    def location(self) -> str | None:
        """What :func:`scandeck.sources.open_source` takes, or None for the default store."""
        if not self.uri:
            return None
        text = str(self.uri)
        if text.startswith("file://"):
            # open_source knows no "file" scheme; a local URL is just a path.
            return url2pathname(urlsplit(text).path)
        return text


class ScandeckReader(BaseReader):
    """Opens a :class:`ScandeckStore` as a :class:`scandeck.catalog.Catalog`.

    Without data it opens the embedded default store, like ``open_catalog()``.

    Examples
    --------
    >>> reader = ScandeckReader(ScandeckStore("memory://scratch"))
    >>> reader.read().name
    'memory://scratch'
    >>> ScandeckReader("memory://scratch").read().name   # Intake wraps a bare URI
    'memory://scratch'
    """

    implements = {ScandeckStore}
    imports = {"scandeck"}
    output_instance = CATALOG_TYPE
    # For ``.doc()`` only: a ``func`` would make ``intake.reader_from_call`` claim
    # ``scandeck.open_catalog`` calls, which it cannot rebuild for non-file readers.
    func_doc = "scandeck:open_catalog"

    def _read(self, data: ScandeckStore | None = None) -> Catalog:
        """The store's catalog of runs (opened now, started, ready to search or write)."""
        from .catalog import Catalog
        from .opening import open_catalog
        from .sources import open_source

        where = None if data is None else data.location()
        if where is None:
            return open_catalog(None)
        return Catalog(open_source(where))
