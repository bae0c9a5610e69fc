"""A watched run in the Scans panel, in real JupyterLab and Chromium (issue 17).

``scandeck watch`` runs as a process on a directory while the test, playing the
instrument, writes TIFF frames and CSV patterns into it, each in several pieces with
the file held open. The panel shows the watched run's row with its file count and the
newest file's name as each file completes (pushed, no reload), a long name cut with
its whole relative path on hover; the run's detail says what was watched (root,
patterns, host); after Ctrl-C the run ends with success and keeps its line. Every
request leaving 127.0.0.1 is blocked. Screenshots go to ``test-artifacts/ui/``; with
``SCANDECK_UPDATE_DOCS=1`` the README's ``docs/watched-runs.png`` is replaced too.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

import scandeck
from scandeck.files import layout
from scandeck.sources.liveness import HOST

pytestmark = pytest.mark.ui

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUN = ".jp-scandeck-run"
LONG = "S02_CeO2_heating/XRD_CeO2_in_situ_heating_ramp_5K_per_min_0001.tif"


def widen_sidebar(page, by: int) -> None:
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by, y, steps=8)
    page.mouse.up()


def rings(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:128].astype(float)
    r = np.hypot(y - 64, x - 64)
    img = 30 + sum(800 * np.exp(-0.5 * ((r - radius) / 1.5) ** 2) for radius in (18, 31, 44, 55))
    return rng.poisson(img).astype("uint16")


def spectrum(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    tt = np.linspace(15, 80, 300)
    counts = rng.poisson(40 + sum(1500 * np.exp(-0.5 * ((tt - p) / 0.15) ** 2) for p in (28.6, 33.1, 47.5)))
    rows = "\n".join(f"{t:.3f},{c}" for t, c in zip(tt, counts, strict=True))
    return f"# sample: CeO2\ntwo_theta_deg,intensity\n{rows}\n".encode()


def write_in_pieces(path: Path, data: bytes, pieces: int = 3) -> None:
    """As a detector's software: open, write a piece at a time (flushed), close at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // pieces)
    with open(path, "wb") as f:
        for at in range(0, len(data), step):
            f.write(data[at : at + step])
            f.flush()
            time.sleep(0.05)  # the piece is on disk while the file is still open (not a threshold)


def tiff(seed: int) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, rings(seed))
    return out.getvalue()


def watched_uid(store: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        if (store / "scandeck.sqlite").exists():
            cat = scandeck.open_catalog(str(store))
            try:
                found = [s.uid for s in cat.summaries() if layout.is_watched(s.start)]
            finally:
                cat.close()
            if found:
                return found[0]
        time.sleep(0.1)
    raise AssertionError("the watcher started no run")


@pytest.mark.timeout(300)
def test_a_watched_run_shows_its_files_as_they_arrive(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    store = Path(lab.env["SCANDECK_DATA"]) / "store"  # the server's default catalog
    instrument = tmp_path / "xrd"
    instrument.mkdir()
    env = {k: v for k, v in lab.env.items() if k != "SCANDECK_CATALOG"}
    # Two beamline runs first, as a real catalog has: the watched run is one row among others.
    subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "demo", "--runs", "2", "--pace", "0", "--seed", "7"]
        + ["--catalog", str(store)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(".jp-scandeck-runs")).to_be_visible(timeout=30_000)
    expect(panel.locator(RUN)).to_have_count(2, timeout=30_000)
    widen_sidebar(page, 260)

    log = open(tmp_path / "watch.log", "w")  # noqa: SIM115 - closed below, after the process
    watcher = subprocess.Popen(
        [sys.executable, "-m", "scandeck.cli", "watch", str(instrument), "--recursive"]
        + ["--pattern", "*.tif", "--pattern", "*.csv", "--catalog", str(store)]
        + ["--metadata", "sample=CeO2", "--metadata", "operator=jdoe"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Each file, once closed, is counted and named in the row, pushed as it comes (the
        # watcher starts its run with its first file).
        write_in_pieces(instrument / "S01_CeO2" / "XRD_CeO2_0001.tif", tiff(1))
        uid = watched_uid(store, time.monotonic() + 60)
        row = panel.locator(f'{RUN}[data-uid="{uid}"]')
        files = row.locator(".jp-scandeck-files")
        expect(row).to_have_attribute("data-status", "running", timeout=30_000)
        expect(files).to_have_attribute("data-count", "1", timeout=30_000)
        expect(files).to_have_text("1 file· newest:XRD_CeO2_0001.tif")
        expect(files.locator(".jp-scandeck-files-newest")).to_have_attribute("title", "S01_CeO2/XRD_CeO2_0001.tif")
        write_in_pieces(instrument / "S01_CeO2" / "XRD_CeO2_0001.csv", spectrum(1))
        expect(files).to_have_attribute("data-count", "2", timeout=30_000)
        expect(files.locator(".jp-scandeck-files-newest")).to_have_text("XRD_CeO2_0001.csv")
        for i in (2, 3):
            write_in_pieces(instrument / "S01_CeO2" / f"XRD_CeO2_{i:04d}.tif", tiff(i))
            write_in_pieces(instrument / "S01_CeO2" / f"XRD_CeO2_{i:04d}.csv", spectrum(i))
        expect(files).to_have_attribute("data-count", "6", timeout=30_000)

        # A long name is cut in its middle (its end kept), the whole relative path on hover.
        write_in_pieces(instrument / LONG, tiff(9))
        expect(files).to_have_attribute("data-count", "7", timeout=30_000)
        newest = files.locator(".jp-scandeck-files-newest")
        expect(newest).to_have_attribute("title", LONG)
        shown = newest.inner_text()
        assert "…" in shown and shown.endswith("_0001.tif") and len(shown) <= 28, shown
        expect(files.locator(".jp-scandeck-files-count")).to_have_text("7 files")

        # The detail: what was watched, and the same count and name.
        row.locator(".jp-scandeck-run-uid").click()
        detail = panel.locator(".jp-scandeck-detail")
        expect(detail).to_have_attribute("data-uid", uid, timeout=10_000)
        watch = detail.locator(".jp-scandeck-watch")
        expect(watch.locator('tr[data-key="roots"] td')).to_have_text(str(instrument.resolve()), timeout=10_000)
        expect(watch.locator('tr[data-key="patterns"] .jp-scandeck-watch-item')).to_have_text(["*.tif", "*.csv"])
        expect(watch.locator('tr[data-key="host"] td')).to_have_text(HOST)
        expect(watch.locator('tr[data-key="run_per"] td')).to_have_text("session")
        expect(watch.locator(".jp-scandeck-files")).to_have_attribute("data-count", "7")
        # Its preview is its newest file: the frame as an image, named under it.
        expect(detail.locator('.jp-scandeck-preview[data-kind="grid"]')).to_be_visible(timeout=10_000)
        expect(detail.locator(".jp-scandeck-preview-file")).to_have_attribute("data-file", LONG)
        assert watcher.poll() is None  # still watching
        row.hover()
        page.screenshot(path=str(artifacts / "watched_runs.png"))
        if os.environ.get("SCANDECK_UPDATE_DOCS"):  # a test run changes no tracked file unless asked
            shutil.copy(artifacts / "watched_runs.png", DOCS / "watched-runs.png")

        watch.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "watched_runs_detail.png"))

        # Ctrl-C: the run ends with success and keeps its files line.
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(60) == 0, (tmp_path / "watch.log").read_text()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        log.close()
    expect(row).to_have_attribute("data-status", "success", timeout=30_000)
    expect(files).to_have_attribute("data-count", "7")
    expect(files.locator(".jp-scandeck-files-count")).to_have_text("7 files")
    expect(row.locator(".jp-scandeck-run-events")).to_have_count(0)
    page.screenshot(path=str(artifacts / "watched_runs_ended.png"))
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []
    assert page.blocked_requests == []
