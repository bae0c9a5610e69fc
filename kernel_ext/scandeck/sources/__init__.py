"""Run stores ("sources"), one module per transport, all behind :mod:`.protocol`.

A registry (:class:`scandeck.registry.Registry`, in :mod:`.openers`) maps URI
schemes to factories: ``register("sqlite", factory)``. Other packages add schemes
through the ``scandeck.sources`` entry point group. The built-in transports are
registered at the bottom of this module; a transport that opens other sources
(the Redis bus opens its archive) imports :func:`open_source` from :mod:`.openers`,
which knows no transport.
"""

from __future__ import annotations

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
]


def _sqlite(uri: str) -> Source:
    from .sqlite import SQLiteSource, sqlite_target

    path, read_only = sqlite_target(uri)
    return SQLiteSource(path, read_only=read_only)


def _memory(uri: str) -> Source:
    from .memory import MemorySource

    return MemorySource.named(uri[len("memory://") :])


def _redis(uri: str) -> Source:
    from .redis_source import RedisSource

    return RedisSource(uri)


def _tiled(uri: str) -> Source:
    from ..uris import redact
    from .facts_overlay import FactsOverlay, default_facts_path
    from .tiled.source import TiledSource

    # scandeck never writes into a Tiled archive: comments, tags and cells go to a sidecar file
    store = TiledSource(uri)
    return FactsOverlay(store, default_facts_path(redact(store.uri)))


register("sqlite", _sqlite)
register("memory", _memory)
register("redis", _redis)
register("rediss", _redis)
register("tiled+http", _tiled)
register("tiled+https", _tiled)
