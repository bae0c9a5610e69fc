"""One place that turns scandeck's errors into HTTP answers.

Every handler verb is wrapped in :func:`json_errors`: a :class:`~scandeck.exceptions.ScandeckError`
becomes an :class:`ApiError` with the status of :data:`STATUS` (4xx for bad input: an
unknown run is 404, a query typo 400), and the base handler's ``write_error`` answers
``{"error": KIND, "message": TEXT, ...}``. Only a bug answers 500.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from tornado import web

from ..exceptions import (
    AmbiguousRecord,
    AmbiguousUID,
    FactsNotSupported,
    InvalidQuery,
    QuerySyntaxError,
    RecordNotFound,
    RerunSetupError,
    RunNotFound,
    ScandeckError,
    StoreError,
    StreamNotFound,
    UnknownName,
    UnsafeValue,
)

__all__ = ["ApiError", "JobNotFound", "JobNotRunning", "STATUS", "UnknownCatalog", "api_error", "json_errors"]


class UnknownCatalog(UnknownName):
    """A ``catalog`` parameter that is not one of the names ``GET catalogs`` lists."""


class JobNotFound(ScandeckError, KeyError):
    """No rerun job has that id (jobs live as long as the server)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobNotRunning(ScandeckError, ValueError):
    """A rerun job that already ended cannot be cancelled."""


#: HTTP status of each error, first match wins (subclasses before their bases).
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (UnknownCatalog, 404),
    (RunNotFound, 404),
    (StreamNotFound, 404),
    (RecordNotFound, 404),
    (JobNotFound, 404),
    (AmbiguousUID, 400),
    (AmbiguousRecord, 400),
    (QuerySyntaxError, 400),
    (InvalidQuery, 400),
    (RerunSetupError, 400),
    (UnsafeValue, 400),  # a run value code must not carry: nothing is inserted
    (JobNotRunning, 409),
    (FactsNotSupported, 501),  # the catalog's store keeps no tags, comments or cells: not the request's fault
    (UnknownName, 404),
    (StoreError, 503),  # the store is there but cannot be read: not the request's fault
    (ScandeckError, 400),
)


class ApiError(web.HTTPError):
    """An error answer: ``status`` and the JSON body ``{"error": kind, "message": message, **extra}``.

    Examples
    --------
    >>> raise ApiError(400, "BadParameter", "limit must be an integer from 1 to 500")  # doctest: +SKIP
    """

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        # "%s" keeps a "%" in the message from being taken for a format by tornado's logging.
        super().__init__(status, "%s", message)
        self.body: dict[str, Any] = {"error": kind, "message": message, **extra}


def api_error(err: ScandeckError, status: int | None = None, **extra: Any) -> ApiError:
    """The answer for ``err``: status from :data:`STATUS` (or ``status``), kind = its class name.

    A query syntax error also carries ``position`` (0-based column) and ``query`` (the
    text); ``extra`` adds fields to the body.
    """
    if status is None:
        status = next(code for kind, code in STATUS if isinstance(err, kind))
    if isinstance(err, QuerySyntaxError):
        message = f"{err.message} at column {err.position + 1}"
        extra = {"position": err.position, "query": err.text}
    else:
        message = str(err)
    if isinstance(err, (AmbiguousUID, AmbiguousRecord)):
        extra["matches"] = list(err.matches)
    return ApiError(status, type(err).__name__, message, **extra)


P = ParamSpec("P")
R = TypeVar("R")


def json_errors(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Map the scandeck errors a handler verb raises to :class:`ApiError` answers."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except web.HTTPError:
            raise
        except ScandeckError as err:
            raise api_error(err) from err

    return wrapper
