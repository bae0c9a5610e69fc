"""Rerun jobs of the ``scandeck.server`` extension, with real kernels.

One notebook is recorded with ``scandeck run`` on a scan stored by a real RunEngine;
the server reruns it on two other scans (progress over GET and the WebSocket, outputs
under the server root), and on a scan whose sample is "slow", where the notebook
sleeps, to cancel the job and see every process of it end.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nbformat
import psutil
import pytest
from server_support import until

import scandeck
from scandeck.cli import main
from scandeck.provenance.store import ProvStore

JOB_KEYS = {
    "id",
    "record",
    "name",
    "catalog",
    "scans",
    "total",
    "done",
    "failed",
    "status",
    "started",
    "finished",
    "results",
    "output_dir",
    "message",
}
#: A batch of two reruns starts two kernels; generous on a loaded machine.
JOB_DEADLINE = 240.0


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import time\nimport scandeck\ncat = scandeck.open_catalog(catalog)\n"
            "run = cat[scan_uid]\n"
            'if run.metadata["start"].get("sample") == "slow":\n    time.sleep(600)\n'
            "ds = run.primary.read()"
        ),
        nbformat.v4.new_code_cell('print(f"events {len(ds.time)}")'),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three scans (RunEngine) in the default store of a data dir, and a record made with ``scandeck run``."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import SynAxis, SynGauss

    tmp = tmp_path_factory.mktemp("server-reruns")
    data = tmp / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(data))
        mp.delenv("SCANDECK_CATALOG", raising=False)
        cat = scandeck.open_catalog()
        writer = cat.writer()
        RE = RunEngine({}, context_managers=[])  # noqa: N806
        RE.subscribe(writer)
        motor = SynAxis(name="motor")
        det = SynGauss("det", motor, "motor", center=0.0, Imax=1, sigma=0.5)
        scans = {}
        for key, num, sample in (("first", 5, "Ni"), ("second", 7, "Cu"), ("slow", 3, "slow")):
            (scans[key],) = RE(bp.scan([det], motor, -1, 1, num), sample=sample)
        writer.close()
        cat.close()
        nb = tmp / "peak.ipynb"
        _notebook(nb)
        assert main(["run", str(nb), "-p", "scan_uid", scans["first"], "--name", "peak"]) == 0
    with ProvStore(data / "provenance") as prov:
        (record,) = prov.list()
    return {"data": data, "scans": scans, "record": record}


@pytest.fixture
def paths(world, monkeypatch, tmp_path):
    catalogs = tmp_path / "catalogs"
    catalogs.mkdir()
    monkeypatch.setenv("SCANDECK_DATA", str(world["data"]))
    monkeypatch.setenv("SCANDECK_CATALOGS", str(catalogs))
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    return {"prov": world["data"] / "provenance"}


@pytest.fixture
def app(jp_serverapp):
    return jp_serverapp.web_app.settings["scandeck"]


@pytest.fixture
def events(jp_ws_fetch):
    """A WebSocket on the events endpoint, and the job messages it received (read in a task)."""
    state = {"jobs": [], "ws": None}

    async def start():
        ws = state["ws"] = await jp_ws_fetch("scandeck", "api", "events")
        hello = json.loads(await ws.read_message())
        assert hello == {"type": "hello", "catalog": ""}

        async def read():
            while (message := await ws.read_message()) is not None:
                data = json.loads(message)
                if data["type"] == "job":
                    state["jobs"].append(data["job"])

        state["task"] = asyncio.ensure_future(read())
        return state

    yield start
    if state["ws"] is not None:
        loop = asyncio.get_event_loop()
        state["ws"].close(1000)
        loop.run_until_complete(asyncio.wait_for(state["task"], 30))


async def _finished(api, job_id: str) -> dict:
    async def poll():
        while True:
            code, body = await api(f"reruns/{job_id}")
            assert code == 200
            if body["job"]["status"] != "running":
                return body["job"]
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), JOB_DEADLINE)


async def test_a_rerun_job_reports_progress_and_ends_in_success(api, app, world, events, jp_root_dir):
    received = await events()
    record, scans = world["record"], world["scans"]
    code, body = await api(
        "reruns",
        method="POST",
        body={"record": record.id[:8], "scans": [scans["first"][:8], scans["second"]], "workers": 2},
    )
    assert code == 202, body
    job = body["job"]
    assert set(job) == JOB_KEYS
    assert job["record"] == record.id and job["name"] == "peak" and job["catalog"] == ""
    assert job["scans"] == [scans["first"], scans["second"]] and job["total"] == 2
    assert job["status"] == "running" and job["done"] == 0 and job["results"] == [] and job["finished"] is None
    assert job["output_dir"].startswith(f"reruns/peak-{record.id[:8]}-")

    final = await _finished(api, job["id"])
    assert final["status"] == "success", final
    assert final["done"] == 2 and final["failed"] == 0 and final["message"] is None and final["finished"]
    by_uid = {r["uid"]: r for r in final["results"]}
    assert set(by_uid) == {scans["first"], scans["second"]}
    with ProvStore(world["data"] / "provenance") as prov:
        for uid, events_expected in ((scans["first"], 5), (scans["second"], 7)):
            result = by_uid[uid]
            assert result["status"] == "ok" and result["error"] is None
            assert result["output"].startswith(job["output_dir"] + "/")
            out = nbformat.read(str(jp_root_dir / result["output"]), as_version=4)
            printed = "".join(o.get("text", "") for o in out.cells[-1].outputs)
            assert printed.strip() == f"events {events_expected}"
            child = prov.get(result["record"])
            assert child.parent == record.id and child.kind == "rerun" and child.target_scan == uid
    assert (jp_root_dir / job["output_dir"] / "rerun.log").is_file()

    code, body = await api("reruns")
    assert [j["id"] for j in body["jobs"]] == [job["id"]]
    # The WebSocket told the same story: each result as it came, then the end.
    await until(
        lambda: received["jobs"] and received["jobs"][-1]["status"] == "success", what="the last job message"
    )
    done = [m["done"] for m in received["jobs"] if m["id"] == job["id"]]
    assert done == sorted(done) and done[-1] == 2 and 1 in done
    assert received["jobs"][-1] == final


async def test_cancelling_a_job_ends_its_processes_and_kernels(api, app, world, events):
    received = await events()
    code, body = await api(
        "reruns",
        method="POST",
        body={"record": world["record"].id, "scans": [world["scans"]["slow"]], "workers": 1},
    )
    assert code == 202, body
    job_id = body["job"]["id"]
    process = app.jobs.job(job_id).process

    def kernel_started() -> bool:
        try:
            return any("ipykernel" in " ".join(p.cmdline()) for p in psutil.Process(process.pid).children(True))
        except psutil.Error:
            return False

    await until(kernel_started, timeout=JOB_DEADLINE, what="the rerun's kernel")
    code, body = await api(f"reruns/{job_id}", method="DELETE")
    assert code == 200 and body["job"]["status"] == "cancelled" and body["job"]["finished"]
    assert process.poll() is not None
    killed = app.jobs.job(job_id).killed
    assert len(killed) >= 3  # the command, its worker, the kernel

    def all_gone() -> bool:
        for pid in killed:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                continue
        return True

    await until(all_gone, what="every process of the job to end")
    code, body = await api(f"reruns/{job_id}")
    assert body["job"]["status"] == "cancelled"
    code, body = await api(f"reruns/{job_id}", method="DELETE")
    assert code == 409 and body["error"] == "JobNotRunning"
    await until(lambda: any(m["status"] == "cancelled" for m in received["jobs"]), what="the cancelled message")


async def test_server_stop_cancels_running_jobs(api, app, world):
    code, body = await api(
        "reruns",
        method="POST",
        body={"record": world["record"].id, "scans": [world["scans"]["slow"]], "workers": 1},
    )
    assert code == 202, body
    job = app.jobs.job(body["job"]["id"])
    await app.stop_extension()
    assert job.status == "cancelled" and job.process.poll() is not None
    assert not job.reader.is_alive()
