"""A live ``scandeck.plot.line`` draws in real JupyterLab with no internet, as a RunEngine writes.

The page's context aborts every request that leaves 127.0.0.1 (``tests/ui/conftest.py``),
as on an offline beamline network. The notebook does what the shipped
``notebooks/live_analysis.ipynb`` does (``%load_ext scandeck``, ``hv.extension("bokeh")``,
``scandeck.plot.line(...)``), with no ``inline=True``: BokehJS and Panel's JS must come
from the installed packages. A producer process scans a simulated motor with a real
bluesky RunEngine (ophyd.sim) into the default store, pausing half way until the test
has looked at the plot. The plot must draw, hold the points written so far, change as
the rest arrive, and never show Panel's "library is missing" error. Screenshots go to
``test-artifacts/ui/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_lab_bind import run_cell, wait_for_kernel

pytestmark = pytest.mark.ui

POINTS = 40
MISSING = "library is missing"  # Panel: "Unable to run Panel code because Bokeh or Panel library is missing"

# A real RunEngine scans a simulated motor; at half way it says "half" and waits for GO to exist.
PRODUCER = """
import sys
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import SynAxis, SynGauss

import scandeck

points, go = int(sys.argv[1]), Path(sys.argv[2])
motor = SynAxis(name="motor")
det = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)
RE = RunEngine({}, context_managers=[])
RE.subscribe(scandeck.open_catalog().writer())
steps = []


def per_step(detectors, step, pos_cache, take_reading=None):
    if len(steps) == points // 2:
        print("half", flush=True)
        while not go.exists():
            yield from bps.sleep(0.05)
    steps.append(step)
    yield from bps.one_nd_step(detectors, step, pos_cache)


RE(bp.scan([det], motor, -3, 3, points, per_step=per_step), sample="Ni")
print("done", flush=True)
"""

# The points the page's Bokeh documents hold in their data sources' "det" columns (the largest).
SHOWN_POINTS = """() => {
    let most = -1;
    for (const doc of (window.Bokeh?.documents ?? [])) {
        for (const model of doc.all_models) {
            const data = model.data;
            if (data === undefined || data === null) continue;
            const column = data instanceof Map ? data.get("det") : data["det"];
            if (column !== undefined) most = Math.max(most, column.length);
        }
    }
    return most;
}"""


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext scandeck\n%catalog"),
        nbformat.v4.new_code_cell(
            "import holoviews as hv\nimport scandeck.plot\n\n"
            'hv.extension("bokeh")\n'
            'scandeck.plot.line(x="motor", y="det", width=600, height=300)'
        ),
    ]
    nbformat.write(nb, path)


def shown_points(page) -> int:
    return page.evaluate(SHOWN_POINTS)


def wait_for_points(page, count: int, timeout: float = 30) -> None:
    page.wait_for_function(f"({SHOWN_POINTS})() === {count}", timeout=timeout * 1000)


def written_points(store_env: dict[str, str]) -> int:
    """Events of the newest run, read from the store in another process (the store the kernel reads)."""
    code = "import scandeck; print(len(scandeck.open_catalog()[-1].primary.read()['det']))"
    proc = subprocess.run([sys.executable, "-c", code], env=store_env, capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.mark.timeout(180)
def test_live_plot_draws_offline_and_updates(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "plot.ipynb")
    page.goto(lab.page_url("plot.ipynb"))
    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    expect(cells).to_have_count(2, timeout=30_000)
    wait_for_kernel(page, lab, "plot.ipynb")
    outputs = [cells.nth(i).locator(".jp-Cell-outputArea") for i in range(2)]

    run_cell(page, cells.nth(0))
    expect(outputs[0]).to_contain_text("Catalog", timeout=20_000)
    run_cell(page, cells.nth(1))
    canvas = outputs[1].locator("canvas").first  # Bokeh's, inside its shadow roots
    expect(canvas).to_be_visible(timeout=30_000)
    plot = outputs[1].locator(".jp-OutputArea-output").last
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=20_000)
    wait_for_points(page, 0)  # the plot is there, empty: no run yet
    empty = plot.screenshot(path=str(artifacts / "lab_offline_plot_empty.png"))

    go = tmp_path / "go"
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(POINTS), str(go)], env=lab.env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert producer.stdout.readline().strip() == "half"  # paused at half way: the store holds half
        half = written_points(lab.env)
        assert 0 < half < POINTS
        wait_for_points(page, half)
        midway = plot.screenshot(path=str(artifacts / "lab_offline_plot_half.png"))
        go.touch()
        assert producer.stdout.readline().strip() == "done"
        assert producer.wait(60) == 0
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(10)
        producer.stdout.close()

    wait_for_points(page, written_points(lab.env))
    assert shown_points(page) == POINTS
    final = plot.screenshot(path=str(artifacts / "lab_offline_plot_final.png"))
    page.screenshot(path=str(artifacts / "lab_offline_plot_page.png"))

    # The canvas drew the points as they came: empty axes, half the curve, all of it.
    assert empty != midway != final != empty
    assert MISSING not in page.locator(".jp-NotebookPanel").inner_text()
    assert page.console_errors == []  # nothing failed to load or run in the front end
    assert page.blocked_requests == [], page.blocked_requests  # nothing needed the internet
