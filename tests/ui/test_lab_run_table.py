"""The Runs tab as a table, in real JupyterLab and Chromium (issue 15).

A real RunEngine records three scans into the default store, whose columns file
defines a column that works and one that raises; the server's column service computes
them with no request from the page, and the panel shows the values as they are pushed,
the failed cells with a warning and their error. The user picks columns (kept across a
reload), sorts by a column, tags a run and comments on it inline, sees a tag added from
elsewhere appear, exports the search as CSV, and after an edit of the columns file sees
the old values marked stale. Screenshots go to ``test-artifacts/ui/``; with
``SCANDECK_UPDATE_DOCS=1`` the README's ``docs/run-table.png`` is replaced too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

import scandeck

pytestmark = pytest.mark.ui

RUN = ".jp-scandeck-run"
DOCS = Path(__file__).resolve().parents[2] / "docs"

COLUMNS = """\
import scandeck


@scandeck.column("peak", title="Peak", units="counts")
def peak(run):
    return float(run.primary.read()["det"].values.max())


@scandeck.column("broken")
def broken(run):
    raise ValueError("no beam")
"""

# The same column with new code that takes a while: its old values are stale meanwhile.
COLUMNS_EDITED = COLUMNS.replace(
    '@scandeck.column("peak", title="Peak", units="counts")\ndef peak(run):\n',
    '@scandeck.column("peak", title="Peak", units="counts", timeout=300)\ndef peak(run):\n'
    "    import time\n\n    time.sleep(120)\n",
)


def record_runs(store: Path) -> dict[str, str]:
    """Three 1-D scans over different ranges (so different peaks): sample -> uid."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det, motor

    cat = scandeck.open_catalog(store)
    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())
    ranges = {"Ni": (-1, 1), "Cu": (0.5, 2.5), "Fe": (-3, -1.2)}
    uids = {sample: RE(bp.scan([det], motor, lo, hi, 9), sample=sample)[0] for sample, (lo, hi) in ranges.items()}
    cat.close()
    return uids


def stored(store: Path, uid: str) -> scandeck.catalog.Run:
    cat = scandeck.open_catalog(store)
    try:
        run = cat[uid]
        return run.tags, [c.text for c in run.comments], run.cells
    finally:
        cat.close()


def saved_in_workspace(lab, columns: list[str], timeout: float = 20.0) -> None:
    """Wait until JupyterLab's workspace holds the panel's state with these columns picked."""
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(
            f"{lab.url}/lab/api/workspaces/default", headers={"Authorization": f"token {lab.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.loads(response.read()).get("data", {})
        if data.get("scandeck:panel", {}).get("columns", {}).get("") == columns:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the panel's state was not saved: {data.get('scandeck:panel')}")
        time.sleep(0.2)


def widen_sidebar(page, by: int) -> None:
    """Drag the left sidebar's edge, as a user does to see more of the table."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by, y, steps=8)
    page.mouse.up()


def peak_texts(panel) -> list[str]:
    return panel.locator(f'{RUN} td[data-column="peak"]').evaluate_all("els => els.map(e => e.textContent)")


@pytest.mark.timeout(300)
def test_the_run_table_picks_sorts_edits_exports_and_marks_cells(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    store = Path(lab.env["SCANDECK_DATA"]) / "store"  # the server's default catalog
    store.mkdir(parents=True, exist_ok=True)
    (store / "columns.py").write_text(COLUMNS)
    uids = record_runs(store)

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(RUN)).to_have_count(3, timeout=30_000)
    widen_sidebar(page, 560)

    # The default columns: the columns file's, then tags. Values arrive as the server computes them.
    headers = panel.locator(".jp-scandeck-run-table thead th")
    expect(headers).to_have_count(4)
    assert headers.evaluate_all("els => els.map(e => e.dataset.column)") == ["time", "peak", "broken", "tags"]
    expect(panel.locator(f'{RUN} td[data-column="peak"][data-state="ok"]')).to_have_count(3, timeout=60_000)
    peaks = {sample: stored(store, uid)[2]["peak"].value for sample, uid in uids.items()}
    for sample, uid in uids.items():
        cell = panel.locator(f'{RUN}[data-uid="{uid}"] td[data-column="peak"]')
        assert float(cell.inner_text()) == pytest.approx(peaks[sample], rel=1e-5)
        expect(cell).to_have_attribute("title", f"Peak (counts): {cell.inner_text()}")
    failed = panel.locator(f'{RUN} td[data-column="broken"][data-state="failed"]')
    expect(failed).to_have_count(3, timeout=60_000)
    expect(failed.first).to_have_attribute("title", re.compile(r"^failed: ValueError: no beam"))
    expect(failed.first.locator(".jp-scandeck-cell-warning")).to_be_visible()

    # Pick two more columns; the choice is kept across a reload.
    panel.locator('[data-action="columns"]').click()
    picker = panel.locator(".jp-scandeck-column-picker")
    picker.locator('input[data-column="comments"]').check()
    picker.locator('input[data-column="sample"]').check()
    picker.locator(".jp-scandeck-close").click()
    shown = ["time", "peak", "broken", "tags", "comments", "sample"]
    expect(headers).to_have_count(6)
    assert headers.evaluate_all("els => els.map(e => e.dataset.column)") == shown
    saved_in_workspace(lab, ["peak", "broken", "tags", "comments", "sample"])
    page.reload()
    expect(panel.locator(RUN)).to_have_count(3, timeout=30_000)
    expect(headers).to_have_count(6)
    assert headers.evaluate_all("els => els.map(e => e.dataset.column)") == shown
    widen_sidebar(page, 560)

    # Sort by peak: ascending, then descending; the header says so.
    by_peak = sorted(uids, key=lambda s: peaks[s])
    header = panel.locator('.jp-scandeck-run-table th[data-column="peak"]')
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert "among the 3 loaded runs" in header.get_attribute("title")
    rows = panel.locator(f".jp-scandeck-runs {RUN}")
    assert rows.evaluate_all("els => els.map(e => e.dataset.uid)") == [uids[s] for s in by_peak]
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert rows.evaluate_all("els => els.map(e => e.dataset.uid)") == [uids[s] for s in reversed(by_peak)]
    values = [float(t) for t in peak_texts(panel)]
    assert values == sorted(values, reverse=True)

    # Tag a run inline, remove one tag, comment on it: stored with the run.
    row = panel.locator(f'{RUN}[data-uid="{uids["Ni"]}"]')
    row.locator('[data-action="add-tag"]').click()
    row.locator(".jp-scandeck-tag-input").fill("Ni, redo")
    row.locator(".jp-scandeck-tag-input").press("Enter")
    expect(row.locator(".jp-scandeck-tag")).to_have_count(2, timeout=10_000)
    assert stored(store, uids["Ni"])[0] == ["Ni", "redo"]
    row.locator('.jp-scandeck-tag[data-tag="redo"] [data-action="untag"]').click()
    expect(row.locator(".jp-scandeck-tag")).to_have_count(1, timeout=10_000)
    assert stored(store, uids["Ni"])[0] == ["Ni"]
    row.locator('td[data-column="comments"] [data-action="add-comment"]').click()
    row.locator(".jp-scandeck-comment-input").fill("bad beam after 12:40 <b>not bold</b>")
    row.locator(".jp-scandeck-comment-input").press("Enter")
    expect(row.locator(".jp-scandeck-comment-last")).to_have_text(
        "bad beam after 12:40 <b>not bold</b>", timeout=10_000
    )
    assert stored(store, uids["Ni"])[1] == ["bad beam after 12:40 <b>not bold</b>"]
    assert row.locator("b").count() == 0  # text, never markup
    expect(panel.locator(".jp-scandeck-detail")).to_have_count(0)  # editing did not select the row

    # A tag added elsewhere (a notebook, `scandeck tag`) is pushed to the page.
    cat = scandeck.open_catalog(store)
    try:
        cat[uids["Cu"]].annotate(tags=["from-the-cli"])
    finally:
        cat.close()
    expect(
        panel.locator(f'{RUN}[data-uid="{uids["Cu"]}"] .jp-scandeck-tag[data-tag="from-the-cli"]')
    ).to_have_count(1, timeout=20_000)
    page.screenshot(path=str(artifacts / "run_table.png"))

    # The selected run: its tags and comments, a comment added there, cen and fwhm on the preview.
    row.locator(".jp-scandeck-run-plan").click()
    detail = panel.locator(".jp-scandeck-detail")
    expect(detail).to_have_attribute("data-uid", uids["Ni"], timeout=10_000)
    notes = detail.locator(".jp-scandeck-annotations")
    expect(notes.locator('.jp-scandeck-tag[data-tag="Ni"]')).to_have_count(1, timeout=10_000)
    notes.locator('[data-action="add-comment"]').click()
    notes.locator(".jp-scandeck-comment-input").fill("peak looks fine")
    notes.locator(".jp-scandeck-comment-input").press("Enter")
    expect(notes.locator(".jp-scandeck-comment")).to_have_count(2, timeout=10_000)
    expect(notes.locator(".jp-scandeck-comment-text").last).to_have_text("peak looks fine")
    expect(detail.locator(".jp-scandeck-preview .jp-scandeck-peak .jp-scandeck-peak-cen")).to_have_count(
        1, timeout=60_000
    )
    cen = stored(store, uids["Ni"])[2]["cen"].value
    assert float(detail.locator(".jp-scandeck-peak").get_attribute("data-cen")) == pytest.approx(cen)
    detail.evaluate("e => { e.scrollTop = 0; }")  # the preview in view, as the run was selected
    detail.locator(".jp-scandeck-preview").screenshot(path=str(artifacts / "run_table_preview_marks.png"))
    page.screenshot(path=str(artifacts / "run_table_detail.png"))
    if os.environ.get("SCANDECK_UPDATE_DOCS"):  # a test run changes no tracked file unless asked
        shutil.copy(artifacts / "run_table_detail.png", DOCS / "run-table.png")

    # Export CSV: the whole search with the shown columns, values as the table holds them.
    with page.expect_download(timeout=20_000) as download:
        panel.locator('[data-action="export-csv"]').click()
    path = download.value.path()
    assert download.value.suggested_filename.startswith("scandeck-default-")
    exported = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert {r["uid"] for r in exported} == set(uids.values())
    by_uid = {r["uid"]: r for r in exported}
    for sample, uid in uids.items():
        assert float(by_uid[uid]["peak (counts)"]) == peaks[sample]
        assert by_uid[uid]["sample"] == sample
        assert by_uid[uid]["broken"] == "" and "broken: failed (ValueError: no beam" in by_uid[uid]["cell_notes"]
    assert by_uid[uids["Ni"]]["tags"] == "Ni"
    assert by_uid[uids["Ni"]]["comments"].splitlines() == [
        "bad beam after 12:40 <b>not bold</b>",
        "peak looks fine",
    ]

    # New code for peak: its values are stale (old, in italics) until the service recomputes them.
    (store / "columns.py").write_text(COLUMNS_EDITED)
    panel.locator('[data-action="refresh"]').click()
    stale = panel.locator(f'{RUN} td[data-column="peak"][data-state="stale"]')
    expect(stale).to_have_count(3, timeout=20_000)
    assert stale.first.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    assert stale.first.get_attribute("title").startswith("stale: code changed")
    page.screenshot(path=str(artifacts / "run_table_stale.png"))

    # The same table in the dark theme (colours are theme variables only).
    body = json.dumps({"raw": json.dumps({"theme": "JupyterLab Dark"})}).encode()
    request = urllib.request.Request(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
    expect(panel.locator(f'{RUN} td[data-column="peak"][data-state="stale"]')).to_have_count(3, timeout=30_000)
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=30_000)
    page.screenshot(path=str(artifacts / "run_table_dark.png"))
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []
    assert page.blocked_requests == []
