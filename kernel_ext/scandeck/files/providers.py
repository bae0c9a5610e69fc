"""Where the bytes of a file that is not on this machine can be had.

A *provider* is an open source that carries files beside their run: the Redis
bus (chunks sent by ``scandeck watch --transfer``) and the archive the keeper
copied them to. Sources register themselves when they start and leave when
they close; :func:`fetch` asks each in turn and puts the first answer, verified,
into the local cache (:mod:`.cache`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..exceptions import ScandeckError
from . import cache

__all__ = ["FileProvider", "fetch", "providers", "register", "unregister"]


@runtime_checkable
class FileProvider(Protocol):
    """An open source that may hold a run's files."""

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterable[bytes] | None:
        """The file's bytes in order, or ``None`` when this source does not hold it."""


_LOCK = threading.Lock()
_PROVIDERS: weakref.WeakSet[FileProvider] = weakref.WeakSet()


def register(provider: FileProvider) -> None:
    """Ask ``provider`` for missing files from now on (kept by weak reference)."""
    with _LOCK:
        _PROVIDERS.add(provider)


def unregister(provider: FileProvider) -> None:
    """Stop asking ``provider``; no error when it was not registered."""
    with _LOCK:
        _PROVIDERS.discard(provider)


def providers() -> list[FileProvider]:
    """The registered providers."""
    with _LOCK:
        return list(_PROVIDERS)


def fetch(run: str, sha256: str, size: int, *, what: str) -> Path | None:
    """A verified local copy of the file from the first provider that holds it, or ``None``.

    ``what`` names the file in errors (its path as written). A provider that
    fails (its server away, bytes that do not hash to ``sha256``) does not stop
    the others from being asked, nor does one whose copy cannot be read
    (:class:`OSError`: an archive's file another account kept); when none could
    give the file, the first failure is raised
    (:class:`~scandeck.exceptions.StoreError`, :class:`~scandeck.exceptions.FileMismatch`...).
    """
    failures: list[Exception] = []
    for provider in providers():
        try:
            chunks = provider.file_chunks(run, sha256, size)
            if chunks is not None:
                return cache.store(sha256, size, chunks, what=what)
        except (ScandeckError, OSError) as err:
            failures.append(err)
    if failures:
        raise failures[0]
    return None
