"""``scandeck columns serve|recompute|list``: values appear with no request while a service runs.

``serve`` runs in its own process, as a user starts it; runs come from a real
RunEngine (and, for a run followed while it runs, documents composed with
event_model and written one at a time). Waits poll with a generous deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bluesky.plans import scan
from event_model import compose_run

import scandeck
from scandeck.cli.main import main
from scandeck.runtable.columns import columns_for

DEADLINE = 120.0

COLUMNS = """\
import scandeck


@scandeck.column("npts", title="Points")
def npts(run):
    return run.start.get("num_points")


@scandeck.column("broken")
def broken(run):
    raise ValueError("no beam")
"""


def poll(predicate, what: str):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Serve:
    """``scandeck columns serve`` in a subprocess, its output gathered by a thread."""

    def __init__(self, store: Path, *extra: str) -> None:
        exe = Path(sys.executable).with_name("scandeck")
        self.proc = subprocess.Popen(
            [str(exe), "columns", "serve", "--catalog", str(store), "--interval", "0.5", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@pytest.fixture
def served(tmp_path):
    started = []

    def start(store: Path, *extra: str) -> Serve:
        s = Serve(store, *extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_values_appear_without_a_request_and_an_edit_is_recomputed(tmp_path, RE, hw, served):
    cat = scandeck.open_catalog(tmp_path / "store")
    path = tmp_path / "store" / "columns.py"
    path.write_text(COLUMNS)
    RE.subscribe(cat.writer())
    (before,) = RE(scan([hw.det], hw.motor, -1, 1, 5))  # stored before the service starts
    service = served(tmp_path / "store")
    poll(lambda: service.saw("serving"), "the service to start")

    (after,) = RE(scan([hw.det], hw.motor, -1, 1, 9))
    specs = columns_for(cat)

    def all_cells():
        cells = cat.source.cells([before, after])
        return len(cells) == 2 and all(set(c) == set(specs) for c in cells.values()) and cells

    cells = poll(all_cells, "every column of both runs")
    assert cells[after]["npts"].value == 9 and cells[before]["npts"].value == 5
    assert cells[after]["broken"].status == "error" and cells[after]["broken"].error.startswith(
        "ValueError: no beam"
    )
    assert cells[after]["cen"].value == pytest.approx(scandeck.peaks(cat[after]).cen)
    assert all(c.final for c in cells[after].values())
    poll(lambda: service.saw("ended: 1 runs"), "a line for the ended run")

    path.write_text(COLUMNS.replace('return run.start.get("num_points")', 'return -run.start["num_points"]'))
    new = columns_for(cat)["npts"].code_hash

    def recomputed():
        c = cat.source.cells([before, after], ["npts"])
        return all(c[u]["npts"].code_hash == new for u in (before, after)) and c

    cells = poll(recomputed, "the edited column recomputed")
    assert (cells[before]["npts"].value, cells[after]["npts"].value) == (-5, -9)
    assert service.stop() == 0
    assert service.saw("stopped:")
    cat.close()


def test_a_running_run_gets_cells_that_are_not_final_then_final_ones(tmp_path, served):
    cat = scandeck.open_catalog(tmp_path / "store")
    (tmp_path / "store" / "columns.py").write_text(COLUMNS)
    service = served(tmp_path / "store")
    poll(lambda: service.saw("serving"), "the service to start")
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "count", "num_points": 3})
    uid = bundle.start_doc["uid"]
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim:x"}}
    )
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": time.time()}))

    def running_cells():
        c = cat.source.cells([uid]).get(uid, {})
        return "npts" in c and "events" in c and c

    cells = poll(running_cells, "cells of the running run")
    assert not cells["npts"].final and cells["status"].value == "running"
    writer("event", desc.compose_event(data={"x": 2.0}, timestamps={"x": time.time()}))
    writer("stop", bundle.compose_stop())
    writer.close()

    def final_cells():
        c = cat.source.cells([uid]).get(uid, {})
        return all(x.final for x in c.values()) and c.get("status") and c

    cells = poll(final_cells, "final cells once the run ended")
    assert cells["status"].value == "success" and cells["events"].value == 2 and cells["npts"].value == 3
    cat.close()


def test_recompute_and_list(tmp_path, RE, hw, capsys):
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    (store / "columns.py").write_text(COLUMNS)
    RE.subscribe(cat.writer())
    uids = [RE(scan([hw.det], hw.motor, -1, 1, n))[0] for n in (3, 4, 5)]

    assert main(["columns", "list", "--catalog", str(store)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0].split()
    assert header == ["name", "title", "units", "defined", "code", "fresh", "stale", "failed", "missing"]
    rows = {line.split()[0]: line.split() for line in out[1:] if line and not line.startswith("3 runs")}
    assert rows["npts"][-4:] == ["0", "0", "0", "3"] and str(store / "columns.py") in rows["npts"]
    assert rows["duration"][3] == "built-in" and columns_for(cat)["npts"].code_hash.startswith(rows["npts"][-5])

    assert main(["columns", "recompute", "--catalog", str(store)]) == 1  # broken fails on each run
    out = capsys.readouterr().out
    n = len(columns_for(cat))
    assert f"recomputed {3 * n} cells of 3 runs: 3 failed" in out and "3/3 runs" in out

    assert main(["columns", "recompute", "npts", "--catalog", str(store)]) == 0
    assert "recomputed 3 cells of 3 runs: 0 failed" in capsys.readouterr().out

    assert main(["columns", "recompute", "nmpts", "--catalog", str(store)]) == 2
    err = capsys.readouterr().err
    assert "no column nmpts" in err and "npts" in err

    (store / "columns.py").write_text(COLUMNS.replace("no beam", "no beam at all"))  # broken is now stale
    assert main(["columns", "list", "--catalog", str(store)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["npts"][-4:] == ["3", "0", "0", "0"]
    assert rows["broken"][-4:] == ["0", "3", "0", "0"]
    assert all(cat.source.cells(uids)[u]["npts"].value in (3, 4, 5) for u in uids)
    cat.close()


def test_a_file_that_does_not_load_is_reported(tmp_path, capsys):
    store = tmp_path / "store"
    scandeck.open_catalog(store).close()
    (store / "columns.py").write_text("import scandeck\nraise RuntimeError('half written')\n")
    assert main(["columns", "recompute", "--catalog", str(store)]) == 1
    err = capsys.readouterr().err
    assert "columns.py, line 2: RuntimeError: half written" in err
    assert main(["columns", "list", "--catalog", str(store)]) == 1
    assert "line 2" in capsys.readouterr().err


def test_serve_on_a_read_only_store_stops_and_says_why(tmp_path, RE, hw, capsys):
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    RE(scan([hw.det], hw.motor, -1, 1, 3))  # its cells are missing: the service computes, cannot store
    cat.close()
    assert main(["columns", "serve", "--catalog", f"{store}?mode=ro", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "read-only" in captured.err and "the column service stops" in captured.out
