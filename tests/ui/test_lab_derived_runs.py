"""A live derived run in the Scans panel, in real JupyterLab and Chromium (issue 16).

A RunEngine in one process records a scan that holds halfway until the test opens a
gate (``tests/derived_live_procs.py produce``); a pipeline in another process,
``scandeck.live(parent).stream().map(normalise).scan(accumulate).to_run(cat)``, derives
a run from it as it goes. The panel shows the derived run nested under its running
parent, its event count pushed as it grows, then both ended with their exit status;
the derived run's detail names its parent (a click selects it) and its pipeline, the
parent's detail lists the derived run; a search that leaves the parent out lists the
derived run alone, marked with the scan it came from. Screenshots go to
``test-artifacts/ui/``; with ``SCANDECK_UPDATE_DOCS=1`` the README's
``docs/derived-runs.png`` is replaced too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scandeck

pytestmark = pytest.mark.ui

PROCS = str(Path(__file__).resolve().parents[1] / "derived_live_procs.py")
DOCS = Path(__file__).resolve().parents[2] / "docs"
RUN = ".jp-scandeck-run"
HALF = 6  # the parent holds after this many points, until the gate exists

PIPELINE_LINE = "live(primary) → map(normalise) → accumulate(accumulate) → to_run(primary)"
PIPELINE = """\
import sys

import scandeck


def normalise(row):
    return row["det"] / 2


def accumulate(acc, x):
    return acc + x


store, parent = sys.argv[1], sys.argv[2]
cat = scandeck.open_catalog(store)
live = scandeck.live(parent, catalog=cat)
sums = live.stream("primary").map(normalise).scan(accumulate, start=0.0)
out = sums.to_run(cat, metadata={"purpose": "running sum"})
print("derived", out.uid, flush=True)
ended = out.wait(120)
print("ended", ended, out.exit_status, out.events, flush=True)
live.stop()
"""


def widen_sidebar(page, by: int) -> None:
    """Drag the left sidebar's edge, as a user does to see more of the table."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by, y, steps=8)
    page.mouse.up()


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()


@pytest.mark.timeout(300)
def test_a_live_derived_run_grows_under_its_parent(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    store = Path(lab.env["SCANDECK_DATA"]) / "store"  # the server's default catalog
    store.mkdir(parents=True, exist_ok=True)
    gate = tmp_path / "gate"
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(".jp-scandeck-runs")).to_be_visible(timeout=30_000)
    widen_sidebar(page, 300)

    procs: list[subprocess.Popen] = []
    try:
        producer = subprocess.Popen(
            [sys.executable, PROCS, "produce", str(store), str(gate), str(HALF)], stdout=subprocess.PIPE, text=True
        )
        procs.append(producer)
        started = producer.stdout.readline().split()
        assert started[0] == "started", started
        parent = started[1]
        pipeline = subprocess.Popen(
            [sys.executable, str(script), str(store), parent], stdout=subprocess.PIPE, text=True
        )
        procs.append(pipeline)
        said = pipeline.stdout.readline().split()
        assert said[0] == "derived", said
        derived = said[1]

        # Both running: the derived run right under its parent, one level in, its events pushed
        # as they come; the parent holds at HALF points, so the derived run has HALF values.
        parent_row = panel.locator(f'{RUN}[data-uid="{parent}"]')
        derived_row = panel.locator(f'{RUN}[data-uid="{derived}"]')
        expect(parent_row).to_have_attribute("data-status", "running", timeout=30_000)
        expect(derived_row).to_have_attribute("data-status", "running", timeout=30_000)
        expect(derived_row).to_have_attribute("data-depth", "1")
        expect(derived_row.locator(".jp-scandeck-event-count")).to_have_text(f"{HALF} events", timeout=30_000)
        expect(parent_row.locator(".jp-scandeck-event-count")).to_have_text(f"{HALF} / {2 * HALF}")
        expect(parent_row.locator('[data-action="toggle-derived"]')).to_have_text("▾ 1 derived")
        order = panel.locator(RUN).evaluate_all("els => els.map(e => e.dataset.uid)")
        assert order.index(derived) == order.index(parent) + 1
        page.screenshot(path=str(artifacts / "derived_runs_live.png"))

        # The parent's detail lists the derived run, running.
        parent_row.locator(".jp-scandeck-run-uid").click()
        detail = panel.locator(".jp-scandeck-detail")
        expect(detail).to_have_attribute("data-uid", parent, timeout=10_000)
        listed = detail.locator(f'.jp-scandeck-derived-runs li[data-uid="{derived}"]')
        expect(listed).to_have_attribute("data-status", "running", timeout=10_000)
        expect(listed.locator(".jp-scandeck-derived-events")).to_contain_text(f"{HALF} events")

        # The derived run's detail, while it runs: its parent and its pipeline, in words.
        derived_row.locator(".jp-scandeck-run-uid").click()
        expect(detail).to_have_attribute("data-uid", derived, timeout=10_000)
        link = detail.locator(f'.jp-scandeck-parents [data-action="select-parent"][data-uid="{parent}"]')
        expect(link).to_have_text(re.compile(r"^Scan \d+ · gated$"), timeout=10_000)
        line = detail.locator(".jp-scandeck-pipeline")
        expect(line).to_have_attribute("data-line", PIPELINE_LINE)
        expect(line).to_have_text(PIPELINE_LINE)
        expect(detail.locator(".jp-scandeck-progress-row .jp-scandeck-event-count")).to_have_text(f"{HALF} events")
        assert producer.poll() is None and pipeline.poll() is None  # both still running
        page.screenshot(path=str(artifacts / "derived_runs.png"))
        if os.environ.get("SCANDECK_UPDATE_DOCS"):  # a test run changes no tracked file unless asked
            shutil.copy(artifacts / "derived_runs.png", DOCS / "derived-runs.png")

        # The parent goes on and ends; the derived run follows it to the end, with its exit status.
        gate.touch()
        assert producer.wait(120) == 0
        assert pipeline.stdout.readline().split() == ["ended", "True", "success", str(2 * HALF)]
        assert pipeline.wait(60) == 0
    finally:
        for proc in procs:
            stop_process(proc)

    expect(derived_row).to_have_attribute("data-status", "success", timeout=30_000)
    expect(parent_row).to_have_attribute("data-status", "success", timeout=30_000)
    expect(derived_row.locator(".jp-scandeck-status-badge")).to_have_text("success")
    expect(derived_row.locator(".jp-scandeck-run-events")).to_have_text(f"{2 * HALF} events")
    expect(derived_row).to_have_attribute("data-depth", "1")

    # Ended: the detail says so too; the values are the running sums of the parent's det / 2.
    expect(detail.locator(".jp-scandeck-detail-header .jp-scandeck-status-badge")).to_have_text("success")
    cat = scandeck.open_catalog(store)
    try:
        scan_id = cat[parent].metadata["start"]["scan_id"]
        totals = cat[derived].primary.read()["accumulate"].values.tolist()
        dets = cat[parent].primary.read()["det"].values.tolist()
    finally:
        cat.close()
    assert totals == pytest.approx([sum(dets[: i + 1]) / 2 for i in range(len(dets))])
    expect(link).to_have_text(f"Scan {scan_id} · gated")
    page.screenshot(path=str(artifacts / "derived_runs_ended.png"))

    # The parent link selects the parent, whose detail lists the derived run.
    link.click()
    expect(detail).to_have_attribute("data-uid", parent, timeout=10_000)
    listed = detail.locator(f'.jp-scandeck-derived-runs li[data-uid="{derived}"]')
    expect(listed).to_have_attribute("data-status", "success", timeout=10_000)
    listed.locator('[data-action="select-derived"]').click()
    expect(detail).to_have_attribute("data-uid", derived, timeout=10_000)

    # Folding hides the derived run; unfolding shows it again.
    toggle = parent_row.locator('[data-action="toggle-derived"]')
    toggle.click()
    expect(derived_row).to_have_count(0)
    expect(toggle).to_have_text("▸ 1 derived")
    toggle.click()
    expect(derived_row).to_have_count(1)

    # A search without the parent: the derived run is a row of its own, marked with its scan.
    search = panel.locator(".jp-scandeck-search")
    search.fill('plan_name == "derived"')
    search.press("Enter")
    expect(panel.locator(RUN)).to_have_count(1, timeout=10_000)
    expect(derived_row).to_have_attribute("data-depth", "0")
    mark = derived_row.locator('.jp-scandeck-derived-from [data-action="select-parent"]')
    expect(mark).to_have_text(f"from scan {scan_id}")
    page.screenshot(path=str(artifacts / "derived_runs_alone.png"))
    mark.click()
    expect(detail).to_have_attribute("data-uid", parent, timeout=10_000)
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []
    assert page.blocked_requests == []
