"""Computed columns: ``@scandeck.column``, columns files, code hashes, and where a catalog's file is.

A *columns file* is plain Python; each function decorated with
:func:`column` takes a :class:`~scandeck.catalog.Run` and returns a number, a
string, a bool or None::

    import scandeck

    @scandeck.column("peak_cen", title="Peak centre", units="mm")
    def peak_cen(run):
        return scandeck.peaks(run).cen

:func:`load_columns` executes such a file in a fresh module namespace and returns
its columns; :func:`columns_for` adds the built-in ones (:mod:`.builtin`) to the
file of a catalog (:func:`columns_file`). A column's :attr:`ColumnSpec.code_hash`
is the sha256 of its function's source (dedented) with its title and units, so
editing a column makes its stored values stale.

The functions themselves run in worker processes (:mod:`.workers`), never here
in the process that loads the file to list its columns.
"""

from __future__ import annotations

import hashlib
import inspect
import linecache
import math
import os
import sys
import textwrap
import threading
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ColumnsFileError, InvalidAnnotation
from .builtin import BUILTIN_COLUMNS
from .model import check_column_name

if TYPE_CHECKING:
    from ..catalog import Catalog, Run

__all__ = [
    "BUILTINS",
    "COLUMNS_FILE_NAME",
    "DEFAULT_TIMEOUT",
    "ColumnSpec",
    "column",
    "column_value",
    "columns_file",
    "columns_for",
    "default_registry",
    "load_columns",
]

#: A column's time limit, in seconds, when it names none (``timeout=``) and the service none (``--timeout``).
DEFAULT_TIMEOUT = 30.0
#: The columns file beside an embedded store.
COLUMNS_FILE_NAME = "columns.py"
#: Longest string a column may return (a value is a table cell, not a document).
MAX_STRING = 10_000

ColumnFunc = Callable[["Run"], Any]


@dataclass(frozen=True)
class ColumnSpec:
    """One computed column.

    Attributes
    ----------
    name
        What queries call it: ``columns.<name>``.
    title, units
        How a table heads it (``title`` defaults to ``name``; ``units`` may be None).
    code_hash
        sha256 of the function's dedented source, title and units: a cell computed by
        other code is stale.
    func
        The function, taking a Run.
    builtin
        One of scandeck's own columns (:mod:`.builtin`), not a columns file's.
    timeout
        Seconds the function may take before its worker is killed; None for the
        default (:data:`DEFAULT_TIMEOUT`, or the service's ``--timeout``).
    summary_only
        Computed from the run's index row alone (``run.summary``: no document read),
        so any reader may compute it in its own process.
    """

    name: str
    title: str
    units: str | None
    code_hash: str
    func: ColumnFunc
    builtin: bool = False
    timeout: float | None = None
    summary_only: bool = False


# Loads run one at a time (a lock): the decorator finds the load it belongs to here.
_load_lock = threading.RLock()
_collecting: list[tuple[dict[str, ColumnSpec], dict[str, int], str]] = []
_default: dict[str, ColumnSpec] = {}


def default_registry() -> dict[str, ColumnSpec]:
    """Columns decorated outside any columns file load (in a notebook, a script), by name."""
    return dict(_default)


def code_hash(func: Callable[..., Any], title: str, units: str | None) -> str:
    """sha256 of ``func``'s dedented source plus ``title`` and ``units`` (hex).

    A function whose source cannot be read (defined with ``exec`` of no file) is
    hashed by its compiled code instead.
    """
    try:
        source = textwrap.dedent(inspect.getsource(func))
        body = source.encode()
    except (OSError, TypeError):
        import marshal

        body = marshal.dumps(func.__code__)
    h = hashlib.sha256(body)
    h.update(b"\0" + title.encode() + b"\0" + (units or "").encode())
    return h.hexdigest()


def column(
    name: str, *, title: str | None = None, units: str | None = None, timeout: float | None = None
) -> Callable[[ColumnFunc], ColumnFunc]:
    """Declare a computed column: the decorated function takes a Run and returns its value.

    Parameters
    ----------
    name
        A Python identifier: queries write ``columns.<name>``.
    title, units
        How the table heads the column.
    timeout
        Seconds the function may run for one run before it is stopped and the cell
        stored as ``timeout`` (default 30, or the service's ``--timeout``).

    Returns the function unchanged. In a columns file the column belongs to that
    file; elsewhere it is kept in :func:`default_registry`.

    Examples
    --------
    >>> @column("npts", title="Points")
    ... def npts(run):
    ...     return run.start.get("num_points")
    >>> default_registry()["npts"].title
    'Points'
    """
    try:
        check_column_name(name)
    except InvalidAnnotation as err:
        raise InvalidAnnotation(f"@scandeck.column: {err}") from None
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
        raise InvalidAnnotation(f"@scandeck.column({name!r}): timeout must be a positive number of seconds")
    shown = title if title is not None else name
    if not isinstance(shown, str) or (units is not None and not isinstance(units, str)):
        raise InvalidAnnotation(f"@scandeck.column({name!r}): title and units must be strings")

    def register(func: ColumnFunc) -> ColumnFunc:
        if not callable(func):
            raise InvalidAnnotation(f"@scandeck.column({name!r}) decorates a function taking a run")
        spec = ColumnSpec(name, shown, units, code_hash(func, shown, units), func, timeout=timeout)
        with _load_lock:
            if _collecting:
                found, lines, path = _collecting[-1]
                line = func.__code__.co_firstlineno if hasattr(func, "__code__") else 0
                if name in found:
                    raise ColumnsFileError(
                        f"{path}: column {name!r} is defined twice, at line {lines[name]} "
                        f"({found[name].func.__name__}) and at line {line} ({func.__name__}); rename one"
                    )
                found[name], lines[name] = spec, line
            else:
                _default[name] = spec
        return func

    return register


def load_columns(path: str | Path) -> dict[str, ColumnSpec]:
    """The columns a columns file defines, by name, in the order defined.

    The file runs as a fresh module (its own globals); only the functions it
    decorates with ``@scandeck.column`` count.

    Raises
    ------
    ColumnsFileError
        The file cannot be read, has a syntax error, raises while it runs (the
        message names the file and line), or defines a name twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ColumnsFileError(f"cannot read the columns file {path}: {err}") from err
    filename = str(path.resolve())
    try:
        code = compile(text, filename, "exec")
    except SyntaxError as err:
        raise ColumnsFileError(
            f"{path}, line {err.lineno}: SyntaxError: {err.msg}; fix the columns file"
        ) from None
    # inspect.getsource reads the text executed, not the file as it may be edited meanwhile.
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    module_name = f"scandeck_columns_{hashlib.sha1(filename.encode()).hexdigest()[:12]}"
    module = types.ModuleType(module_name)
    module.__file__ = filename
    found: dict[str, ColumnSpec] = {}
    with _load_lock:
        _collecting.append((found, {}, str(path)))
        sys.modules[module_name] = module  # dataclasses and pickle look their module up there
        try:
            exec(code, module.__dict__)  # noqa: S102 - running the user's columns file is the point
        except ColumnsFileError:
            raise
        except BaseException as err:  # noqa: BLE001 - SystemExit at import is the file's error too
            frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == filename]
            where = f", line {frames[-1].lineno}" if frames else ""
            raise ColumnsFileError(
                f"{path}{where}: {type(err).__name__}: {err} (while loading the columns file)"
            ) from None
        finally:
            _collecting.pop()
            sys.modules.pop(module_name, None)
    return found


#: scandeck's built-in columns (:mod:`.builtin` says what each means), by name.
BUILTINS: dict[str, ColumnSpec] = {
    name: ColumnSpec(name, title, units, code_hash(func, title, units), func, builtin=True, summary_only=only)
    for name, func, title, units, only in BUILTIN_COLUMNS
}


# -- values -------------------------------------------------------------------------------------


def column_value(value: Any) -> Any:
    """``value`` as a cell stores it: a number, string, bool or None; TypeError saying what came back.

    numpy scalars become Python ones; NaN and infinities become None (no value),
    as JSON and queries cannot hold them.

    Examples
    --------
    >>> column_value(2), column_value(float("nan")), column_value("Ni")
    (2, None, 'Ni')
    >>> column_value([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: a column returns a number, string, bool or None, not list
    """
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise TypeError(f"a column's string holds at most {MAX_STRING} characters, not {len(value)}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:  # a lone surrogate (os.fsdecode of other bytes): no store keeps it
                raise TypeError(
                    f"a column's string must be valid Unicode text: {err.reason} at character {err.start} "
                    "(decode the bytes it came from with errors='replace')"
                ) from None
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
        if isinstance(value, bytes):
            raise TypeError("a column returns a number, string, bool or None, not numpy bytes")
        return column_value(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise TypeError(f"a column's integer must fit in 64 bits, not {value}")
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    kind = type(value)
    shown = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise TypeError(f"a column returns a number, string, bool or None, not {shown}")


# -- where a catalog's columns are --------------------------------------------------------------


def columns_file(catalog: Catalog) -> Path | None:
    """The columns file of ``catalog``: the one its catalog entry names (``columns:``), else
    ``columns.py`` beside its embedded store; None when there is neither.

    An entry's ``columns:`` file counts even when missing (then :func:`columns_for`
    says so); ``columns.py`` beside a store only when it exists.
    """
    named = getattr(catalog, "columns_file", None)
    if named is not None:
        return Path(named)
    directory = getattr(catalog.source, "directory", None)
    if isinstance(directory, Path):
        candidate = directory / COLUMNS_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


_cache: dict[str, tuple[tuple[int, int], dict[str, ColumnSpec]]] = {}
_cache_lock = threading.Lock()


def file_stamp(path: Path) -> tuple[int, int]:
    """``(mtime_ns, size)``: what tells that a columns file changed."""
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


def load_cached(path: Path) -> dict[str, ColumnSpec]:
    """:func:`load_columns`, loaded again only when the file's mtime or size changed."""
    try:
        stamp = file_stamp(path)
    except OSError as err:
        raise ColumnsFileError(
            f"the columns file {path} is missing or unreadable ({err.strerror}); create it or fix "
            "the catalog entry's columns: option"
        ) from None
    key = str(path.resolve())
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    found = load_columns(path)
    with _cache_lock:
        _cache[key] = (stamp, found)
    return found


def with_builtins(path: Path | None) -> dict[str, ColumnSpec]:
    """The built-in columns, then the columns of the file at ``path`` (if any).

    Raises
    ------
    ColumnsFileError
        The file does not load, or a column of it reuses a built-in's name.
    """
    out = dict(BUILTINS)
    if path is None:
        return out
    for name, spec in load_cached(path).items():
        if name in out:
            raise ColumnsFileError(
                f"{path}: column {name!r} is a built-in column ({out[name].title}); "
                f"give yours another name (built-ins: {', '.join(BUILTINS)})"
            )
        out[name] = spec
    return out


def columns_for(catalog: Catalog) -> dict[str, ColumnSpec]:
    """Every column of ``catalog``: the built-ins and its columns file's, by name.

    The file is loaded again when its modification time or size changes.

    Raises
    ------
    ColumnsFileError
        The file does not load, is missing (a ``columns:`` entry option naming no
        file), or reuses a built-in column's name.

    Examples
    --------
    >>> sorted(columns_for(scandeck.open_catalog("memory://x")))[:3]   # doctest: +SKIP
    ['cen', 'duration', 'events']
    """
    return with_builtins(columns_file(catalog))
