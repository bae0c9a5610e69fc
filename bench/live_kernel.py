"""Live data into a real kernel: scandeck's store → follower → kernel loop, against bluesky's 0MQ path.

scandeck: a producer process writes events through ``cat.writer()`` into an
SQLite store; a real IPython kernel (driven through jupyter_client like
JupyterLab) runs ``scandeck.live(...).stream(...).sink(...)`` and a ``%%bind``
cell on the same run.

Peer, in the same run: bluesky's 0MQ path. The producer feeds the same
composed documents to ``bluesky.callbacks.zmq.Publisher``, a
``bluesky.callbacks.zmq.Proxy`` forwards them (its own process, free loopback
ports), and a ``RemoteDispatcher`` in a consumer process delivers them to a
callback.

Measured:

1. throughput, write → pipeline: N events as ``event_page``s and N' single
   events written at full speed; events/s from the first write to the moment
   the last row reaches the kernel's sink (resp. the peer's callback);
2. latency at 1 kHz: single events paced at 1,000/s, each carrying its wall
   time; ``time.time() - row["time"]`` in the sink, p50/p99;
3. coalescing: executions of a ``%%bind`` cell and IOPub messages per 10k
   events, with 10k events/s flowing;
4. round trip of an unrelated cell (``1+1``) while 10k events/s flow into a
   ``%%bind`` cell and a live pipeline, against the same kernel with nothing
   flowing.

All processes run on this host and share its clock. Every process started
here is killed by pid on exit, on error and on SIGTERM.

Usage: ``python bench/live_kernel.py [--quick]``
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    banner,
    fail_soft,
    fmt_rate,
    fmt_time,
    median,
    parse_args,
    percentile,
    print_table,
    verdict,
)
from _kernel import Child, Kernel, cleanup, emit  # noqa: E402

HERE = os.path.abspath(__file__)

FULL = {
    "pages_n": 100_000,
    "page": 1000,
    "single_n": 20_000,
    "repeat": 3,
    "repeat_pages": 5,
    "lat_seconds": 4.0,
    "lat_repeat": 2,
    "flow_rate": 10_000,
    "coalesce_seconds": 3.0,
    "rt_rounds": 2,
    "rt_base_seconds": 3.0,
    "rt_flow_seconds": 6.0,
}
QUICK = {
    "pages_n": 5_000,
    "page": 500,
    "single_n": 2_000,
    "repeat": 1,
    "repeat_pages": 1,
    "lat_seconds": 1.0,
    "lat_repeat": 1,
    "flow_rate": 10_000,
    "coalesce_seconds": 0.5,
    "rt_rounds": 1,
    "rt_base_seconds": 1.0,
    "rt_flow_seconds": 1.5,
}
GOALS = {"pages": 100_000.0, "lat_p99": 0.050, "rt_p99": 0.100}
LIVE_INTERVAL = 0.02  # scandeck.live's default: at most one emission per 20 ms
FAST_INTERVAL = 0.001  # the same path with (almost) no batching: what the transport itself costs


# =================================================================== child processes
#
# ``python live_kernel.py child ROLE ...``: the producer (either sink), the 0MQ
# proxy and the 0MQ consumer. They talk to the benchmark through _kernel.Child.


def _grid(total: int) -> tuple[int, int]:
    ny = 100 if total >= 100 else total
    return max(1, -(-total // ny)), ny


def child_produce(sink_kind: str, target: str, rate: float, page: int, total: int) -> None:
    """Write events on command. ``rate`` 0: pre-composed documents at full speed.

    Commands on stdin: ``go N`` writes the next N events (then reports
    ``t_first``/``t_last``, wall times just before the first and after the last
    write); ``stop`` writes the stop document and ends. The 0MQ producer sends
    probe documents until its first command, so that the subscription is known
    to be in place (0MQ PUB drops what it sends before that).
    """
    import queue
    import threading

    import event_model
    from _common import _descriptor_args, _grid_rows, _grid_start_metadata, grid_scan_run

    if sink_kind == "scandeck":
        import scandeck

        sink = scandeck.open_catalog(target).writer()
    else:
        from bluesky.callbacks.zmq import Publisher

        sink = Publisher(target)
    nx, ny = _grid(total)
    if rate > 0:
        bundle = event_model.compose_run(metadata=_grid_start_metadata(nx, ny, 1), validate=False)
        desc = bundle.compose_descriptor(**_descriptor_args(time.time()), validate=False)
        head = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
        rows = _grid_rows(nx, ny, 0.0, 0)
        stop_doc = None
        body: Any = None
    else:
        docs = grid_scan_run(nx, ny, page_size=page if page > 1 else 0, t0=time.time())
        head, body, stop_doc = docs[:2], iter(docs[2:-1]), docs[-1][1]

    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("stop")

    threading.Thread(target=read_stdin, daemon=True).start()
    if sink_kind == "scandeck":
        for name, doc in head:
            sink(name, doc)
        emit({"uid": head[0][1]["uid"]})
    else:
        emit({"uid": head[0][1]["uid"]})
        probe = {"uid": "bench-probe", "time": 0.0, "bench_probe": True}
        while commands.empty():
            sink("start", probe)
            time.sleep(0.02)
        for name, doc in head:
            sink(name, doc)
    seq = 0
    while True:
        command = commands.get()
        if command == "stop":
            break
        n = int(command.split()[1])
        t_first = time.time()
        written = 0
        if rate > 0:
            t0 = time.monotonic()
            for _ in range(n):
                _, data, _ = next(rows)
                seq += 1
                now = time.time()
                sink(
                    "event",
                    desc.compose_event(
                        data=data, timestamps=dict.fromkeys(data, now), seq_num=seq, time=now, validate=False
                    ),
                )
                written += 1
                ahead = t0 + written / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        else:
            while written < n:
                name, doc = next(body)
                sink(name, doc)
                written += len(doc["seq_num"]) if name == "event_page" else 1
        emit({"t_first": t_first, "t_last": time.time(), "n": written})
    sink("stop", stop_doc if stop_doc is not None else bundle.compose_stop(validate=False))
    close = getattr(sink, "close", None)
    if close is not None:
        close()
    emit({"stopped": True})


def child_proxy() -> None:
    from bluesky.callbacks.zmq import Proxy

    proxy = Proxy("tcp://127.0.0.1", "tcp://127.0.0.1")  # random free ports, loopback only
    emit({"in": proxy.in_port, "out": proxy.out_port})
    proxy.start()


def child_consume(address: str, expected: int, latency: bool) -> None:
    """RemoteDispatcher → a callback counting rows (and their latency); report at stop."""
    import threading

    from bluesky.callbacks.zmq import RemoteDispatcher

    st: dict[str, Any] = {
        "n": 0,
        "t_done": None,
        "t_last": None,
        "lat": [],
        "probed": False,
        "activity": time.monotonic(),
    }
    lock = threading.Lock()

    def finish(reason: str) -> None:
        with lock:
            emit({"n": st["n"], "t_done": st["t_done"], "t_last": st["t_last"], "lat": st["lat"], "end": reason})
            os._exit(0)

    def callback(name: str, doc: dict[str, Any]) -> None:
        now = time.time()
        st["activity"] = time.monotonic()
        if name == "event":
            st["n"] += 1
            if latency:
                st["lat"].append(now - doc["time"])
        elif name == "event_page":
            st["n"] += len(doc["seq_num"])
            if latency:
                st["lat"].extend(now - t for t in doc["time"])
        elif name == "start" and doc.get("bench_probe"):
            if not st["probed"]:
                st["probed"] = True
                emit({"probed": True})
            return
        elif name == "stop":
            finish("stop")
        else:
            return
        st["t_last"] = now
        if st["t_done"] is None and st["n"] >= expected:
            st["t_done"] = now

    def watchdog() -> None:  # 0MQ PUB drops at its high-water mark: the stop may never come
        while True:
            time.sleep(0.5)
            if st["n"] and time.monotonic() - st["activity"] > 5:
                finish("quiet for 5 s")

    threading.Thread(target=watchdog, daemon=True).start()
    dispatcher = RemoteDispatcher(address)
    dispatcher.subscribe(callback)
    dispatcher.start()


def child_main(argv: list[str]) -> None:
    role, *args = argv
    if role == "produce":
        child_produce(args[0], args[1], float(args[2]), int(args[3]), int(args[4]))
    elif role == "proxy":
        child_proxy()
    elif role == "consume":
        child_consume(args[0], int(args[1]), args[2] == "1")
    else:
        raise SystemExit(f"unknown role {role!r}")


# ======================================================================== scandeck side

# Kernel code. The sink records wall times and latencies in ``_bench``; the
# benchmark reads them back with an execute request once the producer is done.
KERNEL_STATE = """
import time as _bench_time
import scandeck as _bench_sd
_bench = {{"N": {n}, "rows": 0, "t_done": None, "t_last": None, "lat": [], "exec": 0}}

def _bench_rows(row):
    now = _bench_time.time()
    b = _bench
    b["rows"] += 1
    if {latency}:
        b["lat"].append(now - row["time"])
    b["t_last"] = now
    if b["t_done"] is None and b["rows"] >= b["N"]:
        b["t_done"] = now

def _bench_pages(page):
    now = _bench_time.time()
    b = _bench
    times = page["time"]
    b["rows"] += len(times)
    if {latency}:
        b["lat"].extend(now - t for t in times)
    b["t_last"] = now
    if b["t_done"] is None and b["rows"] >= b["N"]:
        b["t_done"] = now
"""

# scandeck.live(target, catalog=...): a uid is looked up in that catalog, and the
# Live follows that run until it ends.
KERNEL_LIVE = """
_bench_live = _bench_sd.live({uid!r}, catalog=_bench_sd.open_catalog({store!r}), interval={interval})
_bench_sink = _bench_live.stream(name="primary", pages={pages}).sink(_bench_pages if {pages} else _bench_rows)
"""

# What a user might bind: the row count and a statistic over every row so far.
KERNEL_BIND = """%%bind
_bench["exec"] += 1
print(len(df), "rows; det4 mean", df["det4"].mean() if "det4" in df else None)
"""

KERNEL_RESULT = '{k: _bench[k] for k in ("rows", "t_done", "t_last", "exec")}'


class ScandeckTrial:
    """A fresh store, a producer process writing to it, a fresh kernel following it."""

    def __init__(self, root: str, tag: str, *, total: int, rate: float = 0, page: int = 1) -> None:
        self.dir = os.path.join(root, tag)
        os.makedirs(self.dir)
        self.store = os.path.join(self.dir, "store")
        import scandeck

        scandeck.open_catalog(self.store).close()
        self.producer = Child(
            f"producer {tag}", [HERE, "child", "produce", "scandeck", self.store, str(rate), str(page), str(total)]
        )
        self.kernel = Kernel(
            {"SCANDECK_DATA": os.path.join(self.dir, "data"), "SCANDECK_BIND": "live"},
            log=os.path.join(self.dir, "kernel.log"),
        )
        self.uid = self.producer.get(120)["uid"]
        self.kernel.execute(f"%load_ext scandeck\n%catalog {self.store}")

    def setup(
        self, *, n: int, latency: bool, live: bool, pages: bool, bind: bool, interval: float = LIVE_INTERVAL
    ) -> None:
        self.kernel.execute(KERNEL_STATE.format(n=n, latency=latency))
        if live:
            self.kernel.execute(KERNEL_LIVE.format(uid=self.uid, store=self.store, pages=pages, interval=interval))
        if bind:
            self.kernel.execute(KERNEL_BIND)
        time.sleep(0.5)  # the followers have read the start and the descriptor and wait

    def write(self, n: int, timeout: float = 120) -> dict[str, Any]:
        self.producer.send(f"go {n}")
        return self.producer.get(timeout)

    def wait_done(self, timeout: float = 60) -> dict[str, Any]:
        """Poll (every 0.1 s, only once the producer is done) until the sink saw every row."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.kernel.value(KERNEL_RESULT)
            if got["t_done"] is not None or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def close(self) -> None:
        try:
            if self.producer.proc.poll() is None:
                self.producer.send("stop")
                self.producer.wait(30)
        finally:
            self.producer.kill()
            self.kernel.close()


def scandeck_throughput(root: str, tag: str, n: int, page: int) -> dict[str, Any]:
    trial = ScandeckTrial(root, tag, total=n, page=page)
    try:
        trial.setup(n=n, latency=False, live=True, pages=True, bind=True)
        t_go = time.time()
        wrote = trial.write(n)
        got = trial.wait_done()
        time.sleep(0.5)  # let the bound cell show the final state
        t_end = time.time()
        iopub = count_iopub(trial.kernel, t_go, t_end)
        got["exec"] = trial.kernel.value('_bench["exec"]')
    finally:
        trial.close()
    return {
        "n": n,
        "seen": got["rows"],
        "t_first": wrote["t_first"],
        "t_write": wrote["t_last"],
        "t_done": got["t_done"],
        "exec": got["exec"],
        **iopub,
    }


def scandeck_latency(root: str, tag: str, seconds: float, interval: float = LIVE_INTERVAL) -> dict[str, Any]:
    n = int(1000 * seconds)
    trial = ScandeckTrial(root, tag, total=n, rate=1000)
    try:
        trial.setup(n=n, latency=True, live=True, pages=False, bind=False, interval=interval)
        wrote = trial.write(n)
        got = trial.wait_done()
        lat = trial.kernel.value('_bench["lat"]')
    finally:
        trial.close()
    return {"n": n, "seen": got["rows"], "lat": lat, "rate": n / (wrote["t_last"] - wrote["t_first"])}


def count_iopub(kernel: Kernel, t0: float, t1: float) -> dict[str, int]:
    """IOPub messages in a window that our own requests did not cause (the bound cell's)."""
    ours = ("status", "execute_input", "execute_result", "stream", "error")
    msgs = [
        m
        for m in kernel.iopub_between(t0, t1)
        if not (m["msg_type"] in ours and m.get("parent_header", {}).get("msg_id") in kernel.own)
    ]
    updates = [m for m in msgs if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"]
    outputs = [m for m in updates if "outputs" in m["content"]["data"].get("state", {})]
    return {"iopub": len(msgs), "comm_updates": len(updates), "output_updates": len(outputs)}


def scandeck_coalescing(root: str, rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    trial = ScandeckTrial(root, "coalesce", total=n, rate=rate)
    try:
        trial.setup(n=n, latency=False, live=False, pages=False, bind=True)
        t_go = time.time()
        wrote = trial.write(n)
        time.sleep(1.0)  # every coalesced update of the run is out
        t_end = time.time()
        counts = count_iopub(trial.kernel, t_go, t_end)
        execs = trial.kernel.value('_bench["exec"]')
    finally:
        trial.close()
    return {"n": n, "exec": execs, "rate": n / (wrote["t_last"] - wrote["t_first"]), **counts}


def scandeck_round_trip(root: str, rate: float, rounds: int, base_s: float, flow_s: float) -> dict[str, Any]:
    """``1+1`` round trips, alternating: nothing flowing / ``rate`` events/s flowing."""
    n_flow = int(rate * flow_s)
    trial = ScandeckTrial(root, "round-trip", total=rounds * n_flow, rate=rate)
    base: list[float] = []
    flow: list[float] = []
    achieved = []
    try:
        trial.setup(n=rounds * n_flow, latency=False, live=True, pages=False, bind=True)
        for _ in range(3):
            trial.kernel.execute("1+1")
        for _ in range(rounds):
            end = time.monotonic() + base_s
            while time.monotonic() < end:
                base.append(trial.kernel.execute("1+1")["elapsed"])
            trial.producer.send(f"go {n_flow}")
            while (wrote := trial.producer.poll()) is None:
                flow.append(trial.kernel.execute("1+1")["elapsed"])
            achieved.append(wrote["n"] / (wrote["t_last"] - wrote["t_first"]))
            time.sleep(0.3)
        got = trial.wait_done(timeout=30)
    finally:
        trial.close()
    return {
        "base": base,
        "flow": flow,
        "rate": min(achieved),
        "seen": got["rows"],
        "n": rounds * n_flow,
        "exec": got["exec"],
    }


# ---------------------------------------------------------------- kernel-side breakdown

# Instruments a kernel (before the binding and the Live exist): time of each
# bound-cell execution and each Live drain on the loop, calls the follower
# threads make to the source, CPU per thread, and the lateness of a 5 ms timer
# on the kernel loop (how long the loop was held). Internals: may move.
KERNEL_PROBE = r"""
import collections as _bp_c, os as _bp_os, threading as _bp_th, time as _bp_t
import scandeck.livestream as _bp_live
from scandeck.notebook import binding as _bp_binding
from scandeck.sources import sqlite as _bp_sqlite
_probe = {"bind": [], "drain": [], "lag": [], "calls": _bp_c.Counter(), "secs": _bp_c.Counter(), "on": False}

def _bp_who():
    return _bp_th.current_thread().name.rsplit("-", 1)[0]

def _bp_timed(cls, name, key):
    orig = getattr(cls, name)
    def timed(self, *a, **k):
        t0 = _bp_t.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            if _probe["on"]:
                _probe[key].append(_bp_t.perf_counter() - t0)
    setattr(cls, name, timed)

def _bp_counted(cls, name):
    orig = getattr(cls, name)
    def counted(self, *a, **k):
        t0 = _bp_t.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            if _probe["on"]:
                key = _bp_who() + " " + name
                _probe["calls"][key] += 1
                _probe["secs"][key] += _bp_t.perf_counter() - t0
    setattr(cls, name, counted)

_bp_timed(_bp_binding.Binding, "_execute", "bind")
_bp_timed(_bp_live.Live, "_drain", "drain")
for _bp_name in ("get", "change_token", "runs_since", "wait"):
    _bp_counted(_bp_sqlite.SQLiteSource, _bp_name)
_bp_documents = _bp_sqlite.SQLiteSource.documents

def _bp_reading(self, *a, **k):
    n = 0
    try:
        for entry in _bp_documents(self, *a, **k):
            n += 1
            yield entry
    finally:
        if _probe["on"]:
            _probe["calls"][_bp_who() + " reads"] += 1
            _probe["calls"][_bp_who() + " documents"] += n

_bp_sqlite.SQLiteSource.documents = _bp_reading

def _bp_cpu():
    out = {}
    for t in _bp_th.enumerate():
        with open(f"/proc/self/task/{t.native_id}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out[t.name] = (int(fields[11]) + int(fields[12])) / _bp_os.sysconf("SC_CLK_TCK")
    return out

_bp_loop = get_ipython().kernel.io_loop

def _bp_tick(due=[None]):
    now = _bp_t.perf_counter()
    if _probe["on"] and due[0] is not None:
        _probe["lag"].append(now - due[0])
    due[0] = now + 0.005
    _bp_loop.call_later(0.005, _bp_tick)

_bp_loop.add_callback(_bp_tick)

def _bp_frame():
    binding = next(iter(get_ipython().magics_manager.registry["ScandeckMagics"]._bindings.values()))
    kept = binding.kept
    t0 = _bp_t.perf_counter()
    kept.frame()
    return [len(kept), _bp_t.perf_counter() - t0]
"""


def scandeck_breakdown(root: str, rate: float, seconds: float) -> dict[str, Any]:
    """The round-trip setup once more, instrumented, with no requests sent while events flow."""
    n = int(rate * seconds)
    trial = ScandeckTrial(root, "breakdown", total=n, rate=rate)
    try:
        trial.kernel.execute(KERNEL_PROBE)
        trial.setup(n=n, latency=False, live=True, pages=False, bind=True)
        cpu0 = trial.kernel.value("_bp_cpu()")
        trial.kernel.execute('_probe["on"] = True')
        wrote = trial.write(n)
        trial.kernel.execute('_probe["on"] = False')
        cpu1 = trial.kernel.value("_bp_cpu()")
        probe = trial.kernel.value("_probe")
        rows, frame_s = trial.kernel.value("_bp_frame()")
    finally:
        trial.close()
    elapsed = wrote["t_last"] - wrote["t_first"]
    cpu = {name: (cpu1[name] - cpu0.get(name, 0.0)) / elapsed for name in cpu1}
    return {
        "elapsed": elapsed,
        "rate": wrote["n"] / elapsed,
        "cpu": cpu,
        "probe": probe,
        "frame_rows": rows,
        "frame_s": frame_s,
    }


def report_breakdown(b: dict[str, Any]) -> None:
    p, el = b["probe"], b["elapsed"]
    print(
        f"\n-- where the kernel's time goes: the setup of 4 again, instrumented, {fmt_rate(b['rate'])} single "
        f"events for {el:.1f} s, no requests meanwhile"
    )
    busy = sorted(((v, k) for k, v in b["cpu"].items() if v >= 0.01), reverse=True)
    print("   CPU per kernel thread (share of one core): " + ", ".join(f"{k} {100 * v:.0f}%" for v, k in busy))
    calls, secs = p["calls"], p["secs"]
    rows = []
    for who in ("scandeck-bind", "scandeck-live"):
        reads = calls.get(f"{who} reads", 0)
        if not reads:
            continue
        gets = calls.get(f"{who} get", 0)
        polls = calls.get(f"{who} change_token", 0) + calls.get(f"{who} runs_since", 0)
        rows.append(
            (
                who,
                f"{reads / el:,.0f}",
                f"{calls.get(f'{who} documents', 0) / reads:.1f}",
                f"{polls / el:,.0f}",
                f"{gets / el:,.0f}",
                fmt_time(secs.get(f"{who} get", 0) / gets) if gets else "-",
                f"{calls.get(f'{who} wait', 0) / el:,.0f}",
            )
        )
    print_table(
        [
            "follower thread",
            "reads/s",
            "docs/read",
            "token+runs_since/s",
            "status checks/s",
            "per check",
            "waits/s",
        ],
        rows,
    )
    loop_rows = []
    for label, key in (
        ("%%bind executions", "bind"),
        ("live drains (rows → streamz)", "drain"),
        ("lateness of a 5 ms loop timer", "lag"),
    ):
        xs = p[key]
        if xs:
            loop_rows.append(
                (
                    label,
                    len(xs),
                    ms(percentile(xs, 50)),
                    ms(percentile(xs, 99)),
                    ms(max(xs)),
                    f"{100 * sum(xs) / el:.0f}%" if key != "lag" else "",
                )
            )
    print_table(["on the kernel loop", "count", "p50", "p99", "max", "loop share"], loop_rows)
    print(
        f"   the %%bind cell's df is rebuilt from the row lists each execution: table.frame() of "
        f"{b['frame_rows']:,} rows took {ms(b['frame_s'])} ({1e6 * b['frame_s'] / max(b['frame_rows'], 1):.2f} "
        f"µs/row)"
    )


# ============================================================================ the peer


class Peer:
    """bluesky's 0MQ path: one Proxy process for the whole benchmark, a consumer per trial."""

    def __init__(self) -> None:
        self.proxy = Child("0MQ proxy", [HERE, "child", "proxy"])
        ports = self.proxy.get(60)
        self.in_address, self.out_address = ports["in"], ports["out"]

    def trial(self, n: int, *, rate: float = 0, page: int = 1, latency: bool = False) -> dict[str, Any]:
        consumer = Child(
            "0MQ consumer", [HERE, "child", "consume", self.out_address, str(n), "1" if latency else "0"]
        )
        producer = Child(
            "0MQ producer", [HERE, "child", "produce", "zmq", self.in_address, str(rate), str(page), str(n)]
        )
        try:
            producer.get(120)
            consumer.get(120)  # the first probe arrived: publisher → proxy → consumer is up
            wrote = _send_go(producer, n)
            producer.send("stop")
            got = consumer.get(120)
            producer.wait(30)
            consumer.wait(30)
        finally:
            producer.kill()
            consumer.kill()
        return {
            "n": n,
            "seen": got["n"],
            "t_first": wrote["t_first"],
            "t_write": wrote["t_last"],
            "t_done": got["t_done"] if got["t_done"] is not None else got["t_last"],
            "lat": got["lat"],
            "rate": n / (wrote["t_last"] - wrote["t_first"]),
        }

    def close(self) -> None:
        self.proxy.kill()


def _send_go(producer: Child, n: int) -> dict[str, Any]:
    producer.send(f"go {n}")
    while True:
        msg = producer.get(120)
        if "t_first" in msg:
            return msg


# ============================================================================ reporting


def rate_of(r: dict[str, Any]) -> float:
    if r["t_done"] is None:
        return 0.0
    return r["seen"] / (r["t_done"] - r["t_first"])


def ms(x: float) -> str:
    return fmt_time(x)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    size = QUICK if args.quick else FULL
    banner(
        "live_kernel: store → kernel pipeline vs bluesky 0MQ (Publisher → Proxy → RemoteDispatcher)", args.quick
    )
    root = tempfile.mkdtemp(prefix="scandeck-bench-live-")

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    t_start = time.monotonic()
    peer: Peer | None = None
    try:
        peer = Peer()
        results = run_all(root, size, peer)
    finally:
        if peer is not None:
            peer.close()
        cleanup()
        shutil.rmtree(root, ignore_errors=True)
    report(results, size)
    print(f"\n   (whole run: {time.monotonic() - t_start:.0f} s)")
    return 0


def run_all(root: str, size: dict[str, Any], peer: Peer) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: [] for k in ("sd_pages", "peer_pages", "sd_single", "peer_single", "sd_lat", "sd_lat_fast", "peer_lat")
    }
    # 1 + 5: throughput, the contenders taking turns (order rotating from round to round),
    # after one untimed scandeck trial (a warm-up, as in _common.interleaved).
    if size["repeat"] > 1:
        scandeck_throughput(root, "warm-up", size["pages_n"], size["page"])
    k = 0
    for r in range(max(size["repeat"], size["repeat_pages"])):
        cases = [
            ("sd_pages", lambda tag: scandeck_throughput(root, tag, size["pages_n"], size["page"])),
            ("peer_pages", lambda tag: peer.trial(size["pages_n"], page=size["page"])),
            ("sd_single", lambda tag: scandeck_throughput(root, tag, size["single_n"], 1)),
            ("peer_single", lambda tag: peer.trial(size["single_n"])),
        ]
        if r >= size["repeat"]:  # the page trials are short (~0.2 s): more of them
            cases = cases[:2]
        shift = r % len(cases)
        for label, fn in cases[shift:] + cases[:shift]:
            k += 1
            out[label].append(fn(f"{label}-{k}"))
            print(f"   . {label} #{r + 1}: {fmt_rate(rate_of(out[label][-1]))}", file=sys.stderr)
    # 2 + 5: latency at 1 kHz: scandeck with live's default interval, with 1 ms, and the peer.
    secs = size["lat_seconds"]
    for r in range(size["lat_repeat"]):
        cases2 = [
            ("sd_lat", lambda tag: scandeck_latency(root, tag, secs)),
            ("sd_lat_fast", lambda tag: scandeck_latency(root, tag, secs, FAST_INTERVAL)),
            ("peer_lat", lambda tag: peer.trial(int(1000 * secs), rate=1000, latency=True)),
        ]
        shift = r % len(cases2)
        for label, fn in cases2[shift:] + cases2[:shift]:
            k += 1
            out[label].append(fn(f"{label}-{k}"))
            print(f"   . {label} #{r + 1}: p99 {ms(percentile(out[label][-1]['lat'], 99))}", file=sys.stderr)
    # 3: coalescing.
    out["coalesce"] = scandeck_coalescing(root, size["flow_rate"], size["coalesce_seconds"])
    # 4: round trip.
    out["rt"] = scandeck_round_trip(
        root, size["flow_rate"], size["rt_rounds"], size["rt_base_seconds"], size["rt_flow_seconds"]
    )
    # Where the kernel's time goes (reaches into scandeck internals: skipped if they moved).
    out["breakdown"] = fail_soft(
        "kernel breakdown", lambda: scandeck_breakdown(root, size["flow_rate"], size["rt_flow_seconds"])
    )
    return out


def report(res: dict[str, Any], size: dict[str, Any]) -> None:
    def thr(label: str) -> tuple[float, str]:
        rates = [rate_of(r) for r in res[label]]
        seen = min(r["seen"] for r in res[label])
        n = res[label][0]["n"]
        note = "" if seen == n else f" (delivered {seen:,} of {n:,})"
        return median(rates), note

    print(
        f"\n-- 1 + 5. throughput, write → pipeline (median of {size['repeat_pages']} (pages) and "
        f"{size['repeat']} (single) trials; events/s from the first write to the last row in the sink)"
    )
    rows = []
    for sd, pe, desc in (
        ("sd_pages", "peer_pages", f"{size['pages_n']:,} events as event_pages of {size['page']:,}"),
        ("sd_single", "peer_single", f"{size['single_n']:,} single events, full speed"),
    ):
        (a, na), (b, nb) = thr(sd), thr(pe)
        rows.append((desc, fmt_rate(a) + na, fmt_rate(b) + nb, f"{a / b:.2f}x" if b else "n/a"))
    print_table(["case", "scandeck (kernel sink)", "peer (0MQ callback)", "scandeck/peer"], rows)
    print("   ratio > 1: scandeck faster")
    for label in ("sd_pages", "sd_single"):
        rs = res[label]
        write_s = median([r["t_write"] - r["t_first"] for r in rs])
        tail = median([r["t_done"] - r["t_write"] for r in rs if r["t_done"] is not None] or [float("nan")])
        print(
            f"   {label}: writing alone {fmt_rate(rs[0]['n'] / write_s)}; the kernel saw the last row "
            f"{ms(tail)} after the last write; %%bind ran {median([r['exec'] for r in rs]):.0f} times, "
            f"{median([r['iopub'] for r in rs]):.0f} IOPub messages"
        )
    for label in ("peer_pages", "peer_single"):
        rs = res[label]
        write_s = median([r["t_write"] - r["t_first"] for r in rs])
        print(f"   {label}: publishing alone {fmt_rate(rs[0]['n'] / write_s)}")

    print(
        f"\n-- 2 + 5. latency at 1 kHz (single events paced at 1,000/s, {size['lat_seconds']:g} s per trial, "
        f"{size['lat_repeat']} trial(s) each, samples pooled); ratio > 1: scandeck slower"
    )
    sd_lat = [x for r in res["sd_lat"] for x in r["lat"]]
    fast_lat = [x for r in res["sd_lat_fast"] for x in r["lat"]]
    pe_lat = [x for r in res["peer_lat"] for x in r["lat"]]
    rows = []
    for q in (50, 90, 99, 100):
        a, f, b = percentile(sd_lat, q), percentile(fast_lat, q), percentile(pe_lat, q)
        rows.append((f"p{q}" if q < 100 else "max", ms(a), ms(f), ms(b), f"{a / b:.1f}x", f"{f / b:.1f}x"))
    print_table(
        [
            "",
            f"scandeck, live() default ({LIVE_INTERVAL * 1e3:g} ms)",
            f"scandeck, interval={FAST_INTERVAL:g}",
            "peer (0MQ callback)",
            "default/peer",
            "1 ms/peer",
        ],
        rows,
    )
    print(
        f"   samples: {len(sd_lat):,} / {len(fast_lat):,} / {len(pe_lat):,}. live() batches rows: at most one "
        f"emission per interval, so a row waits up to one interval on top of the transport"
    )

    c = res["coalesce"]
    per = 10_000 / c["n"]
    print(
        f"\n-- 3. coalescing: one %%bind cell (--every 0.2 default), {c['n']:,} single events "
        f"at {fmt_rate(c['rate'])}"
    )
    print_table(
        ["per 10k events", "count"],
        [
            ("cell executions", f"{c['exec'] * per:.1f}"),
            ("IOPub comm_msg updates", f"{c['comm_updates'] * per:.1f}"),
            ("  of which Output.outputs updates", f"{c['output_updates'] * per:.1f}"),
            ("IOPub messages, all", f"{c['iopub'] * per:.1f}"),
        ],
    )

    rt = res["rt"]
    b50, b99 = percentile(rt["base"], 50), percentile(rt["base"], 99)
    f50, f99 = percentile(rt["flow"], 50), percentile(rt["flow"], 99)
    print(
        f"\n-- 4. round trip of `1+1` (request → idle), %%bind cell + live row pipeline active; "
        f"flowing: single events at {fmt_rate(rt['rate'])} (slowest round)"
    )
    print_table(
        ["", "p50", "p99", "max", "samples"],
        [
            ("nothing flowing (baseline)", ms(b50), ms(b99), ms(max(rt["base"])), len(rt["base"])),
            (f"{size['flow_rate']:,} events/s flowing", ms(f50), ms(f99), ms(max(rt["flow"])), len(rt["flow"])),
            ("ratio flowing/baseline", f"{f50 / b50:.2f}x", f"{f99 / b99:.2f}x", "", ""),
        ],
    )
    print(f"   the pipeline saw {rt['seen']:,} of {rt['n']:,} rows; %%bind ran {rt['exec']} times")

    if res.get("breakdown"):
        report_breakdown(res["breakdown"])

    pages_rate = thr("sd_pages")[0]
    lat99 = percentile(sd_lat, 99)
    print("\n-- goals")
    print_table(
        ["goal", "measured", "verdict"],
        [
            ("≥ 100k events/s via pages", fmt_rate(pages_rate), verdict(pages_rate >= GOALS["pages"])),
            ("p99 latency < 50 ms at 1 kHz", ms(lat99), verdict(lat99 < GOALS["lat_p99"])),
            ("round-trip p99 < 100 ms while 10k events/s flow", ms(f99), verdict(f99 < GOALS["rt_p99"])),
        ],
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
