"""``scandeck.plot.map`` in a real notebook, in real JupyterLab and Chromium: a heatmap filling live.

A producer process runs a real bluesky ``grid_scan`` (ophyd.sim ``det4`` over
``motor1`` and ``motor2``) into the default store, pausing half way until the test
has looked. The notebook's map must draw with no internet (the page's context
aborts every request leaving 127.0.0.1), hold exactly the cells measured so far,
then all of them. Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_lab_bind import run_cell, wait_for_kernel

pytestmark = pytest.mark.ui

SHAPE = (11, 15)

PRODUCER = """
import sys
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import det4, motor1, motor2

import scandeck

ny, nx, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
RE = RunEngine({}, context_managers=[])
RE.subscribe(scandeck.open_catalog().writer())
steps = []


def per_step(detectors, step, pos_cache, take_reading=None):
    if len(steps) == ny * nx // 2:
        print("half", flush=True)
        while not go.exists():
            yield from bps.sleep(0.05)
    steps.append(step)
    yield from bps.one_nd_step(detectors, step, pos_cache)


RE(bp.grid_scan([det4], motor1, -2, 2, ny, motor2, -3, 3, nx, True, per_step=per_step), sample="Au mesh")
print("done", flush=True)
"""

# The most finite "det4" values any of the page's Bokeh data sources holds (the mesh's cells).
SHOWN_CELLS = """() => {
    let most = -1;
    for (const doc of (window.Bokeh?.documents ?? [])) {
        for (const model of doc.all_models) {
            const data = model.data;
            if (data === undefined || data === null) continue;
            const column = data instanceof Map ? data.get("det4") : data["det4"];
            if (column !== undefined) most = Math.max(most, Array.from(column).filter(Number.isFinite).length);
        }
    }
    return most;
}"""


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            'import holoviews as hv\nimport scandeck.plot\n\nhv.extension("bokeh")\n'
            'scandeck.plot.map("det4", width=520, height=380)'
        )
    ]
    nbformat.write(nb, path)


def measured(env: dict[str, str]) -> int:
    """Cells measured in the newest run, from to_grid() in another process."""
    code = (
        "import numpy, scandeck; g = scandeck.open_catalog()[-1].primary.to_grid('det4')['det4'].values\n"
        "print(int(numpy.isfinite(g).sum()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.mark.timeout(180)
def test_map_fills_a_heatmap_as_a_grid_scan_runs(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "map.ipynb")
    page.goto(lab.page_url("map.ipynb"))
    cell = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first
    expect(cell).to_be_visible(timeout=30_000)
    wait_for_kernel(page, lab, "map.ipynb")
    run_cell(page, cell)
    output = cell.locator(".jp-Cell-outputArea")
    expect(output.locator("canvas").first).to_be_visible(timeout=30_000)
    plot = output.locator(".jp-OutputArea-output").last

    go = tmp_path / "go"
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(SHAPE[0]), str(SHAPE[1]), str(go)],
        env=lab.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert producer.stdout.readline().strip() == "half"
        half = measured(lab.env)
        assert 0 < half < SHAPE[0] * SHAPE[1]
        page.wait_for_function(f"({SHOWN_CELLS})() === {half}", timeout=30_000)
        midway = plot.screenshot(path=str(artifacts / "lab_map_half.png"))
        go.touch()
        assert producer.stdout.readline().strip() == "done"
        assert producer.wait(60) == 0
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(10)
        producer.stdout.close()

    page.wait_for_function(f"({SHOWN_CELLS})() === {SHAPE[0] * SHAPE[1]}", timeout=30_000)
    final = plot.screenshot(path=str(artifacts / "lab_map_final.png"))
    page.screenshot(path=str(artifacts / "lab_map_page.png"))
    assert midway != final
    assert "library is missing" not in page.locator(".jp-NotebookPanel").inner_text()
    assert page.blocked_requests == [], page.blocked_requests  # nothing needed the internet
