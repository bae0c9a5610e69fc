"""The Scans panel in real JupyterLab, in real Chromium, fed by a real RunEngine process.

What a user sees: the panel lists the runs of the default store; a run recorded
by another process appears on top while it runs, its event count growing as the
server pushes it; a search narrows the list and a typo shows an inline error;
Insert code puts a cell in the notebook that loads the selected run when run.
Screenshots (light and dark theme) go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from notebook_support import open_notebook, producer, run_cell, wait_for_kernel, write_notebook

pytestmark = pytest.mark.ui

PROCS = str(Path(__file__).resolve().parents[1] / "procs.py")
LIVE_EVENTS = 100
RUN = ".jp-scandeck-run"


def record_runs(store: Path) -> dict[str, str]:
    """Three finished runs with a real RunEngine: sample -> uid."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det, motor

    import scandeck

    cat = scandeck.open_catalog(store)
    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())
    uids = {sample: RE(bp.scan([det], motor, -1, 1, 5), sample=sample)[0] for sample in ("Ni", "Cu", "Fe")}
    cat.close()
    return uids


def set_theme(lab, theme: str) -> None:
    """Choose the theme through JupyterLab's settings API (what Settings > Theme does)."""
    body = json.dumps({"raw": json.dumps({"theme": theme})}).encode()
    request = urllib.request.Request(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def scandeck_api(lab, path: str) -> dict:
    request = urllib.request.Request(
        f"{lab.url}/scandeck/api/{path}", headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def rows(page) -> list[str]:
    return page.locator(f".jp-scandeck-runs {RUN}").evaluate_all("els => els.map(e => e.dataset.uid)")


@pytest.mark.timeout(180)
def test_scans_panel_lists_follows_searches_and_inserts_code(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    store = Path(lab.env["SCANDECK_DATA"]) / "store"  # the server's default catalog
    uids = record_runs(store)
    write_notebook(lab.root / "panel.ipynb", "print('ready')")

    page.goto(lab.page_url("panel.ipynb"))
    expect(page.locator(".jp-NotebookPanel .jp-Cell")).to_have_count(1, timeout=30_000)
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-scandeck-push")).to_have_attribute("data-state", "open", timeout=20_000)

    # The stored runs, newest first.
    expect(panel.locator(RUN)).to_have_count(3, timeout=20_000)
    expect(panel.locator(".jp-scandeck-run-count")).to_have_attribute("data-total", "3")
    assert rows(page) == [uids["Fe"], uids["Cu"], uids["Ni"]]
    page.screenshot(path=str(artifacts / "panel_runs_light.png"))

    # A run recorded now by another process: on top while it runs, its count growing (pushed).
    with producer([sys.executable, PROCS, "write", str(store), str(LIVE_EVENTS), "0.05"]) as proc:
        assert proc.stdout.readline().strip() == "writing"
        live = panel.locator(f'{RUN}[data-status="running"]')
        expect(live).to_have_count(1, timeout=20_000)
        live_uid = live.get_attribute("data-uid")
        assert rows(page)[0] == live_uid
        expect(live.locator(".jp-scandeck-progress")).to_be_visible()
        row = panel.locator(f'{RUN}[data-uid="{live_uid}"]')  # the same row, whatever its status
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, text = row.evaluate(
                "e => [e.dataset.status, (e.querySelector('.jp-scandeck-event-count') || {}).textContent || '']"
            )
            if status != "running":
                break
            if (m := re.match(r"(\d+)", text)) and (not seen or int(m.group(1)) != seen[-1]):
                seen.append(int(m.group(1)))
                if len(seen) == 3:
                    page.screenshot(path=str(artifacts / "panel_live_light.png"))
            time.sleep(0.05)
        assert proc.wait(60) == 0
    assert len(seen) >= 3 and seen == sorted(seen) and seen[0] < LIVE_EVENTS, seen
    expect(panel.locator(f'{RUN}[data-status="running"]')).to_have_count(0, timeout=20_000)
    expect(panel.locator(RUN)).to_have_count(4)
    expect(panel.locator(f'{RUN}[data-status="success"]')).to_have_count(4)

    # Search narrows the list; a typo is shown inline, with where it is.
    search = panel.locator(".jp-scandeck-search")
    search.fill('sample == "Cu"')
    search.press("Enter")
    expect(panel.locator(RUN)).to_have_count(1, timeout=10_000)
    assert rows(page) == [uids["Cu"]]
    expect(panel.locator(".jp-scandeck-run-count")).to_have_attribute("data-total", "1")
    search.fill('sample = "Cu"')
    search.press("Enter")
    error = panel.locator(".jp-scandeck-search-error")
    expect(error).to_be_visible(timeout=10_000)
    expect(error).to_have_attribute("data-error", "QuerySyntaxError")
    expect(error).to_contain_text("did you mean '=='")
    expect(error.locator(".jp-scandeck-search-error-caret")).to_have_attribute("data-position", "7")
    assert "Traceback" not in panel.inner_text()
    page.screenshot(path=str(artifacts / "panel_search_error_light.png"))
    search.fill("")
    search.press("Enter")
    expect(panel.locator(RUN)).to_have_count(4, timeout=10_000)
    expect(error).to_have_count(0)

    # Select a run: its details, then Insert code puts a cell in the notebook that loads it.
    panel.locator(f'{RUN}[data-uid="{uids["Ni"]}"]').click()
    detail = panel.locator(".jp-scandeck-detail")
    expect(detail).to_have_attribute("data-uid", uids["Ni"], timeout=10_000)
    expect(detail.locator('.jp-scandeck-start tr[data-key="sample"]')).to_contain_text("Ni")
    expect(detail.locator('.jp-scandeck-stream[data-stream="primary"] tr[data-key="det"]')).to_be_visible()
    expect(detail.locator('svg.jp-scandeck-plot .jp-scandeck-series[data-series="det"]')).to_have_count(1)
    page.screenshot(path=str(artifacts / "panel_detail_light.png"))

    wait_for_kernel(page, lab, "panel.ipynb")
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    cells.nth(0).locator(".jp-InputArea-editor .cm-content").click()
    detail.locator('[data-action="insert"]').click()
    expect(cells).to_have_count(2, timeout=10_000)
    inserted = cells.nth(1)
    expect(inserted).to_contain_text(uids["Ni"])
    run_cell(page, inserted)
    expect(inserted.locator(".jp-InputPrompt")).to_contain_text(re.compile(r"\[\d+\]"), timeout=30_000)
    assert inserted.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    checker = cells.nth(2)  # Shift+Enter added an empty cell below: check what the inserted one loaded
    checker.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.type("print(run.uid, run.metadata['start']['sample'], len(ds['det']))")
    page.keyboard.press("Shift+Enter")
    expect(checker.locator(".jp-OutputArea-output")).to_contain_text(f"{uids['Ni']} Ni 5", timeout=30_000)

    # The same panel in the dark theme.
    set_theme(lab, "JupyterLab Dark")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
    expect(page.locator(".jp-scandeck-panel")).to_be_visible(timeout=30_000)  # restored on reload
    expect(page.locator(f".jp-scandeck-panel {RUN}")).to_have_count(4, timeout=20_000)
    page.locator(f'.jp-scandeck-panel {RUN}[data-uid="{uids["Cu"]}"]').click()
    expect(page.locator(".jp-scandeck-detail")).to_have_attribute("data-uid", uids["Cu"], timeout=10_000)
    page.screenshot(path=str(artifacts / "panel_detail_dark.png"))
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []


@pytest.mark.timeout(240)
def test_provenance_saved_from_the_panel_and_rerun_on_checked_scans(lab, page, artifacts: Path) -> None:
    """Save provenance of the open notebook, pick its record, check two scans, rerun on them."""
    from playwright.sync_api import expect

    store = Path(lab.env["SCANDECK_DATA"]) / "store"
    uids = record_runs(store)
    params = nbformat.v4.new_code_cell('scan_uid = ""')
    params.metadata["tags"] = ["parameters"]
    write_notebook(
        lab.root / "analysis.ipynb",
        params,
        "import scandeck\ncat = scandeck.open_catalog()\nrun = cat[scan_uid] if scan_uid else cat[-1]\n"
        "print('sample', run.metadata['start']['sample'], 'peak', run.primary.read()['det'].values.max())",
    )

    cells = open_notebook(page, lab, "analysis.ipynb", 2)
    run_cell(page, cells.nth(0))
    run_cell(page, cells.nth(1))
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_contain_text("sample Fe", timeout=30_000)

    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(".jp-scandeck-run")).to_have_count(3, timeout=20_000)
    for sample in ("Ni", "Cu"):  # the scans to rerun on
        panel.locator(f'.jp-scandeck-run[data-uid="{uids[sample]}"] .jp-scandeck-run-check').check()
    expect(panel.locator('.jp-scandeck-run[data-checked="true"]')).to_have_count(2)

    cells.nth(1).locator(".jp-InputArea-editor .cm-content").click()  # the notebook is the current one
    panel.locator('.jp-scandeck-tab[data-tab="provenance"]').click()
    panel.locator('[data-action="save-provenance"]').click()
    saved = panel.locator('.jp-scandeck-save-result[data-ok="true"]')
    expect(saved).to_contain_text("recorded", timeout=60_000)
    record = panel.locator(".jp-scandeck-record")
    expect(record).to_have_count(1, timeout=20_000)
    record_id = record.get_attribute("data-record-id")
    assert record_id and record_id[:8] in saved.inner_text()
    record.click()
    expect(record).to_have_attribute("data-selected", "true")
    expect(record).to_contain_text("analysis")

    panel.locator('[data-action="rerun"]').click()
    job = panel.locator(".jp-scandeck-job").first
    expect(job).to_have_attribute("data-status", "running", timeout=20_000)
    page.screenshot(path=str(artifacts / "panel_rerun_running_light.png"))
    expect(job).to_have_attribute("data-status", "success", timeout=180_000)
    expect(job.locator(".jp-scandeck-event-count")).to_contain_text("2 / 2")
    page.screenshot(path=str(artifacts / "panel_rerun_done_light.png"))

    reruns = [r for r in scandeck_api(lab, "provenance")["records"] if r["kind"] == "rerun"]
    assert sorted(r["target_scan"] for r in reruns) == sorted([uids["Ni"], uids["Cu"]])
    assert all(r["parent"] == record_id and r["status"] == "ok" for r in reruns)
    outputs = sorted((lab.root / "reruns").rglob("*.ipynb"))
    assert len(outputs) == 2
    texts = {p.name: p.read_text() for p in outputs}
    assert any("sample Ni" in t for t in texts.values()) and any("sample Cu" in t for t in texts.values())
