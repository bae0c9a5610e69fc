"""Readers per file format: what a watched file holds, and its arrays.

A reader (:class:`FileReader`) has a ``name`` (the registry name, which is also
the name of the stream its files go to), fnmatch ``patterns`` matched against a
file's name without regard to case, :meth:`~FileReader.describe` (the data keys
and JSON-able extras of one file, as a :class:`FileLayout`) and
:meth:`~FileReader.read` (the array of one data key). :data:`FILE_READERS` holds
them by name: the built-ins (:mod:`.builtin_readers`, registered at the bottom),
readers registered with :func:`register_reader`, and those other packages offer
in the entry-point group ``scandeck.file_readers``, loaded when
:func:`reader_for` first picks a reader or :func:`get_reader` misses.
:func:`reader_for` tries the built-ins last, so a plug-in's ``*.ome.tif`` is
not shadowed by ``*.tif``.

Data keys are named by :func:`data_key_names`: identifiers that do not start
with ``_``, never one of a watched event's own keys (``path``, ``size``,
``file``...) or ``time``/``seq_num``/``uid``, and never two alike.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from typing import Any

from ..registry import Registry
from .reader_kit import (
    RESERVED_KEYS,
    FileLayout,
    FileMemo,
    FileReader,
    array_key,
    data_key_names,
    jsonable,
    unreadable,
)

__all__ = [
    "FILE_READERS",
    "RESERVED_KEYS",
    "FileLayout",
    "FileMemo",
    "FileReader",
    "array_key",
    "data_key_names",
    "get_reader",
    "jsonable",
    "load_entry_points",
    "reader_for",
    "register_reader",
    "unreadable",
]


# --- the registry ------------------------------------------------------------------------------


def _check(name: str, reader: FileReader) -> None:
    missing = [a for a in ("name", "patterns", "describe", "read") if not hasattr(reader, a)]
    if missing:
        raise TypeError(
            f"file reader {name!r} ({reader!r}) lacks {', '.join(missing)}; see scandeck.files.FileReader"
        )
    if reader.name != name:
        raise TypeError(
            f"file reader {reader!r} is named {reader.name!r}; register it under that name, not {name!r}"
        )
    patterns = reader.patterns
    if not isinstance(patterns, tuple) or not all(isinstance(p, str) and p for p in patterns):
        raise TypeError(f"file reader {name!r}: patterns must be a tuple of glob strings, not {patterns!r}")


class _ReaderRegistry(Registry[FileReader]):
    """Readers by name; a class offered by an entry point is instantiated without arguments."""

    def register(self, name: str, obj: Any, *, overwrite: bool = False) -> None:
        if isinstance(obj, type):
            obj = obj()
        super().register(name, obj, overwrite=overwrite)


#: File readers by name (entry-point group ``scandeck.file_readers``).
FILE_READERS: Registry[FileReader] = _ReaderRegistry("file reader", "scandeck.file_readers", check=_check)

_EP_LOCK = threading.Lock()
_entry_points_loaded = False


def register_reader(reader: FileReader, *, overwrite: bool = False) -> None:
    """Read files matching ``reader.patterns`` with ``reader``, under ``reader.name``.

    :func:`reader_for` tries the readers registered here and by entry points
    before the built-ins, so one for ``*.ome.tif`` wins over the built-in
    ``*.tif``; a reader registered as a built-in's name (``overwrite=True``)
    replaces it.

    Examples
    --------
    >>> class SpeReader:
    ...     name, patterns = "spe", ("*.spe",)
    ...     def describe(self, path): ...
    ...     def read(self, path, key): ...
    >>> register_reader(SpeReader())  # doctest: +SKIP
    """
    FILE_READERS.register(reader.name, reader, overwrite=overwrite)


def get_reader(name: str) -> FileReader:
    """The reader registered as ``name`` (loading its entry point), else ``UnknownName``."""
    return FILE_READERS.get(name)


def load_entry_points() -> None:
    """Load every reader the group ``scandeck.file_readers`` offers (a broken one raises)."""
    global _entry_points_loaded
    with _EP_LOCK:
        for name in FILE_READERS.available():
            FILE_READERS.find(name)
        _entry_points_loaded = True


def reader_for(path: str | os.PathLike[str]) -> FileReader:
    """The first reader whose patterns match the file's name, else the opaque ``bytes`` reader.

    Tried in the order they were registered, except that the built-ins come
    last: a plug-in's narrower pattern (``*.ome.tif``) is not shadowed by a
    built-in's (``*.tif``). Entry points are loaded on the first call.

    Examples
    --------
    >>> reader_for("/data/SCAN_0001.TIF").name
    'tiff'
    >>> reader_for("/data/notes.docx").name
    'bytes'
    """
    if not _entry_points_loaded:
        load_entry_points()
    name = os.path.basename(os.fspath(path)).lower()
    table = FILE_READERS.snapshot()
    order = [n for n in table if n not in _BUILTIN] + [n for n in table if n in _BUILTIN]
    for reader in (table[n] for n in order):
        if any(fnmatch.fnmatchcase(name, p.lower()) for p in reader.patterns):
            return reader
    return FILE_READERS.get("bytes")


def _register_builtins() -> tuple[str, ...]:
    from . import builtin_readers

    readers = builtin_readers.builtin_readers()
    for reader in readers:
        register_reader(reader)
    return tuple(reader.name for reader in readers)


#: Names of the built-in readers, tried after all others.
_BUILTIN = _register_builtins()
