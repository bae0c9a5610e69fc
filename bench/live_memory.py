"""live_memory: a kernel's RSS while it follows a 1,000,000-event run, against the bytes of its columns.

A producer process writes a grid_scan run (``_common.grid_scan_run``: 5 float64
keys, event pages of 100) into an embedded store as fast as it can; a real kernel
(jupyter_client, as JupyterLab drives it) follows it with (a) a counting ``live()``
pipeline that keeps nothing, (b) a ``%%bind`` cell, (c) ``%%bind --window 1000``,
each in a fresh kernel. The kernel's RSS growth (peak and after the run) is
compared with the limit: the bytes of what the consumer must hold, in numpy
(``events x 6 columns x 8 B``: the 5 keys and ``time``; 48 MB for 1e6 events;
0 for the pipeline, 1000 rows for the window). Then one kernel with all three
consumers follows 20 short runs one after another: RSS creep per run (goal: 0).

Run: ``.venv/bin/python bench/live_memory.py`` (~3 min), ``--quick`` for a smoke test.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from _common import banner, grid_scan_run, parse_args, print_table
from _kernel import Kernel, cleanup

FULL = {"events": 1_000_000, "page": 100, "warm": 20_000, "short": 10_000, "runs": 20, "window": 1000}
QUICK = {"events": 20_000, "page": 100, "warm": 2_000, "short": 1_000, "runs": 4, "window": 100}
COLUMNS = 6  # 5 float64 keys + time, 8 bytes each (seq_num is the index)
MB = 2**20

CONSUMERS = {
    "count": (
        "import scandeck\n"
        "seen = 0\n"
        "def _count(page):\n"
        "    global seen\n"
        '    seen += len(page["seq_num"])\n'
        "live = scandeck.live(catalog=scandeck.open_catalog({store!r}))\n"
        "live.stream(pages=True).sink(_count)\n"
        "live.runs.sink(lambda run: globals().update(seen=0))"
    ),
    "bind": '%%bind --every 0.2\nseen = len(df)\nlast = float(df["det4"].iloc[-1]) if len(df) else None',
    "window": "%%bind --every 0.2 --window {window}\nseen = int(df.index[-1]) if len(df) else 0\nheld = len(df)",
}


def produce(store: str, events: int, page: int) -> None:
    """In a child process: compose a grid_scan run, then write it as fast as the store takes it."""
    import scandeck

    nx = min(1000, events)
    docs = grid_scan_run(nx, events // nx, page_size=page, t0=time.time())
    writer = scandeck.open_catalog(store).writer()
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    print(f"wrote {events} events in {time.perf_counter() - t0:.2f} s", file=sys.stderr)


def write_run(store: str, events: int, page: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--produce", store, str(events), str(page)])


def rss(pid: int, field: str = "VmRSS") -> int:
    """Bytes of ``field`` (VmRSS, VmHWM) of process ``pid``, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


class Sampler:
    """The highest RSS of a process, sampled every 20 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def settled_rss(kernel: Kernel, pid: int) -> int:
    kernel.execute("import gc; gc.collect()")
    time.sleep(0.3)
    return rss(pid)


def follow_until(kernel: Kernel, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    seen = "globals().get('seen')"  # a bound cell defines seen when it first runs, maybe after this asks
    while kernel.value(seen) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the kernel saw {kernel.value(seen)} of {expected} events")
        time.sleep(0.2)


def start_kernel(root: str, store: str, tag: str) -> tuple[Kernel, int]:
    kernel = Kernel({"SCANDECK_DATA": os.path.join(root, f"data-{tag}")})
    kernel.execute(f"%load_ext scandeck\n%catalog {store}")
    pid = kernel.pid
    assert pid is not None
    return kernel, pid


def one_consumer(root: str, kind: str, size: dict[str, Any]) -> dict[str, Any]:
    store = os.path.join(root, f"store-{kind}")
    kernel, pid = start_kernel(root, store, kind)
    try:
        kernel.execute(CONSUMERS[kind].format(store=store, window=size["window"]))
        # A warm-up run through the same path: imports and first allocations are not the run's.
        write_run(store, size["warm"], size["page"]).wait()
        follow_until(kernel, size["warm"])
        before = settled_rss(kernel, pid)
        sampler = Sampler(pid)
        t0 = time.perf_counter()
        proc = write_run(store, size["events"], size["page"])
        follow_until(kernel, size["events"])
        elapsed = time.perf_counter() - t0
        assert proc.wait(60) == 0
        peak = sampler.stop()
        after = settled_rss(kernel, pid)
        held = kernel.value("held") if kind == "window" else None
        return {"kind": kind, "before": before, "peak": peak, "after": after, "seconds": elapsed, "held": held}
    finally:
        kernel.close()


def creep(root: str, size: dict[str, Any]) -> dict[str, Any]:
    """All three consumers in one kernel, following ``runs`` short runs one after another."""
    store = os.path.join(root, "store-creep")
    kernel, pid = start_kernel(root, store, "creep")
    try:
        kernel.execute(CONSUMERS["count"].format(store=store))
        kernel.execute(CONSUMERS["bind"].replace("seen =", "seen_b ="))
        kernel.execute(CONSUMERS["window"].format(window=size["window"]).replace("seen =", "seen_w ="))
        samples = []
        warm = 3
        for i in range(warm + size["runs"]):
            write_run(store, size["short"], size["page"]).wait()
            follow_until(kernel, size["short"])
            deadline = time.monotonic() + 60
            # The bound cells define seen_b / seen_w when they first run, after the run starts.
            seen = "[globals().get('seen_b'), globals().get('seen_w')]"
            while kernel.value(seen) != [size["short"], size["short"]]:
                if time.monotonic() > deadline:
                    raise TimeoutError("the bound cells did not see the short run")
                time.sleep(0.1)
            if i >= warm - 1:
                samples.append(settled_rss(kernel, pid))
        followers = kernel.value("__import__('scandeck.pipeline.hub').pipeline.hub.followers()")
        return {"samples": samples, "followers": followers}
    finally:
        kernel.close()


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    size = QUICK if args.quick else FULL
    banner("live_memory: kernel RSS following a run vs the bytes of its columns in numpy", args.quick)
    root = tempfile.mkdtemp(prefix="scandeck-bench-livemem-")

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        results = [one_consumer(root, kind, size) for kind in ("count", "bind", "window")]
        drift = creep(root, size)
    finally:
        cleanup()
        shutil.rmtree(root, ignore_errors=True)
    report(results, drift, size)
    return 0


def report(results: list[dict[str, Any]], drift: dict[str, Any], size: dict[str, Any]) -> None:
    events = size["events"]
    table_bytes = events * COLUMNS * 8
    limits = {"count": 0, "bind": table_bytes, "window": size["window"] * COLUMNS * 8}
    labels = {
        "count": "(a) live() counting pipeline",
        "bind": "(b) %%bind (df of the whole run)",
        "window": f"(c) %%bind --window {size['window']}",
    }
    print(f"\n   {events:,} events (pages of {size['page']}), 5 float64 keys; limit = what the consumer must hold")
    rows = []
    for r in results:
        grew_peak, grew = r["peak"] - r["before"], r["after"] - r["before"]
        limit = limits[r["kind"]]
        # The ratio is against the limit where there is one; a consumer that must hold nothing
        # is compared with the full table's bytes (the bind limit) instead.
        against = limit if limit >= MB else table_bytes
        rows.append(
            [
                labels[r["kind"]],
                f"{grew_peak / MB:.1f} MB",
                f"{grew / MB:.1f} MB",
                f"{limit / MB:.2f} MB" if limit else "0",
                f"{grew_peak / against:.2f}x {'limit' if against == limit else 'of the full table'}",
                f"{events / r['seconds'] / 1e3:.0f} k/s",
            ]
        )
    print_table(
        ["consumer (fresh kernel each)", "RSS peak growth", "after the run", "limit", "ratio", "followed at"], rows
    )
    window = next(r for r in results if r["kind"] == "window")
    print(f"   --window {size['window']}: df held {window['held']} rows at the end")
    samples = drift["samples"]
    runs = len(samples) - 1
    per_run = (samples[-1] - samples[0]) / runs if runs else 0.0
    print(
        f"\n   creep: {runs} short runs of {size['short']:,} events, all three consumers in one kernel: "
        f"RSS {samples[0] / MB:.1f} -> {samples[-1] / MB:.1f} MB, {per_run / MB:+.2f} MB per run "
        f"(limit 0; followers left in the registry: {drift['followers']})"
    )
    print(
        "   per run (MB): " + " ".join(f"{(b - a) / MB:+.1f}" for a, b in zip(samples, samples[1:], strict=False))
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--produce":
        produce(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    gc.collect()
    sys.exit(main())
