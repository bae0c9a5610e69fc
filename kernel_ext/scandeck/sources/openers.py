"""Source factories by URI scheme, and :func:`open_source`: the registry, knowing no transport.

The built-in transports register themselves in :mod:`scandeck.sources` (this
module's package, always imported first); a transport that opens other sources
imports :func:`open_source` from here, so no transport module imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..exceptions import UnknownName
from ..registry import Registry

if TYPE_CHECKING:
    from .protocol import Source

__all__ = ["SOURCES", "open_source", "register", "schemes"]

#: Source factories by URI scheme.
SOURCES: Registry[Callable[[str], Source]] = Registry("source URI scheme", "scandeck.sources")


def register(scheme: str, factory: Callable[[str], Source], *, overwrite: bool = False) -> None:
    """Make ``open_source("scheme://...")`` call ``factory(uri)``.

    Examples
    --------
    >>> register("memory", SOURCES.find("memory"), overwrite=True)
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
    factory = SOURCES.find(scheme or "sqlite")  # a path: the embedded store
    if factory is None:
        raise UnknownName(
            f"no source for {scheme!r} URIs like {text!r}; available: {', '.join(schemes())}. "
            "Give a directory path for the embedded store."
        )
    return factory(text)
