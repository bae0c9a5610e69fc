"""The catalogs the server serves: opened once by name, shared by every request, closed at stop.

A catalog name is ``""`` (the default catalog: :attr:`ScandeckApp.catalog`, else
``$SCANDECK_CATALOG``, else the embedded default store) or a name of
:func:`scandeck.catalog_files.list_entries`. Nothing else is opened: a request never
names a path or a URI.
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
    open_runs = getattr(cat.source, "open_runs", None)  # the embedded store: its partial index
    if open_runs is not None:
        return [s for s in open_runs(cat.query, limit=limit) if s.status == "running"]
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

    Examples
    --------
    >>> pool = CatalogPool()                 # doctest: +SKIP
    >>> pool.get("").source.uri              # doctest: +SKIP
    'sqlite:///home/me/.local/share/scandeck/store/scandeck.sqlite'
    >>> pool.close()                         # doctest: +SKIP
    """

    def __init__(self, default: str = "") -> None:
        self.default = default
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
            import intake

            data = intake.from_yaml_file(str(path))[name].kwargs.get("data")
            location = data.location() if hasattr(data, "location") else None
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
        """The argument of ``scandeck.open_catalog(...)`` in code for a kernel; None for no argument."""
        if name:
            return name
        return self.default or None

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
        if name:
            from ..catalog_files import open_entry

            return open_entry(name)
        from ..opening import open_catalog

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
