"""Stream.to_grid(): bluesky grid scans put on their grid, run by a real RunEngine on ophyd.sim.

Every check compares the grid with what the run itself measured (``read()``'s
rows and motor readbacks), never with numbers written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from plan_steps import failing_after, held_after

from scandeck.exceptions import NotAGrid, UnknownName
from scandeck.grid import grid_of

bp = pytest.importorskip("bluesky.plans")
sim = pytest.importorskip("ophyd.sim")


def assert_matches_read(grid, flat) -> None:
    """Each measured row of ``flat`` sits in the cell whose setpoints are its motors' readbacks."""
    dims = list(grid["det4"].dims)
    seq_grid = grid["seq_num"].values
    assert np.count_nonzero(~np.isnan(seq_grid)) == flat.sizes["time"]
    for i, n in enumerate(flat["seq_num"].values):
        (cell,) = np.argwhere(seq_grid == n)
        setpoints = [grid[d].values[c] for d, c in zip(dims, cell, strict=True)]
        np.testing.assert_allclose(setpoints, [flat[d].values[i] for d in dims])
        assert grid["det4"].values[tuple(cell)] == flat["det4"].values[i]
        assert grid["time"].values[tuple(cell)] == flat["time"].values[i]


@pytest.mark.parametrize("snake", [False, True])
def test_grid_scan_is_put_on_its_grid(cat, RE, snake):
    RE.subscribe(cat.writer())
    (uid,) = RE(bp.grid_scan([sim.det4], sim.motor1, -1, 1, 3, sim.motor2, -2, 2, 5, snake_axes=snake))
    run = cat[uid]
    grid = run.primary.to_grid()
    start = run.start
    assert grid["det4"].dims == ("motor1", "motor2")
    assert grid["det4"].shape == tuple(start["shape"])
    assert not np.isnan(grid["det4"].values).any()  # a finished scan fills every cell
    assert grid.attrs["points_measured"] == grid.attrs["points"] == start["num_points"]
    assert "motor1" not in grid.data_vars and "motor1_setpoint" in grid.data_vars
    flat = run.primary.read()
    assert_matches_read(grid, flat)
    # Snaking: the fast motor's readbacks on the second row run backwards exactly when it snakes.
    second_row = flat["motor2"].values[5:10]
    assert (np.diff(second_row) < 0).all() == snake


def test_snaking_in_three_dimensions(sqlite_cat, RE):
    RE.subscribe(sqlite_cat.writer())
    plan = bp.grid_scan([sim.det4], sim.motor1, 0, 1, 2, sim.motor2, -1, 1, 3, True, sim.motor3, 5, 6, 4, True)
    (uid,) = RE(plan)
    run = sqlite_cat[uid]
    grid = run.primary.to_grid()
    assert grid["det4"].dims == ("motor1", "motor2", "motor3")
    flat = run.primary.read()
    dims = ["motor1", "motor2", "motor3"]
    seq_grid = grid["seq_num"].values
    for i, n in enumerate(flat["seq_num"].values):
        (cell,) = np.argwhere(seq_grid == n)
        np.testing.assert_allclose(
            [grid[d].values[c] for d, c in zip(dims, cell, strict=True)], [flat[d].values[i] for d in dims]
        )


def test_interrupted_scan_gives_a_partial_grid(sqlite_cat, RE):
    RE.subscribe(sqlite_cat.writer())
    plan = bp.grid_scan([sim.det4], sim.motor1, -1, 1, 4, sim.motor2, -1, 1, 4, True, per_step=failing_after(7))
    with pytest.raises(RuntimeError, match="beam dump"):
        RE(plan)
    run = sqlite_cat[-1]
    assert run.status == "fail"
    grid = run.primary.to_grid()
    assert grid.attrs["points_measured"] == 7 and grid.attrs["points"] == 16
    assert grid["time"].attrs == run.primary.read()["time"].attrs  # seconds, said alike
    assert np.isnan(grid["det4"].values).sum() == 16 - 7
    assert grid["motor1"].size == 4  # the whole grid's setpoints, not only those reached
    assert_matches_read(grid, run.primary.read())


def test_running_scan_gives_a_growing_grid(sqlite_cat, RE):
    """Read while the RunEngine (in another thread) is held inside the scan."""
    RE.subscribe(sqlite_cat.writer())
    with held_after(5, RE, bp.grid_scan, [sim.det4], sim.motor1, 0, 2, 3, sim.motor2, 0, 3, 4):
        run = sqlite_cat[-1]
        assert run.status == "running"
        partial = run.primary.to_grid()
        assert partial.attrs["points_measured"] == 5
        assert np.isnan(partial["det4"].values).sum() == 12 - 5
        assert_matches_read(partial, run.primary.read())
    full = sqlite_cat[-1].primary.to_grid()
    assert not np.isnan(full["det4"].values).any()
    # The cells measured while running kept their values.
    measured = ~np.isnan(partial["det4"].values)
    np.testing.assert_array_equal(full["det4"].values[measured], partial["det4"].values[measured])


def test_fields_pick_data_keys(sqlite_cat, RE):
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.grid_scan([sim.det4, sim.det5], sim.motor1, -1, 1, 2, sim.motor2, -1, 1, 3))
    stream = sqlite_cat[uid].primary
    assert list(stream.to_grid("det4").data_vars) == ["det4"]
    assert sorted(stream.to_grid(["det4", "det5"]).data_vars) == ["det4", "det5"]
    with pytest.raises(UnknownName, match="no field det9.*its fields: .*det5"):
        stream.to_grid("det9")


@pytest.mark.parametrize(
    ("plan", "why"),
    [
        (lambda: bp.list_scan([sim.det4], sim.motor1, [0, 1, 3], sim.motor2, [2, 1, 0]), "no hints.gridding"),
        (lambda: bp.scan([sim.det4], sim.motor1, -1, 1, sim.motor2, -1, 1, 5), "no hints.gridding"),
        (
            lambda: bp.spiral_square([sim.det4], sim.motor1, sim.motor2, 0, 0, 1, 1, 3, 3),
            "'rectilinear_nonsequential', not 'rectilinear'",
        ),
        (lambda: bp.count([sim.det4], 3), "no hints.gridding"),
    ],
    ids=["list_scan", "scan", "spiral_square", "count"],
)
def test_other_scans_say_why_and_what_to_use(sqlite_cat, RE, plan, why):
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(plan())
    with pytest.raises(NotAGrid, match=rf"{why}.*use read\(\)") as info:
        sqlite_cat[uid].primary.to_grid()
    assert isinstance(info.value, ValueError)


def test_start_documents_that_only_claim_a_grid(sqlite_cat, RE):
    """Rectilinear hints without a usable shape, extents or dimensions are refused, with the reason."""
    RE.subscribe(sqlite_cat.writer())
    bad = [
        ({"shape": [3, 0]}, "no valid 'shape'"),
        ({"extents": [[0, 1]]}, "no valid 'shape'"),
        ({"extents": [[0, "a"], [0, 1]]}, "is not \\[start, stop\\]"),
        ({"snaking": [True]}, "'snaking'"),
        ({"hints": {"gridding": "rectilinear", "dimensions": [[["motor1"], "primary"]]}}, "names 1 distinct"),
    ]
    for md, why in bad:
        (uid,) = RE(bp.grid_scan([sim.det4], sim.motor1, -1, 1, 3, sim.motor2, -1, 1, 2, md=md))
        with pytest.raises(NotAGrid, match=why):
            sqlite_cat[uid].primary.to_grid()
    # More events than grid points (a per_step reading twice): refused, not mis-placed.
    from bluesky.plan_stubs import one_nd_step

    def twice(detectors, step, pos_cache):
        yield from one_nd_step(detectors, step, pos_cache)
        yield from one_nd_step(detectors, step, pos_cache)

    (uid,) = RE(bp.grid_scan([sim.det4], sim.motor1, -1, 1, 2, sim.motor2, -1, 1, 2, per_step=twice))
    with pytest.raises(NotAGrid, match="beyond the 2x2 grid's 4 points"):
        sqlite_cat[uid].primary.to_grid()
    assert grid_of(sqlite_cat[uid].start).size == 4
