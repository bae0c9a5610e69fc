"""``scandeck demo --files DIR`` (issue 17): a simulated instrument writes TIFF images and CSV
patterns into DIR, a folder per sample and each file in several pieces, and a watcher takes
them into the demo's catalog beside the simulated beamline, as one watched run.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

import scandeck
from scandeck.files import layout
from scandeck.files.instrument import FRAMES, PIECES, Instrument, run_instrument

NAME = re.compile(r"^S(\d\d)_(\w+)/XRD_\2_(\d{4})\.(tif|csv)$")


def demo(*args: str, data: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env["SCANDECK_DATA"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def watched_runs(store: Path) -> list:
    cat = scandeck.open_catalog(str(store))
    try:
        return [s for s in cat.summaries() if layout.is_watched(s.start)]
    finally:
        cat.close()


def events_of(store: Path, uid: str) -> list[dict]:
    cat = scandeck.open_catalog(str(store))
    try:
        return [e.doc for e in cat.source.documents(uid, names=["event"])]
    finally:
        cat.close()


def test_a_bounded_demo_writes_samples_and_the_watcher_takes_every_file(tmp_path: Path) -> None:
    store, files = tmp_path / "store", tmp_path / "xrd"
    args = ("--files", str(files), "--runs", "1", "--pace", "0", "--seed", "1", "--catalog", str(store))
    result = demo(*args, data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"watcher: {2 * FRAMES} file(s) of the instrument taken" in result.stdout

    on_disk = sorted(p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file())
    assert len(on_disk) == 2 * FRAMES and all(NAME.match(p) for p in on_disk), on_disk
    (run,) = watched_runs(store)
    assert run.status == "success" and run.num_events == 2 * FRAMES
    assert run.start["watch"]["roots"] == [str(files.resolve())]
    assert sorted(run.start["watch"]["patterns"]) == ["*.csv", "*.tif"]
    events = events_of(store, run.uid)
    assert sorted(e["data"]["path"] for e in events) == on_disk
    for event in events:  # each file taken whole: its hash is the file's
        path = files / event["data"]["path"]
        assert event["data"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert event["data"]["size"] == path.stat().st_size

    cat = scandeck.open_catalog(str(store))
    try:
        images = cat[run.uid]["tiff"].read()
        spectra = cat[run.uid]["table"].read()
    finally:
        cat.close()
    (image_key,) = [k for k in images.data_vars if images[k].ndim == 3]
    assert images[image_key].shape[0] == FRAMES and images[image_key].dtype == np.uint16
    assert spectra["two_theta_deg"].shape[0] == FRAMES and float(spectra["intensity"].max()) > 0

    # A second demo adds the next sample in its own folder and takes only its files.
    result = demo(*args, data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    second = [r for r in watched_runs(store) if r.uid != run.uid]
    assert len(second) == 1 and second[0].num_events == 2 * FRAMES
    assert {e["data"]["path"].split("/")[0][:3] for e in events_of(store, second[0].uid)} == {"S02"}


class Pauses(threading.Event):
    """A stop event that records, at each pause of the instrument, the size of what is on disk."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.sizes: list[tuple[str, int]] = []

    def wait(self, timeout: float | None = None) -> bool:
        (newest,) = sorted(self.directory.rglob("*.*"), key=lambda p: p.stat().st_mtime_ns)[-1:]
        self.sizes.append((newest.name, newest.stat().st_size))
        return self.is_set()


def test_each_file_is_written_in_pieces_and_whole_at_the_end(tmp_path: Path) -> None:
    instrument = Instrument(tmp_path / "xrd")
    pauses = Pauses(instrument.directory)
    assert run_instrument(instrument, pace=1.0, samples=1, seed=4, stop=pauses) == 2 * FRAMES
    assert instrument.done.is_set() and len(instrument.written) == 2 * FRAMES
    for rel in instrument.written:
        final = (instrument.directory / rel).stat().st_size
        seen = [size for name, size in pauses.sizes if name == Path(rel).name]
        assert len(seen) == PIECES - 1, (rel, seen)  # a pause between pieces: the file half-written
        assert seen == sorted(seen) and 0 < seen[0] and seen[-1] < final
    image = tifffile.imread(instrument.directory / instrument.written[0])
    assert image.dtype == np.uint16 and image.ndim == 2


def test_a_stop_finishes_the_file_being_written(tmp_path: Path) -> None:
    instrument = Instrument(tmp_path / "xrd")
    stop = threading.Event()
    stop.set()
    assert run_instrument(instrument, pace=5.0, samples=None, stop=stop) == 0
    stopping = Pauses(instrument.directory)

    def first_pause_stops(timeout: float | None = None) -> bool:
        stopping.set()
        return True

    stopping.wait = first_pause_stops  # type: ignore[method-assign]
    n = run_instrument(instrument, pace=100.0, samples=None, stop=stopping)
    assert n == 1  # the file in progress, finished without its pauses; nothing after it
    (rel,) = instrument.written
    assert tifffile.imread(instrument.directory / rel).shape[0] > 0


def test_ctrl_c_stops_the_instrument_and_ends_the_watched_run(tmp_path: Path) -> None:
    store, files = tmp_path / "store", tmp_path / "xrd"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env["SCANDECK_DATA"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scandeck.cli",
            "demo",
            "--files",
            str(files),
            "--pace",
            "0.2",
            "--catalog",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the watcher has taken a file
            if (store / "scandeck.sqlite").exists() and any(r.num_events for r in watched_runs(store)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the watcher took no file of the instrument within 60 s")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    (run,) = watched_runs(store)
    assert run.status == "success" and run.num_events >= 1
