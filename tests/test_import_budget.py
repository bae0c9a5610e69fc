"""Opening, listing, searching and following runs import no numpy, pandas or xarray.

These load on the first read of data (or the first write, for event-model's
schemas); a kernel that only browses stays light.
"""

from __future__ import annotations

import subprocess
import sys

from event_model import compose_run

import scandeck

HEAVY = ("numpy", "pandas", "xarray", "event_model", "jsonschema", "h5py", "redis", "holoviews", "bokeh", "intake")

PROBE = """
import sys
import scandeck
cat = scandeck.open_catalog(sys.argv[1])
run = cat[-1]
list(run), run.metadata, run.status, len(cat.search('sample == "Ni"')), cat[-1:]
list(run.follow(timeout=0.1))
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""


def test_browsing_a_catalog_stays_light(tmp_path):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run(metadata={"sample": "Ni"})
    writer("start", bundle.start_doc)
    writer("stop", bundle.compose_stop())
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store"), *HEAVY], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == []
