"""Transferred files kept beside an embedded store: what the keeper archives with a run.

The keeper copies each file sent through the bus with a run (``scandeck watch
--transfer``) into ``<store directory>/files/<sha256[:2]>/<sha256>``, verified,
before it marks the run persisted; the store then serves them to readers
(:class:`scandeck.files.providers.FileProvider`) once Redis trimmed the run.
Files are named by content, so one kept for two runs is kept once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..files import cache
from ..files.cache import read_blocks

__all__ = ["FILES_DIR", "files_root", "keep", "kept", "read_blocks"]

#: The directory of kept files, inside the store's directory.
FILES_DIR = "files"


def files_root(directory: Path) -> Path:
    """Where a store in ``directory`` keeps files."""
    return Path(directory) / FILES_DIR


def kept(directory: Path, sha256: str, size: int) -> Path | None:
    """The kept copy of file ``sha256`` (of ``size`` bytes), or None."""
    return cache.cached(sha256, size, root=files_root(directory))


def keep(directory: Path, sha256: str, size: int, chunks: Iterable[bytes], *, what: str) -> Path:
    """Keep the bytes ``chunks`` as file ``sha256``, verified (:class:`~scandeck.exceptions.FileMismatch`),
    on disk when it returns (the keeper then lets Redis drop them)."""
    return kept(directory, sha256, size) or cache.store(
        sha256, size, chunks, what=what, root=files_root(directory), durable=True
    )
