"""Derived runs in the API (issue 16): ``parent_uids`` in RUN, ``parents`` of a page, and the
detail's ``parents``, ``pipeline`` and ``derived`` (labextension/API.md, "Derived runs").

The parent is a real RunEngine scan; the derived runs come from ``scandeck.derive()`` (batch)
and from a pipeline ending in ``to_run`` (live) over the stored scan, in this process.
"""

from __future__ import annotations

import bluesky.plans as bp
import pytest
from event_model import compose_run
from server_support import Api, scandeck_environment, server_config, write_run

import scandeck
from scandeck.livestream import Live


@pytest.fixture
def paths(monkeypatch, tmp_path):
    return scandeck_environment(monkeypatch, tmp_path)


@pytest.fixture
def jp_server_config(paths):
    return server_config(paths)


@pytest.fixture
def api(jp_serverapp, http_server_client, jp_base_url, jp_auth_header):
    return Api(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture
def writer(store):
    w = store.writer()
    yield w
    w.close()


def normalise(row):
    return row["det"] / 2


def accumulate(acc, x):
    return acc + x


@pytest.fixture
def family(store, writer, RE, hw):
    """A scan, a run derived from it in batch, then one derived live by map -> scan -> to_run."""
    RE.subscribe(writer)
    (parent,) = RE(bp.scan([hw.det], hw.motor, -1, 1, 5), sample="Ni")
    batch = scandeck.derive(store, parent, {"y": [1.0, 2.0, 3.0]}, metadata={"purpose": "batch"})
    live = Live(store[parent], catalog=store, shell=None)
    try:
        out = live.stream("primary").map(normalise).scan(accumulate, start=0.0).to_run(store)
        assert out.wait(60)
    finally:
        live.stop()
    return {"parent": parent, "batch": batch.uid, "live": out.uid}


async def test_a_derived_run_names_its_parents_in_the_listing(api, family):
    code, body = await api("runs")
    assert code == 200
    by_uid = {r["uid"]: r for r in body["runs"]}
    assert set(by_uid) == set(family.values())
    assert by_uid[family["batch"]]["parent_uids"] == [family["parent"]]
    assert by_uid[family["live"]]["parent_uids"] == [family["parent"]]
    assert "parent_uids" not in by_uid[family["parent"]]  # a raw scan: no key at all
    assert body["parents"] == {}  # the parent is on the page: the panel nests its derived runs

    # The parent is not on a page of derived runs only: the page says which scan it is.
    code, body = await api("runs", params={"q": 'plan_name == "derived"'})
    assert code == 200 and {r["uid"] for r in body["runs"]} == {family["batch"], family["live"]}
    ref = body["parents"][family["parent"]]
    assert ref["scan_id"] is not None and ref["plan_name"] == "scan" and ref["status"] == "success"
    # The table's pages are the same pages.
    code, body = await api("table", params={"q": 'plan_name == "derived"', "columns": ""})
    assert code == 200 and set(body["parents"]) == {family["parent"]}


async def test_the_detail_of_a_live_derived_run_shows_its_parent_and_pipeline(api, store, family):
    code, body = await api(f"runs/{family['live']}")
    assert code == 200
    (parent,) = body["parents"]
    assert parent["uid"] == family["parent"] and parent["plan_name"] == "scan"
    assert parent["scan_id"] == store[family["parent"]].metadata["start"]["scan_id"]
    pipeline = body["pipeline"]
    steps = pipeline["steps"]
    assert [s["type"] for s in steps] == ["live", "map", "accumulate", "to_run"]
    assert [s.get("function") for s in steps] == [None, "normalise", "accumulate", None]
    assert steps[0]["run"] == family["parent"] and steps[-1]["stream"] == "primary"
    assert steps[1]["qualname"] == "normalise" and steps[1]["module"] == __name__ and len(steps[1]["sha256"]) == 64
    assert pipeline["summary"] == store[family["live"]].metadata["start"]["pipeline"]["summary"]
    assert body["derived"] == [] and body["derived_more"] is False

    # A batch derived run has parents but no pipeline description.
    code, body = await api(f"runs/{family['batch']}")
    assert code == 200 and [p["uid"] for p in body["parents"]] == [family["parent"]]
    assert body["pipeline"] is None


async def test_the_detail_of_a_parent_lists_its_derived_runs_newest_first(api, family):
    code, body = await api(f"runs/{family['parent'][:8]}")
    assert code == 200
    assert [r["uid"] for r in body["derived"]] == [family["live"], family["batch"]]
    assert all(r["status"] == "success" and r["parent_uids"] == [family["parent"]] for r in body["derived"])
    assert body["derived"][0]["num_events"] == 5
    assert body["parents"] == [] and body["pipeline"] is None and body["derived_more"] is False


async def test_malformed_lineage_in_a_start_document_is_left_out_not_an_error(api, store, writer):
    """parent_uids and pipeline are whatever a producer wrote: only what fits is served."""
    write_run(writer, uid="raw-parent-0001")
    missing = "gone-0123456789"
    hostile = write_run(
        writer,
        parent_uids=[missing, 7, None, "a/b", "\x1b[31mred", "raw-parent-0001", missing, "x" * 300],
        pipeline={
            "summary": "<img src=x onerror=alert(1)> -> to_run",
            "nodes": [
                "not a node",
                {"type": 5},
                {"type": "map", "function": {"qualname": 3}},
                {"type": "<b>filter</b>", "predicate": {"qualname": "mod.<lambda>", "sha256": None}},
            ],
        },
    )
    uid = hostile.start_doc["uid"]
    write_run(writer, parent_uids="raw-parent-0001", pipeline={"nodes": "nope"})
    code, body = await api("runs")
    assert code == 200
    row = next(r for r in body["runs"] if r["uid"] == uid)
    assert row["parent_uids"] == [missing, "raw-parent-0001"]
    assert body["parents"] == {}  # the parent on the page needs no reference, the missing one has none
    code, body = await api(f"runs/{uid}")
    assert code == 200
    assert body["parents"][0] == {"uid": missing, "missing": True}
    assert body["parents"][1]["uid"] == "raw-parent-0001" and body["parents"][1]["status"] == "success"
    assert body["pipeline"]["summary"] == "<img src=x onerror=alert(1)> -> to_run"  # text: the panel escapes it
    assert body["pipeline"]["steps"] == [
        {"type": "map"},
        {"type": "<b>filter</b>", "function": "<lambda>", "qualname": "mod.<lambda>"},
    ]
    code, body = await api("runs/raw-parent-0001")
    assert code == 200 and [r["uid"] for r in body["derived"]] == [uid]  # a string parent_uids is no list


async def test_a_parent_with_many_derived_runs_lists_the_newest(api, store, writer):
    parent = write_run(writer, uid="many-parent-0001", time_=1000.0).start_doc["uid"]
    for i in range(53):
        bundle = compose_run(metadata={"plan_name": "derived", "parent_uids": [parent]}, time=2000.0 + i)
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop(exit_status="success"))
    code, body = await api(f"runs/{parent}")
    assert code == 200 and len(body["derived"]) == 50 and body["derived_more"] is True
    times = [r["time"] for r in body["derived"]]
    assert times == sorted(times, reverse=True) and times[0] == 2052.0
