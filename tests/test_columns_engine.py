"""The computed-column engine: columns files, values, worker processes with time limits, the service's passes.

Runs come from a real RunEngine with ophyd.sim devices into an embedded store under
tmp_path; columns' code runs in real worker processes.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from bluesky.plans import count, grid_scan, scan

import scandeck
import scandeck.catalog
from scandeck.exceptions import ColumnsFileError, InvalidAnnotation, ScandeckError
from scandeck.runtable import builtin
from scandeck.runtable.columns import BUILTINS, column_value, columns_file, columns_for, load_columns
from scandeck.runtable.service import ColumnService, compute_now

COLUMNS = """\
import os
import time

import scandeck


@scandeck.column("npts", title="Points", units="pt")
def npts(run):
    return run.start.get("num_points")


@scandeck.column("broken")
def broken(run):
    return {}["missing"]


@scandeck.column("wrong_type")
def wrong_type(run):
    return [1, 2]


@scandeck.column("dies")
def dies(run):
    if run.start.get("sample") == "crash":
        os._exit(7)
    return "alive"


@scandeck.column("slow", timeout=3)
def slow(run):
    if run.start.get("sample") == "slow":
        time.sleep(60)
    return 1.5
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def store(tmp_path):
    cat = scandeck.open_catalog(tmp_path / "store")
    yield cat
    cat.close()


# -- columns files ----------------------------------------------------------------------------------


def test_a_columns_file_gives_its_columns_and_an_edit_changes_only_that_hash(tmp_path):
    path = _write(tmp_path / "cols.py", COLUMNS)
    specs = load_columns(path)
    assert list(specs) == ["npts", "broken", "wrong_type", "dies", "slow"]
    assert (specs["npts"].title, specs["npts"].units, specs["npts"].builtin) == ("Points", "pt", False)
    assert specs["slow"].timeout == 3 and specs["npts"].timeout is None
    assert specs["broken"].title == "broken"

    again = load_columns(_write(path, COLUMNS.replace('"num_points"', '"num_intervals"')))
    assert again["npts"].code_hash != specs["npts"].code_hash
    assert {n: s.code_hash for n, s in again.items() if n != "npts"} == {
        n: s.code_hash for n, s in specs.items() if n != "npts"
    }
    titled = load_columns(_write(path, COLUMNS.replace('title="Points"', 'title="Number of points"')))
    assert titled["npts"].code_hash not in (specs["npts"].code_hash, again["npts"].code_hash)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("import scandeck\n\n@scandeck.column('a')\ndef a(run)\n    return 1\n", 4, "SyntaxError"),
        ("import scandeck\nx = 1\nraise RuntimeError('no beam')\n", 3, "RuntimeError: no beam"),
        ("import scandeck\nimport no_such_module_here\n", 2, "ModuleNotFoundError"),
        ("import scandeck\n\n@scandeck.column('not a name')\ndef a(run):\n    return 1\n", 3, "InvalidAnnotation"),
    ],
)
def test_a_file_that_does_not_load_is_named_with_its_line(tmp_path, text, line, what):
    path = _write(tmp_path / "cols.py", text)
    with pytest.raises(ColumnsFileError) as err:
        load_columns(path)
    assert str(path) in str(err.value) and f"line {line}" in str(err.value) and what in str(err.value)


def test_a_name_given_twice_names_both_definitions(tmp_path):
    path = _write(
        tmp_path / "cols.py",
        """\
        import scandeck

        @scandeck.column("cen2")
        def first(run):
            return 1

        @scandeck.column("cen2")
        def second(run):
            return 2
        """,
    )
    with pytest.raises(
        ColumnsFileError, match=r"'cen2' is defined twice, at line 3 \(first\) and at line 7 \(second\)"
    ):
        load_columns(path)


def test_a_file_column_may_not_take_a_builtin_name(store):
    _write(
        Path(store.source.directory) / "columns.py",
        "import scandeck\n\n@scandeck.column('cen')\ndef c(run):\n    return 0\n",
    )
    with pytest.raises(ColumnsFileError, match="'cen' is a built-in column"):
        columns_for(store)


def test_decorating_outside_a_file_and_bad_arguments():
    from scandeck.runtable.columns import default_registry

    @scandeck.column("outside_a_file", units="s")
    def outside(run):
        return 1

    assert default_registry()["outside_a_file"].units == "s"
    with pytest.raises(InvalidAnnotation, match="identifier"):
        scandeck.column("2bad")
    with pytest.raises(InvalidAnnotation, match="timeout"):
        scandeck.column("ok", timeout=-1)


def test_values_are_numbers_strings_bools_or_none():
    assert column_value(np.float32(0.5)) == 0.5 and type(column_value(np.float32(0.5))) is float
    assert column_value(np.int64(3)) == 3 and type(column_value(np.int64(3))) is int
    assert column_value(np.bool_(True)) is True
    assert column_value(np.float64("nan")) is None and column_value(float("inf")) is None
    assert column_value(np.array(2.0)) == 2.0
    for bad, name in ((np.zeros(3), "numpy.ndarray"), ({}, "dict"), (b"x", "bytes"), (2**70, "64 bits")):
        with pytest.raises(TypeError, match=name):
            column_value(bad)


def test_the_columns_file_beside_a_store_and_an_entry_option(tmp_path, monkeypatch, store):
    assert columns_file(store) is None
    assert list(columns_for(store)) == list(BUILTINS)
    beside = _write(Path(store.source.directory) / "columns.py", COLUMNS)
    assert columns_file(store) == beside

    cats = tmp_path / "catalogs"
    cats.mkdir()
    (cats / "bt.yaml").write_text(
        textwrap.dedent(
            f"""\
            version: 2
            metadata: {{}}
            user_parameters: {{}}
            aliases: {{bt: bt}}
            data:
              bt_store:
                datatype: scandeck.intake_readers:ScandeckStore
                kwargs: {{uri: {tmp_path / "other"}}}
                metadata: {{}}
                user_parameters: {{}}
            entries:
              bt:
                reader: scandeck.intake_readers:ScandeckReader
                kwargs: {{data: "{{data(bt_store)}}"}}
                output_instance: scandeck.catalog:Catalog
                metadata: {{columns: defs/bt_columns.py}}
                user_parameters: {{}}
            """
        )
    )
    monkeypatch.setenv("SCANDECK_CATALOGS", str(cats))
    cat = scandeck.open_catalog("bt")
    try:
        assert cat.columns_file == cats / "defs" / "bt_columns.py"
        assert cat.search('sample == "Ni"').columns_file == cat.columns_file
        with pytest.raises(ColumnsFileError, match="missing"):
            columns_for(cat)  # named but not there: said, not silently none
        (cats / "defs").mkdir()
        _write(cats / "defs" / "bt_columns.py", COLUMNS)
        assert "npts" in columns_for(cat) and "cen" in columns_for(cat)
    finally:
        cat.close()


# -- computing ------------------------------------------------------------------------------------


def test_values_errors_timeouts_and_dead_workers_each_stay_in_their_cell(store, RE, hw):
    _write(Path(store.source.directory) / "columns.py", COLUMNS)
    RE.subscribe(store.writer())
    uids = {}
    for sample in ("Ni", "slow", "crash", "Cu"):
        (uids[sample],) = RE(scan([hw.det], hw.motor, -1, 1, 7), sample=sample)
    service = ColumnService(store, workers=2, timeout=20)
    try:
        counts = service.run_once()
        replaced = service.pool.replaced
    finally:
        service.close()
    specs = columns_for(store)
    assert counts.runs == 4 and counts.cells == 4 * len(specs)
    cells = store.source.cells(list(uids.values()))
    for sample, uid in uids.items():
        got = cells[uid]
        assert set(got) == set(specs)
        assert all(got[n].code_hash == specs[n].code_hash and got[n].final for n in got)
        assert (got["npts"].status, got["npts"].value) == ("ok", 7)
        assert got["broken"].status == "error" and got["broken"].error.startswith(
            "KeyError: 'missing' (at columns.py:"
        )
        assert got["wrong_type"].error == "TypeError: a column returns a number, string, bool or None, not list"
        assert got["events"].value == 7 and got["status"].value == "success"
        if sample == "slow":
            assert got["slow"].status == "timeout" and "longer than 3 s" in got["slow"].error
        else:
            assert (got["slow"].status, got["slow"].value) == ("ok", 1.5)
        if sample == "crash":
            assert got["dies"].status == "error" and "died (exit code 7)" in got["dies"].error
        else:
            assert got["dies"].value == "alive"
    assert replaced >= 2  # the timed-out worker and the dead one were replaced


def test_builtins_agree_with_peaks_and_the_index_row(store, RE, hw):
    RE.subscribe(store.writer())
    (one_d,) = RE(scan([hw.det], hw.motor, -5, 5, 41))
    (counted,) = RE(count([hw.det], num=3))
    (grid,) = RE(grid_scan([hw.det4], hw.motor1, -1, 1, 3, hw.motor2, -1, 1, 3))
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
    finally:
        service.close()
    cells = store.source.cells([one_d, counted, grid])
    peaks = scandeck.peaks(store[one_d])
    got = {n: c.value for n, c in cells[one_d].items()}
    assert got["cen"] == pytest.approx(peaks.cen) and got["fwhm"] == pytest.approx(peaks.fwhm)
    assert got["max"] == pytest.approx(peaks.max) and got["frame_sum"] is None
    run = store[one_d]
    assert got["duration"] == pytest.approx(run.stop["time"] - run.start["time"])
    assert (got["events"], got["status"]) == (41, "success")
    for not_1d in (counted, grid):
        assert all(
            cells[not_1d][n].status == "ok" and cells[not_1d][n].value is None for n in ("cen", "fwhm", "max")
        )


def test_frame_sum_is_numpys_sum_of_every_frame_read_in_slices(store, RE, hw, monkeypatch):
    RE.subscribe(store.writer())
    (uid,) = RE(count([hw.img], num=5))
    (scalar,) = RE(count([hw.det], num=2))
    expect = float(np.sum(store[uid].primary.read()["img"].values, dtype=np.float64))
    assert expect > 0
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
    finally:
        service.close()
    cells = store.source.cells([uid, scalar])
    assert cells[uid]["frame_sum"].value == pytest.approx(expect)
    assert cells[scalar]["frame_sum"].value is None
    reads = []
    real = scandeck.catalog.Stream.read

    def counting(self, *args, **kwargs):
        reads.append(kwargs.get("rows"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(builtin, "FRAME_BYTES", 2 * 10 * 10 * 8)  # two 10x10 frames per read
    monkeypatch.setattr(scandeck.catalog.Stream, "read", counting)
    assert builtin.frame_sum(store[uid]) == pytest.approx(expect)
    assert reads == [slice(0, 2), slice(2, 4), slice(4, 5)]


def test_an_edit_makes_cells_stale_and_a_removed_column_loses_its_cells(store, RE, hw):
    path = _write(Path(store.source.directory) / "columns.py", COLUMNS)
    RE.subscribe(store.writer())
    uids = [RE(scan([hw.det], hw.motor, -1, 1, n))[0] for n in (3, 4)]
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
        old = columns_for(store)["npts"].code_hash
        _write(path, COLUMNS.replace('return run.start.get("num_points")', 'return 10 * run.start["num_points"]'))
        new = columns_for(store)["npts"].code_hash
        assert new != old
        assert sorted(store.source.needing("npts", new)) == sorted(uids)  # stale: computed by other code
        assert store.source.needing("events", BUILTINS["events"].code_hash) == []
        counts = service.run_once()
        assert counts.runs == 2 and counts.cells == 2  # only the edited column, of both runs
        cells = store.source.cells(uids, ["npts"])
        assert [cells[u]["npts"].value for u in uids] == [30, 40]
        assert all(cells[u]["npts"].code_hash == new for u in uids)

        _write(path, COLUMNS.replace('@scandeck.column("broken")', "").replace("def broken", "def not_a_column"))
        service.run_once()
        assert all("broken" not in c for c in store.source.cells(uids).values())
        assert all("npts" in c for c in store.source.cells(uids).values())
    finally:
        service.close()


def test_compute_now_stores_what_a_reader_found_missing(store, RE, hw):
    _write(Path(store.source.directory) / "columns.py", COLUMNS)
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 5))
    got = compute_now(store, [uid], ["npts", "duration", "broken"])
    assert (got[uid]["npts"].value, got[uid]["broken"].status) == (5, "error")
    assert got[uid]["duration"].value > 0
    assert store.source.cells([uid])[uid] == got[uid]


def test_a_memory_store_says_why_its_columns_cannot_be_computed_in_workers(RE, hw):
    cat = scandeck.open_catalog("memory://columns-test")
    RE.subscribe(cat.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 5))
    got = compute_now(cat, [uid], ["events", "cen"])
    assert got[uid]["events"].value == 5
    assert got[uid]["cen"].status == "error" and "lives in this process only" in got[uid]["cen"].error
    with pytest.raises(ScandeckError, match="lives in this process only"):
        ColumnService(cat)


def test_a_worker_killed_while_idle_is_replaced(store, RE, hw):
    import os
    import signal

    from scandeck.runtable.workers import Task, WorkerPool

    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 5))
    task = Task(store.source.uri, uid, (("cen", BUILTINS["cen"].code_hash),), None)
    with WorkerPool(1) as pool:
        first = pool.compute([task])[uid]["cen"]
        (pid,) = pool.pids
        os.kill(pid, signal.SIGKILL)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped by the pool
        again = pool.compute([task])[uid]["cen"]
        assert pool.replaced == 1 and pool.pids != [pid]
    assert first.status == again.status == "ok" and again.value == first.value


def test_a_columns_file_that_does_not_load_never_fails_the_builtins(store, RE, hw):
    path = _write(Path(store.source.directory) / "columns.py", "import scandeck\nraise RuntimeError('oops')\n")
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 7))
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
        assert service.file_error is not None and "oops" in service.file_error
        cells = store.source.cells([uid])[uid]
        assert set(cells) == set(BUILTINS) and all(c.status == "ok" for c in cells.values())
        assert cells["cen"].value == pytest.approx(scandeck.peaks(store[uid]).cen)
        _write(path, COLUMNS)  # fixed: its columns are computed, the built-ins were right already
        counts = service.run_once()
        assert counts.cells == len(load_columns(path))
        assert store.source.cells([uid])[uid]["npts"].value == 7
    finally:
        service.close()


def test_a_file_broken_after_the_service_read_it_leaves_its_columns_to_wait(store, RE, hw):
    from scandeck.runtable.workers import Task, WorkerPool

    path = _write(Path(store.source.directory) / "columns.py", COLUMNS)
    npts = load_columns(path)["npts"].code_hash
    _write(path, "import scandeck\nraise RuntimeError('oops')\n")
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 7))
    task = Task(store.source.uri, uid, (("cen", BUILTINS["cen"].code_hash), ("npts", npts)), str(path))
    with WorkerPool(1) as pool:
        got = pool.compute([task])[uid]
    assert list(got) == ["cen"] and got["cen"].status == "ok"  # npts: no cell, computed once the file loads


def test_a_timeout_also_ends_what_the_column_started(store, RE, hw, tmp_path):
    import psutil

    pidfile = tmp_path / "child.pid"
    _write(
        Path(store.source.directory) / "columns.py",
        f"""\
        import subprocess
        import sys

        import scandeck


        @scandeck.column("external", timeout=2)
        def external(run):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            open({str(pidfile)!r}, "w").write(str(child.pid))
            child.wait()
        """,
    )
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 3))
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
    finally:
        service.close()
    assert store.source.cells([uid])[uid]["external"].status == "timeout"
    child = int(pidfile.read_text())

    def ended() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 10
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ended(), "the column's own process outlived its worker"


def test_a_lone_surrogate_in_a_value_or_an_error_fails_only_its_cell(store, RE, hw):
    _write(
        Path(store.source.directory) / "columns.py",
        """\
        import scandeck


        @scandeck.column("path")
        def path(run):
            return "scan_\\udcff.h5"  # os.fsdecode of a file name that is not UTF-8


        @scandeck.column("raises")
        def raises(run):
            raise ValueError("no file scan_\\udcff.h5")
        """,
    )
    RE.subscribe(store.writer())
    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 3))
    service = ColumnService(store, workers=1)
    try:
        service.run_once()
    finally:
        service.close()
    cells = store.source.cells([uid])[uid]
    assert set(cells) == set(columns_for(store))  # every other column stored too
    assert cells["path"].status == "error" and "valid Unicode" in cells["path"].error
    assert cells["raises"].error.startswith("ValueError: no file scan_\\udcff.h5")
    assert cells["cen"].status == "ok"
