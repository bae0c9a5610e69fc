"""The REST API of the ``scandeck.server`` extension (labextension/API.md), on a real jupyter_server.

pytest-jupyter runs the server in-process with ``scandeck.server`` enabled; runs come
from a real RunEngine with ophyd.sim devices (or event-model's compose_run when a test
needs many runs or chosen uids and times), provenance records from a real ProvStore.
"""

from __future__ import annotations

import json
from pathlib import Path

import bluesky.plans as bp
import nbformat
import pytest
from jupyter_server.auth import Authorizer
from server_support import Api, scandeck_environment, server_config, write_run

import scandeck
from scandeck.provenance.record import Environment, ProvenanceRecord
from scandeck.provenance.store import ProvStore
from scandeck.queries import Query

RUN_KEYS = {
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
ENV = Environment(python="3.11.7", platform="Linux-test", packages={"scandeck": "0.1.0"})


class DenyScandeck(Authorizer):
    """Authenticated users may do anything but touch the ``scandeck`` resource."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "scandeck"


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def paths(monkeypatch, tmp_path):
    return scandeck_environment(monkeypatch, tmp_path)


@pytest.fixture
def scandeck_settings():
    """ScandeckApp settings of the test's server (parametrize to change)."""
    return {}


@pytest.fixture
def server_settings():
    """ServerApp settings of the test's server, besides enabling the extension (parametrize to change)."""
    return {}


@pytest.fixture
def jp_server_config(paths, scandeck_settings, server_settings):
    config = server_config(paths, **scandeck_settings)
    config["ServerApp"].update(server_settings)
    return config


@pytest.fixture
def api(jp_serverapp, http_server_client, jp_base_url, jp_auth_header):
    return Api(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture
def writer(store):
    w = store.writer()
    yield w
    w.close()


@pytest.fixture
def scans(store, writer, RE, hw):
    """A scan (det vs motor, 7 points), a count with an image detector, a grid scan: their uids."""
    RE.subscribe(writer)
    (scan,) = RE(bp.scan([hw.det], hw.motor, -1, 1, 7), sample="Ni", operator="jdoe", purpose="alignment")
    (count,) = RE(bp.count([hw.det, hw.img], 3), sample={"name": "Cu", "composition": "Cu"})
    (grid,) = RE(bp.grid_scan([hw.det4], hw.motor1, -1, 1, 3, hw.motor2, -1, 1, 2), sample="Ni")
    return {"scan": scan, "count": count, "grid": grid}


@pytest.fixture
def prov(paths):
    with ProvStore(paths["prov"]) as s:
        yield s


def _notebook(source: str = "x = 1") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(source),
    ]
    return nb


def _record(**kwargs) -> ProvenanceRecord:
    kwargs.setdefault("name", "analysis")
    kwargs.setdefault("kind", "interactive")
    kwargs.setdefault("environment", ENV)
    return ProvenanceRecord(**kwargs)


# -- catalogs ---------------------------------------------------------------------------------------


async def test_catalogs_lists_the_default_and_every_named_catalog(api, paths):
    code, body = await api("catalogs")
    assert code == 200
    assert set(body) == {"catalogs", "default", "open_panel"}
    assert body["default"] == "" and body["open_panel"] is False
    by_name = {c["name"]: c for c in body["catalogs"]}
    assert list(by_name)[0] == ""
    assert {"", "beamtime", "local", "redis"} <= set(by_name)
    for entry in body["catalogs"]:
        assert {"name", "label", "description", "uri"} <= set(entry)
    assert by_name[""]["uri"] == f"sqlite://{(paths['store'] / 'scandeck.sqlite').resolve()}"
    assert by_name["beamtime"] == {
        "name": "beamtime",
        "label": "beamtime",
        "description": "The test beamtime",
        "uri": str(paths["beamtime"]),
    }


@pytest.mark.parametrize("scandeck_settings", [{"open_panel": True}])
async def test_open_panel_setting_is_in_the_catalogs_answer(api, scandeck_settings):
    code, body = await api("catalogs")
    assert code == 200 and body["open_panel"] is True


# -- runs -------------------------------------------------------------------------------------------


async def test_runs_answers_summaries_newest_first(api, store, scans):
    code, body = await api("runs")
    assert code == 200
    assert set(body) == {"runs", "live", "total", "next", "hint", "parents"}
    assert [r["uid"] for r in body["runs"]] == [scans["grid"], scans["count"], scans["scan"]]
    assert body["total"] == 3 and body["next"] is None and body["live"] == []
    for run in body["runs"]:
        assert set(run) == RUN_KEYS
    scan = body["runs"][2]
    summary = store.source.get(scans["scan"])
    assert scan == {
        "uid": scans["scan"],
        "scan_id": summary.scan_id,
        "time": summary.time,
        "plan_name": "scan",
        "sample": "Ni",
        "operator": "jdoe",
        "purpose": "alignment",
        "status": "success",
        "num_events": 7,
        "num_points": 7,
        "duration": pytest.approx(summary.stop["time"] - summary.time),
    }
    assert body["runs"][1]["sample"] == "Cu"  # a sample dict stands by its name
    assert body["runs"][1]["operator"] is None


async def test_paging_with_the_cursor_returns_every_run_once_in_order(api, store, writer):
    # 120 runs, three at each start time: the seq breaks the ties.
    for i in range(120):
        write_run(writer, time_=1_700_000_000.0 + i // 3, scan_id=i + 1, sample="Ni" if i % 2 else "Cu")
    expected = [s.uid for s in store.source.search(Query.all())]
    seen, before, pages = [], None, 0
    while True:
        params = {"limit": 50, **({"before": before} if before else {})}
        code, body = await api("runs", params=params)
        assert code == 200 and body["total"] == 120
        assert body["live"] == [] if before else True
        seen += [r["uid"] for r in body["runs"]]
        pages += 1
        before = body["next"]
        if before is None:
            break
    assert pages == 3 and seen == expected and len(set(seen)) == 120
    times = [(r.time, r.seq) for r in store.source.search(Query.all())]
    assert times == sorted(times, reverse=True)

    code, body = await api("runs", params={"limit": 500})
    assert [r["uid"] for r in body["runs"]] == expected and body["next"] is None

    # A search pages the same way.
    seen, before = [], None
    while True:
        code, body = await api(
            "runs", params={"q": 'sample == "Ni"', "limit": 7, **({"before": before} if before else {})}
        )
        assert body["total"] == 60
        seen += [r["uid"] for r in body["runs"]]
        before = body["next"]
        if before is None:
            break
    assert seen == [s.uid for s in store.search('sample == "Ni"').summaries()]


async def test_search_narrows_and_live_lists_running_runs(api, store, writer):
    ni = write_run(writer, sample="Ni", events=2).start_doc["uid"]
    write_run(writer, sample="Cu", events=1)
    running = write_run(writer, sample="Ni", events=3, exit_status=None).start_doc["uid"]
    code, body = await api("runs", params={"q": 'sample == "Ni"'})
    assert code == 200
    assert [r["uid"] for r in body["runs"]] == [running, ni]
    assert body["total"] == 2
    assert [r["uid"] for r in body["live"]] == [running]
    assert body["live"][0]["status"] == "running" and body["live"][0]["num_events"] == 3
    assert body["live"][0]["duration"] is None


async def test_a_search_on_a_field_no_run_has_says_so_with_the_closest_field(api, store, writer):
    write_run(writer, sample="Ni", events=1)
    code, body = await api("runs", params={"q": 'smaple == "Cu"'})
    assert code == 200 and body["runs"] == [] and body["total"] == 0
    assert body["hint"] == "no run has the field smaple (did you mean sample?)"
    code, body = await api("runs", params={"q": 'sample == "Cu"'})  # a known field: no hint
    assert code == 200 and body["runs"] == [] and body["hint"] is None


@pytest.mark.parametrize(("q", "position"), [("sample ==", 9), ('sample = "Ni"', 7), ("(plan_name", 10)])
async def test_a_query_syntax_error_is_400_with_its_position(api, store, q, position):
    code, body = await api("runs", params={"q": q})
    assert code == 400
    assert body["error"] == "QuerySyntaxError" and body["position"] == position and body["query"] == q
    assert f"column {position + 1}" in body["message"]


@pytest.mark.parametrize("name", ["../../etc", "/tmp/x", "memory://x", "nope", "sqlite:///etc/passwd"])
async def test_an_unknown_catalog_is_404_and_nothing_is_opened(api, tmp_path, name):
    before = sorted(p.name for p in tmp_path.iterdir())
    stray = Path("/tmp/x/scandeck.sqlite")
    existed = stray.exists()
    for path in ("runs", "runs/abc", "runs/abc/preview"):
        code, body = await api(path, params={"catalog": name})
        assert code == 404, path
        assert body["error"] == "UnknownCatalog" and "GET catalogs" in body["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert stray.exists() == existed


async def test_a_named_catalog_serves_its_own_store(api, paths):
    other = scandeck.open_catalog(paths["beamtime"])
    try:
        w = other.writer()
        uid = write_run(w, sample="Fe", events=4).start_doc["uid"]
        w.close()
    finally:
        other.close()
    code, body = await api("runs", params={"catalog": "beamtime"})
    assert code == 200 and [r["uid"] for r in body["runs"]] == [uid]
    code, body = await api(f"runs/{uid[:8]}", params={"catalog": "beamtime"})
    assert code == 200 and body["run"]["num_events"] == 4
    assert "scandeck.open_catalog('beamtime')" in body["code"]["load"]
    assert body["code"]["setup"] == "%load_ext scandeck\n%catalog beamtime"
    code, body = await api(f"runs/{uid}")  # not in the default catalog
    assert code == 404 and body["error"] == "RunNotFound"


@pytest.mark.parametrize("scandeck_settings", [{"catalog": "beamtime"}])
async def test_the_default_catalog_is_configurable(api, paths, scandeck_settings):
    other = scandeck.open_catalog(paths["beamtime"])
    try:
        w = other.writer()
        uid = write_run(w, sample="Co").start_doc["uid"]
        w.close()
    finally:
        other.close()
    code, body = await api("catalogs")
    default = body["catalogs"][0]
    assert default["name"] == "" and default["label"] == "Default (beamtime)"
    assert default["uri"] == f"sqlite://{(paths['beamtime'] / 'scandeck.sqlite').resolve()}"
    code, body = await api("runs")
    assert [r["uid"] for r in body["runs"]] == [uid]
    code, body = await api(f"runs/{uid}")
    assert "scandeck.open_catalog('beamtime')" in body["code"]["load"]


# -- one run ----------------------------------------------------------------------------------------


async def test_run_detail_has_documents_streams_and_code(api, store, scans):
    uid = scans["count"]
    code, body = await api(f"runs/{uid[:10]}")
    assert code == 200
    # "cells": the run's computed cells, as the embedded store keeps them (the run table).
    assert set(body) == {
        "run",
        "start",
        "stop",
        "streams",
        "code",
        "cells",
        "parents",
        "pipeline",
        "derived",
        "derived_more",
    }
    assert body["run"]["uid"] == uid and body["run"]["num_events"] == 3
    run = store[uid]
    assert body["start"] == json.loads(json.dumps(run.metadata["start"]))
    assert body["stop"]["exit_status"] == "success" and body["stop"]["run_start"] == uid
    (primary,) = [s for s in body["streams"] if s["name"] == "primary"]
    assert primary["num_events"] == 3
    keys = {k["key"]: k for k in primary["data_keys"]}
    assert set(keys) == set(run.primary.data_keys)
    assert keys["det"] == {
        "key": "det",
        "dtype": "number",
        "shape": [],
        "units": None,
        "source": "SIM:det",
        "external": False,
    }
    assert keys["img"]["external"] is True and keys["img"]["shape"] == [10, 10]
    assert set(body["code"]) == {"load", "bind", "setup"}


async def test_the_load_snippet_loads_the_run(api, store, scans):
    uid = scans["scan"]
    code, body = await api(f"runs/{uid}")
    namespace: dict = {}
    exec(body["code"]["load"], namespace)  # noqa: S102 - the code the panel inserts, run as a kernel would
    try:
        assert namespace["run"].uid == uid
        assert list(namespace["ds"].det.values) == list(store[uid].primary.read().det.values)
    finally:
        namespace["cat"].close()


async def test_the_bind_snippet_is_a_bind_cell_for_the_run(api, scans):
    from IPython.core.magic_arguments import parse_argstring

    from scandeck.notebook.magics import ScandeckMagics

    uid = scans["grid"]
    code, body = await api(f"runs/{uid}")
    first, *rest = body["code"]["bind"].splitlines()
    assert first.startswith("%%bind ") and rest
    args = parse_argstring(ScandeckMagics.bind, first[len("%%bind ") :])
    assert args.uid == uid and args.stream == "primary"
    compile("\n".join(rest), "<bind body>", "exec")
    assert body["code"]["setup"] == "%load_ext scandeck"


async def test_unknown_and_ambiguous_uids(api, writer):
    write_run(writer, uid="abc00000-1")
    write_run(writer, uid="abc00000-2")
    code, body = await api("runs/zzzz")
    assert code == 404 and body["error"] == "RunNotFound"
    code, body = await api("runs/abc")
    assert code == 400 and body["error"] == "AmbiguousUID"
    assert sorted(body["matches"]) == ["abc00000-1", "abc00000-2"] and "abc00000-1" in body["message"]
    code, body = await api("runs/abc00000-2")
    assert code == 200 and body["run"]["uid"] == "abc00000-2"
    code, body = await api("runs/abc/preview")
    assert code == 400 and body["error"] == "AmbiguousUID"


# -- preview ----------------------------------------------------------------------------------------


async def test_preview_plots_the_hinted_detector_against_the_motor(api, store, scans):
    uid = scans["scan"]
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200
    ds = store[uid].primary.read()
    assert body == {
        "stream": "primary",
        "x": {"name": "motor", "values": list(ds.motor.values)},
        "y": [{"name": "det", "values": list(ds.det.values)}],
        "num_events": 7,
    }


async def test_preview_downsamples_keeping_first_and_last(api, store, scans):
    uid = scans["scan"]
    code, body = await api(f"runs/{uid}/preview", params={"max_points": 3})
    ds = store[uid].primary.read()
    assert body["x"]["values"] == [ds.motor.values[0], ds.motor.values[3], ds.motor.values[6]]
    assert body["y"][0]["values"] == [ds.det.values[0], ds.det.values[3], ds.det.values[6]]
    assert body["num_events"] == 7


async def test_preview_of_a_count_is_against_seq_num_without_images(api, store, scans):
    code, body = await api(f"runs/{scans['count']}/preview")
    assert body["x"] == {"name": "seq_num", "values": [1, 2, 3]}
    assert [y["name"] for y in body["y"]] == ["det"]  # the image detector is not a line
    code, body = await api(f"runs/{scans['grid']}/preview")
    assert body["x"]["name"] == "motor1" and [y["name"] for y in body["y"]] == ["det4"]
    code, body = await api(f"runs/{scans['count']}/preview", params={"stream": "nope"})
    assert code == 404 and body["error"] == "StreamNotFound" and "primary" in body["message"]


async def test_preview_of_unhinted_numbers_and_of_no_numbers(api, writer):
    uid = write_run(writer, events=4).start_doc["uid"]  # no hints at all
    code, body = await api(f"runs/{uid}/preview")
    assert body["x"]["name"] == "seq_num" and body["y"] == [{"name": "x", "values": [0.0, 1.0, 2.0, 3.0]}]


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "kind"),
    [
        ("runs", {"limit": "0"}, "BadParameter"),
        ("runs", {"limit": "501"}, "BadParameter"),
        ("runs", {"limit": "many"}, "BadParameter"),
        ("runs", {"before": "yesterday"}, "BadCursor"),
        ("runs", {"before": "1700000000.0:x"}, "BadCursor"),
        ("runs", {"before": "nan:3"}, "BadCursor"),
        ("runs", {"before": "1700000000.0:-1"}, "BadCursor"),
        ("runs", {"before": f"1700000000.0:{2**64}"}, "BadCursor"),
        ("runs", {"q": "x" * 10_001}, "BadParameter"),
        ("runs/abc/preview", {"max_points": "0"}, "BadParameter"),
        ("runs/abc/preview", {"max_points": "5001"}, "BadParameter"),
        ("provenance", {"limit": "x"}, "BadParameter"),
        ("provenance", {"offset": "-1"}, "BadParameter"),
    ],
)
async def test_malformed_parameters_are_400_with_a_message(api, store, path, params, kind):
    code, body = await api(path, params=params)
    assert code == 400
    assert body["error"] == kind and list(params)[0] in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "JSON"),
        ("[1, 2]", "JSON object"),
        ({}, "record"),
        ({"record": "", "scans": ["a"]}, "record"),
        ({"record": "abc"}, "scans"),
        ({"record": "abc", "scans": []}, "scans"),
        ({"record": "abc", "scans": "a,b"}, "scans"),
        ({"record": "abc", "scans": [1, 2]}, "scans"),
        ({"record": "abc", "scans": ["a"], "workers": 0}, "workers"),
        ({"record": "abc", "scans": ["a"], "workers": "2"}, "workers"),
        ({"record": "abc", "scans": ["a"], "catalog": 3}, "catalog"),
    ],
)
async def test_a_bad_rerun_request_is_400_naming_the_field(api, body, field):
    code, answer = await api("reruns", method="POST", body=body)
    assert code == 400 and field in answer["message"]
    assert answer["error"] in ("BadJSON", "BadRequest")


async def test_a_rerun_of_an_unknown_record_or_scan_is_400_and_runs_nothing(api, prov, writer, jp_root_dir):
    uid = write_run(writer).start_doc["uid"]
    rec = prov.save(_record(parameters={"scan_uid": uid}), _notebook())
    code, body = await api("reruns", method="POST", body={"record": "f" * 32, "scans": [uid]})
    assert code == 400 and body["error"] == "RecordNotFound"
    code, body = await api("reruns", method="POST", body={"record": rec.id, "scans": [uid, "nosuchscan"]})
    assert code == 400 and body["error"] == "RunNotFound" and "nosuchscan" in body["message"]
    code, body = await api("reruns", method="POST", body={"record": rec.id, "scans": [uid], "catalog": "nope"})
    assert code == 404 and body["error"] == "UnknownCatalog"
    assert not (jp_root_dir / "reruns").exists()
    code, body = await api("reruns")
    assert code == 200 and body == {"jobs": []}
    code, body = await api("reruns/0123456789ab")
    assert code == 404 and body["error"] == "JobNotFound"
    code, body = await api("reruns/0123456789ab", method="DELETE")
    assert code == 404 and body["error"] == "JobNotFound"


# -- provenance -------------------------------------------------------------------------------------


async def test_provenance_lists_gets_and_opens_records(api, prov, jp_root_dir):
    old = prov.save(
        _record(
            name="peak fit",
            created=1_700_000_000.0,
            parameters={"bins": 20, "x": float("nan")},
            inputs=[{"uid": "u1", "scan_id": 4, "catalog": "local"}],
            notebook_path="/a/peak.ipynb",
        ),
        _notebook("y = 2"),
    )
    newer = [
        prov.save(_record(name=f"n{i}", created=1_700_000_100.0 + i), _notebook(f"z = {i}")) for i in range(3)
    ]
    code, body = await api("provenance")
    assert code == 200 and body["total"] == 4
    assert [r["id"] for r in body["records"]] == [r.id for r in reversed(newer)] + [old.id]
    summary = body["records"][-1]
    assert summary == {
        "id": old.id,
        "name": "peak fit",
        "kind": "interactive",
        "created": "2023-11-14T22:13:20.000+00:00",
        "notebook": "peak.ipynb",
        "status": "ok",
        "parameters": {"bins": 20, "x": None},
        "inputs": [{"uid": "u1", "scan_id": 4}],
        "outputs": [],
        "parent": None,
        "target_scan": None,
        "error": None,
    }
    code, body = await api("provenance", params={"limit": 2, "offset": 1})
    assert [r["id"] for r in body["records"]] == [newer[1].id, newer[0].id] and body["total"] == 4

    code, body = await api(f"provenance/{old.id[:6]}")
    assert code == 200 and body == json.loads(json.dumps(prov.get(old.id).to_metadata()))

    code, body = await api(f"provenance/{old.id}/open", method="POST")
    assert code == 200 and body == {"path": f"provenance/peak_fit-{old.id[:8]}.ipynb", "created": True}
    copy = jp_root_dir / body["path"]
    assert copy.read_bytes() == prov.notebook_bytes(old.id)
    copy.write_text(copy.read_text().replace("y = 2", "y = 3"))  # the user edits the copy
    code, body = await api(f"provenance/{old.id}/open", method="POST")
    assert code == 200 and body["created"] is False and "y = 3" in copy.read_text()


async def test_unknown_ambiguous_and_escaping_record_ids(api, prov, jp_root_dir, tmp_path):
    prov.save(_record(id="abcd0001"), _notebook())
    prov.save(_record(id="abcd0002", name="../../../evil"), _notebook())
    code, body = await api("provenance/ffff")
    assert code == 404 and body["error"] == "RecordNotFound"
    code, body = await api("provenance/abcd")
    assert code == 400 and body["error"] == "AmbiguousRecord" and body["matches"] == ["abcd0001", "abcd0002"]
    code, body = await api("provenance/abcd/open", method="POST")
    assert code == 400 and body["error"] == "AmbiguousRecord"
    for bad in ("..%2F..%2Fetc", "..", "a.b", "%2Fetc%2Fpasswd"):
        code, body = await api(f"provenance/{bad}")
        assert 400 <= code < 500 and "error" in body, bad
        code, body = await api(f"provenance/{bad}/open", method="POST")
        assert 400 <= code < 500, bad
    # A record whose name tries to climb out is written inside the root, cleaned.
    code, body = await api("provenance/abcd0002/open", method="POST")
    assert code == 200 and body["path"] == "provenance/evil-abcd0002.ipynb"
    assert (jp_root_dir / body["path"]).is_file()
    outside = [p for p in tmp_path.rglob("*evil*") if jp_root_dir not in p.parents]
    assert outside == []


async def test_open_refuses_a_provenance_folder_that_leads_outside_the_root(api, prov, jp_root_dir, tmp_path):
    rec = prov.save(_record(), _notebook())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (jp_root_dir / "provenance").symlink_to(elsewhere)
    code, body = await api(f"provenance/{rec.id}/open", method="POST")
    assert code == 403 and body["error"] == "OutsideRoot"
    assert list(elsewhere.iterdir()) == []


async def test_path_escaping_run_uids_are_4xx(api, store):
    for bad in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc", "a%00b"):
        code, body = await api(f"runs/{bad}")
        assert 400 <= code < 500 and "error" in body, bad


async def test_an_unknown_endpoint_is_a_json_404(api):
    code, body = await api("nothing/here")
    assert code == 404 and body["error"] == "NotFound"


# -- authentication, authorization, XSRF ---------------------------------------------------------------

ENDPOINTS = [
    ("GET", "catalogs"),
    ("GET", "runs"),
    ("GET", "runs/abc"),
    ("GET", "runs/abc/preview"),
    ("GET", "provenance"),
    ("GET", "provenance/abc"),
    ("POST", "provenance/abc/open"),
    ("GET", "reruns"),
    ("POST", "reruns"),
    ("GET", "reruns/abc"),
    ("DELETE", "reruns/abc"),
    ("GET", "nothing"),
]


async def test_every_endpoint_refuses_unauthenticated_requests(api, prov, jp_root_dir):
    rec = prov.save(_record(), _notebook())
    for method, path in [*ENDPOINTS, ("POST", f"provenance/{rec.id}/open")]:
        body = json.dumps({"record": rec.id, "scans": ["x"]}) if method == "POST" else None
        code, answer = await api(path, method=method, body=body, auth=False)
        assert code in (401, 403), (method, path)
        assert answer["error"] == "Forbidden", (method, path)
    code, _ = await api("runs", params={"token": "wrong"}, auth=False)
    assert code == 403
    assert not (jp_root_dir / "provenance").exists()


@pytest.mark.parametrize("server_settings", [{"authorizer_class": DenyScandeck}])
async def test_every_endpoint_asks_the_authorizer(api, jp_fetch, server_settings):
    for method, path in ENDPOINTS:
        code, answer = await api(path, method=method, body="{}" if method == "POST" else None)
        assert code == 403 and answer["error"] == "Forbidden", (method, path)
    response = await jp_fetch("api", "status")  # the server itself still answers this user
    assert response.code == 200


async def test_cookie_authenticated_writes_need_the_xsrf_token(api, prov, jp_root_dir):
    rec = prov.save(_record(name="cookie"), _notebook())
    # A token-authenticated request leaves the login cookie, as a browser gets it.
    response = await api.client.fetch(f"{api.base_url}scandeck/api/catalogs", headers=api.auth)
    login = [c.split(";")[0] for c in response.headers.get_list("Set-Cookie") if c.startswith("username-")]
    assert login, "no login cookie"
    cookie = login[0]
    code, body = await api("catalogs", headers={"Cookie": cookie}, auth=False)
    assert code == 200  # the cookie alone authenticates reads

    target = jp_root_dir / "provenance" / f"cookie-{rec.id[:8]}.ipynb"
    for headers in (
        {"Cookie": cookie},
        {"Cookie": f"{cookie}; _xsrf=abcdef0123"},
        {"Cookie": f"{cookie}; _xsrf=abcdef0123", "X-XSRFToken": "0123abcdef"},
    ):
        code, body = await api(f"provenance/{rec.id}/open", method="POST", headers=headers, auth=False)
        assert code == 403 and "xsrf" in body["message"].lower(), headers
        code, body = await api("reruns/abc", method="DELETE", headers=headers, auth=False)
        assert code == 403, headers
    assert not target.exists()
    headers = {"Cookie": f"{cookie}; _xsrf=abcdef0123", "X-XSRFToken": "abcdef0123"}
    code, body = await api(f"provenance/{rec.id}/open", method="POST", headers=headers, auth=False)
    assert code == 200 and target.is_file()
