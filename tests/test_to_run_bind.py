"""A live derived run is bindable: ``%%bind --uid`` in a real kernel re-runs as the derived run grows.

The parent scan comes from a RunEngine in another process, paused halfway until the
test lets it go; the pipeline (``live(...).map(f).to_run(cat)``) runs in this process;
the bound cell runs in a real kernel driven as JupyterLab drives it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kernel_harness import output_text

import scandeck
from scandeck.livestream import Live

PROCS = str(Path(__file__).with_name("derived_live_procs.py"))
HALF = 6


def doubled(row):
    return {"det2": row["det"] * 2}


def test_a_bound_cell_follows_a_live_derived_run(kernel, store, tmp_path):
    gate = tmp_path / "gate"
    producer = subprocess.Popen(
        [sys.executable, PROCS, "produce", str(store), str(gate), str(HALF)], stdout=subprocess.PIPE, text=True
    )
    live = None
    try:
        line = producer.stdout.readline().split()
        assert line[0] == "started", line
        parent = line[1]
        cat = scandeck.open_catalog(store)
        live = Live(cat[parent], catalog=cat)
        out = live.stream("primary").map(doubled).to_run(cat, metadata={"purpose": "doubled"})
        deadline = time.monotonic() + 60
        while out.events < HALF:  # the parent waits at its gate: the derived run is live and half-written
            assert time.monotonic() < deadline, out
            time.sleep(0.02)
        kernel.execute(f'%%bind --uid {out.uid[:8]} --every 0\nprint("derived", len(df), run.status)')

        def shown(text: str) -> bool:
            return any(text in output_text(u[2]) for u in kernel.widget_outputs())

        assert kernel.wait_for(lambda: shown(f"derived {HALF} running"), 60)
        gate.touch()  # the parent goes on and ends
        assert kernel.wait_for(lambda: shown(f"derived {2 * HALF} success"), 60)
        assert out.wait(30) and out.exit_status == "success"
        assert producer.wait(60) == 0
        ds = cat[out.uid].primary.read()
        parent_det = cat[parent].primary.read()["det"].values
        assert list(ds["det2"].values) == [2 * v for v in parent_det]
        cat.close()
    finally:
        if live is not None:
            live.stop()
        if not gate.exists():
            gate.touch()
        producer.wait(60)
        producer.stdout.close()
