"""The benchmarks still run (their --quick mode); their figures are not checked here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "bench"


@pytest.mark.parametrize(
    "script",
    [
        "read_run.py",
        "search.py",
        "write.py",
        "live_kernel.py",
        "live_memory.py",
        "rerun.py",
        "redis_live.py",
        "panel_api.py",
        "vs_tiled.py",
        "columns.py",
        "table_api.py",
        "auto.py",
        "watch.py",
    ],
)
def test_benchmark_runs_and_prints_a_ratio(script):
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    assert "x" in proc.stdout and ("limit" in proc.stdout or "peer" in proc.stdout)
