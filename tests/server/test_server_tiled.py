"""The panel's REST API over a Tiled catalog, and who sees what through it.

One real ``tiled serve config`` deployment for the module with logins and tiled's
tag-based access policy (:mod:`tiled_access`): a run of alice's beamtime, one of
bob's, and a run of alice's still being written (a start, a descriptor and two events
through ``TiledWriter``, no stop). A site-wide catalog file names the container with
the *admin's* key; the server must still answer each user with what their own key
allows, and no key ever reaches the browser.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from event_model import compose_run
from redis_server import RedisServer
from server_support import Api, scandeck_environment, server_config, until
from tiled_access import AccessSetup, start_access_deployment

ENTRY = "facility"

CATALOG_FILE = """\
version: 2
metadata: {{}}
user_parameters: {{}}
aliases: {{}}
data:
  facility_store:
    datatype: scandeck.intake_readers:ScandeckStore
    kwargs: {{uri: "{uri}"}}
    metadata: {{}}
    user_parameters: {{}}
entries:
  {name}:
    reader: scandeck.intake_readers:ScandeckReader
    kwargs: {{data: "{{data(facility_store)}}"}}
    output_instance: scandeck.catalog:Catalog
    metadata: {{description: "The facility's Tiled"}}
    user_parameters: {{}}
"""


def _write_run(access: AccessSetup, container: str, tag: str, *, stop: bool = True) -> str:
    """A run tagged ``tag`` written as the admin: start, descriptor, two events, and a stop if ``stop``."""
    from bluesky_tiled_plugins import TiledWriter
    from tiled.client import from_uri

    client = from_uri(f"{access.server.base}/api/v1/metadata/{container}", api_key=access.keys["admin"])
    try:
        writer = TiledWriter(client, batch_size=1)
        bundle = compose_run(metadata={"plan_name": "count", "sample": "Ni", "tiled_access_tags": [tag]})
        writer("start", bundle.start_doc)
        desc = bundle.compose_descriptor(
            name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim:x"}}
        )
        writer("descriptor", desc.descriptor_doc)
        for i in range(2):
            writer("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": time.time()}))
        if stop:
            writer("stop", bundle.compose_stop())
        return str(bundle.start_doc["uid"])
    finally:
        client.context.close()


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[AccessSetup]:
    setup = start_access_deployment(tmp_path_factory.mktemp("tiled-access"), redis_server.url)
    setup.uids["running"] = _write_run(setup, setup.container, "beamtime_a", stop=False)
    yield setup
    setup.server.stop()


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, access: AccessSetup) -> dict[str, Path]:
    """The usual test environment plus a catalog file naming the Tiled container with the admin's key."""
    found = scandeck_environment(monkeypatch, tmp_path)
    catalogs = tmp_path / "catalogs"
    (catalogs / "tiled.yaml").write_text(CATALOG_FILE.format(name=ENTRY, uri=access.uri("admin")))
    # The server's own credentials are only what a test configures.
    monkeypatch.delenv("TILED_API_KEY", raising=False)
    monkeypatch.setenv("TILED_CACHE_DIR", str(tmp_path / "tiled-cache"))
    return found


@pytest.fixture
def scandeck_settings() -> dict[str, Any]:
    """ScandeckApp settings of the test's server (parametrize to change)."""
    return {}


@pytest.fixture
def jp_server_config(
    paths: dict[str, Path], scandeck_settings: dict[str, Any], access: AccessSetup
) -> dict[str, Any]:
    """The server's ScandeckApp settings; ``{"user": NAME}`` configures NAME's own key, and
    ``{"default_of": NAME}`` makes the default catalog the container with NAME's key in it."""
    settings = dict(scandeck_settings)
    if "user" in settings:
        settings["tiled_api_key"] = access.keys[settings.pop("user")]
    if "default_of" in settings:
        settings["catalog"] = access.uri(settings.pop("default_of"))
    return server_config(paths, **settings)


def _no_key_in(access: AccessSetup, *answers: Any) -> None:
    text = json.dumps(answers)
    for user, key in access.keys.items():
        assert key not in text and key[:16] not in text, f"{user}'s key reached the browser"


async def test_the_catalog_chooser_lists_the_tiled_entry_without_its_key(access, api: Api):
    code, body = await api("catalogs")
    assert code == 200
    entry = {c["name"]: c for c in body["catalogs"]}[ENTRY]
    assert entry["uri"] == access.uri(None)
    assert entry["description"] == "The facility's Tiled"
    _no_key_in(access, body)


@pytest.mark.parametrize("scandeck_settings", [{"user": "alice"}, {"user": "bob"}])
async def test_each_user_sees_only_their_runs_in_the_rest_answers(access, api: Api, scandeck_settings):
    user = scandeck_settings["user"]
    other = "bob" if user == "alice" else "alice"
    own = [access.uids["running"], access.uids[user]] if user == "alice" else [access.uids[user]]
    code, body = await api("runs", params={"catalog": ENTRY})
    assert code == 200, body
    assert [r["uid"] for r in body["runs"]] == own and body["total"] == len(own)
    assert [r["uid"] for r in body["live"]] == ([access.uids["running"]] if user == "alice" else [])
    code, found = await api("runs", params={"catalog": ENTRY, "q": f'sample == "{access.samples[other]}"'})
    assert code == 200 and found["runs"] == [] and found["total"] == 0
    code, missing = await api(f"runs/{access.uids[other]}", params={"catalog": ENTRY})
    assert code == 404 and missing["error"] == "RunNotFound"
    assert access.samples[other] not in json.dumps(missing)
    code, preview = await api(f"runs/{access.uids[other]}/preview", params={"catalog": ENTRY})
    assert code == 404
    _no_key_in(access, body, found, missing, preview)


@pytest.mark.parametrize("scandeck_settings", [{"user": "alice"}])
async def test_details_preview_and_code_of_a_tiled_run(access, api: Api, scandeck_settings):
    uid = access.uids["alice"]
    code, detail = await api(f"runs/{uid}", params={"catalog": ENTRY})
    assert code == 200, detail
    assert detail["run"]["uid"] == uid and detail["start"]["sample"] == "Ni"
    assert detail["stop"]["exit_status"] == "success"
    (stream,) = detail["streams"]
    assert stream["name"] == "primary" and stream["num_events"] == 3
    assert {k["key"] for k in stream["data_keys"]} >= {"det", "motor"}
    code, preview = await api(f"runs/{uid}/preview", params={"catalog": ENTRY})
    assert code == 200, preview
    code, cells = await api(f"runs/{uid}/code", params={"catalog": ENTRY})
    assert code == 200
    assert f"scandeck.open_catalog({ENTRY!r})" in cells["code"]["load"]
    code, text = await api("runs", params={"catalog": ENTRY, "q": '"Ni"'})  # a full-text query
    assert code == 200 and uid in [r["uid"] for r in text["runs"]]
    _no_key_in(access, detail, preview, cells, text)


async def test_a_key_in_a_shared_catalog_file_is_not_used(access, api: Api):
    # No key of the user's own: the admin key written in the file must not open the container.
    code, body = await api("runs", params={"catalog": ENTRY})
    assert code == 503 and body["error"] == "AuthenticationFailed"
    for way in ("?api_key=", "TILED_API_KEY", "tiled login"):
        assert way in body["message"]
    _no_key_in(access, body)


@pytest.mark.parametrize("scandeck_settings", [{"catalog_file_keys": True}])
async def test_keys_of_catalog_files_are_used_when_the_server_says_so(access, api: Api, scandeck_settings):
    code, body = await api("runs", params={"catalog": ENTRY})
    assert code == 200
    assert {r["uid"] for r in body["runs"]} == set(access.uids.values())
    _no_key_in(access, body)


async def test_the_users_own_environment_key_is_used(access, api: Api, monkeypatch):
    monkeypatch.setenv("TILED_API_KEY", access.keys["bob"])
    code, body = await api("runs", params={"catalog": ENTRY})
    assert code == 200 and [r["uid"] for r in body["runs"]] == [access.uids["bob"]]


@pytest.mark.parametrize("scandeck_settings", [{"default_of": "alice"}])
async def test_a_default_tiled_catalog_with_its_own_key_and_code_without_it(access, api: Api, scandeck_settings):
    code, body = await api("runs")
    assert code == 200 and access.uids["alice"] in [r["uid"] for r in body["runs"]]
    assert access.uids["bob"] not in [r["uid"] for r in body["runs"]]
    code, catalogs = await api("catalogs")
    assert catalogs["catalogs"][0]["uri"] == access.uri(None)
    code, cells = await api(f"runs/{access.uids['alice']}/code")
    assert code == 200 and f"scandeck.open_catalog({access.uri(None)!r})" in cells["code"]["load"]
    _no_key_in(access, body, catalogs, cells)


@pytest.mark.parametrize("scandeck_settings", [{"user": "alice"}])
async def test_the_live_channel_pushes_new_tiled_runs_the_user_may_see(
    access, api: Api, scandeck_settings, paths, jp_serverapp, jp_ws_fetch
):
    # A container of its own: the runs written here do not change what the other tests list.
    container = access.server.new_catalog(access_tags=["public"]).split("?", 1)[0].rsplit("/", 1)[1]
    live_uri = f"tiled+{access.server.base}/{container}?api_key={access.keys['admin']}"
    (paths["data"].parent / "catalogs" / "live.yaml").write_text(CATALOG_FILE.format(name="live", uri=live_uri))
    app = jp_serverapp.web_app.settings["scandeck"]
    ws = await jp_ws_fetch("scandeck", "api", "events", params={"catalog": "live"})
    try:
        assert json.loads(await asyncio.wait_for(ws.read_message(), 30)) == {"type": "hello", "catalog": "live"}
        await until(lambda: app.push.watcher("live") and app.push.watcher("live").ready.is_set(), what="watcher")
        loop = asyncio.get_running_loop()
        bobs = await loop.run_in_executor(None, _write_run, access, container, "beamtime_b")
        alices = await loop.run_in_executor(None, _write_run, access, container, "beamtime_a")
        seen, messages = [], []
        deadline = time.monotonic() + 60
        while True:  # bob's run came first: had the watcher seen it, its message would come first
            assert time.monotonic() < deadline, f"no 'success' message of alice's run; got {messages}"
            message = json.loads(await asyncio.wait_for(ws.read_message(), 30))
            messages.append(message)
            if message["type"] == "run":
                seen.append(message["run"]["uid"])
                if message["run"]["uid"] == alices and message["run"]["status"] == "success":
                    break
        assert bobs not in seen and set(seen) == {alices}
        _no_key_in(access, seen)
    finally:
        ws.close(1000)


def test_a_rerun_job_gets_a_tiled_key_in_its_environment_not_on_its_command_line():
    from scandeck.server.jobs import _keyless

    target, env = _keyless("tiled+http://host:8000/raw?api_key=secret&batch_size=5")
    assert target == "tiled+http://host:8000/raw?batch_size=5"
    assert env is not None and env["TILED_API_KEY"] == "secret"
    assert _keyless("/data/store") == ("/data/store", None)


@pytest.mark.parametrize("scandeck_settings", [{"user": "alice"}])
async def test_the_run_table_of_a_tiled_catalog(access, api: Api, scandeck_settings):
    """Tags go to scandeck's sidecar beside the archive (never into Tiled); the table shows them."""
    uid = access.uids["alice"]
    code, body = await api(
        f"runs/{uid}/annotations", method="POST", params={"catalog": ENTRY}, body={"tags": ["Ni"]}
    )
    assert code == 200 and body["tags"] == ["Ni"], body
    code, offered = await api("columns", params={"catalog": ENTRY})
    assert code == 200 and offered["facts"] is True
    code, table = await api("table", params={"catalog": ENTRY, "columns": "sample,duration,tags"})
    assert code == 200, table
    cells = table["cells"][uid]
    assert cells["sample"] == {"value": "Ni", "state": "ok", "error": None}
    assert cells["tags"]["value"] == ["Ni"]
    assert cells["duration"]["state"] == "ok"  # a summary-only built-in, computed on read
    _no_key_in(access, body, offered, table)
