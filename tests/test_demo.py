"""The simulated beamline: a real RunEngine's documents, files, aborts and stops."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import event_model
import numpy as np
import pytest

from scandeck.demo import SAMPLES, run_demo
from scandeck.handlers import Filler

Doc = tuple[str, dict[str, Any]]


def _split_runs(docs: list[Doc]) -> list[list[Doc]]:
    """One RunEngine emits one run after another: a start opens each."""
    runs: list[list[Doc]] = []
    for name, doc in docs:
        if name == "start":
            runs.append([])
        runs[-1].append((name, doc))
    return runs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[list[Doc]], list[str]]:
    assets = tmp_path_factory.mktemp("assets")
    docs: list[Doc] = []
    lines: list[str] = []
    # Seed 3 happens to include a simulated fault within 12 runs (faults are rare).
    n = run_demo(
        lambda name, doc: docs.append((name, doc)),
        asset_dir=assets,
        runs=12,
        pace=0,
        seed=3,
        progress=lines.append,
    )
    return n, _split_runs(docs), lines


def _start(run: list[Doc]) -> dict[str, Any]:
    return run[0][1]


def _stop(run: list[Doc]) -> dict[str, Any]:
    name, doc = run[-1]
    assert name == "stop"
    return doc


def test_every_run_starts_and_stops(demo: Any) -> None:
    n, runs, lines = demo
    assert n == len(runs) == 12
    for run in runs:
        assert [name for name, _ in run].count("start") == 1
        assert _stop(run)["run_start"] == _start(run)["uid"]
    assert [_start(r)["scan_id"] for r in runs] == list(range(1, 13))
    assert len(lines) == 24 and "started" in lines[0] and "finished: " in lines[1]


def test_documents_are_valid(demo: Any) -> None:
    _, runs, _ = demo
    for run in runs:
        for name, doc in run:
            event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)


def test_plan_mix_and_metadata(demo: Any) -> None:
    _, runs, _ = demo
    plans = Counter(_start(r)["plan_name"] for r in runs)
    assert {"count", "scan", "rel_scan", "grid_scan"} <= set(plans)
    for run in runs:
        start = _start(run)
        assert start["beamline_id"] == "sim" and start["sample"] in SAMPLES
        assert start["operator"] and start["proposal"] and start["purpose"]
        stop = _stop(run)
        if stop["exit_status"] == "success":  # a finished run has every point it planned
            assert stop["num_events"]["primary"] == start["num_points"]


def test_aborted_and_failed_runs(demo: Any) -> None:
    _, runs, lines = demo
    stops = [_stop(r) for r in runs]
    aborted = [s for s in stops if s["exit_status"] == "abort"]
    assert aborted and all(s["reason"] == "simulated beam dump" for s in aborted)
    failed = [s for s in stops if s["exit_status"] == "fail"]
    assert failed and all(s["reason"] for s in failed)
    assert any("finished: abort (simulated beam dump)" in line for line in lines)


@pytest.mark.parametrize("spec", ["NPY_SEQ", "AD_HDF5"])
def test_external_images_fill_to_declared_shape(demo: Any, spec: str) -> None:
    _, runs, _ = demo
    checked = 0
    for run in runs:
        resources = [doc for name, doc in run if name == "resource" and doc["spec"] == spec]
        if not resources:
            continue
        (resource,) = resources
        full = os.path.join(resource["root"], resource["resource_path"])
        descriptors = {doc["uid"]: doc for name, doc in run if name == "descriptor"}
        with Filler() as filler:
            for name, doc in run:
                filler(name, doc)
            for name, event in run:
                if name != "event":
                    continue
                for key, info in descriptors[event["descriptor"]]["data_keys"].items():
                    if not info.get("external"):
                        continue
                    datum = filler.datums[event["data"][key]]
                    if spec == "NPY_SEQ":
                        assert os.path.exists(f"{full}_{datum['datum_kwargs']['index']}.npy")
                    else:
                        assert os.path.exists(full)
                    image = filler.fill_datum(event["data"][key])
                    assert info["dtype"] == "array" and info["shape"] == [64, 64]
                    assert list(image.shape) == info["shape"]
                    assert image.dtype == np.dtype(info["dtype_numpy"])
                    assert image.max() > image.min()  # an image, not a constant
                    checked += 1
    assert checked >= 3


def test_stop_event_ends_a_slow_demo_promptly(tmp_path: Path) -> None:
    stop = threading.Event()
    first_event = threading.Event()
    docs: list[Doc] = []
    result: list[int] = []

    def callback(name: str, doc: dict[str, Any]) -> None:
        docs.append((name, doc))
        if name == "event":
            first_event.set()

    def demo() -> None:  # off the main thread, as in a notebook or a server
        result.append(
            run_demo(callback, asset_dir=tmp_path, pace=0.2, runs=None, seed=5, stop_event=stop, progress=None)
        )

    worker = threading.Thread(target=demo, daemon=True)
    worker.start()
    assert first_event.wait(10)
    stopped_at = time.monotonic()
    stop.set()
    worker.join(10)
    took = time.monotonic() - stopped_at
    assert not worker.is_alive() and took < 1.0, f"took {took:.2f} s to stop"
    assert result == [1]
    (run,) = _split_runs(docs)
    stop_doc = _stop(run)  # the run in flight was closed, as aborted
    assert stop_doc["exit_status"] == "abort" and stop_doc["reason"] == "demo stopped"


def test_ctrl_c_on_the_main_thread_stops_cleanly(tmp_path: Path) -> None:
    first_event = threading.Event()
    docs: list[Doc] = []

    def callback(name: str, doc: dict[str, Any]) -> None:
        docs.append((name, doc))
        if name == "event":
            first_event.set()

    def press_ctrl_c() -> None:
        if first_event.wait(10):  # by then run_demo's own SIGINT handler is installed
            os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    n = run_demo(callback, asset_dir=tmp_path, pace=0.2, seed=5, progress=None)
    assert n == 1
    assert _stop(_split_runs(docs)[0])["exit_status"] == "abort"
    assert signal.getsignal(signal.SIGINT) is handler_before  # put back


def test_a_callers_own_sigint_handler_is_left_in_charge(tmp_path: Path) -> None:
    stop, first_event = threading.Event(), threading.Event()
    calls: list[int] = []

    def callers_handler(signum: int, frame: Any) -> None:  # as the scandeck CLI does
        calls.append(signum)
        stop.set()

    def callback(name: str, doc: dict[str, Any]) -> None:
        if name == "event":
            first_event.set()

    def press_ctrl_c() -> None:
        if first_event.wait(10):
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, callers_handler)
    try:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        assert run_demo(callback, asset_dir=tmp_path, pace=0.2, seed=5, stop_event=stop, progress=None) == 1
        assert calls == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is callers_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_demo_notebook_is_a_copy_refreshed_only_when_the_shipped_one_is_newer(tmp_path: Path) -> None:
    from scandeck.demo_lab import prepare_notebook

    shipped = tmp_path / "checkout" / "live_analysis.ipynb"
    shipped.parent.mkdir()
    shipped.write_text('{"v": 1}')
    workspace = tmp_path / "data" / "notebooks"

    copy, done = prepare_notebook(shipped, workspace)
    assert (copy, done) == (workspace / "live_analysis.ipynb", "copied") and copy.read_text() == '{"v": 1}'

    copy.write_text('{"v": "my edits"}')  # saved in the lab: newer than the shipped one
    assert prepare_notebook(shipped, workspace) == (copy, "kept")
    assert copy.read_text() == '{"v": "my edits"}'

    shipped.write_text('{"v": 2}')  # a pull brings a newer notebook
    later = copy.stat().st_mtime + 10
    os.utime(shipped, (later, later))
    assert prepare_notebook(shipped, workspace) == (copy, "refreshed")
    assert copy.read_text() == '{"v": 2}'
    assert (workspace / "live_analysis.previous.ipynb").read_text() == '{"v": "my edits"}'
    assert shipped.read_text() == '{"v": 2}'  # the checkout is only read


def test_a_missing_demo_notebook_says_what_to_do(tmp_path: Path) -> None:
    from scandeck.demo_lab import prepare_notebook

    with pytest.raises(FileNotFoundError, match="SCANDECK_DEMO_NOTEBOOK"):
        prepare_notebook(tmp_path / "nowhere.ipynb", tmp_path / "notebooks")


def test_show_labels_both_image_detectors_external_the_same_way(demo: Any) -> None:
    from scandeck.listing import DATA_KEY_HEADER, data_key_rows

    _, runs, _ = demo
    column = DATA_KEY_HEADER.index("external")
    labels: dict[str, str] = {}
    for run in runs:
        for name, doc in run:
            if name == "descriptor":
                for key, row in zip(doc["data_keys"], data_key_rows(doc["data_keys"]), strict=True):
                    labels[key] = row[column]
    raw = {  # the detectors declare it differently: "FILESTORE" (ophyd.sim) and "FILESTORE:"
        doc["data_keys"][key]["external"]
        for run in runs
        for name, doc in run
        if name == "descriptor"
        for key in ("img", "h5cam")
        if key in doc["data_keys"]
    }
    assert raw == {"FILESTORE", "FILESTORE:"}
    assert labels["img"] == labels["h5cam"] == "yes (FILESTORE)"
    assert labels["I0"] == "no"


def test_a_bad_lab_port_says_what_to_set(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "SCANDECK_DATA": str(tmp_path), "SCANDECK_LAB_PORT": "88a8"}
    result = subprocess.run(
        [sys.executable, "-m", "scandeck.demo_lab"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "SCANDECK_LAB_PORT must be a port number (1-65535), not '88a8'" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing started, nothing copied
