"""The push channel: ``WebSocket scandeck/api/events?catalog=NAME``.

:class:`PushHub` keeps, on the event loop, which client watches which catalog, one
:class:`~scandeck.server.watcher.RunWatcher` thread per catalog with at least one
client (started with the first, stopped when the last leaves), and sends job
messages to every client. :class:`EventsHandler` is the WebSocket: authenticated and
authorized like the REST endpoints, it sends ``hello`` and then what the hub gives it;
a client message ``{"catalog": NAME}`` switches catalogs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, cast

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..exceptions import ScandeckError
from .base import AUTH_RESOURCE, load_json
from .errors import api_error
from .serialize import dumps
from .watcher import RunWatcher

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .app import ScandeckApp

__all__ = ["EventsHandler", "PushHub"]

log = logging.getLogger(__name__)

#: Seconds the hub waits for each watcher thread at server stop.
JOIN_TIMEOUT = 5.0


class Client(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class PushHub:
    """Clients, the catalog each watches, and the watcher threads. Use on the event loop only."""

    def __init__(self) -> None:
        self._clients: dict[Client, str] = {}
        self._watchers: dict[str, RunWatcher] = {}
        self._stopped: list[RunWatcher] = []

    @property
    def watching(self) -> list[str]:
        """Names of the catalogs with a live watcher thread."""
        return sorted(self._watchers)

    def watcher(self, name: str) -> RunWatcher | None:
        """The live watcher of catalog ``name``, if any."""
        return self._watchers.get(name)

    def subscribe(self, client: Client, name: str, catalog: Catalog) -> None:
        """Send ``client`` the run messages of ``catalog`` (instead of its previous one)."""
        previous = self._clients.get(client)
        self._clients[client] = name
        if previous is not None and previous != name:
            self._release(previous)
        if name not in self._watchers:
            loop = IOLoop.current()
            watcher = RunWatcher(name, catalog, lambda message: loop.add_callback(self._deliver, watcher, message))
            self._watchers[name] = watcher
            watcher.start()

    def unsubscribe(self, client: Client) -> None:
        """Forget ``client``; stop its catalog's watcher if it was the last one watching."""
        name = self._clients.pop(client, None)
        if name is not None:
            self._release(name)

    def _release(self, name: str) -> None:
        if name in self._clients.values():
            return
        watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.stop()
            self._stopped = [w for w in self._stopped if w.alive] + [watcher]

    def _deliver(self, watcher: RunWatcher, message: dict[str, Any]) -> None:
        if self._watchers.get(watcher.name) is not watcher:
            return  # a stopped watcher's last words
        for client, name in list(self._clients.items()):
            if name == watcher.name:
                client.send(message)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every client (job progress)."""
        for client in list(self._clients):
            client.send(message)

    def close(self) -> None:
        """Stop and join every watcher thread (server stop). Blocking for at most a second or so."""
        watchers = list(self._watchers.values()) + self._stopped
        self._watchers, self._stopped = {}, []
        for watcher in watchers:
            watcher.stop()
        for watcher in watchers:
            watcher.join(JOIN_TIMEOUT)


class EventsHandler(ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """``WebSocket scandeck/api/events?catalog=NAME``: hello, run and job messages."""

    auth_resource = AUTH_RESOURCE

    @property
    def app(self) -> ScandeckApp:
        # jupyter_server types it as any ExtensionApp; the one that registered this handler is ours.
        return cast("ScandeckApp", self.extensionapp)

    def set_default_headers(self) -> None:
        """No JupyterHandler page headers on a WebSocket (as jupyter_server's kernel socket)."""

    async def pre_get(self) -> None:
        """Authorize (read on ``scandeck``) and open the catalog, before the upgrade: errors stay HTTP."""
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        )
        if not authorized:
            raise web.HTTPError(403)
        self.catalog_name = self.get_argument("catalog", "")
        try:
            self.catalog = await self._open_catalog(self.catalog_name)
        except ScandeckError as err:
            error = api_error(err)
            raise web.HTTPError(error.status_code, "%s", error.body["message"]) from err

    async def _open_catalog(self, name: str) -> Catalog:
        self.app.remember_loop()
        return await IOLoop.current().run_in_executor(self.app.executor, self.app.catalogs.get, name)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Upgrade to a WebSocket, once authenticated, authorized and the catalog is known."""
        await self.pre_get()
        result = super().get(*args, **kwargs)
        if result is not None:
            await result

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)  # starts the keep-alive pings
        self.send({"type": "hello", "catalog": self.catalog_name})
        self.app.push.subscribe(self, self.catalog_name, self.catalog)

    def on_message(self, message: str | bytes) -> None:
        """``{"catalog": NAME}`` switches catalogs; anything else is answered with an error message."""
        try:
            data = load_json(message)
            name = data["catalog"]
            if not isinstance(name, str):
                raise TypeError(name)
        except (ValueError, KeyError, TypeError):
            self.send(
                {
                    "type": "error",
                    "error": "BadMessage",
                    "message": 'the only message a client sends is {"catalog": NAME}',
                }
            )
            return
        IOLoop.current().add_callback(self._switch, name)

    async def _switch(self, name: str) -> None:
        try:
            catalog = await self._open_catalog(name)
        except ScandeckError as err:
            self.send({"type": "error", **api_error(err).body})
            return
        if self.ws_connection is None:
            return  # closed meanwhile
        self.catalog_name, self.catalog = name, catalog
        self.send({"type": "hello", "catalog": name})
        self.app.push.subscribe(self, name, catalog)

    def send(self, message: dict[str, Any]) -> None:
        """Write one message; a client that is gone is dropped from the hub."""
        try:
            self.write_message(dumps(message))
        except WebSocketClosedError:
            self.app.push.unsubscribe(self)

    def on_close(self) -> None:
        if self.ping_callback is not None:
            self.ping_callback.stop()
        self.app.push.unsubscribe(self)
