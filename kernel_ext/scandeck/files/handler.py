"""The handler of spec ``SCANDECK_FILE``: a watched file's path and arrays, verified.

:mod:`scandeck.external.registry` registers :class:`FileHandler`, so a Filler (and
``read()``, ``%%bind``, ``live()``) fills watched runs like any other. Where the
bytes come from is :func:`local_file`'s decision, the one every caller uses
(``scandeck.files(run)``, ``scandeck files fetch``): the file where it was
watched, when it still has the recorded size and sha256; else the local cache;
else a provider (the Redis bus of a ``watch --transfer``, the archive); else an
error that says which of these to set up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ExternalFileMissing, FileMismatch, FillError, UnknownName
from ..safe_text import printable
from . import cache, providers
from .layout import FILE_KEY
from .readers import get_reader

__all__ = ["FileHandler", "local_file"]


def local_file(full_path: str, sha256: str, size: int, run: str) -> Path:
    """A local path of the file a run recorded, whose bytes hash to ``sha256``.

    In order: ``full_path`` itself when it has ``size`` bytes hashing to
    ``sha256``; the copy in the local cache (:mod:`.cache`); a copy fetched from
    a registered provider (:mod:`.providers`) into the cache, verified.

    Raises
    ------
    FileMismatch
        ``full_path`` exists with other bytes (it was rewritten after it was
        ingested) and no one holds the recorded version; or a provider's bytes
        were not those recorded (nothing is kept). Both hashes are named.
    ExternalFileMissing
        No copy anywhere this machine can reach; the message says how to get one.

    Examples
    --------
    >>> res = run.documents("resource")[0]  # doctest: +SKIP
    >>> kw = res["resource_kwargs"]  # doctest: +SKIP
    >>> local_file(resource_path(res), kw["sha256"], kw["size"], kw["run"])  # doctest: +SKIP
    PosixPath('/data/xrd/sample_01.tif')
    """
    size = int(size)
    original = Path(full_path)
    try:
        st = original.stat()
        present = stat.S_ISREG(st.st_mode)  # a FIFO or device there is not the file (and never ends)
    except OSError:  # absent, or not ours to look at: try the other copies
        present = False
    unreadable: str | None = None

    def hash_of_original() -> str | None:
        nonlocal unreadable
        try:
            return cache.sha256_of(original)
        except OSError as exc:  # there, but not readable by this user: the other copies may be
            unreadable = exc.strerror or type(exc).__name__
            return None

    if present and st.st_size == size and hash_of_original() == sha256:
        return original
    found = cache.cached(sha256, size) or providers.fetch(run, sha256, size, what=full_path)
    if found is not None:
        return found
    now = hash_of_original() if present and unreadable is None else None
    if now is not None:
        raise FileMismatch(
            f"{printable(full_path)} has changed since run {run} recorded it: it now holds {st.st_size} bytes "
            f"with sha256 {now}, the run recorded {size} bytes with sha256 {sha256}. The recorded version "
            "is kept only when the directory was watched with --transfer: read the run through that Redis "
            f"catalog, or `scandeck files fetch {run}` from it"
        )
    where = f"is here but cannot be read ({unreadable})" if unreadable else "is not on this machine"
    raise ExternalFileMissing(
        f"{printable(full_path)} (sha256 {sha256}, run {run}) {where}: mount the watched "
        "directory here (or map its root: Filler(root_map={OLD: NEW})), read the run through the Redis "
        f"catalog of a `scandeck watch --transfer`, or write its files here with `scandeck files fetch {run}`",
        full_path,
        "",
    )


class FileHandler:
    """Reads a watched file's data keys; ``key="file"`` gives its verified local path.

    Built as the databroker convention has it: ``FileHandler(full_path,
    **resource_kwargs)``, then called with each datum's ``datum_kwargs``.

    Examples
    --------
    >>> handler = FileHandler("/data/a.tif", reader="tiff", sha256=digest, size=524416, run=uid)  # doctest: +SKIP
    >>> handler(key="file"), handler(key="image").shape  # doctest: +SKIP
    (array('/data/a.tif', dtype='<U11'), (512, 512))
    """

    def __init__(self, full_path: str, reader: str, sha256: str, size: int, run: str, **_: Any) -> None:
        self.full_path, self.reader, self.sha256, self.size, self.run = full_path, reader, sha256, int(size), run

    def local_path(self) -> Path:
        """The verified local copy (see :func:`local_file`)."""
        return local_file(self.full_path, self.sha256, self.size, self.run)

    def __call__(self, key: str) -> np.ndarray:
        path = self.local_path()  # each call: a rewritten file is noticed (its hash is kept per inode and mtime)
        if key == FILE_KEY:
            return np.asarray(os.fspath(path))
        try:
            reader = get_reader(self.reader)
        except UnknownName as exc:
            raise FillError(
                f"{printable(self.full_path)} was read by the file reader {self.reader!r}, which is not "
                f"installed here: {exc.args[0]}. Install the package that provides it (entry-point group "
                "'scandeck.file_readers')"
            ) from exc
        return reader.read(os.fspath(path), key)
