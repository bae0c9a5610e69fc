"""The catalogs the server serves: opened once by name, shared by every request, closed at stop.

A catalog name is ``""`` (the default catalog: :attr:`ScandeckApp.catalog`, else
``$SCANDECK_CATALOG``, else the embedded default store) or a name of
:func:`scandeck.catalog_files.list_entries`. Nothing else is opened: a request never
names a path or a URI.

Tiled catalogs are opened with the credentials of the Jupyter user who runs this
server, never with a key someone else wrote down (:meth:`CatalogPool.tiled_uri`):
the server never widens what a user sees in Tiled.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ScandeckError
from ..opening import chosen_catalog
from ..uris import redact as redact  # shown URIs carry no password
from .errors import UnknownCatalog

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary

__all__ = ["CatalogPool", "live_runs", "redact"]

log = logging.getLogger(__name__)

#: Longest catalog name accepted (catalog files define short names).
MAX_NAME = 200
#: How many unfinished runs are looked at to find the running ones (as ``scandeck ls`` does).
LIVE_LOOKED_AT = 200


def live_runs(cat: Catalog, limit: int = LIVE_LOOKED_AT) -> list[RunSummary]:
    """The runs of ``cat`` being written now, newest first (index rows only)."""
    from ..sources.protocol import OpenRuns

    # SQLite answers from its partial index, Tiled with one "no stop.uid" search; the
    # fallback's NOT would make Tiled list every run of the container.
    if isinstance(cat.source, OpenRuns):
        return [s for s in cat.source.open_runs(cat.query, limit=limit) if s.status == "running"]
    from ..queries import Key

    unstopped = ~Key("stop.exit_status").in_(["success", "abort", "fail"])
    return [s for s in cat.search(unstopped).summaries(limit=limit) if s.status == "running"]


class CatalogPool:
    """Open catalogs by name, each once; thread-safe.

    Parameters
    ----------
    default
        What the name ``""`` opens: a name, path or URI as ``scandeck.open_catalog``
        takes; empty for ``$SCANDECK_CATALOG``, else the embedded default store.
    tiled_api_key
        The Jupyter user's own Tiled API key, for every Tiled catalog this server opens
        (see :meth:`tiled_uri`). Empty: the server process's ``$TILED_API_KEY``, else
        the user's ``tiled login`` token cache.
    catalog_file_keys
        Use an ``api_key`` written in a catalog file's Tiled URI (or in
        ``$SCANDECK_CATALOG``). Off by default: such files are often shared site-wide,
        and their key would show every user what that key sees.

    Examples
    --------
    >>> pool = CatalogPool()                 # doctest: +SKIP
    >>> pool.get("").source.uri              # doctest: +SKIP
    'sqlite:///home/me/.local/share/scandeck/store/scandeck.sqlite'
    >>> pool.close()                         # doctest: +SKIP
    """

    def __init__(self, default: str = "", *, tiled_api_key: str = "", catalog_file_keys: bool = False) -> None:
        self.default = default
        self.tiled_api_key = tiled_api_key
        self.catalog_file_keys = catalog_file_keys
        self._open: dict[str, Catalog] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- names -------------------------------------------------------------------------------

    def check(self, name: object) -> str:
        """``name`` if it is a catalog this server serves, else :class:`UnknownCatalog`."""
        if not isinstance(name, str) or len(name) > MAX_NAME:
            raise UnknownCatalog(f"catalog must be a name from GET catalogs, not {str(name)[:60]!r}")
        if name == "" or name in self._open:
            return name
        from ..catalog_files import list_entries

        entries = list_entries()
        if name not in entries:
            known = ", ".join(repr(n) for n in ["", *entries])
            raise UnknownCatalog(f"no catalog named {name[:60]!r}; this server serves {known} (GET catalogs)")
        return name

    def describe(self) -> list[dict[str, Any]]:
        """``[{"name", "label", "description", "uri"}]``: the default catalog, then the named ones."""
        from ..catalog_files import list_entries

        default: dict[str, Any] = {"name": "", "label": "Default store", "description": "", "uri": None}
        target = chosen_catalog(self.default).text
        if target:
            default["label"] = f"Default ({redact(target)})"
            default["description"] = f"the catalog {redact(target)!r} this server opens by default"
        else:
            default["description"] = "the embedded default store on this machine ($SCANDECK_DATA/store)"
        try:
            default["uri"] = redact(self.get("").source.uri)
        except ScandeckError as err:
            default["error"] = str(err)
        out = [default]
        for name, entry in list_entries().items():
            out.append(
                {
                    "name": name,
                    "label": name,
                    "description": entry.description,
                    "uri": self._entry_uri(name, entry.path),
                }
            )
        return out

    def _entry_uri(self, name: str, path: Path) -> str | None:
        """The store URI an entry names, without opening it (None when it cannot be told)."""
        cat = self._open.get(name)
        if cat is not None:
            return redact(cat.source.uri)
        try:
            location = _entry_location(name, path)
        except Exception as err:  # noqa: BLE001 - a listing must not fail for one odd entry
            log.debug("cannot tell the store of catalog %s: %s", name, err)
            return None
        if location is None:
            from ..config import default_store
            from ..sources.sqlite import DB_NAME

            return f"sqlite://{(default_store() / DB_NAME).resolve()}"
        return redact(str(location))

    def target(self, name: str) -> str:
        """What another process passes to ``open_catalog`` / ``--catalog`` to open the same catalog."""
        self.check(name)
        if name:
            return name
        chosen = chosen_catalog(self.default)
        if chosen.kind == "default":
            from ..config import default_store

            return str(default_store().absolute())
        return chosen.portable()

    def code_target(self, name: str) -> str | None:
        """The argument of ``scandeck.open_catalog(...)`` in code for a kernel; None for no argument.

        Never a credential: code goes to the browser and into notebooks. A kernel opening
        a Tiled catalog takes its key from its own ``$TILED_API_KEY``, token cache or the
        catalog-file entry, as any ``open_catalog`` call does.
        """
        if name:
            return name
        return redact(self.default) if self.default else None

    def tiled_uri(self, uri: str, *, trusted: bool) -> str:
        """The Tiled URI this server opens for ``uri``: with the Jupyter user's credentials.

        The key is :attr:`tiled_api_key` when set; else the one in ``uri`` when
        ``trusted`` (this server's own ``ScandeckApp.catalog``) or when
        :attr:`catalog_file_keys` allows keys of catalog files; else none, and Tiled's
        client takes ``$TILED_API_KEY`` or the ``tiled login`` token cache.

        Examples
        --------
        >>> pool = CatalogPool(tiled_api_key="mine")
        >>> pool.tiled_uri("tiled+http://h:8000/raw?api_key=shared", trusted=False)
        'tiled+http://h:8000/raw?api_key=mine'
        >>> CatalogPool().tiled_uri("tiled+http://h:8000/raw?api_key=shared", trusted=False)
        'tiled+http://h:8000/raw'
        """
        from ..sources.tiled.connect import with_key, without_key

        if self.tiled_api_key:
            return with_key(uri, self.tiled_api_key)
        if trusted or self.catalog_file_keys:
            return uri
        return without_key(uri)

    # -- catalogs ----------------------------------------------------------------------------

    def get(self, name: str) -> Catalog:
        """The open catalog ``name`` (opened on first use). Blocking: call it off the event loop."""
        cat = self._open.get(name)
        if cat is not None:
            return cat
        self.check(name)
        with self._lock:
            if self._closed:
                raise ScandeckError("the server is stopping")
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # one opening per name; others wait for it, other names do not
            cat = self._open.get(name)
            if cat is None:
                cat = self._open_catalog(name)
                with self._lock:
                    if self._closed:
                        cat.close()
                        raise ScandeckError("the server is stopping")
                    self._open[name] = cat
        return cat

    def _open_catalog(self, name: str) -> Catalog:
        from ..catalog_files import list_entries
        from ..opening import open_catalog

        chosen = chosen_catalog(self.default)
        entry = name or (chosen.text if chosen.kind == "name" else "")
        entries = list_entries()
        if entry in entries:
            location = _entry_location(entry, entries[entry].path)
            if location is not None and _is_tiled(location):
                from ..catalog_files import apply_entry_options

                cat = open_catalog(self.tiled_uri(location, trusted=False))
                return apply_entry_options(cat, entries[entry])
            from ..catalog_files import open_entry

            return open_entry(entry)
        if chosen.kind == "uri" and _is_tiled(chosen.text):
            # ScandeckApp.catalog is this server's own setting; $SCANDECK_CATALOG may be site-wide.
            return open_catalog(self.tiled_uri(chosen.text, trusted=bool(self.default)))
        return open_catalog(self.default or None)

    def close(self) -> None:
        """Close every open catalog; later :meth:`get` calls fail. Idempotent."""
        with self._lock:
            self._closed = True
            cats, self._open = list(self._open.values()), {}
        for cat in cats:
            try:
                cat.close()
            except Exception as err:  # noqa: BLE001 - close the others anyway
                log.warning("closing catalog %s: %s", cat.name, err)


def _is_tiled(uri: str) -> bool:
    from ..sources.tiled.connect import SCHEMES

    return uri.split("://", 1)[0] in SCHEMES


def _entry_location(name: str, path: Path) -> str | None:
    """What a catalog-file entry's store is (credentials included): None for the default store."""
    import intake

    data = intake.from_yaml_file(str(path))[name].kwargs.get("data")
    location = data.location() if hasattr(data, "location") else None
    return None if location is None else str(location)
