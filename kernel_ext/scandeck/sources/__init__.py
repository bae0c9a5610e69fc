"""Run stores ("sources"), one module per transport, all behind :mod:`.protocol`.

A registry (:class:`scandeck.registry.Registry`, in :mod:`.openers`) maps URI
schemes to factories: ``register("sqlite", factory)``. Other packages add schemes
through the ``scandeck.sources`` entry point group. The built-in transports are
registered at the bottom of this module; a transport that opens other sources
(the Redis bus opens its archive) imports :func:`open_source` from :mod:`.openers`,
which knows no transport.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..exceptions import StoreError
from .openers import SOURCES, open_source, register, schemes
from .protocol import Entry, RunSummary, Source, Writer

__all__ = [
    "SOURCES",
    "Entry",
    "RunSummary",
    "Source",
    "Writer",
    "register",
    "open_source",
    "schemes",
    "sqlite_target",
]


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
    path = uri[len("sqlite://") :] if uri.startswith("sqlite://") else uri
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

    return MemorySource.named(uri[len("memory://") :])


def _redis(uri: str) -> Source:
    from .redis_source import RedisSource

    return RedisSource(uri)


register("sqlite", _sqlite)
register("memory", _memory)
register("redis", _redis)
register("rediss", _redis)
