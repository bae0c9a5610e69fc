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

import nbformat
import pytest
from test_lab_bind import run_cell, wait_for_kernel
from test_lab_panel import record_runs

pytestmark = pytest.mark.ui


@pytest.mark.timeout(180)
def test_provenance_save_typed_in_a_cell_saves_the_notebook_first(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    from scandeck.provenance.store import open_store

    data = Path(lab.env["SCANDECK_DATA"])
    uids = record_runs(data / "store")
    path = lab.root / "typed.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext scandeck"),
        nbformat.v4.new_code_cell(
            "import scandeck\nrun = scandeck.open_catalog().search('sample == \"Cu\"')[-1]\n"
            "print('peak', run.primary.read()['det'].values.max())"
        ),
    ]
    nbformat.write(nb, path)

    page.goto(lab.page_url("typed.ipynb"))
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells).to_have_count(2, timeout=30_000)
    # Waiting in the browser first keeps its requests flowing (the page fixture routes them through Python).
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=90_000)
    wait_for_kernel(page, lab, "typed.ipynb", timeout=90)
    run_cell(page, cells.nth(0))
    run_cell(page, cells.nth(1))  # Shift+Enter on the last cell adds an empty cell below, in edit mode
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_contain_text("peak", timeout=30_000)
    expect(cells).to_have_count(3)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=20_000)
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
