"""The ``scandeck`` command line, run as a real process against stores in tmp_path.

Documents come from a real bluesky RunEngine with ophyd.sim devices; every
subprocess gets its own ``SCANDECK_DATA`` so nothing touches the real home.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scandeck.catalog import Catalog
from scandeck.sources import open_source

TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def scandeck(
    *args: str, data: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scandeck.cli ARGS`` with its own data directory."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    full_env.update(SCANDECK_DATA=str(data), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of an ``ls`` table (header and footer dropped), split on blanks."""
    lines = stdout.strip().splitlines()
    return [line.split() for line in lines[1:] if not re.match(r"\d+ of \d+ runs", line)]


def open_store(path: Path) -> Catalog:
    return Catalog(open_source(path))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A fresh SCANDECK_DATA for the subprocesses of one test."""
    return tmp_path / "data"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with four finished RunEngine runs and one older run still running."""
    import bluesky.plans as bp
    import numpy as np
    from bluesky import RunEngine
    from ophyd.sim import SynSignal, det, det4, motor, motor1, motor2

    class Spectrum(SynSignal):
        """A 1-D detector with units, for data keys that are not scalar."""

        def describe(self) -> dict[str, Any]:
            desc = super().describe()
            desc[self.name].update(dtype="array", shape=[16], units="counts")
            return desc

    spectrum = Spectrum(func=lambda: np.arange(16.0), name="spectrum")
    path = tmp_path_factory.mktemp("cli") / "store"
    cat = open_store(path)
    # A run whose writer is alive but which started an hour before the others.
    live = cat.writer()
    running = {
        "uid": str(uuid.uuid4()),
        "time": time.time() - 3600,
        "scan_id": 99,
        "plan_name": "manual",
        "sample": "Fe",
    }
    live("start", running)

    writer = cat.writer()
    RE = RunEngine({}, context_managers=[])
    RE.subscribe(writer)
    uids = {
        "count": RE(bp.count([det, spectrum], num=3), sample="Ni", operator="jdoe", purpose="check")[0],
        "scan_cu": RE(bp.scan([det], motor, -1, 1, 5), sample="Cu")[0],
        "grid": RE(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -1, 1, 4), sample="Ni")[0],
        "scan_ni": RE(bp.scan([det], motor, -1, 1, 7), sample="Ni")[0],
        "running": running["uid"],
    }
    writer.close()
    yield {"path": path, "uids": uids, "cat": cat}
    live.close()
    cat.close()


# -- ls ---------------------------------------------------------------------------------------


def test_ls_running_first_then_newest(store: dict[str, Any], data: Path) -> None:
    result = scandeck("ls", "--catalog", str(store["path"]), data=data)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["scan_id", "uid", "plan"]
    assert {"sample", "operator", "status", "events"} <= set(header)
    rows = table_rows(result.stdout)
    assert [r[0] for r in rows] == ["99", "4", "3", "2", "1"]
    assert [r[2] for r in rows] == ["manual", "scan", "grid_scan", "scan", "count"]
    assert rows[0][1] == store["uids"]["running"][:8]
    # Blank cells (no operator) shift columns: count from the right (time is 2 words).
    assert [r[-4] for r in rows] == ["running", *["success"] * 4]
    assert [r[-3] for r in rows] == ["0", "7", "12", "5", "3"]  # events; the grid is 3 x 4
    assert all(TIME.search(" ".join(r)) for r in rows)
    assert "of" not in result.stdout.splitlines()[-1]  # nothing left out: no footer


def test_ls_limit_and_query(store: dict[str, Any], data: Path) -> None:
    where = str(store["path"])
    result = scandeck("ls", "-n", "2", "--catalog", where, data=data)
    assert [r[0] for r in table_rows(result.stdout)] == ["99", "4"]
    assert result.stdout.strip().splitlines()[-1].startswith("2 of 5 runs")

    result = scandeck("ls", 'plan_name == "scan" and sample == "Ni"', "--catalog", where, data=data)
    assert result.returncode == 0, result.stderr
    assert [r[:3] for r in table_rows(result.stdout)] == [["4", store["uids"]["scan_ni"][:8], "scan"]]
    result = scandeck("ls", 'sample == "Zr"', "--catalog", where, data=data)
    assert result.returncode == 0 and "no matching runs" in result.stdout


def test_ls_query_typo_exits_2_with_caret(store: dict[str, Any], data: Path) -> None:
    result = scandeck("ls", 'sample = "Ni"', "--catalog", str(store["path"]), data=data)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "did you mean '=='" in result.stderr
    lines = result.stderr.splitlines()
    caret = next(line for line in lines if line.strip() == "^")
    query_line = lines[lines.index(caret) - 1]
    assert query_line[caret.index("^")] == "="  # the caret points at the typo
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_ls_json(store: dict[str, Any], data: Path) -> None:
    result = scandeck("ls", "--json", "sample == 'Ni'", "--catalog", str(store["path"]), data=data)
    assert result.returncode == 0, result.stderr
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    uids = store["uids"]
    assert [r["uid"] for r in runs] == [uids["scan_ni"], uids["grid"], uids["count"]]
    assert runs[0]["status"] == "success" and runs[0]["num_events"] == 7
    assert runs[2]["start"]["operator"] == "jdoe" and runs[2]["stop"]["exit_status"] == "success"


def test_ls_missing_store_is_an_error(tmp_path: Path, data: Path) -> None:
    result = scandeck("ls", "--catalog", str(tmp_path / "nowhere"), data=data)
    assert result.returncode == 1
    assert "no run store at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


# -- show -------------------------------------------------------------------------------------


def test_show_data_keys_shapes_units(store: dict[str, Any], data: Path) -> None:
    result = scandeck("show", "1", "--catalog", str(store["path"]), data=data)  # scan_id 1
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"run {store['uids']['count']}")
    assert re.search(r"^  status\s+success$", out, re.M)
    assert re.search(r"^  sample\s+Ni$", out, re.M)  # start document fields
    assert re.search(r"^  exit_status\s+success$", out, re.M)  # stop document
    assert re.search(r"^  num_events\s+\{\"primary\": 3\}$", out, re.M)
    assert "  primary: 3 events" in out
    spectrum = next(line.split() for line in out.splitlines() if line.split()[:1] == ["spectrum"])
    assert spectrum == ["spectrum", "array", "16", "counts", "SIM:spectrum", "no"]
    det = next(line.split() for line in out.splitlines() if line.split()[:1] == ["det"])
    assert det == ["det", "number", "scalar", "-", "SIM:det", "no"]


def test_show_by_index_and_prefix(store: dict[str, Any], data: Path) -> None:
    where = str(store["path"])
    newest = scandeck("show", "-1", "--catalog", where, data=data)
    assert newest.stdout.startswith(f"run {store['uids']['scan_ni']}")
    grid = store["uids"]["grid"]
    by_prefix = scandeck("show", grid[:6], "--catalog", where, data=data)
    assert by_prefix.stdout.startswith(f"run {grid}")
    assert re.search(r"^    motor1 ", by_prefix.stdout, re.M)
    running = scandeck("show", store["uids"]["running"][:8], "--catalog", where, data=data)
    assert "none yet: the run is still being written" in running.stdout

    missing = scandeck("show", "zzzz", "--catalog", where, data=data)
    assert missing.returncode == 1
    assert missing.stderr.startswith("scandeck show: error: no run with uid")
    assert "hint:" in missing.stderr and "Traceback" not in missing.stderr


# -- export / ingest --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "msgpack"])
def test_export_ingest_round_trip(store: dict[str, Any], data: Path, tmp_path: Path, fmt: str) -> None:
    uids = store["uids"]
    out = tmp_path / "exported"
    result = scandeck(
        "export",
        uids["grid"][:8],
        "1",
        "--format",
        fmt,
        "-o",
        str(out),
        "--catalog",
        str(store["path"]),
        data=data,
    )
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == [f"{uids['grid']}.{fmt}", f"{uids['count']}.{fmt}"]

    copy = tmp_path / "copy"
    result = scandeck("ingest", *map(str, paths), "--catalog", str(copy), data=data)
    assert result.returncode == 0, result.stderr
    assert "ingested 2 runs" in result.stdout

    source, target = store["cat"], open_store(copy)
    try:
        for key in ("grid", "count"):
            assert list(target[uids[key]].documents()) == list(source[uids[key]].documents())
            assert target[uids[key]].status == "success"
        again = scandeck("ingest", *map(str, paths), "--catalog", str(copy), data=data)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already stored") == 3  # two files and the summary
        assert len(target) == 2
    finally:
        target.close()

    clash = scandeck("export", "1", "--format", fmt, "-o", str(out), "--catalog", str(store["path"]), data=data)
    assert clash.returncode == 1 and "--overwrite" in clash.stderr


def test_ingest_corrupt_line_keeps_earlier_documents(store: dict[str, Any], data: Path, tmp_path: Path) -> None:
    uids = store["uids"]
    out = tmp_path / "exported"
    scandeck(
        "export", uids["scan_cu"], uids["scan_ni"], "-o", str(out), "--catalog", str(store["path"]), data=data
    )
    bad, good = out / f"{uids['scan_cu']}.jsonl", out / f"{uids['scan_ni']}.jsonl"
    lines = bad.read_text().splitlines(keepends=True)
    lines[4] = '["event", {"uid": \n'  # line 5: cut short
    bad.write_text("".join(lines))

    copy = tmp_path / "copy"
    result = scandeck("ingest", str(bad), str(good), "--catalog", str(copy), data=data)
    assert result.returncode == 1
    assert f"{bad}: line 5: not JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert f"{good}: 1 run (" in result.stdout  # went on with the next file
    assert "1 file failed" in result.stdout

    target = open_store(copy)
    try:
        kept = target[uids["scan_cu"]]
        assert kept.status == "incomplete"
        assert list(kept.documents()) == list(store["cat"][uids["scan_cu"]].documents())[:4]
        assert target[uids["scan_ni"]].status == "success"
    finally:
        target.close()


# -- demo -------------------------------------------------------------------------------------


def test_demo_writes_runs_then_ls_shows_them(tmp_path: Path, data: Path) -> None:
    where = str(tmp_path / "demo-store")
    result = scandeck("demo", "--runs", "3", "--pace", "0", "--seed", "1", "--catalog", where, data=data)
    assert result.returncode == 0, result.stderr
    assert f"scandeck ls --catalog {where}" in result.stdout  # how to watch it
    assert "3 runs written" in result.stdout
    listing = scandeck("ls", "--catalog", where, data=data)
    assert [r[0] for r in table_rows(listing.stdout)] == ["3", "2", "1"]
    assert (tmp_path / "demo-store" / "assets").is_dir()
    # Started again on the same store, the beamline goes on from its last scan_id.
    again = scandeck("demo", "--runs", "2", "--pace", "0", "--seed", "2", "--catalog", where, data=data)
    assert again.returncode == 0, again.stderr
    listing = scandeck("ls", "--catalog", where, data=data)
    assert [r[0] for r in table_rows(listing.stdout)] == ["5", "4", "3", "2", "1"]


def test_demo_stops_cleanly_on_sigint(tmp_path: Path, data: Path) -> None:
    where = tmp_path / "demo-store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    # Through $SCANDECK_CATALOG this time: it is the default for --catalog.
    env.update(SCANDECK_DATA=str(data), SCANDECK_CATALOG=str(where))
    proc = subprocess.Popen(
        [sys.executable, "-m", "scandeck.cli", "demo", "--pace", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until a run is under way with events
            if (where / "scandeck.sqlite").exists():
                cat = open_store(where)
                try:
                    newest = cat.summaries(limit=1)
                finally:
                    cat.close()
                if newest and newest[0].status == "running" and newest[0].num_events >= 1:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the demo started no run within 30 s")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    cat = open_store(where)
    try:
        last = cat[-1]
        assert last.stop is not None and last.status == "abort"
        assert all(run.status != "incomplete" for run in cat)
    finally:
        cat.close()


# -- the installed script ---------------------------------------------------------------------


def test_installed_script(store: dict[str, Any], data: Path) -> None:
    script = Path(sys.executable).parent / "scandeck"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env.update(SCANDECK_DATA=str(data), SCANDECK_CATALOG=str(store["path"]))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)

    from scandeck import __version__

    assert run("--version").stdout.strip() == f"scandeck {__version__}"
    listing = run("ls", "-n", "1")
    assert listing.returncode == 0, listing.stderr
    assert table_rows(listing.stdout)[0][0] == "99"  # SCANDECK_CATALOG chose the store
    for command in ("ls", "show", "ingest", "export", "demo", "catalogs"):
        usage = run(command, "--help")
        assert usage.returncode == 0 and "examples:" in usage.stdout, command
    assert run().returncode == 2
    assert run("ls", "-n", "many").returncode == 2
    catalogs = run("catalogs")
    assert catalogs.returncode == 0, catalogs.stderr
    assert "local" in catalogs.stdout


def test_an_unquoted_query_gets_the_quoting_hint(store: dict[str, Any], data: Path) -> None:
    where = str(store["path"])
    # What `scandeck ls sample == "Ni" and scan_id > 3` in a shell hands over (quotes gone).
    result = scandeck("ls", "sample", "==", "Ni", "and", "scan_id", ">", "3", "--catalog", where, data=data)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "scandeck ls: error: the query was split by the shell into 7 arguments: sample == Ni and scan_id > 3",
        "  hint: quote the whole query, and strings in it: scandeck ls 'sample == \"Ni\" and scan_id > 3'",
    ]
    assert "unrecognized arguments" not in result.stderr
    # The command the hint gives works.
    assert scandeck("ls", 'sample == "Ni" and scan_id > 3', "--catalog", where, data=data).returncode == 0
    # A stray option is still argparse's to report.
    result = scandeck("ls", "sample", "==", "Ni", "--bogus", "--catalog", where, data=data)
    assert result.returncode == 2 and "unrecognized arguments: == Ni --bogus" in result.stderr
