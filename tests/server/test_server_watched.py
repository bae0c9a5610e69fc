"""Watched runs in the API (issue 17): RUN's ``files`` (count so far, newest file's path) in
``GET runs``, ``GET table`` and the push channel, and the detail's ``watch``.

The runs are composed as ``scandeck watch`` writes them (tests/watched_docs.py): one
resource, datum and event per file, streams named by reader.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from server_support import until, write_run
from watched_docs import WatchedRun

from scandeck.server import watched_runs

DEADLINE = 30.0


@pytest.fixture
def writer(store):
    w = store.writer()
    yield w
    w.close()


def by_uid(runs):
    return {r["uid"]: r for r in runs}


async def test_runs_and_table_give_a_watched_run_its_file_count_and_newest_path(api, store, writer, tmp_path):
    plain = write_run(writer, sample="Ni").start_doc["uid"]
    run = WatchedRun(writer, str(tmp_path / "xrd"), sample="LaB6")
    run.add("sample-1/frame_0001.tif", "tiff")
    run.add("sample-1/spectrum_0001.csv", "table")
    run.add("sample-2/frame_0001.tif", "tiff")

    code, body = await api("runs")
    assert code == 200
    listed = by_uid(body["live"])
    assert listed[run.uid]["files"] == {"count": 3, "newest": "sample-2/frame_0001.tif"}
    assert "files" not in by_uid(body["runs"])[plain]

    # Running: each look sees the files that arrived since the last one, in every stream.
    run.add("sample-2/spectrum_0001.csv", "table")
    run.resource("sample-2/frame_0002.tif", "tiff")  # a file whose event is not written yet
    code, body = await api("runs")
    assert by_uid(body["live"])[run.uid]["files"] == {"count": 4, "newest": "sample-2/spectrum_0001.csv"}

    run.stop()
    code, body = await api("table", params={"columns": "sample"})
    assert code == 200
    rows = by_uid(body["runs"])
    assert rows[run.uid]["status"] == "success"
    assert rows[run.uid]["files"] == {"count": 4, "newest": "sample-2/spectrum_0001.csv"}
    assert "files" not in rows[plain]


async def test_a_watched_run_without_files_yet(api, writer, tmp_path):
    run = WatchedRun(writer, str(tmp_path))
    code, body = await api("runs")
    assert by_uid(body["live"])[run.uid]["files"] == {"count": 0, "newest": None}


async def test_the_detail_says_what_was_watched(api, writer, tmp_path):
    run = WatchedRun(writer, str(tmp_path / "spectra"), patterns=("*.csv", "*.xy"), host="xrd-pc")
    run.add("a.csv")
    run.stop()
    code, body = await api(f"runs/{run.uid}")
    assert code == 200
    assert body["watch"] == {
        "roots": [str(tmp_path / "spectra")],
        "patterns": ["*.csv", "*.xy"],
        "host": "xrd-pc",
        "run_per": "session",
        "part": None,
        "transfer": False,
    }
    assert body["run"]["files"] == {"count": 1, "newest": "a.csv"}
    plain = write_run(writer).start_doc["uid"]
    code, body = await api(f"runs/{plain}")
    assert "watch" not in body and "files" not in body["run"]


async def test_hostile_names_are_sent_escaped_and_bounded(api, writer, tmp_path):
    run = WatchedRun(writer, "/data/\x1b[2J", patterns=("<img src=x>",), host="\x07pc")
    run.add("d/" + "x" * 5000 + ".csv")
    run.add("<script>alert(1)</script>\x1b[31m.csv")
    code, body = await api("runs")
    newest = by_uid(body["live"])[run.uid]["files"]["newest"]
    assert newest == "<script>alert(1)</script>\\u001b[31m.csv"  # text: the panel renders it as text
    code, body = await api(f"runs/{run.uid}")
    assert body["watch"]["roots"] == ["/data/\\u001b[2J"] and body["watch"]["host"] == "\\u0007pc"
    run.add("d/" + "x" * 5000 + ".csv")
    code, body = await api("runs")
    newest = by_uid(body["live"])[run.uid]["files"]["newest"]
    assert len(newest) <= watched_runs.MAX_PATH and newest.startswith("d/xxx")


def test_the_newest_path_is_found_behind_many_documents_that_are_not_events(store, writer, tmp_path):
    run = WatchedRun(writer, str(tmp_path))
    run.add("first.csv")
    for i in range(3 * watched_runs.TAIL):  # files whose events are still to come
        run.resource(f"pending_{i}.csv")
    (summary,) = [s for s in store.source.search(store.query) if s.uid == run.uid]
    assert watched_runs.files_of(store.source, summary) == {"count": 1, "newest": "first.csv"}
    # The same state again is answered from what was found (nothing read).
    assert watched_runs.files_of(store.source, summary) == {"count": 1, "newest": "first.csv"}


async def test_the_push_channel_carries_the_files_as_they_arrive(jp_ws_fetch, jp_serverapp, writer, tmp_path):
    app = jp_serverapp.web_app.settings["scandeck"]
    ws = await jp_ws_fetch("scandeck", "api", "events", params={"catalog": ""})
    try:
        assert json.loads(await ws.read_message())["type"] == "hello"
        await until(lambda: app.push.watcher("") and app.push.watcher("").ready.is_set(), what="the watcher")
        run = WatchedRun(writer, str(tmp_path))
        names = ["s1/a.tif", "s1/b.csv", "s2/c.tif"]
        seen = []
        for name in names:
            run.add(name, "tiff" if name.endswith(".tif") else "table")
            while True:
                message = json.loads(await asyncio.wait_for(ws.read_message(), DEADLINE))
                if message["type"] == "run" and message["run"]["uid"] == run.uid:
                    files = message["run"]["files"]
                    if files["newest"] == name:
                        seen.append(files["count"])
                        break
        assert seen == [1, 2, 3]
        run.stop()
        deadline = time.monotonic() + DEADLINE
        while True:
            message = json.loads(await asyncio.wait_for(ws.read_message(), deadline - time.monotonic()))
            if message["type"] == "run" and message["run"]["status"] == "success":
                assert message["run"]["files"] == {"count": 3, "newest": "s2/c.tif"}
                break
    finally:
        ws.close(1000)
        while ws.close_code is None and await asyncio.wait_for(ws.read_message(), DEADLINE) is not None:
            pass  # until the server's close arrives: no socket left half open


# -- the preview of a watched run: its newest file -----------------------------------------------------


@pytest.fixture
def instrument_run(store, tmp_path):
    """A run of a real watcher (``--once``) over a TIFF frame and a CSV pattern, the CSV the newest."""
    import numpy as np
    import tifffile

    from scandeck.files.watch import Watcher

    root = tmp_path / "xrd"
    (root / "S01_Si").mkdir(parents=True)
    image = np.arange(300 * 250, dtype="uint16").reshape(300, 250)
    tifffile.imwrite(root / "S01_Si" / "XRD_Si_0001.tif", image)
    rows = "\n".join(f"{20 + i * 0.5},{i * i}" for i in range(40))
    csv = root / "S01_Si" / "XRD_Si_0001.csv"
    csv.write_text(f"# sample: Si\ntwo_theta_deg,intensity\n{rows}\n")
    os.utime(csv, (time.time() + 5, time.time() + 5))  # the newest, whatever order a scan finds them in
    summary = Watcher(store, [root], recursive=True, once=True, settle=0.0, say=lambda line: None).run()
    assert summary.files == 2, summary
    (uid,) = summary.runs
    return uid, root, image


async def test_a_watched_runs_preview_is_its_newest_file(api, instrument_run):
    uid, root, image = instrument_run
    code, body = await api(f"runs/{uid}/preview")  # no stream: the newest file's
    assert code == 200, body
    newest = body["file"]
    assert newest in ("S01_Si/XRD_Si_0001.csv", "S01_Si/XRD_Si_0001.tif")
    code, table = await api(f"runs/{uid}/preview", params={"stream": "table", "max_points": 10})
    assert code == 200 and table["file"] == "S01_Si/XRD_Si_0001.csv" and table["num_events"] == 1
    assert table["x"]["name"] == "two_theta_deg" and table["x"]["values"][0] == 20.0
    assert [s["name"] for s in table["y"]] == ["intensity"] and len(table["y"][0]["values"]) == 10
    assert table["y"][0]["values"][-1] == 39 * 39

    code, tiff = await api(f"runs/{uid}/preview", params={"stream": "tiff"})
    assert code == 200 and tiff["file"] == "S01_Si/XRD_Si_0001.tif" and tiff["y"] == []
    grid = tiff["map"]
    assert grid["kind"] == "grid" and grid["shape"] == [300, 250]
    assert len(grid["y"]["values"]) == 100 and len(grid["x"]["values"]) == 100  # at most 100 a side
    row, col = grid["y"]["values"][-1], grid["x"]["values"][-1]
    assert (row, col) == (299, 249) and grid["z"]["values"][-1][-1] == float(image[row, col])

    code, body = await api(f"runs/{uid}/preview", params={"stream": "primary"})
    assert code == 404 and "tiff" in body["message"]


async def test_a_file_rewritten_since_gives_an_empty_preview_that_says_why(api, instrument_run):
    uid, root, _ = instrument_run
    (root / "S01_Si" / "XRD_Si_0001.tif").write_bytes(b"not the frame any more")
    code, body = await api(f"runs/{uid}/preview", params={"stream": "tiff"})
    assert code == 200, body
    assert "map" not in body and body["y"] == []
    (skipped,) = body["skipped"]
    assert skipped["name"] == "file" and "has changed since run" in skipped["reason"]


async def test_a_scans_preview_is_still_its_primary_stream(api, writer):
    uid = write_run(writer, events=3).start_doc["uid"]
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200 and body["stream"] == "primary" and body["num_events"] == 3
    assert "file" not in body
