"""Every error scandeck raises on purpose.

Each subclasses :class:`ScandeckError` and the built-in it resembles, so
``except KeyError`` keeps working for a missing run. Messages say what happened
and what to do next.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .safe_text import printable


class ScandeckError(Exception):
    """Root of scandeck's errors."""


class _NotFound(KeyError):
    """A KeyError whose message prints as written (KeyError would repr() it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunNotFound(ScandeckError, _NotFound):
    """No run matches the uid, uid prefix, scan_id or index asked for."""


class AmbiguousUID(ScandeckError, _NotFound):
    """A uid prefix matches more than one run."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = matches
        # (uids are any text a RunEngine was given: escaped, as everywhere they are shown)
        shown = printable(", ".join(matches[:10])) + (" ..." if len(matches) > 10 else "")
        super().__init__(
            f"uid prefix {prefix!r} matches {len(matches)} runs: {shown}; give more characters of the uid"
        )


class StreamNotFound(ScandeckError, _NotFound):
    """The run has no stream of that name."""


class InvalidDocument(ScandeckError, ValueError):
    """A document breaks the event model or the order of a run, or holds a value no
    store can hold; it was not stored.

    ``name`` is the document's name, ``rule`` what it broke and ``field`` the path of
    the offending value (``"data/det/3"``) when one value is to blame, else None.
    """

    def __init__(self, name: str, doc: object, rule: str, *, field: str | None = None) -> None:
        self.name = name
        self.doc = doc
        self.rule = rule
        self.field = field
        ident = ""
        if isinstance(doc, dict):
            for key in ("uid", "datum_id", "run_start", "descriptor"):
                if key in doc and isinstance(doc[key], str):
                    ident = f" {key}={doc[key]!r}"
                    break
        super().__init__(f"rejected {name} document{ident}: {rule}. Nothing was stored for it.")


class QuerySyntaxError(ScandeckError, ValueError):
    """A text query could not be parsed."""

    def __init__(self, text: str, position: int, message: str) -> None:
        self.text = text
        self.position = position
        self.message = message
        caret = " " * position + "^"
        super().__init__(f"{message} at column {position + 1}\n  {text}\n  {caret}")


class UnknownHandler(ScandeckError, _NotFound):
    """External data uses a spec or mimetype no handler is registered for."""


class UnknownName(ScandeckError, _NotFound):
    """A registry lookup (source scheme, catalog entry, ...) found nothing."""


class NotAGrid(ScandeckError, ValueError):
    """A run's stream cannot be put on a rectilinear grid (no ``hints.gridding``, no shape, ...)."""


class UnknownKernel(UnknownName):
    """No Jupyter kernelspec of that name, or for that language, is installed here."""


class StoreError(ScandeckError, OSError):
    """The store cannot be opened or written."""


class ReadOnlyStore(StoreError, PermissionError):
    """A write to a store opened read-only (``?mode=ro``, or a directory that is not writable)."""


class AuthenticationFailed(StoreError, PermissionError):
    """A store's server (Redis) refused the password in the URI, or wants one and got none."""


class FollowTimeout(ScandeckError, TimeoutError):
    """Following a live run or catalog hit its timeout."""


class DocumentFileError(ScandeckError, ValueError):
    """A document file cannot be read or written.

    Raised for bad content (with the file and the line number or document index),
    an unrecognised layout, or a write that would overwrite an existing file.
    ``path``, ``line`` and ``index`` are set when known, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        index: int | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.index = index
        super().__init__(message)


def missing_dependency(package: str, extra: str) -> ScandeckError:
    """An error for an optional dependency that is not installed."""
    return ScandeckError(f"this needs the {package!r} package: pip install 'scandeck[{extra}]'")


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or raise :func:`missing_dependency` naming its extra.

    Examples
    --------
    >>> h5py = require("h5py", "hdf5")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_dependency(module.partition(".")[0], extra) from exc


class InvalidQuery(ScandeckError, ValueError):
    """A query object was built with an unusable key, operator or value."""


#: The name issue 13 and databroker users know: ``search()`` raises it for a query it cannot answer
#: (an unknown operator, ``search(42)``). The same class as :class:`InvalidQuery`.
QueryError = InvalidQuery


# --- the run table (scandeck.runtable) ------------------------------------------------------


class InvalidAnnotation(ScandeckError, ValueError):
    """A comment, tag or column name that cannot be stored (empty, too long, not text); nothing was stored."""


class FactsNotSupported(ScandeckError, NotImplementedError):
    """The catalog's store cannot keep comments, tags or computed columns (say which, and what can)."""


class ColumnsFileError(ScandeckError):
    """A columns file could not be loaded: its path, and the error with its line."""


# --- external data (scandeck.handlers) ---------------------------------------------------


class FillError(ScandeckError):
    """External data referenced by a run could not be read."""


class _MissingDocument(FillError, _NotFound):
    """A document the Filler needs was never fed to it."""


class DatumNotFound(_MissingDocument):
    """A datum id that no ``datum`` / ``datum_page`` document declared."""


class ResourceNotFound(_MissingDocument):
    """A datum or stream_datum whose (stream_)resource the Filler never saw."""


class ExternalFileMissing(FillError, FileNotFoundError):
    """The file a resource points to is not there (``.path``, ``.resource_uid``)."""

    def __init__(self, message: str, path: str, resource_uid: str) -> None:
        super().__init__(message)
        self.path = path
        self.resource_uid = resource_uid


class FileMismatch(FillError):
    """A file's bytes are not those its documents declare (size or sha256): both are named."""


class UnreadableFile(ScandeckError, ValueError):
    """A watched file that its format reader cannot read (``.path``, ``.reader``): the reason is the message."""

    def __init__(self, message: str, path: str, reader: str) -> None:
        super().__init__(message)
        self.path = path
        self.reader = reader


class NotWatchedRun(ScandeckError, ValueError):
    """``scandeck.files`` was given a run that ``scandeck watch`` did not write (``.uid``, ``.plan_name``)."""

    def __init__(self, message: str, uid: str, plan_name: str | None) -> None:
        super().__init__(message)
        self.uid = uid
        self.plan_name = plan_name


class DatumIndexError(FillError, IndexError):
    """A datum asks for frames or rows beyond the end of its file."""


class LateStreamValue(FillError):
    """A stream_datum's value arrived after every live consumer had taken its row.

    The row was handed on (and forgotten) without it; read the finished run
    (``run.primary.read()``) for the complete values.
    """

    def __init__(self, key: str, seq_num: int) -> None:
        super().__init__(
            f"the value of {key!r} for seq_num {seq_num} arrived after its row was handed on; "
            "read the finished run (run.primary.read()) for it"
        )
        self.key, self.seq_num = key, seq_num


# --- provenance (scandeck.provenance.store) ----------------------------------------------


class RecordNotFound(ScandeckError, _NotFound):
    """No provenance record has that id or id prefix."""


class AmbiguousRecord(ScandeckError, _NotFound):
    """A record id prefix matches more than one record (``.matches`` lists their ids)."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(matches[:10]) + (" ..." if len(matches) > 10 else "")
        super().__init__(
            f"record id prefix {prefix!r} matches {len(matches)} records: {shown}; give more characters of the id"
        )


class DuplicateRecord(ScandeckError, ValueError):
    """A different record with the same id is already in the provenance store."""


class RerunSetupError(ScandeckError, ValueError):
    """A rerun cannot start: its notebook has no scan parameter, no targets, ..."""


class InvalidGlue(ScandeckError, ValueError):
    """``scandeck.glue(name, value)`` was given a name or value it does not publish (too big, NaN, ...)."""


class UnsupportedGlueType(InvalidGlue, TypeError):
    """``scandeck.glue`` was given a value of a type it does not publish (a dict, an object, an array of 2-D)."""


# --- code the panel inserts (scandeck.server.snippets) ------------------------------------


class UnsafeValue(ScandeckError, ValueError):
    """A run value (uid, stream or catalog name) that scandeck will not put into code.

    ``what`` names the value (``"uid"``, ``"stream name"``, ...) and ``value`` holds it.
    """

    def __init__(self, what: str, value: str, rule: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"the {what} {printable(repr(value)[:80])} cannot be put into a code cell: {rule}")


# --- live derived runs (scandeck.derived_live) ----------------------------------------------


class DerivedValueError(ScandeckError, TypeError):
    """A pipeline ending in ``to_run`` emitted a value a run cannot store, or one whose type,
    shape or keys differ from the first value's; the message names the key and both types."""


class PipelineError(ScandeckError, ValueError):
    """A pipeline cannot end in ``to_run`` as built (no ``scandeck.live`` source of one run, ...)."""
