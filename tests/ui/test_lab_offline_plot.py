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

from pathlib import Path

import pytest
from notebook_support import (
    half_way_producer,
    number_from_store,
    open_notebook,
    run_cell,
    shown,
    wait_for_idle,
    wait_until_shown,
    write_notebook,
)

pytestmark = pytest.mark.ui

POINTS = 40
MISSING = "library is missing"  # Panel: "Unable to run Panel code because Bokeh or Panel library is missing"
# A real RunEngine scans a simulated motor (see notebook_support.HALF_WAY_PRODUCER).
IMPORTS = "from ophyd.sim import SynAxis, SynGauss"
SETUP = 'motor = SynAxis(name="motor")\ndet = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)'
PLAN = 'bp.scan([det], motor, -3, 3, points, per_step=per_step), sample="Ni"'
# Events of the newest run, read from the store in another process (the store the kernel reads).
WRITTEN = "import scandeck; print(len(scandeck.open_catalog()[-1].primary.read()['det']))"


@pytest.mark.timeout(180)
def test_live_plot_draws_offline_and_updates(lab, page, artifacts: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_notebook(
        lab.root / "plot.ipynb",
        "%load_ext scandeck\n%catalog",
        'import holoviews as hv\nimport scandeck.plot\n\nhv.extension("bokeh")\n'
        'scandeck.plot.line(x="motor", y="det", width=600, height=300)',
    )
    cells = open_notebook(page, lab, "plot.ipynb", 2)
    outputs = [cells.nth(i).locator(".jp-Cell-outputArea") for i in range(2)]

    run_cell(page, cells.nth(0))
    expect(outputs[0]).to_contain_text("Catalog", timeout=20_000)
    run_cell(page, cells.nth(1))
    canvas = outputs[1].locator("canvas").first  # Bokeh's, inside its shadow roots
    expect(canvas).to_be_visible(timeout=30_000)
    plot = outputs[1].locator(".jp-OutputArea-output").last
    wait_for_idle(page)
    wait_until_shown(page, "det", 0)  # the plot is there, empty: no run yet
    empty = plot.screenshot(path=str(artifacts / "lab_offline_plot_empty.png"))

    go = tmp_path / "go"
    with half_way_producer(PLAN, POINTS, go, lab.env, imports=IMPORTS, setup=SETUP) as producer:
        assert producer.stdout.readline().strip() == "half"  # paused at half way: the store holds half
        half = number_from_store(lab.env, WRITTEN)
        assert 0 < half < POINTS
        wait_until_shown(page, "det", half)
        midway = plot.screenshot(path=str(artifacts / "lab_offline_plot_half.png"))
        go.touch()
        assert producer.stdout.readline().strip() == "done"
        assert producer.wait(60) == 0

    wait_until_shown(page, "det", number_from_store(lab.env, WRITTEN))
    assert shown(page, "det") == POINTS
    final = plot.screenshot(path=str(artifacts / "lab_offline_plot_final.png"))
    page.screenshot(path=str(artifacts / "lab_offline_plot_page.png"))

    # The canvas drew the points as they came: empty axes, half the curve, all of it.
    assert empty != midway != final != empty
    assert MISSING not in page.locator(".jp-NotebookPanel").inner_text()
    assert page.console_errors == []  # nothing failed to load or run in the front end
    assert page.blocked_requests == [], page.blocked_requests  # nothing needed the internet
