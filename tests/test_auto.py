"""``scandeck auto``: standing reruns with real kernels, on runs a RunEngine writes in another process.

One notebook is recorded with ``scandeck run``; it fails on purpose on a 7-point
scan. The services are ``scandeck auto`` processes; the scans come from
``tests/procs.py scans`` (a RunEngine in its own process). Each test uses its own
sample name, hence its own standing analysis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import scandeck
from scandeck.cli import main
from scandeck.provenance.auto import auto_tag
from scandeck.provenance.standing import Ledger
from scandeck.provenance.store import open_store

PROCS = Path(__file__).with_name("procs.py")


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import scandeck\ncat = scandeck.open_catalog(catalog)\nds = cat[scan_uid].primary.read()"
        ),
        nbformat.v4.new_code_cell(
            'assert len(ds.time) != 7, "seven events"\nprint("events", len(ds.time))\n'
            'scandeck.glue("events", len(ds.time))'
        ),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store with one scan, the notebook and its record."""
    tmp = tmp_path_factory.mktemp("auto")
    data = tmp / "data"
    store = tmp / "store"
    env = {**os.environ, "SCANDECK_DATA": str(data), "PYTHONUNBUFFERED": "1"}
    (first,) = produce({"env": env, "store": store}, "Ag:5")
    nb = tmp / "count.ipynb"
    _notebook(nb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(data))
        args = ["run", str(nb), "-p", "scan_uid", first, "-p", "catalog", str(store), "--name", "count"]
        assert main(args) == 0
    prov = open_store(data / "provenance")
    (record,) = prov.list()
    yield {
        "tmp": tmp,
        "env": env,
        "store": store,
        "record": record,
        "prov": prov,
        "ledger": Ledger(prov.directory),
    }
    prov.close()


def produce(world: dict, *specs: str) -> list[str]:
    """Record scans ``sample:points[:fail]`` with a RunEngine in another process; their uids."""
    out = subprocess.run(
        [sys.executable, str(PROCS), "scans", str(world["store"]), *specs],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


class Service:
    """A ``scandeck auto`` process; its output goes to a file."""

    def __init__(self, world: dict, sample: str, name: str, *extra: str) -> None:
        self.log = world["tmp"] / f"{name}.log"
        self.handle = open(self.log, "a")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "scandeck.cli",
            "auto",
            world["record"].id[:8],
            "--query",
            f'sample == "{sample}"',
        ]
        cmd += ["--catalog", str(world["store"]), "--workers", "2", *extra]
        self.proc = subprocess.Popen(cmd, env=world["env"], stdout=self.handle, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, words: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            assert self.proc.poll() is None, f"the service exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {words!r} in:\n{self.text()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=120)
        finally:
            self.handle.close()


def standing_of(world: dict, sample: str):
    (standing,) = [s for s in world["ledger"].all() if s.query == f'sample == "{sample}"']
    return standing


def wait_counts(world: dict, sample: str, finished: int, service=None, timeout: float = 180.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        if service is not None:
            assert service.proc.poll() is None, f"the service exited:\n{service.text()}"
        counts = world["ledger"].counts(standing_of(world, sample).id)
        if counts["done"] + counts["failed"] >= finished:
            return counts
        assert time.monotonic() < deadline, f"only {counts} of {finished} reruns"
        time.sleep(0.1)


def reruns_by_target(world: dict, sample: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for rec in world["prov"].list(tag=auto_tag(standing_of(world, sample).id)):
        assert rec.parent == world["record"].id and rec.kind == "rerun"
        found.setdefault(rec.target_scan, []).append(rec)
    return found


def test_reruns_exactly_the_matching_runs_and_goes_on_past_a_failure(world):
    service = Service(world, "Ni", "ni")
    try:
        service.wait_for("Ctrl-C stops")
        # Matching and successful: Ni:5, Ni:9. Ni:7 matches and the notebook fails on it.
        # Ni:6:fail ends with exit status fail; Cu:5 does not match.
        ni5, cu5, ni7, ni6_failed, ni9 = produce(world, "Ni:5", "Cu:5", "Ni:7", "Ni:6:fail", "Ni:9")
        counts = wait_counts(world, "Ni", 3, service)
        assert counts["done"] == 2 and counts["failed"] == 1, counts
        found = reruns_by_target(world, "Ni")
        assert sorted(found) == sorted([ni5, ni7, ni9])
        assert all(len(records) == 1 for records in found.values())
        assert found[ni5][0].status == "ok" and found[ni9][0].status == "ok"
        assert found[ni7][0].status == "failed" and "seven events" in found[ni7][0].error.evalue
        assert cu5 not in found and ni6_failed not in found
        service.wait_for("failed in")
        assert "seven events" in service.text()
        # The values the notebook published are columns of the runs, searchable.
        cat = scandeck.open_catalog(world["store"])
        try:
            assert [r.uid for r in cat.search("columns.count.events == 9")] == [ni9]
            table = cat.table(columns=["count.events"])
            assert table.loc[ni5, "count.events"] == 5 and table.attrs["states"].loc[ni5, "count.events"] == "ok"
        finally:
            cat.close()
    finally:
        assert service.stop() == 0
    assert "stopped: 2 done, 1 failed, 0 pending" in service.text()
    # The place is kept: nothing is pending or claimed after a clean stop.
    assert world["ledger"].counts(standing_of(world, "Ni").id)["running"] == 0


def test_list_and_show(world, capsys):
    assert main(["auto", "--list", "--store", str(world["prov"].directory)]) == 0
    listing = capsys.readouterr().out
    ni = standing_of(world, "Ni")
    (line,) = [ln for ln in listing.splitlines() if ln.startswith(ni.id[:8])]
    assert "stopped" in line and 'sample == "Ni"' in line
    assert line.split()[-5:-2] == ["2", "1", "0"]  # done, failed, pending
    assert main(["auto", "--show", ni.id[:6], "--store", str(world["prov"].directory)]) == 0
    shown = capsys.readouterr().out
    assert "2 done, 1 failed, 0 pending" in shown and "seven events" in shown


def test_sigkill_and_restart_without_duplicates_or_gaps(world):
    service = Service(world, "Fe", "fe-1")
    service.wait_for("Ctrl-C stops")
    first = produce(world, "Fe:5", "Fe:5", "Fe:5")
    sid = standing_of(world, "Fe").id
    deadline = time.monotonic() + 120
    while not world["ledger"].runs(sid, ["running"]):  # killed while a rerun is in flight
        assert time.monotonic() < deadline, service.text()
        time.sleep(0.02)
    assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    later = produce(world, "Fe:5", "Fe:5")  # end while no service runs
    again = Service(world, "Fe", "fe-2")
    try:
        counts = wait_counts(world, "Fe", 5, again)
        assert counts == {"open": 0, "pending": 0, "running": 0, "done": 5, "failed": 0}
        found = reruns_by_target(world, "Fe")
        assert sorted(found) == sorted(first + later)
        assert {t: len(r) for t, r in found.items()} == dict.fromkeys(first + later, 1)
    finally:
        assert again.stop() == 0


def test_two_services_on_one_analysis_do_not_double(world):
    one = Service(world, "Co", "co-1")
    one.wait_for("Ctrl-C stops")
    two = Service(world, "Co", "co-2")
    try:
        two.wait_for("standby")
        uids = produce(world, "Co:5", "Co:5", "Co:5")
        wait_counts(world, "Co", 3, one)
        assert one.stop() == 0  # the holder goes; the standby takes over
        two.wait_for("took over")
        uids += produce(world, "Co:5")
        counts = wait_counts(world, "Co", 4, two)
        assert counts["done"] == 4
        found = reruns_by_target(world, "Co")
        assert {t: len(r) for t, r in found.items()} == dict.fromkeys(uids, 1)
    finally:
        one.stop()
        assert two.stop() == 0


def test_since_reruns_runs_that_ended_before(world):
    old = produce(world, "Zn:5", "Zn:5")
    service = Service(world, "Zn", "zn", "--since", time.strftime("%Y-%m-%d"))
    try:
        service.wait_for("Ctrl-C stops")
        counts = wait_counts(world, "Zn", 2, service)
        assert counts["done"] == 2
        assert sorted(reruns_by_target(world, "Zn")) == sorted(old)
    finally:
        assert service.stop() == 0


def test_since_given_again_catches_up_an_existing_analysis(world):
    """--since on an analysis that already exists notes the runs since then it has not seen."""
    from scandeck.provenance.auto import define

    old = produce(world, "Mn:5", "Mn:5")
    prov, query = world["prov"].directory, 'sample == "Mn"'
    standing = define(world["record"].id, query=query, catalog=str(world["store"]), store=prov)
    assert world["ledger"].counts(standing.id)["pending"] == 0  # they ended before it began
    again = define(
        world["record"].id, query=query, catalog=str(world["store"]), since=time.strftime("%Y-%m-%d"), store=prov
    )
    assert again.id == standing.id
    assert sorted(r.uid for r in world["ledger"].runs(standing.id, ["pending"])) == sorted(old)
    world["ledger"].remove(standing.id)  # not rerun here


def test_bad_query_is_refused_before_anything_is_stored(world, capsys):
    before = len(world["ledger"].all())
    code = main(["auto", world["record"].id[:8], "--query", "sample ==", "--store", str(world["prov"].directory)])
    assert code == 2
    assert "bad --query" in capsys.readouterr().err
    assert len(world["ledger"].all()) == before


@pytest.mark.parametrize("kind", ["redis", "tiled"])
def test_a_bus_or_archive_catalog_while_runs_arrive(world, request, tmp_path, kind):
    """The service in this process, the scans from a RunEngine in another, the catalog a Redis bus / Tiled."""
    from source_uris import SOURCES

    from scandeck.provenance.auto import AutoService, define

    uri = SOURCES[kind](request, tmp_path)
    lines: list[str] = []
    standing = define(
        world["record"].id, query='sample == "Pt"', catalog=uri, workers=2, store=world["prov"].directory
    )
    service = AutoService(standing.id, store=world["prov"].directory, say=lines.append)
    service.start()
    try:
        uids = produce({**world, "store": uri}, "Pt:5", "Au:5", "Pt:7", "Pt:6")
        pt5, _, pt7, pt6 = uids
        deadline = time.monotonic() + 180
        while (c := world["ledger"].counts(standing.id))["done"] + c["failed"] < 3:
            assert service.running, lines
            assert time.monotonic() < deadline, (c, lines)
            time.sleep(0.1)
        assert c["done"] == 2 and c["failed"] == 1, (c, lines)
        found = {r.target_scan: r.status for r in world["prov"].list(tag=auto_tag(standing.id))}
        assert found == {pt5: "ok", pt7: "failed", pt6: "ok"}, lines
        # The values the good reruns published are columns of their runs on the bus / in the archive;
        # the failed rerun (it glued nothing) published nothing.
        cat = scandeck.open_catalog(uri)
        try:
            assert [r.uid for r in cat.search("columns.count.events == 6")] == [pt6]
            table = cat.table(columns=["count.events"])
            assert table.loc[pt5, "count.events"] == 5
            assert table.attrs["states"].loc[pt7, "count.events"] == "missing"
        finally:
            cat.close()
    finally:
        service.close()
    assert service.failed is None


def test_on_a_dask_cluster(world):
    distributed = pytest.importorskip("distributed")
    import warnings

    with warnings.catch_warnings():
        # distributed's LocalCluster may warn about its dashboard port or its own deprecated
        # internals; none of that is about standing reruns.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="distributed")
        warnings.filterwarnings("ignore", category=UserWarning, module="distributed")
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c:
            service = Service(world, "Sn", "sn", "--dask", c.scheduler_address)
            try:
                service.wait_for("Ctrl-C stops")
                assert f"dask {c.scheduler_address}" in service.text()
                sn5, sn7 = produce(world, "Sn:5", "Sn:7")
                counts = wait_counts(world, "Sn", 2, service)
                assert counts["done"] == 1 and counts["failed"] == 1, counts
                found = reruns_by_target(world, "Sn")
                assert {t: [r.status for r in recs] for t, recs in found.items()} == {sn5: ["ok"], sn7: ["failed"]}
            finally:
                assert service.stop() == 0
