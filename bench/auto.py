"""Standing reruns: from a run's stop document to its rerun record.

A notebook that reads a scan and fits its peak's centre (numpy) is recorded with
``scandeck run`` on an embedded store. Then this process writes 1-D scans of 21
points (event_model documents through ``cat.writer()``), one at a time, and
measures the time from the stop document's write returning to the rerun record
of that scan being in the provenance store (polled every 5 ms), p50/p99:

- **scandeck auto**: an :class:`~scandeck.provenance.auto.AutoService` in this
  process (the same code ``scandeck auto`` runs), 2 workers booted ahead, each
  with its next kernel started before it is needed;
- **peer: scandeck rerun per scan**: what a user without a standing analysis
  does, ``scandeck rerun ID --scan UID`` started when the scan ends (a new
  process, its imports, a pool, a kernel).

Each scan is timed alone (the next is written after the previous one's record).

Usage: ``python bench/auto.py [--quick]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import event_model  # noqa: E402
from _common import banner, fmt_ratio, fmt_time, parse_args, percentile, print_table  # noqa: E402

import scandeck  # noqa: E402

NOTEBOOK_CELLS = [
    "scan_uid = None\ncatalog = None",
    "import numpy as np\nimport scandeck\nds = scandeck.open_catalog(catalog)[scan_uid].primary.read()",
    "y = ds.det.values\nx = ds.motor.values\ncen = float((x * y).sum() / y.sum())\nprint(cen)",
]


def write_scan(writer, points: int = 21) -> tuple[str, float]:
    """One scan of ``points`` events; ``(uid, time the stop document's write returned)``."""
    import math

    bundle = event_model.compose_run(metadata={"plan_name": "scan", "sample": "bench"})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "motor": {"dtype": "number", "shape": [], "source": "sim:motor"},
            "det": {"dtype": "number", "shape": [], "source": "sim:det"},
        },
    )
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for i in range(points):
        x = -1 + 2 * i / (points - 1)
        now = time.time()
        writer(
            "event",
            desc.compose_event(
                data={"motor": x, "det": math.exp(-(x**2) / 0.5)},
                timestamps={"motor": now, "det": now},
                seq_num=i + 1,
            ),
        )
    writer("stop", bundle.compose_stop())
    return bundle.start_doc["uid"], time.perf_counter()


def record_notebook(tmp: str, store: str, first: str) -> str:
    import nbformat

    from scandeck.cli import main

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = os.path.join(tmp, "cen.ipynb")
    nbformat.write(nb, path)
    args = ["run", path, "-p", "scan_uid", first, "-p", "catalog", store, "--name", "cen"]
    if main(args) != 0:
        raise SystemExit("could not record the notebook")
    from scandeck.provenance.store import open_store

    (record,) = open_store().list()
    return record.id


def wait_record(prov, tag: str | None, uid: str, since: float, timeout: float = 120.0) -> float:
    """perf_counter time when a rerun record of ``uid`` (with ``tag``) appeared."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for rec in prov.list(tag=tag, kind="rerun", limit=5):
            if rec.target_scan == uid:
                if rec.status != "ok":
                    raise SystemExit(f"the rerun of {uid[:8]} failed: {rec.error}")
                return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"no rerun record of {uid[:8]} after {timeout:.0f} s")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    banner("standing reruns: stop document -> rerun record", args.quick)
    n = 3 if args.quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SCANDECK_DATA"] = os.path.join(tmp, "data")
        store = os.path.join(tmp, "store")
        cat = scandeck.open_catalog(store)
        writer = cat.writer()
        first, _ = write_scan(writer)
        record_id = record_notebook(tmp, store, first)

        from scandeck.provenance.auto import AutoService, auto_tag, define
        from scandeck.provenance.store import open_store

        prov = open_store()
        standing = define(record_id, query='sample == "bench"', catalog=store, workers=2)
        service = AutoService(standing.id)
        service.start()
        auto: list[float] = []
        try:
            deadline = time.monotonic() + 60
            while not service.holding:  # the service is up and holds the lease
                if time.monotonic() > deadline or not service.running:
                    raise SystemExit("the service did not start")
                time.sleep(0.01)
            uid, t0 = write_scan(writer)  # warms the workers' first kernels; not timed
            wait_record(prov, auto_tag(standing.id), uid, t0)
            for _ in range(n):
                time.sleep(0.3)
                uid, t0 = write_scan(writer)
                auto.append(wait_record(prov, auto_tag(standing.id), uid, t0) - t0)
        finally:
            service.close()

        peer: list[float] = []
        scandeck_cmd = [sys.executable, "-m", "scandeck.cli", "rerun", record_id, "--catalog", store]
        for i in range(max(2, n // 4)):
            uid, t0 = write_scan(writer)
            out = os.path.join(tmp, f"peer{i}")
            subprocess.run([*scandeck_cmd, "--scan", uid, "--output-dir", out, "--no-progress"], check=True)
            peer.append(wait_record(prov, None, uid, t0) - t0)
        cat.close()

    rows = [
        [
            "scandeck auto (2 workers booted)",
            len(auto),
            fmt_time(percentile(auto, 50)),
            fmt_time(percentile(auto, 99)),
        ],
        [
            "peer: scandeck rerun per scan",
            len(peer),
            fmt_time(percentile(peer, 50)),
            fmt_time(percentile(peer, 99)),
        ],
    ]
    print_table(["stop -> rerun record", "scans", "p50", "p99"], rows)
    print(f"   ratio p50 peer / auto: {fmt_ratio(percentile(peer, 50), percentile(auto, 50))}")


if __name__ == "__main__":
    main()
