"""The run table's endpoints of ``scandeck.server``: GET table, GET columns, GET table.csv,
GET/POST runs/UID/annotations, and the ``facts`` push, on a real jupyter_server.

Runs come from a real RunEngine (ophyd.sim) written into the embedded store under
tmp_path, with a columns file beside it. Cells are stored with ``put_cells`` under the
column's own code hash (a fresh value), another hash (a stale one) or an error (a
failed one), so every state the table marks is there without waiting for a service.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import bluesky.plans as bp
import pytest
from server_support import scandeck_environment, server_config, until

import scandeck
from scandeck.runtable.columns import columns_for
from scandeck.runtable.model import Cell

DEADLINE = 30.0

COLUMNS_FILE = """\
import scandeck


@scandeck.column("peak", title="Peak", units="counts")
def peak(run):
    return float(run.primary.read()["det"].values.max())


@scandeck.column("broken")
def broken(run):
    raise ValueError("no beam")
"""

HOSTILE_TAG = '=HYPERLINK("http://evil.example/","x")'
HOSTILE_COMMENT = "<img src=x onerror=alert(1)> bad beam after 12:40"


@pytest.fixture
def paths(monkeypatch, tmp_path):
    paths = scandeck_environment(monkeypatch, tmp_path)
    paths["store"].mkdir(parents=True)
    (paths["store"] / "columns.py").write_text(COLUMNS_FILE)
    return paths


@pytest.fixture
def jp_server_config(paths):
    config = server_config(paths)
    # The server's own column service would compute the cells this test stores by hand.
    config["ScandeckApp"]["column_service"] = False
    return config


@pytest.fixture
def app(jp_serverapp):
    return jp_serverapp.web_app.settings["scandeck"]


@pytest.fixture
def runs(store, RE, hw):
    """Three runs: a 1-D scan (fresh and failed cells), a count (a stale cell), a grid scan (none)."""
    writer = store.writer()
    RE.subscribe(writer)
    (scan,) = RE(bp.scan([hw.det], hw.motor, -1, 1, 7), sample="Ni", offset=-0.5)
    (count,) = RE(bp.count([hw.det], 3), sample="=cmd|' /C calc'!A0")
    (grid,) = RE(bp.grid_scan([hw.det4], hw.motor1, -1, 1, 3, hw.motor2, -1, 1, 2), sample="Cu")
    writer.close()
    specs = columns_for(store)
    peak = float(store[scan].primary.read()["det"].values.max())
    store.source.put_cells(
        scan,
        {
            "peak": Cell(peak, specs["peak"].code_hash),
            "broken": Cell(None, specs["broken"].code_hash, status="error", error="ValueError: no beam"),
        },
    )
    store.source.put_cells(count, {"peak": Cell(1.5, "code-before-the-edit")})
    return {"scan": scan, "count": count, "grid": grid, "peak": peak}


async def test_table_pages_carry_each_runs_cells_with_their_state(api, runs):
    code, body = await api("table", params={"columns": "peak,broken,sample,tags", "limit": 2})
    assert code == 200, body
    assert [c["name"] for c in body["columns"]] == ["peak", "broken", "sample", "tags"]
    assert body["columns"][0] == {"name": "peak", "title": "Peak", "units": "counts", "kind": "computed"}
    assert body["total"] == 3 and body["next"]
    # The page is GET runs' page, newest first; the cells are of those runs only.
    assert [r["uid"] for r in body["runs"]] == [runs["grid"], runs["count"]]
    assert set(body["cells"]) == {runs["grid"], runs["count"]}
    assert body["cells"][runs["count"]]["peak"] == {"value": 1.5, "state": "stale", "error": None}
    assert body["cells"][runs["grid"]]["peak"] == {"value": None, "state": "pending", "error": None}
    assert body["cells"][runs["grid"]]["sample"] == {"value": "Cu", "state": "ok", "error": None}
    assert body["cells"][runs["grid"]]["tags"]["value"] == []

    code, more = await api("table", params={"columns": "peak,broken", "limit": 2, "before": body["next"]})
    assert code == 200 and [r["uid"] for r in more["runs"]] == [runs["scan"]] and more["next"] is None
    cells = more["cells"][runs["scan"]]
    assert cells["peak"] == {"value": runs["peak"], "state": "ok", "error": None}
    assert cells["broken"] == {"value": None, "state": "failed", "error": "ValueError: no beam"}


async def test_table_cells_of_named_runs_and_bad_columns(api, runs):
    code, body = await api(f"table?columns=peak&uid={runs['scan']}&uid={runs['count']}&uid=gone")
    assert code == 200, body
    assert [r["uid"] for r in body["runs"]] == [runs["scan"], runs["count"]]
    assert body["cells"][runs["scan"]]["peak"]["state"] == "ok"

    code, body = await api("table", params={"columns": "peek"})
    assert code == 400 and body["error"] == "InvalidQuery"
    assert "peek" in body["message"] and "did you mean peak" in body["message"]
    code, body = await api("table", params={"columns": "peak,peak"})
    assert code == 400 and "twice" in body["message"]


async def test_the_detail_carries_the_runs_computed_cells(api, runs):
    code, body = await api(f"runs/{runs['scan']}")
    assert code == 200
    assert body["cells"]["peak"] == {"value": runs["peak"], "state": "ok", "error": None}
    assert body["cells"]["broken"]["state"] == "failed"
    assert {"duration", "events", "status", "cen", "fwhm"} <= set(body["cells"])


async def test_columns_offers_computed_builtin_annotation_start_and_data_columns(api, runs, store):
    code, body = await api("columns")
    assert code == 200, body
    by_name = {c["name"]: c for c in body["columns"]}
    assert by_name["peak"] == {"name": "peak", "title": "Peak", "units": "counts", "kind": "computed"}
    assert by_name["cen"]["kind"] == "builtin" and by_name["duration"]["kind"] == "builtin"
    assert by_name["tags"]["kind"] == by_name["comments"]["kind"] == "annotation"
    assert by_name["sample"]["kind"] == "start" and by_name["plan_name"]["kind"] == "start"
    assert body["facts"] is True
    assert body["default"] == ["peak", "broken", "tags"]
    summarized = set()
    for run in (runs["scan"], runs["count"], runs["grid"]):
        summarized |= set(store.source.data_summary(run))
    offered = {n for n, c in by_name.items() if c["kind"] == "data"}
    assert offered == {f"data.{k}.{b}" for k in summarized for b in ("min", "max")}


async def test_annotations_round_trip_and_bad_input_is_a_400(api, runs):
    uid = runs["scan"]
    code, body = await api(f"runs/{uid}/annotations", method="POST", body={"tags": ["Ni", HOSTILE_TAG]})
    assert code == 200, body
    assert body["uid"] == uid and body["tags"] == ["Ni", HOSTILE_TAG] and body["comments"] == []
    code, body = await api(
        f"runs/{uid[:8]}/annotations", method="POST", body={"comment": HOSTILE_COMMENT, "untag": ["Ni"]}
    )
    assert code == 200, body
    assert body["tags"] == [HOSTILE_TAG]
    (comment,) = body["comments"]
    assert comment["text"] == HOSTILE_COMMENT and comment["author"] and comment["host"]
    assert abs(comment["time"] - time.time()) < 3600
    code, again = await api(f"runs/{uid}/annotations")
    assert code == 200 and again == body

    code, table = await api("table", params={"columns": "tags,comments", "q": 'sample == "Ni"'})
    assert table["cells"][uid]["tags"]["value"] == [HOSTILE_TAG]
    assert table["cells"][uid]["comments"]["value"] == HOSTILE_COMMENT

    bad = [
        ({"tags": [""]}, 400, "InvalidAnnotation", "empty"),
        ({"comment": "a\x00b"}, 400, "InvalidAnnotation", "NUL"),
        ({"untag": ["redo"]}, 400, "InvalidAnnotation", "its tags"),
        ({"tags": "Ni"}, 400, "BadRequest", "list of strings"),
        ({}, 400, "BadRequest", "nothing to change"),
        ({"colour": "red"}, 400, "BadRequest", "unknown field"),
    ]
    for request, status, kind, words in bad:
        code, body = await api(f"runs/{uid}/annotations", method="POST", body=request)
        assert (code, body["error"]) == (status, kind), (request, body)
        assert words in body["message"], body
    # A refused request stored nothing: a bad comment beside a good untag did not untag.
    code, body = await api(f"runs/{uid}/annotations", method="POST", body={"untag": [HOSTILE_TAG], "comment": " "})
    assert code == 400
    assert (await api(f"runs/{uid}/annotations"))[1]["tags"] == [HOSTILE_TAG]
    code, body = await api("runs/no-such-run/annotations", method="POST", body={"tags": ["x"]})
    assert code == 404 and body["error"] == "RunNotFound"


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_is_the_whole_search_as_catalog_table_gives_it(api, runs, store, monkeypatch, app):
    from scandeck.server import csv_export

    monkeypatch.setattr(csv_export, "CSV_PAGE", 2)  # three runs: two pages
    store[runs["count"]].annotate(tags=[HOSTILE_TAG], comment="@SUM(1+1)")
    response = await api.client.fetch(
        f"{api.base_url}scandeck/api/table.csv?columns=peak,broken,sample,offset,tags,comments",
        headers=api.auth,
        raise_error=False,
    )
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="scandeck-default-')
    rows = _csv(response.body.decode())
    assert [r["uid"] for r in rows] == [runs["grid"], runs["count"], runs["scan"]]
    assert list(rows[0]) == [
        "uid", "scan_id", "time", "plan_name", "status",
        "peak (counts)", "broken", "sample", "offset", "tags", "comments", "cell_notes",
    ]  # fmt: skip

    df = store.table(columns=["peak", "broken", "sample", "offset", "tags"], compute=False)
    by_uid = {r["uid"]: r for r in rows}
    for uid in df.index:
        row = by_uid[uid]
        peak = df.loc[uid, "peak"]
        assert row["peak (counts)"] == ("" if peak is None or peak != peak else repr(float(peak)))
        assert row["sample"].lstrip("'") == df.loc[uid, "sample"]
        assert row["plan_name"] == store[uid].metadata["start"]["plan_name"]
    scan, count, grid = by_uid[runs["scan"]], by_uid[runs["count"]], by_uid[runs["grid"]]
    assert scan["offset"] == "-0.5"  # a number, not text: no quote
    assert scan["broken"] == "" and "broken: failed (ValueError: no beam)" in scan["cell_notes"]
    assert count["peak (counts)"] == "1.5" and "peak: stale" in count["cell_notes"]
    assert grid["peak (counts)"] == "" and "peak: pending" in grid["cell_notes"]
    # Text a spreadsheet would run as a formula is quoted; the rest is as stored.
    assert count["sample"] == "'=cmd|' /C calc'!A0"
    assert count["tags"] == "'" + HOSTILE_TAG
    assert count["comments"] == "'@SUM(1+1)"

    code, body = await api("table.csv", params={"q": "sample ==", "columns": "peak"})
    assert code == 400 and body["error"] == "QuerySyntaxError"


# -- push ------------------------------------------------------------------------------------------


@pytest.fixture
def connect(jp_ws_fetch):
    sockets = []

    async def open_socket(catalog: str = ""):
        ws = await jp_ws_fetch("scandeck", "api", "events", params={"catalog": catalog})
        sockets.append(ws)
        return ws

    yield open_socket
    for ws in sockets:
        ws.close()


async def next_facts(ws) -> list[str]:
    deadline = time.monotonic() + DEADLINE
    while True:
        raw = await asyncio.wait_for(ws.read_message(), max(deadline - time.monotonic(), 0.1))
        assert raw is not None, "the server closed the socket"
        message = json.loads(raw)
        if message["type"] == "facts":
            return message["uids"]


async def test_an_annotation_is_pushed_to_every_client_of_the_catalog(api, connect, runs, app, paths):
    first, second = await connect(""), await connect("")
    await until(lambda: app.push.watcher("") and app.push.watcher("").ready.is_set(), what="the watcher")

    # One client tags a run: both clients hear of it.
    code, _ = await api(f"runs/{runs['grid']}/annotations", method="POST", body={"tags": ["redo"]})
    assert code == 200
    assert await next_facts(first) == [runs["grid"]]
    assert await next_facts(second) == [runs["grid"]]

    # Another process's catalog (a notebook, `scandeck comment`): pushed as well.
    other = scandeck.open_catalog(paths["store"])
    try:
        other[runs["scan"]].annotate(comment="seen from the CLI")
    finally:
        other.close()
    assert await next_facts(first) == [runs["scan"]]
    assert await next_facts(second) == [runs["scan"]]

    # A computed cell stored by a column service is a change of facts too.
    store = scandeck.open_catalog(paths["store"])
    try:
        store.source.put_cells(runs["count"], {"peak": Cell(2.0, "x")})
    finally:
        store.close()
    assert await next_facts(first) == [runs["count"]]


async def test_a_columns_file_that_does_not_load_is_a_400_naming_its_line(api, runs, paths):
    (paths["store"] / "columns.py").write_text(COLUMNS_FILE + "\n\ndef oops(:\n")
    code, body = await api("columns")
    assert code == 400 and body["error"] == "ColumnsFileError"
    assert "columns.py" in body["message"] and "line 14" in body["message"], body
    # The runs are still listed, with no cells, and the table says why.
    code, body = await api("table", params={"columns": "peak,sample"})
    assert code == 200 and len(body["runs"]) == 3 and body["total"] == 3
    assert body["cells"] == {} and body["columns"] == []
    assert "columns.py" in body["columns_error"] and "line 14" in body["columns_error"]
    code, body = await api("table.csv", params={"columns": "peak"})
    assert code == 400 and body["error"] == "ColumnsFileError"  # an export without its columns: refused
    code, body = await api(f"runs/{runs['scan']}")
    assert code == 200 and "cells" not in body


async def test_values_reruns_published_are_offered_shown_and_searched(api, runs, store):
    """A rerun's ``scandeck.glue`` values (as ``scandeck rerun`` publishes them) in GET columns,
    GET table (cells and search) and the detail; a record name with a space and a hostile value."""
    from scandeck.provenance.published import publish_values
    from scandeck.provenance.record import Environment, ProvenanceRecord

    record = ProvenanceRecord(
        name="peak fit",
        kind="rerun",
        target_scan=runs["scan"],
        environment=Environment(python="3.11", platform="Linux"),
        values={"cen": 0.25, "note": HOSTILE_COMMENT},
    )
    assert publish_values(store, record) == ["peak fit.cen", "peak fit.note"]
    code, body = await api("columns")
    assert code == 200
    published = [c for c in body["columns"] if c["kind"] == "published"]
    assert published == [
        {"name": n, "title": n, "units": None, "kind": "published"} for n in ("peak fit.cen", "peak fit.note")
    ]
    code, body = await api(
        "table", params={"columns": "peak fit.cen,peak fit.note", "q": "columns.`peak fit`.cen > 0"}
    )
    assert code == 200, body
    assert [r["uid"] for r in body["runs"]] == [runs["scan"]]
    assert body["columns"][0] == {
        "name": "peak fit.cen",
        "title": "peak fit.cen",
        "units": None,
        "kind": "published",
    }
    assert body["cells"][runs["scan"]]["peak fit.cen"] == {"value": 0.25, "state": "ok", "error": None}
    assert body["cells"][runs["scan"]]["peak fit.note"]["value"] == HOSTILE_COMMENT  # JSON, the page escapes it
    code, body = await api(f"runs/{runs['scan']}")
    assert code == 200 and body["cells"]["peak fit.cen"] == {"value": 0.25, "state": "ok", "error": None}
    code, body = await api(f"runs/{runs['count']}")
    assert code == 200 and not any("." in name for name in body["cells"])
