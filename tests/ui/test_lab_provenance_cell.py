"""``%provenance save`` typed in a cell, in real JupyterLab, in real Chromium.

The user runs a notebook's cells (which read a run a real RunEngine recorded)
and then types ``%provenance save`` into a new cell and runs it, without saving
the notebook. scandeck's lab extension saves the notebook when the kernel asks,
so the record is made from the notebook as it is on screen, with no "save the
notebook first" message. The screenshot goes to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_support import open_notebook, run_cell, wait_for_idle, write_notebook
from test_lab_panel import record_runs

pytestmark = pytest.mark.ui


@pytest.mark.timeout(180)
def test_provenance_save_typed_in_a_cell_saves_the_notebook_first(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    from scandeck.provenance.store import open_store

    data = Path(lab.env["SCANDECK_DATA"])
    uids = record_runs(data / "store")
    path = lab.root / "typed.ipynb"
    write_notebook(
        path,
        "%load_ext scandeck",
        "import scandeck\nrun = scandeck.open_catalog().search('sample == \"Cu\"')[-1]\n"
        "print('peak', run.primary.read()['det'].values.max())",
    )

    cells = open_notebook(page, lab, "typed.ipynb", 2, kernel_timeout=90)
    run_cell(page, cells.nth(0))
    run_cell(page, cells.nth(1))  # Shift+Enter on the last cell adds an empty cell below, in edit mode
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_contain_text("peak", timeout=30_000)
    expect(cells).to_have_count(3)
    wait_for_idle(page)
    # Not saved since the cells ran: the file holds no output yet.
    assert not any(c.get("outputs") for c in json.loads(path.read_text())["cells"])

    page.keyboard.type("%provenance save")
    page.keyboard.press("Shift+Enter")
    output = cells.nth(2).locator(".jp-OutputArea-output")
    expect(output).to_contain_text("recorded", timeout=60_000)
    page.screenshot(path=str(artifacts / "lab_provenance_typed_in_cell.png"))
    text = output.inner_text()
    assert "save the notebook first" not in text and "Ctrl+S" not in text, text

    store = open_store(data / "provenance")
    try:
        (record,) = store.list()
        saved = store.notebook(record)
    finally:
        store.close()
    assert record.id[:8] in text or record.id in text
    assert record.kind == "interactive" and record.name == "typed"
    assert [i.uid for i in record.inputs] == [uids["Cu"]]
    # The record holds the notebook as shown: the cell that ran, with its output, and the typed cell.
    assert "peak" in "".join(o.get("text", "") for o in saved.cells[1].get("outputs", []))
    assert saved.cells[2].source == "%provenance save"
    assert page.console_errors == []  # the probe and the save comm opened without errors
