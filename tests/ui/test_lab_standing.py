"""Standing analyses in the Provenance tab, in real JupyterLab and Chromium (issue 16).

A notebook that publishes its event count with ``scandeck.glue`` (and fails on a
7-point scan) is recorded with ``scandeck run``. From the panel the user starts a
standing analysis of it (a query typo first: the error shows with a caret), then a
RunEngine in another process records scans: their reruns appear with their state
and published value. After a browser reload the server still runs it; Stop stops
it. Screenshots go to ``test-artifacts/ui/``; with ``SCANDECK_UPDATE_DOCS=1`` the
README's ``docs/standing-analyses.png`` is replaced too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.ui

PROCS = Path(__file__).resolve().parents[1] / "procs.py"
DOCS = Path(__file__).resolve().parents[2] / "docs"
#: A rerun starts a kernel in a worker process of the server; generous on a loaded machine.
RERUN_MS = 180_000


def produce(lab, *specs: str) -> list[str]:
    """Scans ``sample:points`` recorded by a RunEngine in another process, into the server's default store."""
    out = subprocess.run(
        [sys.executable, str(PROCS), "scans", str(Path(lab.env["SCANDECK_DATA"]) / "store"), *specs],
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


def record_notebook(lab, scan: str) -> str:
    """``scandeck run`` of the counting notebook on ``scan``; the record's id."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import scandeck\nds = scandeck.open_catalog(catalog)[scan_uid].primary.read()\n"
            'scandeck.glue("events", len(ds.time))\n'
            'assert len(ds.time) != 7, "seven events"'
        ),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = lab.root / "count.ipynb"
    nbformat.write(nb, str(path))
    subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "run", str(path), "-p", "scan_uid", scan, "--name", "count"],
        env=lab.env,
        cwd=lab.root,
        capture_output=True,
        timeout=180,
        check=True,
    )
    from scandeck.provenance.store import open_store

    store = open_store(Path(lab.env["SCANDECK_DATA"]) / "provenance")
    try:
        (record,) = store.list()
        return record.id
    finally:
        store.close()


def open_provenance(page, lab):
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab?token={lab.token}")
    icon = page.locator('.jp-SideBar [data-id="scandeck-panel"]')
    expect(icon).to_be_visible(timeout=30_000)
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=30_000)  # the layout is restored
    if icon.get_attribute("aria-selected") != "true":  # a reload restores the open panel
        icon.click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(".jp-scandeck-tab[data-tab]").first).to_be_visible(timeout=30_000)
    tab = panel.locator('.jp-scandeck-tab[data-tab="provenance"]')
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    return panel


@pytest.mark.timeout(420)
def test_a_standing_analysis_started_from_the_panel_reruns_new_scans(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    (first,) = produce(lab, "Ag:5")
    record_id = record_notebook(lab, first)

    panel = open_provenance(page, lab)
    standing = panel.locator(".jp-scandeck-standing")
    expect(standing.locator(".jp-scandeck-empty")).to_contain_text("No standing analyses", timeout=20_000)
    start = standing.locator('[data-action="start-standing"]')
    expect(start).to_be_disabled()  # no record picked yet
    panel.locator(f'.jp-scandeck-record[data-record-id="{record_id}"]').click()
    expect(start).to_be_enabled()

    # A typo: the server's message, with a caret under the column, and nothing started.
    query = standing.locator(".jp-scandeck-standing-query-input")
    query.fill("sample == ")
    start.click()
    error = standing.locator(".jp-scandeck-standing-error")
    expect(error).to_contain_text("column", timeout=10_000)
    expect(error.locator(".jp-scandeck-search-error-caret")).to_contain_text("^")
    expect(standing.locator(".jp-scandeck-standing-item")).to_have_count(0)

    query.fill('sample == "Ni"')
    start.click()
    item = standing.locator(".jp-scandeck-standing-item")
    expect(item).to_have_count(1, timeout=20_000)
    expect(error).to_have_count(0)
    expect(item).to_have_attribute("data-state", "running", timeout=30_000)
    expect(item).to_have_attribute("data-record-id", record_id)
    expect(item.locator(".jp-scandeck-standing-query")).to_contain_text('sample == "Ni"')
    expect(item).to_contain_text(record_id[:8])

    # Scans recorded in another process: the matching ones are rerun, each shown with its state.
    ni5, cu5, ni7 = produce(lab, "Ni:5", "Cu:5", "Ni:7")
    ok = item.locator(f'.jp-scandeck-standing-run[data-uid="{ni5}"]')
    expect(ok).to_have_attribute("data-state", "done", timeout=RERUN_MS)
    expect(ok.locator(".jp-scandeck-status-badge")).to_have_text("ok")
    expect(ok.locator(".jp-scandeck-standing-value")).to_have_text("events = 5")
    failed = item.locator(f'.jp-scandeck-standing-run[data-uid="{ni7}"]')
    expect(failed).to_have_attribute("data-state", "failed", timeout=RERUN_MS)
    expect(failed.locator(".jp-scandeck-status-badge")).to_have_text("failed")
    expect(item.locator('[data-count="done"]')).to_have_text("1 done")
    expect(item.locator('[data-count="failed"]')).to_have_text("1 failed")
    expect(item.locator(f'.jp-scandeck-standing-run[data-uid="{cu5}"]')).to_have_count(0)
    # Finished reruns are new records: the list below shows them without a refresh.
    expect(panel.locator(".jp-scandeck-record")).to_have_count(3, timeout=20_000)
    page.screenshot(path=str(artifacts / "standing_running.png"))
    panel.screenshot(path=str(artifacts / "standing_panel.png"))
    if os.environ.get("SCANDECK_UPDATE_DOCS"):  # a test run changes no tracked file unless asked
        shutil.copy(artifacts / "standing_panel.png", DOCS / "standing-analyses.png")

    # The server runs it, not the page: after a reload it is still running, and reruns go on.
    panel = open_provenance(page, lab)
    item = panel.locator(".jp-scandeck-standing-item")
    expect(item).to_have_attribute("data-state", "running", timeout=30_000)
    expect(item.locator(f'.jp-scandeck-standing-run[data-uid="{ni5}"]')).to_have_attribute("data-state", "done")
    (again,) = produce(lab, "Ni:3")
    expect(
        item.locator(f'.jp-scandeck-standing-run[data-uid="{again}"] .jp-scandeck-standing-value')
    ).to_have_text("events = 3", timeout=RERUN_MS)

    item.locator('[data-action="stop-standing"]').click()
    expect(item).to_have_attribute("data-state", "stopped", timeout=60_000)
    expect(item.locator('[data-action="stop-standing"]')).to_have_count(0)
    expect(item.locator('[data-count="done"]')).to_have_text("2 done")
    page.screenshot(path=str(artifacts / "standing_stopped.png"))
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []
    assert page.blocked_requests == []
