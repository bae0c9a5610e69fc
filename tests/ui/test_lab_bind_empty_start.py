"""The shipped notebook's first bound cell over the empty start of a run, in real JupyterLab.

bluesky sends a stream's descriptor with its first event, so a run is "running"
with no columns for as long as its first point takes (a motor move, a long
count). The notebook's own cells (``notebooks/live_analysis.ipynb``, up to its
first ``%%bind`` cell, unchanged) are bound while a real RunEngine in another
process opens a run, holds it empty until the test says go, then emits its
events. Nothing on the page may ever show a traceback; the bound cell says what
it waits for, then shows the summary. The notebook's ``%scans`` cell, run while
the run is open, updates in place to the run's end. Screenshots go to
``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from notebook_support import open_notebook, producer, run_cell, wait_for_idle

pytestmark = pytest.mark.ui

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "live_analysis.ipynb"
POINTS = 5
# A RunEngine that opens a run, says so, and takes its first point only when told (stdin).
PRODUCER = f"""
import sys
import bluesky.plan_stubs as bps
from bluesky import RunEngine
from ophyd.sim import det, motor
import scandeck

RE = RunEngine({{}}, context_managers=[])
RE.subscribe(scandeck.open_catalog().writer())

def plan():
    md = {{"plan_name": "slow_first_point", "num_points": {POINTS}, "motors": ["motor"], "detectors": ["det"]}}
    yield from bps.open_run(md=md)
    print("opened", flush=True)
    sys.stdin.readline()  # the empty start of the run lasts until the test says go
    for i in range({POINTS}):
        yield from bps.mv(motor, i * 0.5)
        yield from bps.trigger_and_read([motor, det])
        yield from bps.sleep(0.2)
    yield from bps.close_run()

RE(plan(), sample="Cu")
"""
# Record every distinct text of the notebook in window.__texts, on every DOM change.
WATCH = """(notebook) => {
    window.__texts = [];
    const record = () => {
        const text = notebook.innerText;
        if (window.__texts[window.__texts.length - 1] !== text) window.__texts.push(text);
    };
    new MutationObserver(record).observe(notebook, {subtree: true, childList: true, characterData: true});
    record();
}"""
TRACEBACK = re.compile(r"Traceback|Error:|ValueError")


def shipped_cells_up_to_first_bind(dest: Path) -> list[tuple[str, str]]:
    """The shipped notebook cut after its first ``%%bind`` cell (cells unchanged): (type, source)s."""
    nb = json.loads(NOTEBOOK.read_text())
    cells = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    first_bind = next(i for i, (_, s) in enumerate(cells) if s.startswith("%%bind"))
    nb["cells"] = nb["cells"][: first_bind + 1]
    dest.write_text(json.dumps(nb, indent=1))
    return cells[: first_bind + 1]


@pytest.mark.timeout(150)
def test_first_bound_cell_over_the_empty_start_of_a_run(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    shipped = shipped_cells_up_to_first_bind(lab.root / "empty_start.ipynb")
    sources = [source for _, source in shipped]
    catalog = next(i for i, s in enumerate(sources) if "%load_ext scandeck" in s)
    scans = next(i for i, s in enumerate(sources) if s.startswith("%scans"))
    bind = len(sources) - 1
    assert "describe()" in sources[bind]  # the summary that failed on a run without columns

    cells = open_notebook(page, lab, "empty_start.ipynb", len(sources), kernel_timeout=60)
    page.evaluate(WATCH, page.locator(".jp-NotebookPanel .jp-Notebook").element_handle())
    out = [cells.nth(i).locator(".jp-Cell-outputArea") for i in range(len(sources))]

    for i, (kind, _) in enumerate(shipped[: catalog + 1]):
        if kind == "code":  # the parameters, then %load_ext scandeck and %catalog
            run_cell(page, cells.nth(i))
    expect(out[catalog]).to_contain_text("Catalog", timeout=20_000)
    run_cell(page, cells.nth(bind))
    expect(out[bind]).to_contain_text("waiting for a run", timeout=20_000)

    # The kernel's SCANDECK_DATA: the notebook's default store.
    with producer([sys.executable, "-c", PRODUCER], env=lab.env, stdin=True) as proc:
        assert proc.stdout.readline().strip() == "opened"
        # The run is open and has no event (so no descriptor, no columns): the cell waits, saying so.
        expect(out[bind]).to_contain_text("running · 0 events", timeout=20_000)
        expect(out[bind]).to_contain_text("waiting for the first primary event")
        run_cell(page, cells.nth(scans))  # the notebook's %scans, while the run is open
        expect(out[scans].locator(".sd-badge.sd-running")).to_have_count(1, timeout=20_000)
        expect(out[scans]).to_contain_text("live · updated")
        page.screenshot(path=str(artifacts / "lab_bind_empty_start.png"))
        cells.nth(bind).screenshot(path=str(artifacts / "lab_bind_empty_start_cell.png"))

        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0

    expect(out[bind]).to_contain_text(f"{POINTS} events · success", timeout=30_000)
    summary = out[bind].locator("table.dataframe")
    expect(summary).to_have_count(1)
    for name in ("mean", "min", "max", "det", "motor"):
        expect(summary).to_contain_text(name)
    # The %scans output was updated in place to the run's end, and says when it was taken.
    expect(out[scans].locator(".sd-badge.sd-success")).to_have_count(1, timeout=20_000)
    expect(out[scans].locator(".sd-footer")).to_contain_text(re.compile(r"as of \d{4}-\d\d-\d\d"))
    wait_for_idle(page)
    page.screenshot(path=str(artifacts / "lab_bind_empty_start_final.png"))
    cells.nth(bind).screenshot(path=str(artifacts / "lab_bind_empty_start_cell_final.png"))

    texts = page.evaluate("window.__texts")
    assert any("waiting for the first primary event" in t for t in texts)
    shown_errors = [m.group(0) for t in texts for m in [TRACEBACK.search(t)] if m]
    assert shown_errors == [], shown_errors  # no traceback, ever, in any cell
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert page.blocked_requests == []
