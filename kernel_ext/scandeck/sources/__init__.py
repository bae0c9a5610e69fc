"""Run stores ("sources"), one module per transport, all behind :mod:`.protocol`.

A registry (:class:`scandeck.registry.Registry`) maps URI schemes to factories:
``register("sqlite", factory)``. Other packages add schemes through the
``scandeck.sources`` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import StoreError, UnknownName
from ..registry import Registry
from .protocol import Entry, RunSummary, Source, Writer

__all__ = [
    "Entry", "RunSummary", "Source", "Writer", "register", "open_source", "schemes", "sqlite_target",
]

#: Source factories by URI scheme.
SOURCES: Registry[Callable[[str], Source]] = Registry("source URI scheme", "scandeck.sources")


def register(scheme: str, factory: Callable[[str], Source], *, overwrite: bool = False) -> None:
    """Make ``open_source("scheme://...")`` call ``factory(uri)``.

    Examples
    --------
    >>> register("memory", _memory, overwrite=True)
    """
    SOURCES.register(scheme, factory, overwrite=overwrite)


def schemes() -> list[str]:
    """URI schemes that open a source, built-in and from entry points."""
    return SOURCES.available()


def open_source(uri: str | Path) -> Source:
    """The source a URI or filesystem path names, not yet started.

    A path (or ``sqlite://`` URI) opens the embedded store; ``memory://NAME``
    an in-process one; ``redis://host:port/db?prefix=P`` the facility bus.
    """
    text = str(uri)
    scheme = urlsplit(text).scheme if "://" in text else ""
    if not scheme:
        return _sqlite(text)
    factory = SOURCES.find(scheme)
    if factory is None:
        raise UnknownName(
            f"no source for {scheme!r} URIs like {text!r}; available: {', '.join(schemes())}. "
            "Give a directory path for the embedded store."
        )
    return factory(text)


def sqlite_target(uri: str) -> tuple[str, bool]:
    """The path an embedded-store path or ``sqlite://`` URI names, and whether it says ``mode=ro``.

    ``?mode=ro`` opens an existing store read-only; ``?mode=rw`` is the default.
    A ``?`` not followed by ``key=value`` is part of the path.

    Examples
    --------
    >>> sqlite_target("sqlite:///data/store?mode=ro")
    ('/data/store', True)
    >>> sqlite_target("./store")
    ('./store', False)
    """
    path = uri[len("sqlite://"):] if uri.startswith("sqlite://") else uri
    base, sep, query = path.rpartition("?")
    if not sep or "=" not in query:
        return path, False
    options = dict(parse_qsl(query, keep_blank_values=True))
    mode = options.pop("mode", None)
    if options or mode not in ("ro", "rw"):
        raise StoreError(
            f"unknown option {query!r} in the store address {uri!r}; the embedded store takes "
            "only mode=ro (read-only) or mode=rw (the default), as in ./store?mode=ro"
        )
    return base, mode == "ro"


def _sqlite(uri: str) -> Source:
    from .sqlite import SQLiteSource

    path, read_only = sqlite_target(uri)
    return SQLiteSource(path, read_only=read_only)


def _memory(uri: str) -> Source:
    from .memory import MemorySource

    return MemorySource.named(uri[len("memory://"):])


def _redis(uri: str) -> Source:
    from .redis_source import RedisSource

    return RedisSource(uri)


register("sqlite", _sqlite)
register("memory", _memory)
register("redis", _redis)
register("rediss", _redis)
