"""The base of every REST handler: authentication, JSON in and out, arguments, blocking work off the loop."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .errors import ApiError
from .serialize import dumps

if TYPE_CHECKING:
    from .app import ScandeckApp

__all__ = [
    "AUTH_RESOURCE",
    "MAX_JSON_DEPTH",
    "NotFoundHandler",
    "ScandeckHandler",
    "check_id",
    "check_uid",
    "load_json",
]

#: The resource name every endpoint is authorized on (``Authorizer.is_authorized(..., resource)``).
AUTH_RESOURCE = "scandeck"

#: Record and job ids in URLs: no separators, no dots, bounded.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
#: Run uids (and prefixes) are any text a RunEngine was given; only looked up, never a path.
_UID = re.compile(r"^[^\x00-\x1f/\\]{1,200}$")
#: How deeply a JSON request body may nest (the API's bodies nest two levels).
MAX_JSON_DEPTH = 32

T = TypeVar("T")


def check_id(value: str, what: str) -> str:
    """``value`` if it looks like an id; else 400 ``BadId`` (a ``../`` never reaches a lookup)."""
    if not _ID.match(value):
        raise ApiError(400, "BadId", f"{value[:60]!r} is not a {what}: letters, digits, '-' and '_' only")
    return value


def json_depth(value: Any) -> int:
    """How many arrays and objects deep ``value`` nests (0 for a scalar), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            todo.extend((x, depth + 1) for x in item)
    return deepest


def load_json(data: str | bytes) -> Any:
    """``json.loads(data)``, refusing text nested deeper than :data:`MAX_JSON_DEPTH` with ValueError.

    Deep nesting would otherwise end in RecursionError, in the parser or in what reads the value.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep")
    return value


def check_uid(value: str) -> str:
    """``value`` if it can be a run uid or uid prefix; else 400 ``BadId``."""
    if not _UID.match(value):
        raise ApiError(400, "BadId", f"{value[:60]!r} is not a run uid or uid prefix")
    return value


class ScandeckHandler(ExtensionHandlerMixin, APIHandler):
    """A JSON endpoint of the scandeck API (see ``labextension/API.md``)."""

    auth_resource = AUTH_RESOURCE

    @property
    def app(self) -> ScandeckApp:
        # jupyter_server types it as any ExtensionApp; the one that registered this handler is ours.
        return cast("ScandeckApp", self.extensionapp)

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the extension's thread pool: the event loop stays free."""
        self.app.remember_loop()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.app.executor, functools.partial(fn, *args, **kwargs))

    # -- output ------------------------------------------------------------------------------------

    def reply(self, data: Any, status: int = 200) -> None:
        """Answer ``data`` as strict JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error as ``{"error": KIND, "message": TEXT, ...}``, also jupyter_server's own (403, 404)."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = exc.body
        elif isinstance(exc, web.HTTPError):
            reason = self._reason or "Error"
            try:
                text = exc.log_message % exc.args if exc.log_message else reason
            except (TypeError, ValueError):
                text = exc.log_message or reason
            body = {"error": reason.replace(" ", ""), "message": text}
        else:
            body = {
                "error": "InternalError",
                "message": "the scandeck server extension failed; the server log has the traceback",
            }
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    # -- input -------------------------------------------------------------------------------------

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        """Query argument ``name`` as an int in ``[low, high]``; 400 ``BadParameter`` otherwise."""
        text = self.get_argument(name, None)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ApiError(
                400, "BadParameter", f"{name} must be an integer from {low} to {high}, not {text[:40]!r}"
            )
        return value

    def catalog_arg(self) -> str:
        """The ``catalog`` query argument ("" = the default catalog); checked when the catalog is opened."""
        return self.get_argument("catalog", "")

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object; 400 ``BadJSON`` otherwise."""
        try:
            body = load_json(self.request.body or b"")
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, "BadJSON", f"the request body must be a JSON object: {err}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadJSON", f"the request body must be a JSON object, not {type(body).__name__}")
        return body


class NotFoundHandler(ScandeckHandler):
    """Any other path under ``scandeck/api/``: a JSON 404 (the panel's probe reads it), not a page."""

    @staticmethod
    def _missing(path: str) -> ApiError:
        return ApiError(404, "NotFound", f"no endpoint scandeck/api/{path[:80]}; labextension/API.md lists them")

    @web.authenticated
    @authorized("read")
    async def get(self, path: str) -> None:
        raise self._missing(path)

    @web.authenticated
    @authorized("write")
    async def post(self, path: str) -> None:
        raise self._missing(path)

    @web.authenticated
    @authorized("write")
    async def delete(self, path: str) -> None:
        raise self._missing(path)
