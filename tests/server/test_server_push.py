"""The push channel ``WebSocket scandeck/api/events`` of the ``scandeck.server`` extension.

A writer thread stores a run's documents one at a time, each only after the client
saw the previous state, so every step is observed without timing assumptions.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time

import pytest
from event_model import compose_run
from jupyter_server.auth import Authorizer
from server_support import scandeck_environment, server_config, until, write_run
from tornado.httpclient import HTTPClientError

import scandeck

DEADLINE = 30.0


class DenyScandeck(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "scandeck"


@pytest.fixture
def paths(monkeypatch, tmp_path):
    return scandeck_environment(monkeypatch, tmp_path)


@pytest.fixture
def server_settings():
    return {}


@pytest.fixture
def jp_server_config(paths, server_settings):
    config = server_config(paths)
    config["ServerApp"].update(server_settings)
    return config


@pytest.fixture
def app(jp_serverapp):
    """The running ScandeckApp."""
    return jp_serverapp.web_app.settings["scandeck"]


@pytest.fixture
def connect(jp_ws_fetch):
    """Open WebSockets to the events endpoint; all closed (and the close awaited) at the end."""
    sockets = []

    async def open_socket(catalog: str | None = "", **kwargs):
        params = {} if catalog is None else {"catalog": catalog}
        ws = await jp_ws_fetch("scandeck", "api", "events", params=params, **kwargs)
        sockets.append(ws)
        return ws

    yield open_socket
    loop = asyncio.get_event_loop()
    for ws in sockets:
        if ws.close_code is None:
            ws.close(1000)
            loop.run_until_complete(_drain(ws))


async def _drain(ws) -> None:
    """Read until the server's close reaches us, so no socket is left half open.

    Close with a code (``ws.close(1000)``): the server echoes it into ``ws.close_code``.
    """
    deadline = time.monotonic() + DEADLINE
    while ws.close_code is None and time.monotonic() < deadline:
        try:
            if await asyncio.wait_for(ws.read_message(), 1.0) is None:
                return
        except asyncio.TimeoutError:
            continue


async def receive(ws, timeout: float = DEADLINE) -> dict:
    message = await asyncio.wait_for(ws.read_message(), timeout)
    assert message is not None, "the server closed the socket"
    return json.loads(message)


async def next_run_message(ws, uid: str) -> dict:
    """The next ``run`` message about ``uid`` (others are skipped)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        message = await receive(ws, max(deadline - time.monotonic(), 0.1))
        if message["type"] == "run" and message["run"]["uid"] == uid:
            return message["run"]


def _writer_thread(store_path, steps: queue.Queue, uid: str, events: int, errors: list) -> threading.Thread:
    """Write run ``uid`` in a thread: start and descriptor, then each event and the stop document,
    each after ``steps`` says the client saw the run's previous event count."""

    def write() -> None:
        cat = scandeck.open_catalog(store_path)
        writer = cat.writer()
        try:
            bundle = compose_run(uid=uid, metadata={"plan_name": "count", "num_points": events, "sample": "Ni"})
            writer("start", bundle.start_doc)
            desc = bundle.compose_descriptor(
                name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim:x"}}
            )
            writer("descriptor", desc.descriptor_doc)
            for i in range(events):
                assert steps.get(timeout=DEADLINE) == i
                writer("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": time.time()}))
            assert steps.get(timeout=DEADLINE) == events
            writer("stop", bundle.compose_stop())
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)
        finally:
            writer.close()
            cat.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


async def test_hello_then_each_event_count_then_the_final_status(connect, paths, app):
    ws = await connect("")
    assert await receive(ws) == {"type": "hello", "catalog": ""}
    await until(lambda: app.push.watching == [""], what="the watcher")
    uid = "push-test-run-1"
    steps: queue.Queue = queue.Queue()
    errors: list = []
    thread = _writer_thread(paths["store"], steps, uid, 5, errors)
    seen = []
    while True:
        run = await next_run_message(ws, uid)
        seen.append((run["num_events"], run["status"]))
        if run["status"] != "running":
            break
        steps.put(run["num_events"])
    await asyncio.get_running_loop().run_in_executor(None, thread.join, DEADLINE)
    assert not errors
    assert seen == [
        (0, "running"),
        (1, "running"),
        (2, "running"),
        (3, "running"),
        (4, "running"),
        (5, "running"),
        (5, "success"),
    ]
    assert set(run) == {
        "uid",
        "scan_id",
        "time",
        "plan_name",
        "sample",
        "operator",
        "purpose",
        "status",
        "num_events",
        "num_points",
        "duration",
    }
    assert run["num_points"] == 5 and run["sample"] == "Ni" and run["duration"] is not None


async def test_a_run_already_running_when_the_client_connects_is_followed(connect, paths, app):
    cat = scandeck.open_catalog()
    writer = cat.writer()
    try:
        bundle = compose_run(uid="push-test-run-2", metadata={"plan_name": "count"})
        writer("start", bundle.start_doc)
        desc = bundle.compose_descriptor(
            name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "s"}}
        )
        writer("descriptor", desc.descriptor_doc)
        ws = await connect("")
        assert (await receive(ws))["type"] == "hello"
        # Once the watcher has looked, the run it found running is followed: its next change is pushed.
        await until(lambda: app.push.watcher("") and app.push.watcher("").ready.is_set(), what="the watcher")
        writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": time.time()}))
        run = await next_run_message(ws, "push-test-run-2")
        assert run["num_events"] == 1 and run["status"] == "running"
        writer("stop", bundle.compose_stop(exit_status="abort", reason="stopped"))
        run = await next_run_message(ws, "push-test-run-2")
        assert run["status"] == "abort"
    finally:
        writer.close()
        cat.close()


async def test_switching_catalogs_and_the_watchers_follow_the_clients(connect, paths, app):
    first = await connect("")
    second = await connect("")
    assert (await receive(first))["type"] == "hello" and (await receive(second))["type"] == "hello"
    await until(lambda: app.push.watching == [""], what="one watcher for two clients")

    first.write_message(json.dumps({"catalog": "beamtime"}))
    assert await receive(first) == {"type": "hello", "catalog": "beamtime"}
    await until(lambda: app.push.watching == ["", "beamtime"], what="a watcher per catalog")

    first.write_message(json.dumps({"catalog": "../../etc"}))
    error = await receive(first)
    assert error["type"] == "error" and error["error"] == "UnknownCatalog"
    first.write_message("not json")
    error = await receive(first)
    assert error["type"] == "error" and error["error"] == "BadMessage"

    other = scandeck.open_catalog(paths["beamtime"])
    try:
        w = other.writer()
        uid = write_run(w, sample="Fe").start_doc["uid"]
        w.close()
    finally:
        other.close()
    run = await next_run_message(first, uid)  # still on beamtime after the refused switch
    assert run["status"] == "success" and run["sample"] == "Fe"

    second.close(1000)
    await _drain(second)
    await until(lambda: app.push.watching == ["beamtime"], what="the default catalog's watcher to stop")
    stopped = list(app.push._stopped)
    first.close(1000)
    await _drain(first)
    await until(lambda: app.push.watching == [], what="the last watcher to stop")
    await until(lambda: not any(w.alive for w in app.push._stopped + stopped), what="the watcher threads to end")


async def test_an_unknown_catalog_is_refused_before_the_upgrade(connect, app):
    for name in ("nope", "../../etc", "/tmp/x"):
        with pytest.raises(HTTPClientError) as info:
            await connect(name)
        assert info.value.code == 404
    assert app.push.watching == []


async def test_the_socket_refuses_unauthenticated_clients(connect, app):
    with pytest.raises(HTTPClientError) as info:
        await connect("", headers={"Authorization": ""})
    assert info.value.code == 403
    with pytest.raises(HTTPClientError) as info:
        await connect("", headers={"Authorization": "token wrong"})
    assert info.value.code == 403
    assert app.push.watching == []


@pytest.mark.parametrize("server_settings", [{"authorizer_class": DenyScandeck}])
async def test_the_socket_asks_the_authorizer(connect, app, server_settings):
    with pytest.raises(HTTPClientError) as info:
        await connect("")
    assert info.value.code == 403


async def test_server_stop_ends_the_watchers(connect, app, jp_serverapp):
    ws = await connect("")
    assert (await receive(ws))["type"] == "hello"
    await until(lambda: app.push.watching == [""], what="the watcher")
    watcher = app.push.watcher("")
    await app.stop_extension()
    assert not watcher.alive and app.push.watching == []
    assert app.catalogs._open == {}
