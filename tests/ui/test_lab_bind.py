"""``%%bind`` in real JupyterLab, in real Chromium, fed by a real RunEngine process.

What a user sees: a notebook whose second cell is bound; a producer process
records 200 events while the user runs a third, unrelated cell. The bound
cell's output area (its Output widget) must show the re-runs as they come
and end on the final state, and nothing of it may land under the cell that
happened to be running. Screenshots of the live run and of the end go to
``test-artifacts/ui/``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from notebook_support import open_notebook, producer, run_cell, wait_for_idle, write_notebook

pytestmark = pytest.mark.ui

PROCS = str(Path(__file__).resolve().parents[1] / "procs.py")
EVENTS = 200
LIVE = re.compile(r"rows (\d+) running")
FINAL = f"rows {EVENTS} success"
PROGRESS = ".jupyter-widgets:is(.widget-hprogress, .widget-progress)"
# Record each distinct text of the given elements in window.__shown, on every DOM change.
WATCH = """([bound, other]) => {
    window.__shown = {bound: [], other: []};
    for (const [key, el] of [["bound", bound], ["other", other]]) {
        const seen = window.__shown[key];
        const record = () => {
            const text = el.textContent;
            if (seen[seen.length - 1] !== text) seen.push(text);
        };
        new MutationObserver(record).observe(el, {subtree: true, childList: true, characterData: true});
        record();
    }
}"""


@pytest.mark.timeout(120)
def test_bound_cell_updates_in_place_in_jupyterlab(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    import scandeck

    store = lab.root / "store"
    scandeck.open_catalog(store).close()  # exists before the kernel selects it
    write_notebook(
        lab.root / "bind.ipynb",
        f"%load_ext scandeck\n%catalog {store}",
        '%%bind --every 0.1\nprint("rows", len(df), run.status)',
        'import time; time.sleep(1); print("other cell")',
    )

    cells = open_notebook(page, lab, "bind.ipynb", 3)
    outputs = [cells.nth(i).locator(".jp-Cell-outputArea") for i in range(3)]

    run_cell(page, cells.nth(0))
    expect(outputs[0]).to_contain_text("Catalog", timeout=20_000)
    run_cell(page, cells.nth(1))
    expect(outputs[1]).to_contain_text("bind #1 · waiting for a run", timeout=20_000)

    bound = outputs[1].locator(".widget-output")  # the binding's Output widget
    expect(bound).to_have_count(1)
    # Every text the bound Output widget and cell 3's output area show, as they change:
    # states that last a few milliseconds are seen too, and all of them are checked.
    page.evaluate(WATCH, [bound.element_handle(), outputs[2].element_handle()])

    with producer([sys.executable, PROCS, "write", str(store), str(EVENTS), "0.01"]) as proc:
        assert proc.stdout.readline().strip() == "writing"
        run_cell(page, cells.nth(2))  # unrelated work while the run is recorded
        # Live: a re-run of the bound cell on part of the run, shown while it is recorded.
        page.wait_for_function(f"window.__shown.bound.some(t => /{LIVE.pattern}/.test(t))", timeout=30_000)
        page.screenshot(path=str(artifacts / "lab_bind_live.png"))
        assert proc.wait(60) == 0

    expect(bound).to_contain_text(FINAL, timeout=30_000)
    expect(outputs[2]).to_contain_text("other cell", timeout=20_000)
    wait_for_idle(page)
    page.screenshot(path=str(artifacts / "lab_bind_final.png"))
    shown = page.evaluate("window.__shown")

    # The bound cell's area showed one state at a time, replaced in place, growing to the final one.
    states = [t.strip() for t in shown["bound"] if t.strip()]
    assert all(t.count("rows") == 1 for t in states), states
    counts = [int(t.split()[1]) for t in states]
    assert counts == sorted(counts), states
    live = [int(m.group(1)) for t in states if (m := LIVE.fullmatch(t))]
    # (the last events can show before the stop document does: "rows 200 running")
    assert live and 0 < min(live) < EVENTS, states
    assert states[-1] == FINAL == bound.inner_text().strip()
    assert FINAL in outputs[1].inner_text()
    # The cell that ran meanwhile never showed anything of the binding, and ends with its own output.
    assert not any("rows" in t for t in shown["other"]), shown["other"]
    assert outputs[2].inner_text().strip() == "other cell"
    assert outputs[2].locator(".jupyter-widgets").count() == 0

    # The progress bar under the bound cell: visible, full, green, labelled.
    # (ipywidgets 8 classes a horizontal IntProgress widget-hprogress; 7 had widget-progress.)
    progress = outputs[1].locator(PROGRESS)
    expect(progress).to_have_count(1)
    expect(progress).to_be_visible()
    bar = progress.locator(".progress-bar")
    expect(bar).to_have_class(re.compile(r"\bprogress-bar-success\b"))
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(outputs[1]).to_contain_text(f"{EVENTS}/{EVENTS} events · success")
    assert outputs[0].locator(PROGRESS).count() == 0
    assert outputs[2].locator(PROGRESS).count() == 0
    assert page.console_errors == []  # the widgets rendered without errors in the front end
