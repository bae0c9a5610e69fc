"""Make ``tests/data/store-0.1.0/``: a run store written by scandeck 0.1.0 (commit 85b2fdd).

Run with that release's package first on the path, from a worktree of the commit:

    git worktree add /tmp/release01 85b2fdd
    PYTHONPATH=/tmp/release01/kernel_ext .venv/bin/python tests/data/make_store_0_1.py

The store has the layout of that release (documents only, no column blocks and no
start-field index), so ``tests/test_store_upgrade.py`` checks that today's code
reads, searches and appends to it. What it holds is listed in ``EXPECTED`` of
that test; the runs are made by a real RunEngine with ophyd.sim devices.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from bluesky import RunEngine
from bluesky.plans import count, grid_scan, scan
from ophyd.sim import det, det4, motor, motor1, motor2

import scandeck

HERE = Path(__file__).parent / "store-0.1.0"


def main() -> int:
    assert "release01" in scandeck.__file__, f"run with release 0.1.0 on the path, not {scandeck.__file__}"
    shutil.rmtree(HERE, ignore_errors=True)
    cat = scandeck.open_catalog(str(HERE))
    writer = cat.writer()
    RE = RunEngine({})  # noqa: N806
    RE.subscribe(writer)
    RE(scan([det], motor, -1, 1, 21), sample="Ni", operator="ann")
    RE(grid_scan([det4], motor1, -1.5, 1.5, 7, motor2, -0.1, 0.1, 5, snake_axes=True), sample="Cu")
    RE(count([det], num=3), sample="Ni", tags=["a", "b"])
    writer.close()
    # A run of hand-made documents: strings, ints, an array key, a None gap,
    # event pages, and a run left open (its writer gone: incomplete).
    from event_model import compose_run

    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "handmade", "sample": "Fe"})
    writer("start", bundle.start_doc)
    keys = {
        "label": {"source": "x", "dtype": "string", "shape": []},
        "n": {"source": "x", "dtype": "integer", "shape": []},
        "spec": {"source": "x", "dtype": "array", "shape": [3]},
        "gap": {"source": "x", "dtype": "number", "shape": []},
    }
    desc = bundle.compose_descriptor(data_keys=keys, name="primary")
    writer("descriptor", desc.descriptor_doc)
    for i in range(4):
        data = {"label": f"p{i}", "n": i, "spec": [i, i + 0.5, i * 2.0], "gap": None if i == 2 else i / 3}
        writer("event", desc.compose_event(data=data, timestamps={k: 1.0 for k in data}, seq_num=i + 1))
    page = {
        "label": ["q4", "q5"],
        "n": [4, 5],
        "spec": [np.arange(3.0).tolist(), [1.0, 2.0, 3.0]],
        "gap": [1.5, 2.5],
    }
    ts = {k: [1.0, 1.0] for k in page}
    writer("event_page", desc.compose_event_page(data=page, timestamps=ts, seq_num=[5, 6], time=[1.0, 2.0]))
    writer("stop", bundle.compose_stop())
    open_run = compose_run(metadata={"plan_name": "handmade", "sample": "Zn"})
    writer("start", open_run.start_doc)
    x_key = {"x": {"source": "x", "dtype": "number", "shape": []}}
    d2 = open_run.compose_descriptor(data_keys=x_key, name="primary")
    writer("descriptor", d2.descriptor_doc)
    for i in range(5):
        writer("event", d2.compose_event(data={"x": float(i)}, timestamps={"x": 1.0}, seq_num=i + 1))
    writer.close()  # no stop document: the run reads as incomplete
    cat.close()
    for extra in HERE.glob("*-*"):  # -wal, -shm: closed cleanly, everything is in the main file
        extra.unlink()
    print(f"wrote {HERE}: {len(scandeck.open_catalog(str(HERE)))} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
