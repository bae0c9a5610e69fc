"""Standing analyses run by the ``scandeck.server`` extension (``GET/POST auto``), with real kernels.

A notebook that publishes its event count with ``scandeck.glue`` is recorded with
``scandeck run``. The server starts a standing analysis of it from a request,
reruns it on a scan a RunEngine in another process records, shows the run with its
published value, and stops it. An analysis a ``scandeck auto`` command runs shows as
run elsewhere and cannot be stopped from the server; started there too, the server
stands by and takes over when the command stops. A second server on the same data resumes an
analysis the first was running when it stopped, and reruns the scan recorded while
no server ran. Each test uses its own sample name, hence its own analysis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_server.serverapp import ServerApp
from server_support import until

from scandeck.cli import main
from scandeck.provenance.auto import ledger_of
from scandeck.provenance.store import ProvStore

PROCS = Path(__file__).resolve().parents[1] / "procs.py"
#: A rerun starts a worker process and a kernel; generous on a loaded machine.
RERUN_DEADLINE = 240.0


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import scandeck\ncat = scandeck.open_catalog(catalog)\nds = cat[scan_uid].primary.read()\n"
            'scandeck.glue("events", len(ds.time))'
        ),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def produce(world: dict, *specs: str) -> list[str]:
    """Scans ``sample:points`` recorded by a RunEngine in another process, into the default store."""
    out = subprocess.run(
        [sys.executable, str(PROCS), "scans", str(world["store"]), *specs],
        env={**os.environ, "SCANDECK_DATA": str(world["data"])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data dir with one scan in its default store and a record of the notebook on it."""
    tmp = tmp_path_factory.mktemp("server-auto")
    data = tmp / "data"
    world = {"data": data, "store": data / "store"}
    (first,) = produce(world, "Ag:5")
    nb = tmp / "count.ipynb"
    _notebook(nb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(data))
        mp.delenv("SCANDECK_CATALOG", raising=False)
        assert main(["run", str(nb), "-p", "scan_uid", first, "--name", "count"]) == 0
    with ProvStore(data / "provenance") as prov:
        (world["record"],) = prov.list()
    return world


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


async def analysis_of(api, sample: str) -> dict | None:
    code, body = await api("auto")
    assert code == 200, body
    found = [a for a in body["analyses"] if a["query"] == f'sample == "{sample}"']
    return found[0] if found else None


async def wait_analysis(api, sample: str, check, what: str, timeout: float = RERUN_DEADLINE) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await analysis_of(api, sample)
        if found is not None and check(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {found}"
        await asyncio.sleep(0.2)


async def test_start_list_rerun_with_published_values_and_stop(api, app, world):
    record = world["record"]
    code, body = await api(
        "auto", method="POST", body={"record": record.id[:8], "query": 'sample == "Ni"', "catalog": ""}
    )
    assert code == 201, body
    started = body["analysis"]
    assert started["record"] == record.id and started["name"] == "count" and started["managed"] is True
    assert started["status"] == "success" and started["here"] is True
    assert started["counts"] == {"open": 0, "pending": 0, "running": 0, "done": 0, "failed": 0}
    running = await wait_analysis(api, "Ni", lambda a: a["state"] == "running", "the lease")
    assert running["holder"].split(":")[1] == str(os.getpid())  # host:pid of this server

    # Starting it again is the same analysis, not a second service.
    code, again = await api(
        "auto", method="POST", body={"record": record.id, "query": 'sample == "Ni"', "catalog": ""}
    )
    assert code == 201 and again["analysis"]["id"] == started["id"]
    assert list(app.auto.services) == [started["id"]]

    ni, cu = produce(world, "Ni:5", "Cu:3")
    done = await wait_analysis(api, "Ni", lambda a: a["counts"]["done"] == 1, "the rerun")
    (run,) = done["latest"]
    assert run["uid"] == ni and run["state"] == "done" and run["values"] == {"events": 5}
    with ProvStore(world["data"] / "provenance") as prov:
        rerun = prov.get(run["record_id"])
        assert rerun.parent == record.id and rerun.target_scan == ni and rerun.values == {"events": 5}
    assert cu not in {r["uid"] for r in done["latest"]}

    code, body = await api(f"auto/{started['id'][:8]}/stop", method="POST")
    assert code == 200, body
    assert body["analysis"]["managed"] is False and body["analysis"]["state"] in ("stopping", "stopped")
    stopped = await wait_analysis(api, "Ni", lambda a: a["state"] == "stopped", "the stop", timeout=60)
    assert stopped["holder"] is None and stopped["here"] is False
    assert ledger_of(app.store).get(started["id"]).managed is False


async def test_bad_requests_answer_400_and_store_nothing(api, app, world):
    before = len(ledger_of(app.store).all())
    code, body = await api("auto", method="POST", body={"record": world["record"].id, "query": "sample =="})
    assert code == 400 and body["error"] == "QuerySyntaxError" and "position" in body
    code, body = await api("auto", method="POST", body={"record": "ffffffff", "query": ""})
    assert code == 400 and body["error"] == "RecordNotFound"
    code, body = await api("auto", method="POST", body={"record": world["record"].id, "status": "done"})
    assert code == 400 and "'status' must be one of success, fail, abort, any" in body["message"]
    code, body = await api("auto", method="POST", body={"record": world["record"].id, "workers": 0})
    assert code == 400 and "'workers'" in body["message"]
    code, body = await api("auto/ffffffff/stop", method="POST")
    assert code == 404 and body["error"] == "RecordNotFound"
    code, body = await api("auto", method="POST", body={"record": world["record"].id}, auth=False)
    assert code == 403
    code, body = await api("auto", auth=False)
    assert code == 403
    assert len(ledger_of(app.store).all()) == before


async def test_a_new_server_resumes_a_managed_analysis(api, app, world, jp_serverapp, jp_configurable_serverapp):
    code, body = await api(
        "auto", method="POST", body={"record": world["record"].id, "query": 'sample == "Fe"', "catalog": ""}
    )
    assert code == 201, body
    sid = body["analysis"]["id"]
    await wait_analysis(api, "Fe", lambda a: a["state"] == "running", "the lease")

    await jp_serverapp._cleanup()  # the server stops: its services end, the analysis stays managed
    ledger = ledger_of(ProvStore(world["data"] / "provenance"))
    assert ledger.get(sid).managed is True and ledger.holder(sid) is None
    (fe,) = produce(world, "Fe:4")  # while no server runs

    ServerApp.clear_instance()
    second = jp_configurable_serverapp().web_app.settings["scandeck"]
    assert second is not app
    await until(second.auto.resumed.is_set, what="the resume")
    assert list(second.auto.services) == [sid]
    resumed = await until(
        lambda: (a := second.auto.describe(ledger.get(sid)))["counts"]["done"] == 1 and a,
        timeout=RERUN_DEADLINE,
        what="the rerun of the scan recorded while no server ran",
    )
    (run,) = resumed["latest"]
    assert run["uid"] == fe and run["values"] == {"events": 4}
    assert resumed["state"] == "running" and resumed["here"] is True
    ledger.close()


async def test_an_analysis_a_command_runs_is_shown_and_not_stopped_here(api, app, world, tmp_path):
    log = tmp_path / "auto.log"
    with open(log, "w") as out:
        command = subprocess.Popen(
            [sys.executable, "-m", "scandeck.cli", "auto", world["record"].id[:8], "--query", 'sample == "Co"']
            + ["--catalog", str(world["store"].absolute())],
            env={**os.environ, "SCANDECK_DATA": str(world["data"])},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        elsewhere = await wait_analysis(api, "Co", lambda a: a["state"] == "elsewhere", "the command's lease", 60)
        assert elsewhere["holder"].split(":")[1] == str(command.pid) and elsewhere["here"] is False
        code, body = await api(f"auto/{elsewhere['id']}/stop", method="POST")
        assert code == 409 and body["error"] == "AutoNotHere", body
        assert f":{command.pid}" in body["message"] and "scandeck auto" in body["message"]
        assert command.poll() is None  # still running

        # Started here too: the server waits as standby, and takes over when the command stops.
        code, body = await api(
            "auto", method="POST", body={"record": world["record"].id, "query": 'sample == "Co"', "catalog": ""}
        )
        assert code == 201 and body["analysis"]["id"] == elsewhere["id"], body
        await wait_analysis(api, "Co", lambda a: a["state"] == "standby", "the standby", 60)
        command.send_signal(signal.SIGINT)
        assert command.wait(120) == 0, log.read_text()
        await wait_analysis(api, "Co", lambda a: a["state"] == "running", "the takeover", 60)
        code, body = await api(f"auto/{elsewhere['id']}/stop", method="POST")
        assert code == 200, body
        await wait_analysis(api, "Co", lambda a: a["state"] == "stopped", "the stop", 60)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait(30)
