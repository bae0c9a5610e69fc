"""Several processes creating one embedded store at once (a notebook and the Jupyter server's column
service, say) all open it: switching a new file to WAL waits for the others instead of failing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

OPEN = textwrap.dedent(
    """\
    import sys, time
    from scandeck.sources.sqlite import SQLiteSource
    from scandeck.sources.facts_overlay import FactsOverlay  # the sidecar opens the same way
    while time.time() < float(sys.argv[2]):
        pass  # start together
    source = SQLiteSource(sys.argv[1])
    source.start()
    print(source.count(__import__("scandeck.query", fromlist=["Query"]).Query.all()))
    """
)


def test_processes_creating_one_store_at_once_all_open_it(tmp_path: Path) -> None:
    import time

    for attempt in range(3):
        store = tmp_path / f"store{attempt}"
        at = time.time() + 2.0  # after every interpreter has started
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(store), repr(at)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        for (out, err), p in zip(results, procs, strict=True):
            assert p.returncode == 0, err
            assert out.strip() == "0"
