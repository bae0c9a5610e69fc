"""Following runs in Tiled: WebSocket subscriptions when the server streams, else polling, said once.

Real Tiled servers: the session's (in-memory streaming cache) and a ``tiled serve config``
without a streaming cache, where Tiled refuses the WebSocket and its client would wait
for ever: scandeck gives up after a few seconds and polls.
"""

from __future__ import annotations

import threading

import pytest
from tiled_server import TiledDeployment

import scandeck


@pytest.fixture(scope="module")
def server_without_streaming(tmp_path_factory):
    server = TiledDeployment(tmp_path_factory.mktemp("tiled-no-cache"), None).start()
    yield server
    server.stop()


def _follow_new_run(cat, RE, hw):
    """``cat.follow()`` while a RunEngine writes a run: the run found and read to its stop."""
    import bluesky.plans as bp

    found = []

    def watch():
        for run in cat.follow(timeout=30):
            found.append([name for name, _ in run.follow(timeout=30)])
            return

    thread = threading.Thread(target=watch)
    thread.start()
    cat.source.change_token()  # the watcher's wait is set up (subscribed or polling) before the run starts
    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([hw.det], 3))
    thread.join(60)
    return uid, found


def test_a_streaming_server_wakes_followers_through_its_websocket(tiled_server, RE, hw):
    cat = scandeck.open_catalog(tiled_server.new_catalog())
    uid, found = _follow_new_run(cat, RE, hw)
    assert cat.source.live_mode == "subscribed"
    assert found == [["start", "descriptor", "event", "event", "event", "stop"]]
    cat.close()


def test_a_server_without_streaming_is_polled_and_said_once(server_without_streaming, RE, hw):
    cat = scandeck.open_catalog(server_without_streaming.new_catalog())
    with pytest.warns(RuntimeWarning, match="offers no live subscriptions.*polling") as said:
        uid, found = _follow_new_run(cat, RE, hw)
    assert len([w for w in said if issubclass(w.category, RuntimeWarning)]) == 1
    assert cat.source.live_mode == "polling"
    assert found == [["start", "descriptor", "event", "event", "event", "stop"]]
    again = scandeck.open_catalog(server_without_streaming.new_catalog())  # same server: not said again
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.source.change_token()
    assert again.source.live_mode == "polling"
    again.close()
    cat.close()
