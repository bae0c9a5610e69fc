"""The file readers scandeck ships, in the order :func:`reader_for` tries them.

=========  =========================================  ==========  ==========================================
name       files                                      data keys   info
=========  =========================================  ==========  ==========================================
``tiff``   ``*.tif``, ``*.tiff`` (tifffile)           ``image``   description, date, software, resolution...
``image``  detector formats through fabio (edf, cbf,  ``image``   the header, text to text
           mccd, img, mar3450, sfrm...), if installed
``hdf5``   ``*.h5``, ``*.hdf5``, ``*.nxs``... (h5py)  a dataset   attributes of the file, groups, datasets
                                                      each
``table``  ``*.csv``, ``*.tsv``, ``*.xy``, ``*.xye``, a column    delimiter, column names, ``#`` comments
           ``*.dat`` (:mod:`.table_reader`)           each
``npy``    ``*.npy``                                  ``array``   shape, dtype, order
``bytes``  anything else                              (none)      (nothing)
=========  =========================================  ==========  ==========================================

tifffile, fabio and h5py are imported when a file is first read.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..exceptions import UnreadableFile, require
from .hdf5_reader import Hdf5Reader
from .reader_kit import FileLayout, FileReader, array_key, jsonable, unreadable
from .table_reader import TableReader

__all__ = ["BytesReader", "FabioReader", "Hdf5Reader", "NpyReader", "TableReader", "TiffReader", "builtin_readers"]


class _Collect(logging.Handler):
    """Warnings a library logs (instead of raising) from this thread: a truncated file, a bad IFD."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextmanager
def _logged(logger_name: str) -> Iterator[list[str]]:
    handler = _Collect()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _no_key(path: str, reader: str, key: str, keys: list[str]) -> UnreadableFile:
    return unreadable(path, reader, f"has no data key {key!r} for the {reader} reader (its keys: {keys})")


class TiffReader:
    """TIFF through tifffile: ``image`` is the first series (a multi-page stack is 3-D).

    ``info``: ``description``, ``datetime``, ``software``, ``artist``, ``make``,
    ``model`` (when present), ``resolution`` (x, y) and ``resolution_unit``,
    ``shape``, ``dtype``, ``axes``, ``pages``, ``series``. A file whose pages or
    image data reach past its end raises :class:`UnreadableFile`.
    """

    name = "tiff"
    patterns = ("*.tif", "*.tiff")

    def describe(self, path: str) -> FileLayout:
        tifffile = require("tifffile", "files")
        with _logged("tifffile") as log:
            try:
                with tifffile.TiffFile(path) as tif:
                    size = os.fstat(tif.filehandle.fileno()).st_size
                    if not tif.series:
                        raise unreadable(path, self.name, "a TIFF with no image in it")
                    series = tif.series[0]
                    pages = list(tif.pages)  # parses every IFD: a cut chain raises or logs
                    self._check_extent(path, pages, size)
                    if log:
                        raise unreadable(path, self.name, _tiff_log_reason(log[0], size))
                    info = self._info(pages[0], series, len(pages), len(tif.series))
            except (tifffile.TiffFileError, ValueError, struct.error, IndexError) as exc:
                if isinstance(exc, UnreadableFile):
                    raise
                raise unreadable(path, self.name, f"not a readable TIFF ({type(exc).__name__}: {exc})") from exc
        return FileLayout({"image": array_key(series.shape, series.dtype)}, info)

    def _check_extent(self, path: str, pages: list[Any], size: int) -> None:
        for i, page in enumerate(pages):
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
                if offset + count > size:
                    raise unreadable(
                        path,
                        self.name,
                        f"a truncated TIFF: the image data of page {i} ends at byte {offset + count}, "
                        f"but the file has {size} bytes (was it copied while being written?)",
                    )

    @staticmethod
    def _info(page: Any, series: Any, pages: int, n_series: int) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for tag, key in (
            ("ImageDescription", "description"),
            ("DateTime", "datetime"),
            ("Software", "software"),
            ("Artist", "artist"),
            ("Make", "make"),
            ("Model", "model"),
        ):
            found = page.tags.get(tag)
            if found is not None:
                info[key] = jsonable(found.value)
        if page.tags.get("XResolution") is not None:
            info["resolution"] = jsonable(list(page.resolution))
            unit = page.tags.get("ResolutionUnit")
            info["resolution_unit"] = getattr(unit.value, "name", str(unit.value)) if unit is not None else "INCH"
        info.update(
            shape=[int(d) for d in series.shape],
            dtype=str(np.dtype(series.dtype)),
            axes=str(series.axes),
            pages=pages,
            series=n_series,
        )
        return info

    def read(self, path: str, key: str) -> np.ndarray:
        if key != "image":
            raise _no_key(path, self.name, key, ["image"])
        tifffile = require("tifffile", "files")
        try:
            with tifffile.TiffFile(path) as tif:
                return np.asarray(tif.series[0].asarray())
        except (tifffile.TiffFileError, ValueError, struct.error, IndexError) as exc:
            raise unreadable(path, self.name, f"not a readable TIFF ({type(exc).__name__}: {exc})") from exc


def _tiff_log_reason(message: str, size: int) -> str:
    """What tifffile's logged complaint means for the user."""
    offset = re.search(r"invalid page offset (\d+)", message)
    if offset and int(offset.group(1)) >= size:
        return (
            f"a truncated TIFF: its next page starts at byte {offset.group(1)}, but the file has {size} bytes "
            "(was it copied while being written?)"
        )
    return f"a corrupt TIFF: tifffile says {message}"


class FabioReader:
    """Detector formats through fabio: ``image`` is the frame (several frames of one shape: a stack).

    ``info`` is the header of the first frame, text to text.
    """

    name = "image"
    patterns = tuple(
        f"*.{ext}"
        for ext in (
            "edf",
            "edf.gz",
            "edf.bz2",
            "cbf",
            "mccd",
            "img",
            "mar2300",
            "mar3450",
            "mar3600",
            "mar345",
            "sfrm",
            "gfrm",
            "kcd",
            "esperanto",
        )
    )

    def describe(self, path: str) -> FileLayout:
        with self._open(path) as (img, frames):
            header = {str(k): str(v) for k, v in img.header.items()}
            shape = frames[0].shape if len(frames) == 1 else (len(frames), *frames[0].shape)
            dtype = frames[0].dtype
        return FileLayout({"image": array_key(shape, dtype)}, jsonable(header))

    def read(self, path: str, key: str) -> np.ndarray:
        if key != "image":
            raise _no_key(path, self.name, key, ["image"])
        with self._open(path) as (_img, frames):
            return frames[0] if len(frames) == 1 else np.stack(frames)

    @contextmanager
    def _open(self, path: str) -> Iterator[tuple[Any, list[np.ndarray]]]:
        fabio = require("fabio", "files")
        with _logged("fabio") as log:
            try:
                img = fabio.open(path)
            except (OSError, ValueError, KeyError, AssertionError, struct.error) as exc:
                if isinstance(exc, FileNotFoundError | PermissionError):
                    raise
                raise unreadable(path, self.name, _fabio_reason("fabio cannot read it", exc, log)) from exc
            with img:
                try:
                    frames = [np.asarray(img.data)]
                    frames += [np.asarray(img.getframe(i).data) for i in range(1, int(img.nframes or 1))]
                except (OSError, ValueError, KeyError, AssertionError, struct.error, IndexError) as exc:
                    raise unreadable(
                        path, self.name, _fabio_reason("fabio cannot read its frames", exc, log)
                    ) from exc
                if log:
                    raise unreadable(path, self.name, f"a corrupt or truncated image: fabio says {log[0]}")
                if any(f.shape != frames[0].shape or f.dtype != frames[0].dtype for f in frames):
                    kinds = sorted({f"{f.shape} {f.dtype}" for f in frames})
                    raise unreadable(
                        path, self.name, f"its {len(frames)} frames differ in shape or type ({', '.join(kinds)})"
                    )
                yield img, frames


def _fabio_reason(what: str, exc: Exception, log: list[str]) -> str:
    """fabio raises bare errors (an empty AssertionError) after logging what was wrong: say that."""
    said = f"; fabio says {log[0]}" if log else ""
    return (
        f"{what} ({type(exc).__name__}: {exc}{said})"
        if str(exc)
        else f"{what} ({log[0] if log else type(exc).__name__})"
    )


class NpyReader:
    """NumPy ``.npy`` files: ``array``, loaded with ``allow_pickle=False``.

    ``info``: ``shape``, ``dtype``, ``fortran_order``. A file of Python objects
    (pickled) or shorter than its header says raises :class:`UnreadableFile`.
    """

    name = "npy"
    patterns = ("*.npy",)

    def describe(self, path: str) -> FileLayout:
        fmt = np.lib.format
        with open(path, "rb") as f:
            try:
                version = fmt.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = fmt.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = fmt.read_array_header_2_0(f)
            except (ValueError, OSError, SyntaxError) as exc:
                raise unreadable(path, self.name, f"not a readable .npy file ({exc})") from exc
            start, size = f.tell(), os.fstat(f.fileno()).st_size
        if dtype.hasobject:
            raise unreadable(
                path, self.name, "holds Python objects, stored pickled; scandeck never unpickles a file"
            )
        need = start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if need > size:
            raise unreadable(
                path, self.name, f"a truncated .npy file: its header needs {need} bytes, it has {size}"
            )
        info = {"shape": [int(d) for d in shape], "dtype": str(dtype), "fortran_order": bool(fortran)}
        return FileLayout({"array": array_key(shape, dtype)}, info)

    def read(self, path: str, key: str) -> np.ndarray:
        if key != "array":
            raise _no_key(path, self.name, key, ["array"])
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except ValueError as exc:
            raise unreadable(path, self.name, f"not a readable .npy file ({exc})") from exc


class BytesReader:
    """Any other file: no data keys, no info; the event still has its size, sha256 and ``file``."""

    name = "bytes"
    patterns: tuple[str, ...] = ()  # never matched: reader_for's fallback

    def describe(self, path: str) -> FileLayout:
        os.stat(path)  # a missing file says so here, as with every reader
        return FileLayout({}, {})

    def read(self, path: str, key: str) -> np.ndarray:
        raise _no_key(path, self.name, key, [])


def builtin_readers() -> list[FileReader]:
    """The built-in readers, in the order they are tried; fabio's only when it is installed."""
    readers: list[FileReader] = [TiffReader()]
    if importlib.util.find_spec("fabio") is not None:  # found, not imported: import costs 0.1 s
        readers.append(FabioReader())
    readers += [Hdf5Reader(), TableReader(), NpyReader(), BytesReader()]
    return readers
