"""scandeck.plot.map: a live heatmap of grid scans, points coloured by value for other scans.

A real RunEngine on ophyd.sim (det4 over motor1 and motor2) writes from another
thread while the plot follows; what the plot last received (its Pipe's data) and
its Bokeh plot are compared with what the run holds (``to_grid()``, ``read()``).
"""

from __future__ import annotations

import numpy as np
import pytest
from plan_steps import held_after
from test_live import in_thread, wait_for

hv = pytest.importorskip("holoviews")
splot = pytest.importorskip("scandeck.plot")
bp = pytest.importorskip("bluesky.plans")
sim = pytest.importorskip("ophyd.sim")


def shown(plot) -> dict:
    return plot.streams[0].data


def colour_range(bokeh_plot) -> tuple[float, float]:
    mapper = next(sp for key, sp in bokeh_plot.subplots.items() if key[0] == "QuadMesh").handles["color_mapper"]
    return mapper.low, mapper.high


def test_grid_scan_then_spiral_in_one_followed_plot(sqlite_cat, RE, plots):
    plot = plots(splot.map("det4", catalog=sqlite_cat, width=400))
    bokeh_plot = hv.renderer("bokeh").get_plot(plot)
    RE.subscribe(sqlite_cat.writer())
    grid_plan = bp.grid_scan([sim.det4], sim.motor1, -2, 2, 9, sim.motor2, -3, 3, 11, True)
    in_thread(RE, grid_plan).join()
    grid_run = sqlite_cat[-1]
    expected = grid_run.primary.to_grid("det4")
    feed = splot.feed(plot)
    assert wait_for(lambda: feed.rows == 99 and np.isfinite(shown(plot)["zs"]).sum() == 99)
    data = shown(plot)
    assert (data["x"], data["y"]) == ("motor2", "motor1")  # the fast motor across, as bluesky's LiveGrid
    np.testing.assert_array_equal(data["zs"], expected["det4"].values)  # rows along motor1, snaking undone
    np.testing.assert_array_equal(data["xs"], expected["motor2"].values)
    np.testing.assert_array_equal(data["ys"], expected["motor1"].values)
    assert len(data["points"]) == 0
    element = plot[()]
    mesh = element.get(0)
    assert isinstance(mesh, hv.QuadMesh) and mesh.opts.get("plot").kwargs["colorbar"] is True
    wanted = (float(expected["det4"].min()), float(expected["det4"].max()))
    assert wait_for(lambda: colour_range(bokeh_plot) == pytest.approx(wanted))
    assert feed.sends < 99  # batched, not one update per point
    assert feed.live.failures == 0

    # A spiral is no grid: the same plot shows its points, coloured on the same scale.
    in_thread(RE, bp.spiral([sim.det4], sim.motor1, sim.motor2, 0, 0, 2, 2, 0.4, 4)).join()
    flat = sqlite_cat[-1].primary.read()
    n = flat.sizes["time"]
    assert wait_for(lambda: feed.runs == 2 and len(shown(plot)["points"]) == n)
    data = shown(plot)
    assert data["zs"].size == 0
    np.testing.assert_array_equal(data["points"]["det4"], flat["det4"].values)
    np.testing.assert_array_equal(data["points"]["motor2"], flat["motor2"].values)
    np.testing.assert_array_equal(data["points"]["motor1"], flat["motor1"].values)
    # (the Bokeh plot updates on the feed's thread, just after the Pipe's data is set)
    wanted = (float(flat["det4"].min()), float(flat["det4"].max()))
    assert wait_for(lambda: colour_range(bokeh_plot) == pytest.approx(wanted))
    assert feed.live.failures == 0


def test_a_running_grid_scan_fills_as_points_arrive(sqlite_cat, RE, plots):
    RE.subscribe(sqlite_cat.writer())
    plot = plots(splot.map("det4", x="motor1", y="motor2", catalog=sqlite_cat))  # axes swapped on purpose
    hv.renderer("bokeh").get_plot(plot)
    with held_after(13, RE, bp.grid_scan, [sim.det4], sim.motor1, -1, 1, 5, sim.motor2, -1, 1, 6, True):
        assert wait_for(lambda: np.isfinite(shown(plot)["zs"]).sum() == 13)
        partial = sqlite_cat[-1].primary.to_grid("det4")["det4"].values
        data = shown(plot)
        assert (data["x"], data["y"]) == ("motor1", "motor2")
        np.testing.assert_array_equal(data["zs"], partial.T)  # rows along y (motor2), NaN where unmeasured
        assert np.isnan(data["zs"]).sum() == 30 - 13
    assert wait_for(lambda: np.isfinite(shown(plot)["zs"]).all())
    np.testing.assert_array_equal(shown(plot)["zs"], sqlite_cat[-1].primary.to_grid("det4")["det4"].values.T)


def test_a_one_motor_scan_maps_nothing_and_raises_nothing(sqlite_cat, RE, plots):
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.scan([sim.det4], sim.motor1, -1, 1, 5))
    plot = plots(splot.map("det4", run=uid, catalog=sqlite_cat))
    hv.renderer("bokeh").get_plot(plot)
    feed = splot.feed(plot)
    assert wait_for(lambda: feed.rows == 5)
    data = shown(plot)
    assert data["zs"].size == 0 and len(data["points"]) == 0 and feed.live.failures == 0
