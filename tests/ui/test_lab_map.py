"""``scandeck.plot.map`` in a real notebook, in real JupyterLab and Chromium: a heatmap filling live.

A producer process runs a real bluesky ``grid_scan`` (ophyd.sim ``det4`` over
``motor1`` and ``motor2``) into the default store, pausing half way until the test
has looked. The notebook's map must draw with no internet (the page's context
aborts every request leaving 127.0.0.1), hold exactly the cells measured so far,
then all of them. Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_support import (
    half_way_producer,
    number_from_store,
    open_notebook,
    run_cell,
    wait_until_shown,
    write_notebook,
)

pytestmark = pytest.mark.ui

SHAPE = (11, 15)
PLAN = (
    f"bp.grid_scan([det4], motor1, -2, 2, {SHAPE[0]}, motor2, -3, 3, {SHAPE[1]}, True, per_step=per_step),"
    ' sample="Au mesh"'
)
# Cells measured in the newest run, from to_grid() in another process.
MEASURED = (
    "import numpy, scandeck; g = scandeck.open_catalog()[-1].primary.to_grid('det4')['det4'].values\n"
    "print(int(numpy.isfinite(g).sum()))"
)


@pytest.mark.timeout(180)
def test_map_fills_a_heatmap_as_a_grid_scan_runs(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_notebook(
        lab.root / "map.ipynb",
        'import holoviews as hv\nimport scandeck.plot\n\nhv.extension("bokeh")\n'
        'scandeck.plot.map("det4", width=520, height=380)',
    )
    cell = open_notebook(page, lab, "map.ipynb", 1).first
    run_cell(page, cell)
    output = cell.locator(".jp-Cell-outputArea")
    expect(output.locator("canvas").first).to_be_visible(timeout=30_000)
    plot = output.locator(".jp-OutputArea-output").last

    go = tmp_path / "go"
    imports = "from ophyd.sim import det4, motor1, motor2"
    with half_way_producer(PLAN, SHAPE[0] * SHAPE[1], go, lab.env, imports=imports) as producer:
        assert producer.stdout.readline().strip() == "half"
        half = number_from_store(lab.env, MEASURED)
        assert 0 < half < SHAPE[0] * SHAPE[1]
        wait_until_shown(page, "det4", half, finite=True)
        midway = plot.screenshot(path=str(artifacts / "lab_map_half.png"))
        go.touch()
        assert producer.stdout.readline().strip() == "done"
        assert producer.wait(60) == 0

    wait_until_shown(page, "det4", SHAPE[0] * SHAPE[1], finite=True)
    final = plot.screenshot(path=str(artifacts / "lab_map_final.png"))
    page.screenshot(path=str(artifacts / "lab_map_page.png"))
    assert midway != final
    assert "library is missing" not in page.locator(".jp-NotebookPanel").inner_text()
    assert page.blocked_requests == [], page.blocked_requests  # nothing needed the internet
