"""scandeck watch across restarts: killed at any point, restarted, every file exactly once."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from source_uris import SOURCES
from watch_procs import (
    PlainReader,
    ThreadedWatcher,
    final_sha,
    relpath_of,
    start_writer,
    wait_for,
    watched_events,
)

import scandeck
from scandeck.exceptions import ScandeckError
from scandeck.files.ledger import Ledger, ledger_of, ledger_path, settle_pending
from scandeck.files.watch import Watcher


class Killed(BaseException):
    """Stands for the watcher's death at one step (what SIGKILL would do there)."""


def die(*args: Any, **kwargs: Any) -> None:
    raise Killed


def dies_after(method: Any) -> Any:
    def step(*args: Any, **kwargs: Any) -> None:
        method(*args, **kwargs)
        raise Killed

    return step


@pytest.fixture
def cat(tmp_path: Path):
    catalog = scandeck.open_catalog(str(tmp_path / "store"))
    yield catalog
    catalog.close()


@pytest.fixture(params=["sqlite", "memory", "redis"])
def any_cat(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A catalog on each source the watcher writes to (Tiled reads no SCANDECK_FILE resources)."""
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "home"))  # where a bus's ledger goes
    catalog = scandeck.open_catalog(SOURCES[request.param](request, tmp_path))
    yield catalog
    catalog.close()


def once(cat, root: Path, ledger: Ledger | None = None, **kwargs: Any) -> Any:
    reader = PlainReader()
    return Watcher(cat, [root], once=True, settle=0.2, reader_for=lambda p: reader, ledger=ledger, **kwargs).run()


@pytest.mark.parametrize("dying", ["after documents", "before documents"])
def test_a_file_left_pending_is_settled_by_asking_the_catalog(any_cat, tmp_path, dying, monkeypatch):
    cat = any_cat
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"alpha")
    ledger, owned = ledger_of(cat)
    with monkeypatch.context() as patch:
        if dying == "after documents":
            patch.setattr(ledger, "done", die)
        else:
            patch.setattr(ledger, "begin", dies_after(ledger.begin))
        with pytest.raises(Killed):
            once(cat, root, ledger)
    [pending] = ledger.pending()
    written = [e["path"] for e in watched_events(cat)]
    assert written == (["a.dat"] if dying == "after documents" else [])
    assert cat[-1].metadata["stop"]["exit_status"] == "fail"  # the run the dying watcher had started
    (root / "b.dat").write_bytes(b"beta")
    summary = once(cat, root)
    assert summary.settled == ((1, 0) if dying == "after documents" else (0, 1))
    events = watched_events(cat)
    assert sorted(e["path"] for e in events) == ["a.dat", "b.dat"]  # a.dat once, whichever the step
    assert ledger.pending() == [] and ledger.counts()["done"] == 2
    assert settle_pending(ledger, cat) == (0, 0)
    if owned:
        ledger.close()


def watch_command(root: Path, store: Path, settle: str = "0.2") -> subprocess.Popen[str]:
    args = ["watch", str(root), "--catalog", str(store), "--recursive", "--settle", settle]
    return subprocess.Popen(
        [sys.executable, "-m", "scandeck.cli", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def done_count(store: Path) -> int:
    path = store / "watch.sqlite"
    if not path.exists():
        return 0
    ledger = Ledger(path)
    try:
        return ledger.counts()["done"]
    finally:
        ledger.close()


def test_a_sigkilled_watcher_restarted_mid_directory_takes_every_file_exactly_once(tmp_path):
    root, store = tmp_path / "data", tmp_path / "store"
    root.mkdir()
    n = 30
    writer = start_writer(root, n, pieces=3, delay=0.03, subdirs=3)
    assert writer.stdout is not None
    first = watch_command(root, store)
    try:
        wait_for(lambda: done_count(store) >= 5, "the first watcher's first files")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    written_while_down = 0
    while written_while_down < 3:  # files complete while no watcher runs
        line = writer.stdout.readline()
        assert line, "the writer ended before files arrived while the watcher was down"
        written_while_down += 1
    second = watch_command(root, store)
    try:
        writer.communicate(timeout=60)
        assert writer.returncode == 0
        wait_for(lambda: done_count(store) >= n, "every file in after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "done:" in err
    cat = scandeck.open_catalog(str(store))
    try:
        events = watched_events(cat)
        paths = [e["path"] for e in events]
        assert sorted(paths) == sorted(relpath_of(i, 3) for i in range(n))  # no gap, no duplicate
        for e in events:
            assert e["sha256"] == final_sha(int(Path(e["path"]).name[1:4]), 3)
        runs = [r for r in cat if r.metadata["start"]["plan_name"] == "watch"]
        assert len(runs) == 2
        statuses = sorted(r.status for r in runs)
        assert statuses == ["incomplete", "success"]  # the killed one has no stop document
        newest = runs[0]
        assert newest.metadata["stop"]["num_events"] == {
            "bytes": len([e for e in events if e["run"] == newest.uid])
        }
    finally:
        cat.close()


def test_cli_once_reads_back_arrays_and_paths_and_reports_a_corrupt_tiff(tmp_path):
    import tifffile

    root, store = tmp_path / "data", tmp_path / "store"
    root.mkdir()
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)
    tifffile.imwrite(root / "image.tif", image)
    tifffile.imwrite(root / "broken.tif", image)
    whole = (root / "broken.tif").read_bytes()
    (root / "broken.tif").write_bytes(whole[: len(whole) // 2])
    np.save(root / "frame.npy", np.arange(12.0).reshape(3, 4))
    (root / "scan.csv").write_text("x,y\n1,10\n2,20\n3,30\n")
    (root / "notes.bin").write_bytes(os.urandom(100))
    args = ["watch", str(root), "--catalog", str(store), "--once", "--metadata", "sample=Ni", "--settle", "0.2"]
    done = subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "done: 4 files" in done.stderr and "1 unreadable" in done.stderr
    [warning] = [line for line in done.stderr.splitlines() if "broken.tif" in line]
    assert warning.startswith("warning: broken.tif is unreadable, skipped: ") and "TIFF" in warning
    cat = scandeck.open_catalog(str(store))
    try:
        run = cat[-1]
        assert run.metadata["start"]["sample"] == "Ni"
        assert set(run) == {"npy", "table", "bytes", "tiff"}
        np.testing.assert_array_equal(run.tiff.read()["image"].values[0], image)
        npy = run.npy.read()
        np.testing.assert_array_equal(npy["array"].values[0], np.arange(12.0).reshape(3, 4))
        assert npy["file"].values[0] == str(root / "frame.npy")
        table = run.table.read()
        np.testing.assert_array_equal(table["y"].values[0], [10.0, 20.0, 30.0])
        assert run.bytes.read()["file"].values[0] == str(root / "notes.bin")
    finally:
        cat.close()


def test_one_watcher_per_root_and_catalog(cat, tmp_path):
    root, other = tmp_path / "data", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    first = Watcher(cat, [root], settle=600, reader_for=lambda p: PlainReader())
    with ThreadedWatcher(first):
        wait_for(lambda: bool(first.tracker.watched()), "the first watcher started")
        with pytest.raises(ScandeckError, match="already watched into this catalog by scandeck watch") as info:
            once(cat, root)
        assert f":{os.getpid()}" in str(info.value)
        # Another root into the same catalog is fine, and leaves the first one's rows alone.
        ledger = Ledger(ledger_path(cat))
        in_flight = ledger.begin(str(root.resolve()), "x.dat", 1, 1, "0" * 64, "run", "resource")
        (other / "b.dat").write_bytes(b"b")
        assert once(cat, other).files == 1
        assert [r.id for r in ledger.pending()] == [in_flight.id]
        ledger.drop(in_flight.id)
        ledger.close()
    assert once(cat, root).files == 0  # the lock went with the first watcher


def test_a_redis_catalog_keeps_its_ledger_in_the_data_directory(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "home"))
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"over the bus")
    uri = f"{redis_server.url}?prefix=watch-{uuid.uuid4().hex[:8]}&archive={tmp_path / 'archive'}"
    catalog = scandeck.open_catalog(uri)
    try:
        path = ledger_path(catalog)
        assert path.parent == tmp_path / "home" / "watch" and path.suffix == ".sqlite"
        assert once(catalog, root, transfer=True).files == 1
        assert path.exists()
        assert once(catalog, root, transfer=True).files == 0
        # Named without archive=, with a password: the same bus, the same ledger.
        other_name = catalog.source.uri.split("&archive=")[0].replace("redis://", "redis://:secret@")
        assert ledger_path(SimpleNamespace(source=SimpleNamespace(uri=other_name))) == path
        [event] = watched_events(catalog)
        assert event["path"] == "a.dat" and event["sha256"] == hashlib.sha256(b"over the bus").hexdigest()
    finally:
        catalog.close()


def test_ctrl_c_ends_the_run_with_success(tmp_path):
    root, store = tmp_path / "data", tmp_path / "store"
    root.mkdir()
    (root / "a.raw").write_bytes(b"a")
    proc = watch_command(root, store, settle="0")
    try:
        wait_for(lambda: done_count(store) >= 1, "the file in")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "done: 1 file (1 B) in 1 run" in err
    cat = scandeck.open_catalog(str(store))
    try:
        assert cat[-1].metadata["stop"]["exit_status"] == "success"
    finally:
        cat.close()


# A watcher into a Redis bus, SIGKILLed right after it marked a file done. Its bus is paused for
# writes (CLIENT PAUSE) while it writes the file's documents: what it had not stored by then is lost.
_KILLED_AFTER_DONE = """
import os, signal, sys
import redis
import scandeck
from scandeck.files.ledger import ledger_of
from scandeck.files.watch import Watcher
sys.path.insert(0, sys.argv[4])
from watch_procs import PlainReader

uri, root, server = sys.argv[1:4]
cat = scandeck.open_catalog(uri)
ledger, _ = ledger_of(cat)
begin, done = ledger.begin, ledger.done

def paused_begin(*args, **kwargs):
    row = begin(*args, **kwargs)
    redis.Redis.from_url(server).execute_command("CLIENT", "PAUSE", 1500, "WRITE")
    return row

def killed_after(row_id):
    done(row_id)
    os.kill(os.getpid(), signal.SIGKILL)

ledger.begin, ledger.done = paused_begin, killed_after
reader = PlainReader()
Watcher(cat, [root], once=True, settle=0.2, reader_for=lambda p: reader, ledger=ledger).run()
"""


def test_a_watcher_killed_after_marking_a_file_done_on_a_redis_bus_loses_nothing(redis_server, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"alpha")
    uri = f"{redis_server.url}?prefix=killed-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SCANDECK_DATA": str(tmp_path / "home")}
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_DONE, uri, str(root), redis_server.url, here],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    restarted = subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "watch", str(root), "--catalog", uri, "--once", "--settle", "0.2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restarted.returncode == 0, restarted.stderr
    catalog = scandeck.open_catalog(uri)
    try:
        assert [e["path"] for e in watched_events(catalog)] == ["a.dat"]  # in once: not lost, not doubled
    finally:
        catalog.close()


def test_a_watcher_whose_terminal_closes_ends_its_run_with_success(tmp_path):
    """SIGHUP (the terminal it ran in closed) stops it as Ctrl-C does: the run gets its stop document."""
    root, store = tmp_path / "data", tmp_path / "store"
    root.mkdir()
    (root / "a.bin").write_bytes(b"a whole file")
    proc = watch_command(root, store)
    try:
        wait_for(lambda: done_count(store) >= 1, "the file in")
    finally:
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cat = scandeck.open_catalog(str(store))
    try:
        assert [r.status for r in cat] == ["success"]
    finally:
        cat.close()
