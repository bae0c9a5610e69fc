"""Mapping scans in the Scans panel, in real JupyterLab and Chromium: a heatmap with a colour bar.

Runs come from a real RunEngine on ophyd.sim (``det4``, a 2-D Gaussian over
``motor1`` and ``motor2``): a finished grid scan, one interrupted part way (a
partial grid), and a spiral (no grid: points coloured by value). What the panel
draws is checked against what the run holds (``to_grid()``, ``read()``), and
screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from plan_steps import failing_after, held_after
from test_lab_panel import set_theme

pytestmark = pytest.mark.ui

RUN = ".jp-scandeck-run"


def record_maps(store: Path) -> dict[str, str]:
    """A grid scan, an interrupted grid scan and a spiral: name -> uid."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det4, motor1, motor2

    import scandeck

    cat = scandeck.open_catalog(store)
    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())
    (grid,) = RE(bp.grid_scan([det4], motor1, -2, 2, 17, motor2, -3, 3, 25, True), sample="Au mesh")
    with pytest.raises(RuntimeError):
        RE(bp.grid_scan([det4], motor1, -2, 2, 6, motor2, -2, 2, 8, True, per_step=failing_after(30)))
    partial = cat[-1].uid
    (spiral,) = RE(bp.spiral([det4], motor1, motor2, 0, 0, 3, 3, 0.3, 6))
    cat.close()
    return {"grid": grid, "partial": partial, "spiral": spiral}


def select(page, uid: str):
    """Select the run in the panel; its detail view."""
    from playwright.sync_api import expect

    page.locator(f'.jp-scandeck-panel {RUN}[data-uid="{uid}"]').click()
    detail = page.locator(".jp-scandeck-detail")
    expect(detail).to_have_attribute("data-uid", uid, timeout=10_000)
    return detail


def fills(locator) -> list[str]:
    return locator.evaluate_all("els => els.map(e => e.getAttribute('fill'))")


@pytest.mark.timeout(180)
def test_grid_scans_show_a_heatmap_with_a_colour_bar(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    import scandeck

    store = Path(lab.env["SCANDECK_DATA"]) / "store"  # the server's default catalog
    uids = record_maps(store)
    cat = scandeck.open_catalog(store)
    grid = cat[uids["grid"]].primary.to_grid("det4")["det4"].values
    partial = cat[uids["partial"]].primary.to_grid("det4")["det4"].values
    spiral_events = cat[uids["spiral"]].primary.read().sizes["time"]
    cat.close()

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    expect(page.locator(f".jp-scandeck-panel {RUN}")).to_have_count(3, timeout=30_000)

    # The finished grid: every cell drawn, coloured from the lowest value to the highest.
    detail = select(page, uids["grid"])
    heatmap = detail.locator('.jp-scandeck-preview[data-kind="grid"] svg.jp-scandeck-map')
    expect(heatmap).to_be_visible(timeout=10_000)
    cells = heatmap.locator(".jp-scandeck-cell")
    expect(cells).to_have_count(grid.size)
    colours = set(fills(cells))
    assert {"#440154", "#fde725"} <= colours  # viridis' two ends: the lowest and the highest cell
    assert len(colours) > 20  # a Gaussian, not a few flat blocks
    bar = heatmap.locator(".jp-scandeck-colorbar")
    expect(bar).to_be_visible()
    assert float(bar.get_attribute("data-min")) == pytest.approx(grid.min())
    assert float(bar.get_attribute("data-max")) == pytest.approx(grid.max())
    expect(bar.locator("text.jp-scandeck-plot-label")).to_have_text("det4")
    assert bar.locator("text:not(.jp-scandeck-plot-label)").count() >= 2  # tick labels on the bar
    axis_labels = heatmap.locator(".jp-scandeck-plot-axis text.jp-scandeck-plot-label")
    expect(axis_labels).to_have_text(["motor2", "motor1"])  # the fast motor across, the slow one up
    box = heatmap.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 120  # the panel's width, not a stamp
    page.screenshot(path=str(artifacts / "panel_grid_heatmap_light.png"))
    detail.locator(".jp-scandeck-preview").screenshot(path=str(artifacts / "panel_grid_heatmap_plot.png"))
    page.locator(".jp-scandeck-panel").screenshot(path=str(artifacts / "panel_grid_heatmap_panel.png"))

    # The interrupted grid: only its measured cells, the rest left as the grey background.
    detail = select(page, uids["partial"])
    heatmap = detail.locator('.jp-scandeck-preview[data-kind="grid"] svg.jp-scandeck-map')
    expect(heatmap.locator(".jp-scandeck-cell")).to_have_count(int(np.count_nonzero(~np.isnan(partial))))
    expect(heatmap.locator(".jp-scandeck-map-unmeasured")).to_have_count(1)
    page.screenshot(path=str(artifacts / "panel_grid_partial_light.png"))
    # The dark theme: the same colours for the data, the theme's for the grey and the text.
    set_theme(lab, "JupyterLab Dark")
    # A fresh workspace (reset): restoring the saved one races the timer that saves it, and a click
    # on the Scans tab then either opens the panel or closes it again.
    page.goto(f"{lab.url}/lab?token={lab.token}&reset")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
    expect(page.locator(".jp-FileBrowser")).to_be_visible(timeout=30_000)  # the default layout is up
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    expect(page.locator(f".jp-scandeck-panel {RUN}")).to_have_count(3, timeout=30_000)
    detail = select(page, uids["partial"])
    heatmap = detail.locator('.jp-scandeck-preview[data-kind="grid"] svg.jp-scandeck-map')
    expect(heatmap.locator(".jp-scandeck-cell")).to_have_count(int(np.count_nonzero(~np.isnan(partial))))
    page.screenshot(path=str(artifacts / "panel_grid_partial_dark.png"))

    # A spiral is no grid: a scatter coloured by value, with the same colour bar.
    detail = select(page, uids["spiral"])
    scatter = detail.locator('.jp-scandeck-preview[data-kind="scatter"] svg.jp-scandeck-map')
    expect(scatter.locator(".jp-scandeck-point")).to_have_count(spiral_events, timeout=10_000)
    expect(scatter.locator(".jp-scandeck-colorbar")).to_be_visible()
    expect(scatter.locator(".jp-scandeck-cell")).to_have_count(0)
    page.screenshot(path=str(artifacts / "panel_spiral_scatter_light.png"))
    assert [e for e in page.console_errors if "scandeck" in e.lower()] == []
    assert page.blocked_requests == []  # nothing of it needs the internet


@pytest.mark.timeout(180)
def test_a_running_grid_scan_fills_its_heatmap(lab, page, artifacts: Path) -> None:
    """A RunEngine (in a thread here) held part way through a grid scan, then let go."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det4, motor1, motor2
    from playwright.sync_api import expect

    import scandeck

    store = Path(lab.env["SCANDECK_DATA"]) / "store"
    cat = scandeck.open_catalog(store)
    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    expect(page.locator(".jp-scandeck-panel .jp-scandeck-push")).to_have_attribute(
        "data-state", "open", timeout=20_000
    )
    with held_after(40, RE, bp.grid_scan, [det4], motor1, -2, 2, 9, motor2, -2, 2, 12, True, hold=60):
        uid = cat[-1].uid
        detail = select(page, uid)
        cells = detail.locator('.jp-scandeck-preview[data-kind="grid"] .jp-scandeck-cell')
        expect(cells).to_have_count(40, timeout=10_000)  # what was measured, the rest grey
        page.screenshot(path=str(artifacts / "panel_grid_running_light.png"))
    expect(cells).to_have_count(9 * 12, timeout=20_000)  # filled in as the server pushed the rest
    expect(page.locator(f'.jp-scandeck-panel {RUN}[data-uid="{uid}"]')).to_contain_text("success")
    page.screenshot(path=str(artifacts / "panel_grid_finished_light.png"))
    cat.close()
