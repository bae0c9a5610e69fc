"""``%load_ext scandeck`` stays light: no numpy, pandas, holoviews, bokeh or redis until used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "numpy",
    "pandas",
    "xarray",
    "holoviews",
    "bokeh",
    "panel",
    "redis",
    "ipywidgets",
    "streamz",
    "event_model",
    "h5py",
)

PROBE = """
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "scandeck")
assert "bind" in shell.magics_manager.magics["cell"]
assert {"catalog", "scans", "bindings", "unbind"} <= set(shell.magics_manager.magics["line"])
print(" ".join(m for m in sys.argv[1:] if m in sys.modules))
"""


def test_load_ext_imports_nothing_heavy(tmp_path):
    env_code = PROBE
    proc = subprocess.run(
        [sys.executable, "-c", env_code, *HEAVY],
        capture_output=True,
        text=True,
        env={"SCANDECK_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []
