"""What file readers share: :class:`FileLayout`, the :class:`FileReader` protocol, key naming, JSON-able info.

:mod:`.readers` (the registry) re-exports the public names; readers written
elsewhere import them from there.
"""

from __future__ import annotations

import keyword
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..exceptions import UnreadableFile
from ..safe_text import printable
from .layout import FILE_KEY, META_KEYS

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "RESERVED_KEYS",
    "FileLayout",
    "FileMemo",
    "FileReader",
    "array_key",
    "data_key_names",
    "jsonable",
    "unreadable",
]

#: Names a reader's data key never takes: the watched event's own keys, and what
#: event tables put beside the data (``time``, ``seq_num``, ``uid``).
RESERVED_KEYS = frozenset({*META_KEYS, FILE_KEY, "time", "seq_num", "uid"})

#: Longest text an ``info`` value keeps (an OME-XML description can be megabytes,
#: and ``info`` travels inline in every event).
MAX_TEXT = 32_768
#: Most elements of an array an ``info`` value lists; a larger one is summarised.
MAX_ITEMS = 1_000

V = TypeVar("V")


@dataclass(frozen=True)
class FileLayout:
    """What a reader says of one file.

    ``data_keys``: key -> ``{"dtype", "dtype_numpy", "shape"}`` (the watcher adds
    ``source`` and ``external``); ``info``: JSON-able extras (tags, attributes,
    header), stored as JSON text in the event's ``info``.
    """

    data_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class FileReader(Protocol):
    """One file format.

    Examples
    --------
    >>> from scandeck.files.readers import reader_for
    >>> reader = reader_for("/data/run7/frame_0001.tif")  # doctest: +SKIP
    >>> reader.name, reader.describe("/data/run7/frame_0001.tif").data_keys  # doctest: +SKIP
    ('tiff', {'image': {'dtype': 'array', 'dtype_numpy': '<u2', 'shape': [512, 512]}})
    """

    @property
    def name(self) -> str:
        """Registry name, also the stream name: ``"tiff"`` (a plain class attribute will do)."""
        ...

    @property
    def patterns(self) -> tuple[str, ...]:
        """fnmatch globs matched case-insensitively against the file name: ``("*.tif", "*.tiff")``."""
        ...

    def describe(self, path: str) -> FileLayout:
        """The data keys and extras of the file at ``path``.

        Raises :class:`~scandeck.exceptions.UnreadableFile` (with the reason) for a
        file that is not of this format or is truncated; ``OSError`` (missing,
        not permitted) passes through.
        """
        ...

    def read(self, path: str, key: str) -> np.ndarray:
        """The array of data key ``key`` (one that :meth:`describe` names) of the file."""
        ...


# --- helpers for readers -----------------------------------------------------------------------


def unreadable(path: str, reader: str, reason: str) -> UnreadableFile:
    """The error for a file ``reader`` cannot read: ``<path>: <reason>`` (printable)."""
    return UnreadableFile(f"{printable(path)}: {printable(reason)}", path, reader)


_NOT_WORD = re.compile(r"[^0-9A-Za-z_]+")


def data_key_names(raw: Iterable[str], *, prefix: str) -> list[str]:
    """Data key names for ``raw`` names (column headers, dataset paths), in order.

    Runs of characters other than ASCII letters, digits and ``_`` become ``_``
    (``"/entry/data/data"`` -> ``entry_data_data``, ``"2theta (deg)"`` ->
    ``2theta_deg``), leading and trailing ``_`` go; a name that would start with
    a digit or be empty gets ``prefix`` (``col_2theta_deg``, ``col``); a Python
    keyword or a :data:`RESERVED_KEYS` name gets a trailing ``_`` (``size_``);
    a name already taken gets ``_2``, ``_3``... The same ``raw`` names always
    give the same keys.

    Examples
    --------
    >>> data_key_names(["2theta (deg)", "I", "size", "I"], prefix="col")
    ['col_2theta_deg', 'I', 'size_', 'I_2']
    """
    out: list[str] = []
    taken: set[str] = set()
    for name in raw:
        key = _NOT_WORD.sub("_", str(name)).strip("_")[:100]
        if not key or key[0].isdigit():
            key = f"{prefix}_{key}" if key else prefix
        if keyword.iskeyword(key) or key in RESERVED_KEYS:
            key += "_"
        unique, n = key, 1
        while unique in taken:
            n += 1
            unique = f"{key}_{n}"
        taken.add(unique)
        out.append(unique)
    return out


def array_key(shape: Iterable[int], dtype: Any) -> dict[str, Any]:
    """A data key entry for an array of ``shape`` and numpy ``dtype``.

    Examples
    --------
    >>> array_key((2, 3), "<u2")
    {'dtype': 'array', 'dtype_numpy': '<u2', 'shape': [2, 3]}
    >>> array_key((), "float64")
    {'dtype': 'number', 'dtype_numpy': '<f8', 'shape': []}
    """
    import numpy as np

    dt = np.dtype(dtype)
    shape = [int(d) for d in shape]
    if dt.names:
        numpy_type: Any = [[name, dt.fields[name][0].str] for name in dt.names]
    elif dt.kind in "US" or dt.kind == "O":
        numpy_type = "<U0"  # text of any length
    else:
        numpy_type = dt.str
    if shape:
        kind = "array"
    else:
        kind = {"b": "boolean", "i": "integer", "u": "integer", "f": "number", "U": "string", "S": "string"}.get(
            dt.kind, "string" if dt.kind == "O" else "array"
        )
    return {"dtype": kind, "dtype_numpy": numpy_type, "shape": shape}


def jsonable(value: Any) -> Any:
    """``value`` as JSON (strict: no NaN) can hold it: for ``info``.

    numpy scalars become Python numbers, arrays lists (a summary string beyond
    :data:`MAX_ITEMS` elements), bytes UTF-8 text (``"<N bytes>"`` when they
    are not text), a string's lone surrogates (bytes that were not UTF-8)
    ``\\xff``, non-finite floats the strings ``"nan"``, ``"inf"``,
    ``"-inf"``, texts longer than :data:`MAX_TEXT` are cut with a note, mapping
    keys become strings; anything else its ``str``.

    Examples
    --------
    >>> jsonable({"gain": float("nan"), 1: b"abc", "raw": b"\\xff\\x00"})
    {'gain': 'nan', '1': 'abc', 'raw': '<2 bytes>'}
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("infinity", "inf")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return _text(value[:MAX_TEXT]) + f"... (cut: {len(value)} characters)"
        return _text(value.rstrip("\x00"))
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return jsonable(raw.rstrip(b"\x00").decode("utf-8"))  # NUL padding of fixed-length text
        except UnicodeDecodeError:
            return f"<{len(raw)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)
    shape = getattr(value, "shape", None)
    if shape is not None and callable(getattr(value, "tolist", None)):  # a numpy array or scalar
        size = math.prod(shape)
        if size > MAX_ITEMS:
            return f"<array of shape {list(shape)}, dtype {getattr(value, 'dtype', '?')}>"
        if shape == () and callable(item):
            return jsonable(item())
        return jsonable(value.tolist())
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return jsonable(str(value))


def _text(value: str) -> str:
    """``value`` without lone surrogates: bytes that were not UTF-8 (h5py, fabio hand them on
    so) written ``\\xff``, which text can be encoded, stored and printed as."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # surrogates that were never bytes
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class FileMemo:
    """A few results per file, forgotten when the file changes (device, inode, size, mtime).

    Readers whose :meth:`~FileReader.read` would otherwise parse the whole file
    for each key (tables) or walk it again (HDF5) keep the parse here.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def get(self, path: str, make: Callable[[str], V]) -> V:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._items:
                value: V = self._items.pop(key)
                self._items[key] = value  # most recent last
                return value
        value = make(path)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
        return value
