"""How a catalog is named and opened: the one rule every caller uses.

A catalog is named by a string (or a :class:`~pathlib.Path`), from
``scandeck.open_catalog(...)``, the command line's ``--catalog``,
``$SCANDECK_CATALOG``, the server's default catalog or a provenance record.
:func:`catalog_name` says what the string is:

``"default"``
    Nothing given: the embedded default store (in ``$SCANDECK_DATA``, else the
    user data directory).
``"path"``
    An embedded store on this filesystem: a :class:`~pathlib.Path`, a
    ``sqlite://`` URI, text with a ``/`` or ``\\``, or a file name ending in
    ``.sqlite``, ``.sqlite3`` or ``.db`` (each may end in ``?mode=ro``).
``"uri"``
    Any other ``scheme://...``: the source registered for the scheme
    (``memory://``, ``redis://``).
``"name"``
    Anything else: the entry of that name in the Intake catalog files
    (:func:`scandeck.catalog_files.list_entries`), else a store directory of that
    name in the working directory.

:func:`open_catalog` opens what the rule names. However a store is opened, the
catalog is named by the store's address (:attr:`scandeck.catalog.Catalog.name`,
the source's URI without credentials): the default store, the catalog-file entry
``local`` and the path of that store give one name in reprs, ``%catalog``,
``%scans`` and provenance records, and a record names a store a rerun can open
again. Nothing here imports more than the standard library at import time.

Examples
--------
>>> catalog_name("./store?mode=ro").kind
'path'
>>> catalog_name("redis://bus:6379/0?prefix=28id").kind
'uri'
>>> catalog_name("beamtime-2024").kind
'name'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["ENV_CATALOG", "STORE_SUFFIXES", "CatalogName", "catalog_name", "chosen_catalog", "open_catalog"]

#: The environment variable that chooses the catalog when none is given.
ENV_CATALOG = "SCANDECK_CATALOG"
#: File names ending in these are embedded stores, with or without a directory part.
STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")

Kind = Literal["default", "path", "uri", "name"]


@dataclass(frozen=True)
class CatalogName:
    """What a catalog string names (see the module docstring for the rule)."""

    kind: Kind
    text: str

    @property
    def store_path(self) -> Path | None:
        """The store's location on this filesystem for a path or name (None for a URI, the default).

        For a name, the store directory of that name in the working directory
        (what :func:`open_catalog` falls back to when no catalog file defines the name).
        """
        if self.kind not in ("path", "name"):
            return None
        from .sources.sqlite import sqlite_target

        return Path(sqlite_target(self.text)[0]).expanduser()

    def portable(self) -> str:
        """The text another process, in another working directory, opens the same catalog by.

        Paths are made absolute; ``sqlite://`` URIs, other URIs and names stay as they are.
        """
        if self.kind == "path" and not self.text.startswith("sqlite://"):
            return str(Path(self.text).expanduser().absolute())
        return self.text


def catalog_name(target: str | Path | None) -> CatalogName:
    """What ``target`` names: the default store, a store path, a URI or a catalog-file name.

    Examples
    --------
    >>> catalog_name(None)
    CatalogName(kind='default', text='')
    >>> catalog_name("runs.sqlite").kind, catalog_name("sqlite:///data/store").kind
    ('path', 'path')
    """
    if target is None:
        return CatalogName("default", "")
    text = str(target)
    if isinstance(target, Path):
        return CatalogName("path", text)
    if text == "":
        return CatalogName("default", "")
    if "://" in text:
        return CatalogName("path" if text.startswith("sqlite://") else "uri", text)
    bare = text.split("?", 1)[0]  # ./store?mode=ro
    if "/" in text or "\\" in text or bare.endswith(STORE_SUFFIXES):
        return CatalogName("path", text)
    return CatalogName("name", text)


def chosen_catalog(target: str | Path | None = None) -> CatalogName:
    """``target``, else ``$SCANDECK_CATALOG``, as a :class:`CatalogName` (kind "default" for neither)."""
    if target is None or target == "":
        target = os.environ.get(ENV_CATALOG, "")
    return catalog_name(target)


def open_catalog(target: str | Path | None = None) -> Catalog:
    """Open a catalog of runs.

    Parameters
    ----------
    target
        ``None``: ``$SCANDECK_CATALOG`` when set, else the embedded default store
        (in ``$SCANDECK_DATA``, else the user data directory). A path (directory or ``.sqlite`` file) or a URI
        (``sqlite:///path``, ``memory://name``): that store. Any other name: the
        entry of that name in the Intake catalog files (see
        :func:`scandeck.catalog_files.list_entries`), else a store directory of that
        name in the working directory.

    Examples
    --------
    >>> cat = open_catalog("memory://scratch")
    >>> len(cat)
    0
    """
    from .catalog import Catalog
    from .sources import open_source

    name = chosen_catalog(target)  # $SCANDECK_CATALOG: the session's choice (--catalog, run, rerun)
    if name.kind == "default":
        from .config import default_store

        return Catalog(open_source(default_store()))
    if name.kind in ("path", "uri"):
        return Catalog(open_source(name.text))
    from .catalog_files import open_entry
    from .exceptions import UnknownName

    try:
        return open_entry(name.text)
    except UnknownName:
        path = name.store_path
        if path is not None and path.exists():  # store, store?mode=ro in the working directory
            return Catalog(open_source(name.text))
        raise
