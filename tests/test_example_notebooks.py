"""The example notebooks run in batch (papermill) against runs of the simulated beamline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def test_live_analysis_notebook_runs_in_batch(tmp_path, monkeypatch):
    env = {**os.environ, "SCANDECK_DATA": str(tmp_path / "data")}
    subprocess.run(
        [sys.executable, "-m", "scandeck.cli", "demo", "--runs", "4", "--pace", "0", "--seed", "3"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    monkeypatch.setenv("SCANDECK_DATA", env["SCANDECK_DATA"])
    import scandeck

    cat = scandeck.open_catalog()
    target = cat[-2]
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "live_analysis.ipynb"),
        str(out),
        parameters={"scan_uid": target.uid},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.papermill.parameters == {"scan_uid": target.uid}
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    scan_id = target.metadata["start"]["scan_id"]
    assert f"scan {scan_id} · {target.metadata['start']['plan_name']}" in text
    assert f"{target.num_events} events" in text
