"""Wake-ups for followers of a Tiled catalog: WebSocket subscriptions, or polling.

Readers never take data from the subscription: a wake-up only says "read
again", and the reader reads what is stored (so a missed or duplicated update
loses nothing). With a server that has a streaming cache (Redis, or the memory
cache of ``SimpleTiledServer``) bluesky-tiled-plugins' ``subscribe_to_streams``
tells of new runs and of new rows of every run created after we subscribed;
runs already running then, and stop documents (Tiled sends no update for the
run's metadata), are seen by the readers' regular re-reads (every 0.5 s at most).

Against a server without a streaming cache Tiled refuses the WebSocket, and its
client then blocks for ever (``start_in_thread`` waits for a connection with no
timeout); so the subscription is started in a thread of ours, given
:data:`PROBE` seconds, and abandoned for polling, said once per server.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any

from .connect import TiledTarget

__all__ = ["LiveSignals"]

#: Seconds a subscription may take to connect before we poll instead.
PROBE = 3.0
#: Seconds between polls of the container's length (polling mode).
POLL = 0.5

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _disconnect(subscription: Any) -> None:
    try:
        subscription.disconnect()
    except Exception:  # noqa: BLE001, S110 - the server may be gone already; nothing to keep
        pass


class LiveSignals:
    """Versions that move when the container or one of its runs changes, and waits on them."""

    def __init__(self, container: Any, target: TiledTarget) -> None:
        self._container = container
        self._target = target
        self._changed = threading.Condition()
        self._version = 0
        self._runs: dict[str, int] = {}
        self._subscription: Any = None
        self._closed = False
        self.subscribed = self._subscribe()

    # -- the subscription --------------------------------------------------------------------

    def _subscribe(self) -> bool:
        try:
            from bluesky_tiled_plugins.streaming import subscribe_to_streams
        except ImportError:  # an older plugin: poll
            return self._poll_instead("this bluesky-tiled-plugins has no stream subscriptions")
        refused = self._websocket_refused()
        if refused:
            return self._poll_instead(refused)
        result: dict[str, Any] = {}

        def connect() -> None:
            try:
                result["sub"] = subscribe_to_streams(
                    self._container, self._on_update, streams=None, start=None, run_filter=self._on_new_run
                )
            except Exception as err:  # noqa: BLE001 - any failure means: poll
                result["error"] = err

        thread = threading.Thread(target=connect, name="scandeck-tiled-subscribe", daemon=True)
        thread.start()
        thread.join(PROBE)
        if "sub" in result:
            self._subscription = result["sub"]
            return True
        why = f"{type(result['error']).__name__}: {result['error']}" if "error" in result else "no answer"
        return self._poll_instead(why)

    def _websocket_refused(self) -> str | None:
        """Why the server refuses a WebSocket to the container (no streaming cache), or None.

        Asked with a handshake of our own, so that a refusal is not an exception in tiled's
        thread; for servers with logins (whose WebSockets need a fresh key) the subscription
        itself is the probe.
        """
        context = self._container.context
        if context.server_info.authentication.providers:
            return None
        try:
            from websockets.exceptions import InvalidStatus, WebSocketException
            from websockets.sync.client import connect
        except ImportError:
            return None
        url = self._container.uri.replace("/api/v1/metadata/", "/api/v1/stream/single/", 1)
        url = "ws" + url.removeprefix("http") + "?envelope_format=msgpack"
        headers = {"Authorization": f"Apikey {context.api_key}"} if context.api_key else {}
        try:
            with connect(url, additional_headers=headers, open_timeout=PROBE, close_timeout=1):
                return None
        except InvalidStatus as err:
            return f"its WebSocket answered HTTP {err.response.status_code}"
        except (WebSocketException, OSError, TimeoutError) as err:
            return f"its WebSocket failed: {type(err).__name__}"

    def _poll_instead(self, why: str) -> bool:
        with _warned_lock:
            first = self._target.server not in _warned
            _warned.add(self._target.server)
        if first:
            warnings.warn(
                f"the Tiled server at {self._target.server} offers no live subscriptions ({why}); "
                f"scandeck follows its runs by polling every {POLL} s. A server with a streaming cache "
                "(tiled's streaming_cache setting) pushes new data at once.",
                RuntimeWarning,
                stacklevel=4,
            )
        return False

    # Bound methods, held by the subscription (it keeps callbacks by weak reference).
    def _on_new_run(self, update: Any) -> bool:
        """Wake the waiters; follow the new run's streams only if these credentials may read it.

        Tiled announces every new child, while its access policy hides some: a subscription
        to one of those would fail (404) in tiled's own thread.
        """
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        try:
            from tiled.queries import KeysFilter

            return len(self._container.new_variation().search(KeysFilter(keys=[str(update.key)]))) > 0
        except Exception:  # noqa: BLE001 - cannot tell: do not subscribe; readers still poll
            return False

    def _on_update(self, update: Any) -> None:
        uid = str(getattr(update, "run_uid", ""))
        with self._changed:
            self._version += 1
            self._runs[uid] = self._runs.get(uid, 0) + 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            sub, self._subscription = self._subscription, None
            self._changed.notify_all()
        if sub is not None:
            # disconnect() can wait for ever on a subscription still connecting inside tiled's
            # start_in_thread: give it a few seconds in a thread of its own, never the caller's.
            thread = threading.Thread(target=_disconnect, args=(sub,), name="scandeck-tiled-bye", daemon=True)
            thread.start()
            thread.join(3 * PROBE)

    # -- tokens and waits --------------------------------------------------------------------

    def _length(self) -> int:
        return len(self._container.new_variation())

    def token(self) -> object:
        """The catalog's state: a version (subscribed), or the number of runs (polling)."""
        if self.subscribed:
            return ("v", self._version)
        return ("n", self._length())

    def wait(self, token: object, timeout: float) -> bool:
        """Block until the catalog changed since ``token`` (or ``timeout``); False on timeout."""
        if self.subscribed:
            with self._changed:
                return self._changed.wait_for(lambda: self._closed or ("v", self._version) != token, timeout)
        deadline = time.monotonic() + timeout
        while True:
            if self._closed:
                return True
            if ("n", self._length()) != token:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL, left))

    def run_token(self, uid: str) -> int:
        with self._changed:
            return self._runs.get(uid, 0)

    def wait_run(self, uid: str, token: int, timeout: float) -> bool:
        """Block until an update of run ``uid`` arrived since ``token`` (or ``timeout``; polling: sleep)."""
        if not self.subscribed:
            time.sleep(min(timeout, POLL))
            return False
        with self._changed:
            moved = lambda: self._closed or self._runs.get(uid, 0) != token  # noqa: E731
            return self._changed.wait_for(moved, min(timeout, POLL))
