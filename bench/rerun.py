"""Reruns: ``scandeck rerun ID --workers 2`` against a loop of ``papermill`` CLI calls.

A small analysis notebook (parameters ``scan_uid`` and ``catalog``; it reads
``cat[scan_uid].primary.read()``, takes the motor position of the detector's
maximum and prints it with the number of events) is recorded once with the
``scandeck`` papermill engine, then run on 50 scans stored in a temporary SQLite
store. The scans are 1-D ``scan`` runs composed with ``event_model.compose_run``:
a Gaussian peak whose centre and number of points differ from scan to scan.

* **scandeck**: one ``scandeck rerun ID --query ... --workers 2`` command (a new
  process, as a user types it): resolves the 50 targets, runs them in a pool of 2
  worker processes, each notebook in a fresh kernel with the scandeck engine, and
  records each rerun (50 new provenance records).
* **peer**: a sequential shell-style loop, one ``papermill NB OUT -p scan_uid UID
  -p catalog STORE`` process per scan, on the source notebook. No records.

The peer's loop is split in two halves run before and after scandeck's batch, so
that a change of the machine's load during the run hits both alike. Printed: wall
time of each, the ratio, the time per notebook (wall / N), and the overhead per
notebook: one notebook's elapsed time (in its worker, resp. its papermill
process) minus the time its cells took (papermill's per-cell durations). Every
output is checked: the printed peak and event count must be the same for both
contenders on every scan, and match the data.

Usage: ``python bench/rerun.py [--quick]`` (``--quick``: 6 reruns).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import event_model  # noqa: E402
from _common import banner, fail_soft, fmt_ratio, fmt_time, parse_args, print_table, verdict  # noqa: E402

GOAL = 3.0
WORKERS = 2
ANALYSIS = """\
import scandeck
cat = scandeck.open_catalog(catalog)
ds = cat[scan_uid].primary.read()
peak = float(ds["motor"][int(ds["det"].values.argmax())])
print(f"peak {peak:.4f} events {ds.sizes['time']}")"""


# -- data --------------------------------------------------------------------------------------


def scan_docs(scan_id: int, center: float, num: int, t0: float) -> list[tuple[str, dict]]:
    """A finished 1-D ``scan`` of ``motor`` with ``det`` a Gaussian at ``center``."""
    bundle = event_model.compose_run(
        metadata={
            "scan_id": scan_id,
            "plan_name": "scan",
            "sample": "Ni",
            "motors": ["motor"],
            "detectors": ["det"],
            "num_points": num,
            "bench": "rerun",
        },
        time=t0,
    )
    desc = bundle.compose_descriptor(
        name="primary",
        time=t0,
        data_keys={
            "motor": {"dtype": "number", "shape": [], "source": "SIM:motor", "units": "mm"},
            "det": {"dtype": "number", "shape": [], "source": "SIM:det", "units": "counts"},
        },
    )
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    for i in range(num):
        x = -2.0 + 4.0 * i / (num - 1)
        t = t0 + 0.1 * (i + 1)
        det = 1000.0 * math.exp(-((x - center) ** 2) / (2 * 0.3**2))
        docs.append(
            (
                "event",
                desc.compose_event(
                    data={"motor": x, "det": det}, timestamps={"motor": t, "det": t}, seq_num=i + 1, time=t
                ),
            )
        )
    docs.append(("stop", bundle.compose_stop(exit_status="success", time=t0 + 0.1 * (num + 1))))
    return docs


def expected_line(center: float, num: int) -> str:
    """What the notebook prints for that scan, computed here without scandeck."""
    xs = [-2.0 + 4.0 * i / (num - 1) for i in range(num)]
    best = max(range(num), key=lambda i: (math.exp(-((xs[i] - center) ** 2) / (2 * 0.3**2)), -i))
    return f"peak {xs[best]:.4f} events {num}"


def write_scans(store: Path, n: int) -> list[tuple[str, int, str]]:
    """``n`` scans in ``store``; returns ``(uid, scan_id, expected printed line)``."""
    import scandeck

    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    out = []
    for i in range(n):
        center = -1.5 + 3.0 * ((i * 7) % n) / max(n - 1, 1)
        num = 21 + 10 * (i % 5)
        docs = scan_docs(i + 1, center, num, 1.7e9 + 100.0 * i)
        for name, doc in docs:
            writer(name, doc)
        out.append((docs[0][1]["uid"], i + 1, expected_line(center, num)))
    cat.close()
    return out


def write_notebook(path: Path, store: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"scan_uid = None\ncatalog = {str(store)!r}", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(ANALYSIS),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


# -- reading outputs ------------------------------------------------------------------------------


def printed(path: Path) -> str:
    """The stdout text of a notebook's last code cell (its result line)."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = "".join("".join(o.get("text", "")) for o in code[-1].get("outputs", []) if o.get("name") == "stdout")
    return text.strip()


def cells_seconds(path: Path) -> float:
    """Sum of papermill's per-cell durations in an executed notebook."""
    nb = json.loads(path.read_text())
    return sum(float(c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0) for c in nb["cells"])


# -- contenders ----------------------------------------------------------------------------------


def _tool(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


def peer_loop(nb: Path, store: Path, scans: list[tuple[str, int, str]], out: Path, env: dict) -> list[float]:
    """One ``papermill`` process per scan, one after the other; wall time of each."""
    walls = []
    for uid, scan_id, _ in scans:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                *_tool("papermill"),
                str(nb),
                str(out / f"{scan_id}-{uid[:8]}.ipynb"),
                "-p",
                "scan_uid",
                uid,
                "-p",
                "catalog",
                str(store),
                "--no-progress-bar",
            ],
            cwd=nb.parent,
            env=env,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            print(
                f"   peer: papermill failed on scan {scan_id}: {proc.stderr.strip().splitlines()[-1:]}",
                file=sys.stderr,
            )
    return walls


def scandeck_batch(
    record_id: str, store: Path, prov: Path, out: Path, env: dict, executor: str = "local"
) -> tuple[float, str]:
    """``scandeck rerun ID --query ... --workers 2``: its wall time and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            *_tool("scandeck"),
            "rerun",
            record_id,
            "--query",
            'bench == "rerun"',
            "--workers",
            str(WORKERS),
            "--catalog",
            str(store),
            "--store",
            str(prov),
            "--output-dir",
            str(out),
            "--no-progress",
            "--executor",
            executor,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"   scandeck rerun exited {proc.returncode}: {proc.stderr.strip()[-500:]}", file=sys.stderr)
    return wall, proc.stdout


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument(
            "--compare-cold",
            action="store_true",
            help="also time the pool without kernels booted ahead (--executor local-cold)",
        ),
    )
    n = 6 if args.quick else 50
    banner(
        f"rerun: {n} reruns of an analysis notebook, scandeck rerun --workers {WORKERS} vs a papermill loop",
        args.quick,
    )
    root = Path(tempfile.mkdtemp(prefix="scandeck-bench-rerun-"))
    try:
        return run(root, n, args.compare_cold)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, n: int, compare_cold: bool = False) -> int:
    from scandeck.provenance.engine import Recording, execute
    from scandeck.provenance.store import open_store

    store, prov = root / "store", root / "provenance"
    env = {**os.environ, "SCANDECK_DATA": str(root / "data")}  # nothing touches the user's data dir
    os.environ["SCANDECK_DATA"] = env["SCANDECK_DATA"]
    t0 = time.perf_counter()
    scans = write_scans(store, n)
    nb = root / "peak.ipynb"
    write_notebook(nb, store)
    record, _ = execute(
        nb,
        root / "peak.out.ipynb",
        parameters={"scan_uid": scans[0][0]},
        recording=Recording(kind="batch", name="peak", store=prov),
        cwd=root,
    )
    print(
        f"   setup: {n} scans written, notebook recorded as {record.id[:8]} ({record.status}) "
        f"in {fmt_time(time.perf_counter() - t0)}"
    )

    peer_out, sd_out = root / "peer", root / "reruns"
    peer_out.mkdir()
    half = n // 2
    peer_walls = peer_loop(nb, store, scans[:half], peer_out, env)
    sd_wall, sd_stdout = scandeck_batch(record.id, store, prov, sd_out, env)
    cold_out = root / "reruns-cold"
    if compare_cold:
        cold_wall, cold_stdout = scandeck_batch(record.id, store, prov, cold_out, env, "local-cold")
    peer_walls += peer_loop(nb, store, scans[half:], peer_out, env)
    peer_wall = sum(peer_walls)

    # -- correctness: the same printed result for every scan, equal to the data's peak
    mismatches, missing = [], 0
    for uid, scan_id, expected in scans:
        name = f"{scan_id}-{uid[:8]}.ipynb"
        outs = [peer_out, sd_out, *([cold_out] if compare_cold else [])]
        if not all((d / name).exists() for d in outs):
            missing += 1
            continue
        a, b = printed(peer_out / name), printed(sd_out / name)
        c = printed(cold_out / name) if compare_cold else b
        if not (a == b == c == expected):
            mismatches.append((scan_id, a, b, expected))
    reruns = open_store(prov).children(record.id)
    ok_records = sum(r.status == "ok" and r.target_scan is not None for r in reruns) // (2 if compare_cold else 1)

    # -- per-notebook figures
    sd_cells = [
        cells_seconds(sd_out / f"{s}-{u[:8]}.ipynb")
        for u, s, _ in scans
        if (sd_out / f"{s}-{u[:8]}.ipynb").exists()
    ]
    peer_cells = [
        cells_seconds(peer_out / f"{s}-{u[:8]}.ipynb")
        for u, s, _ in scans
        if (peer_out / f"{s}-{u[:8]}.ipynb").exists()
    ]
    sd_latency = _latencies(sd_stdout)

    def p50(values: list[float]) -> str:
        return fmt_time(statistics.median(values)) if values else "?"

    def overhead(total: list[float], cells: list[float]) -> str:
        return fmt_time(statistics.median(total) - statistics.median(cells)) if total and cells else "?"

    rows = [
        [
            "scandeck rerun --workers 2",
            fmt_time(sd_wall),
            fmt_time(sd_wall / n),
            p50(sd_latency),
            p50(sd_cells),
            overhead(sd_latency, sd_cells),
        ],
        [
            "peer: papermill CLI loop",
            fmt_time(peer_wall),
            fmt_time(peer_wall / n),
            p50(peer_walls),
            p50(peer_cells),
            overhead(peer_walls, peer_cells),
        ],
    ]
    if compare_cold:
        cold_cells = [cells_seconds(p) for p in cold_out.glob("*.ipynb")]
        cold_latency = _latencies(cold_stdout)
        rows.insert(
            1,
            [
                "  same, --executor local-cold",
                fmt_time(cold_wall),
                fmt_time(cold_wall / n),
                p50(cold_latency),
                p50(cold_cells),
                overhead(cold_latency, cold_cells),
            ],
        )
    print()
    print_table(
        ["contender", "wall", "per notebook", "one notebook (p50)", "its cells (p50)", "overhead (p50)"], rows
    )
    ratio = peer_wall / sd_wall
    print()
    print(f"   speed-up vs peer (papermill loop wall / scandeck wall): {fmt_ratio(peer_wall, sd_wall)}")
    if compare_cold:
        print(
            f"   without kernels booted ahead (local-cold): {fmt_ratio(peer_wall, cold_wall)}; "
            f"the warm pool gains {fmt_ratio(cold_wall, sd_wall)}"
        )
    who = "scandeck (warm and cold pool)" if compare_cold else "scandeck"
    print(
        f"   outputs: {n - missing - len(mismatches)}/{n} identical between {who} and the peer (fresh kernels) "
        f"and equal to the data's peak; {len(mismatches)} differ, {missing} missing"
    )
    for scan_id, a, b, expected in mismatches[:5]:
        print(f"     scan {scan_id}: peer {a!r}, scandeck {b!r}, expected {expected!r}")
    print(f"   records: {ok_records}/{n} reruns recorded ok with parent {record.id[:8]} and their target scan")
    met = ratio >= GOAL and not mismatches and not missing
    print(
        f"   goal >= {GOAL:.0f}x the sequential loop: {verdict(met)} ({ratio:.2f}x)"
        f"{'  [--quick: not representative]' if n < 50 else ''}"
    )
    fail_soft(
        "load",
        lambda: print(f"   load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True),
    )
    return 0


def _latencies(stdout: str) -> list[float]:
    """The per-rerun seconds column of ``scandeck rerun``'s summary table."""
    out = []
    lines = stdout.splitlines()
    if not lines or not lines[0].startswith("scan_id"):
        return out
    for line in lines[1:]:
        parts = line.split()
        if len(parts) >= 4:
            try:
                out.append(float(parts[3]))
            except ValueError:
                continue
    return out


if __name__ == "__main__":
    sys.exit(main())
