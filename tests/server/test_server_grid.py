"""The panel's preview of mapping scans: a grid scan's cells for a heatmap, other 2-D scans as a scatter.

Runs come from a real RunEngine on ophyd.sim motors; every expected value is read
back from the store (``to_grid()``, ``read()``), never written here.
"""

from __future__ import annotations

import bluesky.plans as bp
import numpy as np
import pytest
from ophyd.sim import det4, motor1, motor2, motor3
from plan_steps import failing_after

from scandeck.server.preview import MAX_GRID_SIDE


@pytest.fixture
def scan(store, RE):
    """Run a plan into the default catalog; its uid."""
    RE.subscribe(store.writer())

    def run(plan) -> str:
        uids = RE(plan)
        return uids[0] if uids else store[-1].uid

    return run


def nan_to_none(values: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in values]


@pytest.mark.parametrize("snake", [False, True])
async def test_grid_scan_previews_its_cells(api, store, scan, snake):
    uid = scan(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -2, 2, 5, snake_axes=snake))
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200
    grid = store[uid].primary.to_grid("det4")
    assert body["map"] == {
        "kind": "grid",
        "x": {"name": "motor2", "values": grid["motor2"].values.tolist()},  # the fast motor across
        "y": {"name": "motor1", "values": grid["motor1"].values.tolist()},
        "z": {"name": "det4", "values": grid["det4"].values.tolist()},  # rows of the slow motor
        "shape": [3, 5],
    }
    assert [y["name"] for y in body["y"]] == ["det4"]  # the line stays, for clients that draw no map


async def test_interrupted_grid_scan_has_null_cells(api, store, scan):
    with pytest.raises(RuntimeError):
        scan(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -1, 1, 3, True, per_step=failing_after(4)))
    uid = store[-1].uid
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200 and body["num_events"] == 4
    assert body["map"]["z"]["values"] == nan_to_none(store[uid].primary.to_grid()["det4"].values)
    assert sum(v is None for row in body["map"]["z"]["values"] for v in row) == 9 - 4


async def test_a_fine_grid_is_shown_at_every_nth_setpoint(api, store, scan):
    uid = scan(bp.grid_scan([det4], motor1, 0, 1, 2, motor2, 0, 10, MAX_GRID_SIDE + 21))
    code, body = await api(f"runs/{uid}/preview")
    grid = store[uid].primary.to_grid("det4")
    xs = body["map"]["x"]["values"]
    assert len(xs) == MAX_GRID_SIDE and body["map"]["shape"] == [2, MAX_GRID_SIDE + 21]
    setpoints = grid["motor2"].values.tolist()
    assert xs[0] == setpoints[0] and xs[-1] == setpoints[-1] and set(xs) <= set(setpoints)
    for row, full in zip(body["map"]["z"]["values"], grid["det4"].values, strict=True):
        assert row == [full[setpoints.index(x)] for x in xs]  # each shown cell is the one at its setpoint


@pytest.mark.parametrize(
    "plan",
    [
        lambda: bp.rel_spiral([det4], motor1, motor2, 1, 1, 0.5, 2),
        lambda: bp.spiral_square([det4], motor1, motor2, 0, 0, 2, 2, 3, 3),
        lambda: bp.list_grid_scan([det4], motor1, [0, 1], motor2, [1, 2, 5]),
        lambda: bp.grid_scan([det4], motor1, 0, 1, 2, motor2, 0, 1, 2, motor3, 0, 1, 2),
    ],
    ids=["rel_spiral", "spiral_square", "list_grid_scan", "grid_scan_3d"],
)
async def test_other_two_motor_scans_preview_as_a_scatter(api, store, scan, plan):
    uid = scan(plan())
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200
    start, flat = store[uid].start, store[uid].primary.read()
    slow, fast = (fields[0] for fields, _ in start["hints"]["dimensions"][:2])
    assert body["map"] == {
        "kind": "scatter",
        "x": {"name": fast, "values": flat[fast].values.tolist()},
        "y": {"name": slow, "values": flat[slow].values.tolist()},
        "z": {"name": "det4", "values": flat["det4"].values.tolist()},
    }


@pytest.mark.parametrize(
    "plan",
    [
        lambda: bp.scan([det4], motor1, -1, 1, 5),
        lambda: bp.scan([det4], motor1, -1, 1, motor2, -2, 2, 6),  # two motors, one dimension
        lambda: bp.list_scan([det4], motor1, [0, 1, 3, 2], motor2, [2, 1, 0, 5]),
    ],
    ids=["scan", "scan_two_motors", "list_scan"],
)
async def test_one_dimensional_scans_stay_a_line(api, store, scan, plan):
    uid = scan(plan())
    code, body = await api(f"runs/{uid}/preview")
    flat = store[uid].primary.read()
    assert code == 200 and "map" not in body
    assert body["x"] == {"name": "motor1", "values": flat["motor1"].values.tolist()}
    assert [y["name"] for y in body["y"]] == ["det4"]  # the other motor is a position, not a signal


async def test_a_count_has_no_map(api, scan):
    uid = scan(bp.count([det4], 3))
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200 and "map" not in body and body["x"]["name"] == "seq_num"


async def test_a_start_document_claiming_a_huge_grid_gets_a_scatter(api, store, scan):
    """A typo or hostile shape allocates nothing: the preview scatters, to_grid() says to use read()."""
    from scandeck.exceptions import NotAGrid

    uid = scan(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -1, 1, 2, md={"shape": [10**6, 10**6]}))
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200 and body["map"]["kind"] == "scatter" and len(body["map"]["z"]["values"]) == 6
    with pytest.raises(NotAGrid, match=r"1e\+12 points .*use read\(\)"):
        store[uid].primary.to_grid()
