"""Live documents over Redis: scandeck's writer → ``follow_run``, against raw redis-py and bluesky's 0MQ.

A producer process writes one run; the follower, in this process, reads it
as it arrives and counts documents and events until the stop document.

scandeck: the producer writes through ``cat.writer()`` of
``redis://...?prefix=P`` (validates, queues; a sender thread ships pipelined
batches through the append script); the follower iterates
``scandeck.follow.follow_run(cat.source, uid)``.

Limit, in the same run: the same documents packed with
``scandeck.documents.pack`` (the same msgpack payloads), written by raw
redis-py ``XADD`` to one stream, pipelined (a round trip per 500 documents),
read by a raw ``XREAD BLOCK`` loop that decodes each payload. Packing happens
while sending, as it must for any live publisher that gets dicts from the
RunEngine; a second variant packs beforehand (untimed) and shows the
transport alone.

Peer, in the same run: bluesky's 0MQ path. The producer feeds the same
documents to ``bluesky.callbacks.zmq.Publisher``, a ``Proxy`` forwards them
(its own process, random loopback ports), and a ``RemoteDispatcher`` in this
process delivers them to the same counting callback.

Measured:

1. throughput: N events as ``event_page``s, and N' single ``event``
   documents, written at full speed; documents/s and events/s from just before
   the producer writes the first event document to the moment the follower
   receives the stop document (the start and descriptor are written and read
   before the clock starts);
2. latency: single events at a fixed rate (1 kHz), each composed just before
   it is written with ``time`` = now; ``time.time() - doc["time"]`` on
   arrival, p50/p99.

One redis-server of our own on a free port serves every trial (flushed
between trials). All processes share this host's clock. Every process started
here is killed by its pid on exit, on error and on SIGTERM.

Usage: ``python bench/redis_live.py [--quick]``
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    RedisServer,
    banner,
    fmt_rate,
    fmt_time,
    median,
    parse_args,
    percentile,
    print_table,
    process_cpu,
    verdict,
)
from _kernel import Child, emit, kill_children  # noqa: E402

HERE = os.path.abspath(__file__)

FULL = {
    "pages_n": 100_000,
    "page": 100,
    "single_n": 10_000,
    "repeat_pages": 5,
    "repeat_single": 3,
    "lat_rate": 1000.0,
    "lat_seconds": 2.0,
    "lat_repeat": 2,
    "warmup": True,
}
QUICK = {
    "pages_n": 5_000,
    "page": 100,
    "single_n": 1_000,
    "repeat_pages": 1,
    "repeat_single": 1,
    "lat_rate": 1000.0,
    "lat_seconds": 0.3,
    "lat_repeat": 1,
    "warmup": False,
}
#: The issue's goal: scandeck at ≥ 50 % of the raw limit's events/s with event pages.
GOAL_SHARE = 0.5
#: The raw limit's pipelining: a round trip per this many documents (500 pages are ~7 MB; a
#: 1 MB cap as well measured no faster here).
RAW_BATCH = 500
#: The raw reader's XREAD COUNT (scandeck's reader asks for up to 5,000 too).
RAW_COUNT = 5000
#: A follower gives up after this long without a document (0MQ may drop the stop).
QUIET = 10.0

CONTENDERS = {"scandeck": "scandeck", "raw": "raw limit", "raw-prepacked": "raw, pre-packed", "zmq": "0MQ peer"}


# =================================================================== child processes
#
# ``python redis_live.py child ROLE ...``: the producer and the 0MQ proxy.
# They talk to the benchmark through _kernel.Child (commands on stdin,
# ``@@ <json>`` lines back).


def child_produce() -> None:
    """One producer process for every trial (it imports scandeck, bluesky and redis once).

    Per trial, commands on stdin: ``prepare KIND TARGET N PAGE RATE`` (compose
    the run, open the sink, report the uid), ``head`` (write start and
    descriptor), ``go`` (write the rest, report wall times), ``end`` (close the
    sink). ``RATE`` 0: documents composed beforehand, written at full speed;
    ``RATE`` > 0: single events paced at that rate, each composed just before it
    is written, with ``time`` = now. Between ``prepare`` and ``head`` the 0MQ
    sink sends probe documents, so that the subscription is known to be in
    place (PUB drops what it sends before that).
    """
    import gc
    import queue
    import threading

    import bluesky.callbacks.zmq  # noqa: F401 - imported once, outside any trial
    import redis  # noqa: F401

    import scandeck  # noqa: F401

    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("exit")

    threading.Thread(target=read_stdin, daemon=True).start()
    emit({"ready": True})
    while True:
        command = commands.get().split()
        if not command or command[0] != "prepare":
            return
        kind, target, total, page, rate = command[1:]
        if not produce_one(commands, kind, target, int(total), int(page), float(rate)):
            return
        gc.collect()  # the next trial does not pay for this one's garbage
        emit({"ended": True})


def produce_one(commands: Any, kind: str, target: str, total: int, page: int, rate: float) -> bool:
    """One trial (see :func:`child_produce`); False when the benchmark is gone."""
    import event_model
    from _common import _descriptor_args, _grid_rows, _grid_start_metadata, grid_scan_run

    from scandeck.documents import pack

    ny = 100 if total >= 100 else total
    nx = max(1, -(-total // ny))
    if rate > 0:
        bundle = event_model.compose_run(metadata=_grid_start_metadata(nx, ny, 1), validate=False)
        desc = bundle.compose_descriptor(**_descriptor_args(time.time()), validate=False)
        head = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
        body: list[tuple[str, Any]] = []
    else:
        docs = grid_scan_run(nx, ny, page_size=page if page > 1 else 0, t0=time.time())
        head, body = docs[:2], docs[2:]
    uid = head[0][1]["uid"]

    flush: Any = None
    if kind == "scandeck":
        import scandeck

        writer = scandeck.open_catalog(target).writer()
        sink, flush, close = writer, writer.flush, writer.close
    elif kind == "zmq":
        from bluesky.callbacks.zmq import Publisher

        publisher = Publisher(target)
        sink, close = publisher, publisher.close
    else:
        sink, flush, close = raw_sink(target, uid, paced=rate > 0, prepacked=kind == "raw-prepacked")
        if kind == "raw-prepacked":  # the transport alone: pack beforehand, untimed
            body = [(name, pack(doc)) for name, doc in body]
    try:
        emit({"uid": uid})
        if kind == "zmq":
            probe = {"uid": "bench-probe", "time": 0.0, "bench_probe": True}
            while commands.empty():
                sink("start", probe)
                time.sleep(0.02)
        if commands.get() != "head":
            return False
        for name, doc in head:
            sink(name, doc)
        if flush is not None:
            flush()
        emit({"head": True})
        if commands.get() != "go":
            return False
        cpu0 = time.process_time()
        t_first = time.time()
        if rate > 0:
            t0 = time.monotonic()
            rows = _grid_rows(nx, ny, 0.0, 0)
            for seq in range(1, total + 1):
                _, data, _ = next(rows)
                now = time.time()
                sink(
                    "event",
                    desc.compose_event(
                        data=data, timestamps=dict.fromkeys(data, now), seq_num=seq, time=now, validate=False
                    ),
                )
                ahead = t0 + seq / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            sink("stop", bundle.compose_stop(exit_status="success", validate=False))
        else:
            for name, doc in body:
                sink(name, doc)
        if flush is not None:
            flush()
        emit({"t_first": t_first, "t_last": time.time(), "cpu": time.process_time() - cpu0})
        return commands.get() == "end"  # the 0MQ sockets stay open until the follower is done
    finally:
        close()


def raw_sink(url: str, uid: str, *, paced: bool, prepacked: bool) -> tuple[Any, Any, Any]:
    """``(sink, flush, close)`` writing ``{n: name, d: pack(doc)}`` entries to one stream with XADD.

    Pipelined (a round trip per ``RAW_BATCH`` documents, and after the stop) at
    full speed; one XADD per document when ``paced``.
    """
    import redis

    from scandeck.documents import pack

    client = redis.Redis.from_url(url)
    key = raw_key(uid)
    pipe = client.pipeline(transaction=False)
    held = [0]

    def flush() -> None:
        if held[0]:
            pipe.execute()
            held[0] = 0

    def sink(name: str, doc: Any) -> None:
        blob = doc if prepacked and isinstance(doc, bytes) else pack(doc)
        if paced:
            client.xadd(key, {"n": name, "d": blob})
            return
        pipe.xadd(key, {"n": name, "d": blob})
        held[0] += 1
        if held[0] >= RAW_BATCH or name == "stop":
            flush()

    return sink, flush, client.close


def raw_key(uid: str) -> str:
    return f"bench-raw:{uid}"


def child_main(argv: list[str]) -> None:
    role, *args = argv
    if role == "produce":
        child_produce()
    elif role == "proxy":
        from live_kernel import child_proxy

        child_proxy()
    else:
        raise SystemExit(f"unknown role {role!r}")


# ======================================================================== the followers


class Tally:
    """What the follower counts: documents and events after ``go``, latencies, the stop's arrival."""

    def __init__(self, latency: bool) -> None:
        self.latency = latency
        self.docs = 0
        self.events = 0
        self.lat: list[float] = []
        self.t_stop: float | None = None
        self.t_last: float | None = None
        self.cpu0 = time.process_time()
        self.cpu = 0.0

    def add(self, name: str, doc: dict[str, Any]) -> bool:
        """Count one document; True at the stop document."""
        self.docs += 1
        if name == "event_page":
            self.events += len(doc["seq_num"])
            if self.latency:
                now = time.time()
                self.lat.extend(now - t for t in doc["time"])
        elif name == "event":
            self.events += 1
            if self.latency:
                self.lat.append(time.time() - doc["time"])
        elif name == "stop":
            self.t_stop = self.t_last = time.time()
            self.cpu = time.process_time() - self.cpu0
            return True
        self.t_last = time.time()
        return False

    def end(self) -> None:
        """No stop came: keep what arrived."""
        self.cpu = time.process_time() - self.cpu0


def drive(docs: Iterator[tuple[str, dict[str, Any]]], producer: Child, tally_of: Any) -> Tally:
    """Have the producer write the head, read it, start the clock, count until the stop."""
    producer.send("head")
    producer.get(120)
    for name, _ in docs:  # start, descriptor (``docs`` is lazy: it reads nothing before this)
        if name == "descriptor":
            break
    tally = tally_of()
    producer.send("go")
    for name, doc in docs:
        if tally.add(name, doc):
            return tally
    tally.end()
    return tally


def follow_scandeck(redis_url: str, prefix: str, producer: Child, uid: str, tally_of: Any) -> Tally:
    import scandeck
    from scandeck.follow import follow_run

    cat = scandeck.open_catalog(f"{redis_url}?prefix={prefix}")
    try:
        entries = follow_run(cat.source, uid, start=0, timeout=QUIET)
        return drive(((e.name, e.doc) for e in entries), producer, tally_of)
    finally:
        cat.close()


def follow_raw(redis_url: str, producer: Child, uid: str, tally_of: Any) -> Tally:
    """The limit's reader: XREAD BLOCK from the last id seen, each payload decoded."""
    import redis

    from scandeck.documents import unpack

    client = redis.Redis.from_url(redis_url)
    key = raw_key(uid)

    def entries() -> Iterator[tuple[str, dict[str, Any]]]:
        last: Any = b"0-0"
        quiet_since = time.monotonic()
        while True:
            got = client.xread({key: last}, count=RAW_COUNT, block=500)
            if not got:
                if time.monotonic() - quiet_since > QUIET:
                    return
                continue
            quiet_since = time.monotonic()
            for last, fields in got[0][1]:  # noqa: B007 - `last` is where the next XREAD starts
                yield fields[b"n"].decode(), unpack(fields[b"d"])

    try:
        return drive(entries(), producer, tally_of)
    finally:
        client.close()


def follow_zmq(address: str, producer: Child, tally_of: Any) -> Tally:
    """A RemoteDispatcher in this process, delivering to the counting callback until the stop."""
    import asyncio

    from bluesky.callbacks.zmq import RemoteDispatcher

    dispatcher = RemoteDispatcher(address)
    st: dict[str, Any] = {"phase": "probe", "tally": None, "activity": time.monotonic()}

    def done() -> None:
        dispatcher._task.cancel()  # ends start(); it then closes its socket and loop

    def callback(name: str, doc: dict[str, Any]) -> None:
        st["activity"] = time.monotonic()
        if st["phase"] == "body":
            if st["tally"].add(name, doc):
                done()
        elif doc.get("bench_probe"):
            if st["phase"] == "probe":  # publisher → proxy → us is up
                st["phase"] = "head"
                producer.send("head")
        elif name == "descriptor":
            st["tally"] = tally_of()
            st["phase"] = "body"
            producer.send("go")

    def watchdog() -> None:  # 0MQ PUB drops at its high-water mark: the stop may never come
        if time.monotonic() - st["activity"] > QUIET:
            done()
        else:
            dispatcher.loop.call_later(0.5, watchdog)

    dispatcher.subscribe(callback)
    dispatcher.loop.call_later(0.5, watchdog)
    try:
        dispatcher.start()
    except asyncio.CancelledError:
        pass
    tally = st["tally"]
    if tally is None:
        raise RuntimeError("0MQ: the run's descriptor never arrived")
    if tally.t_stop is None:
        tally.end()
    return tally


# ============================================================================ trials


class Bench:
    """Our redis-server, the 0MQ proxy and the producer process, for every trial."""

    def __init__(self, root: str) -> None:
        import redis

        self.redis = RedisServer(root)
        self.k = 0
        try:
            self.redis.start()
            self.client = redis.Redis.from_url(self.redis.url)
            self.proxy = Child("0MQ proxy", [HERE, "child", "proxy"])
            self.producer = Child("producer", [HERE, "child", "produce"])
            ports = self.proxy.get(60)
            self.zmq_in, self.zmq_out = ports["in"], ports["out"]
            self.producer.get(120)  # its imports are done
        except BaseException:
            self.close()
            raise

    def server_cpu(self, kind: str) -> float:
        """CPU seconds of the server in the path: redis-server (its own µs count) or the 0MQ proxy."""
        if kind == "zmq":
            return process_cpu(self.proxy.proc.pid)
        info = self.client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def trial(
        self, kind: str, n: int, *, page: int = 1, rate: float = 0.0, latency: bool = False
    ) -> dict[str, Any]:
        self.k += 1
        prefix = f"bench-{self.k}"
        target = {"scandeck": f"{self.redis.url}?prefix={prefix}", "zmq": self.zmq_in}.get(kind, self.redis.url)
        producer = self.producer
        producer.send(f"prepare {kind} {target} {n} {page} {rate}")
        uid = producer.get(120)["uid"]
        cpu0 = 0.0

        def tally_of() -> Tally:  # called once the follower has the descriptor, just before "go"
            nonlocal cpu0
            cpu0 = self.server_cpu(kind)
            return Tally(latency)

        if kind == "scandeck":
            tally = follow_scandeck(self.redis.url, prefix, producer, uid, tally_of)
        elif kind == "zmq":
            tally = follow_zmq(self.zmq_out, producer, tally_of)
        else:
            tally = follow_raw(self.redis.url, producer, uid, tally_of)
        server_cpu = self.server_cpu(kind) - cpu0
        wrote = producer.get(120)
        while "t_first" not in wrote:  # the 0MQ producer's "head" report, not read before
            wrote = producer.get(120)
        producer.send("end")
        producer.get(120)
        self.client.flushdb()
        return {
            "kind": kind,
            "n": n,
            "events": tally.events,
            "docs": tally.docs,
            "t_first": wrote["t_first"],
            "t_write": wrote["t_last"],
            "t_stop": tally.t_stop,
            "t_end": tally.t_stop or tally.t_last or wrote["t_last"],
            "lat": tally.lat,
            "cpu_producer": wrote["cpu"],
            "cpu_server": server_cpu,
            "cpu_follower": tally.cpu,
        }

    def close(self) -> None:
        """Stop what this benchmark started, each by its own pid; idempotent."""
        try:
            kill_children()  # the producer and the proxy
            if hasattr(self, "client"):
                self.client.close()
        finally:
            self.redis.stop()


def run_all(bench: Bench, size: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every scenario, the contenders taking turns (order rotating from round to round)."""
    out: dict[str, list[dict[str, Any]]] = {}
    pages_n, page, single_n = size["pages_n"], size["page"], size["single_n"]
    lat_n = int(size["lat_rate"] * size["lat_seconds"])
    scenarios = [
        (
            "pages",
            size["repeat_pages"],
            ("scandeck", "raw", "raw-prepacked", "zmq"),
            lambda kind: bench.trial(kind, pages_n, page=page),
        ),
        (
            "single",
            size["repeat_single"],
            ("scandeck", "raw", "raw-prepacked", "zmq"),
            lambda kind: bench.trial(kind, single_n),
        ),
        (
            "latency",
            size["lat_repeat"],
            ("scandeck", "raw", "zmq"),
            lambda kind: bench.trial(kind, lat_n, rate=size["lat_rate"], latency=True),
        ),
    ]
    if size["warmup"]:  # one untimed round: first-use costs in this process
        for kind in ("scandeck", "raw", "zmq"):
            bench.trial(kind, pages_n // 10, page=page)
    for scenario, repeat, kinds, fn in scenarios:
        for r in range(repeat):
            shift = r % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                res = fn(kind)
                out.setdefault(f"{scenario}/{kind}", []).append(res)
                extra = (
                    f"p99 {fmt_time(percentile(res['lat'], 99))}"
                    if res["lat"]
                    else fmt_rate(events_rate(res)) + " events"
                )
                print(f"   . {scenario} {kind} #{r + 1}: {extra}", file=sys.stderr)
    return out


# ============================================================================ reporting


def elapsed(r: dict[str, Any]) -> float:
    return r["t_end"] - r["t_first"]


def events_rate(r: dict[str, Any]) -> float:
    return r["events"] / elapsed(r)


def docs_rate(r: dict[str, Any]) -> float:
    return r["docs"] / elapsed(r)


def med(rs: list[dict[str, Any]], fn: Any) -> float:
    return median([fn(r) for r in rs])


def spread(rs: list[dict[str, Any]], fn: Any) -> str:
    xs = [fn(r) for r in rs]
    return f"{fmt_rate(min(xs))}–{fmt_rate(max(xs))}" if len(xs) > 1 else "-"


def delivered(rs: list[dict[str, Any]]) -> str:
    short = [r for r in rs if r["events"] < r["n"] or r["t_stop"] is None]
    if not short:
        return ""
    worst = min(rs, key=lambda r: r["events"])
    return f" (lost: {len(short)} of {len(rs)} trials; worst delivered {worst['events']:,} of {worst['n']:,})"


def report(res: dict[str, list[dict[str, Any]]], size: dict[str, Any]) -> float:
    """Print the tables; return scandeck's share of the limit with pages (the goal's figure)."""
    print(
        f"\n-- 1. throughput, producer process → follower in this process (median of {size['repeat_pages']} "
        f"(pages) / {size['repeat_single']} (single) trials; from just before the first event document is "
        "written to the stop document's arrival)"
    )
    rows = []
    for scenario, label in (
        ("pages", f"{size['pages_n']:,} events as event_pages of {size['page']}"),
        ("single", f"{size['single_n']:,} single events"),
    ):
        for what, fn in (("events/s", events_rate), ("documents/s", docs_rate)):
            if scenario == "single" and what == "documents/s":
                continue  # one document per event
            sd, raw, pre, zmq = (med(res[f"{scenario}/{k}"], fn) for k in CONTENDERS)
            rows.append(
                (
                    f"{label}, {what}",
                    fmt_rate(sd),
                    fmt_rate(raw),
                    fmt_rate(pre),
                    fmt_rate(zmq),
                    f"{sd / raw:.2f}x",
                    f"{sd / pre:.2f}x",
                    f"{sd / zmq:.2f}x",
                )
            )
    print_table(
        [
            "case",
            "scandeck",
            "raw limit",
            "raw, pre-packed",
            "0MQ peer",
            "scandeck/limit",
            "scandeck/pre-packed",
            "scandeck/0MQ",
        ],
        rows,
    )
    print(
        "   ratio > 1: scandeck faster. raw limit: pack + pipelined XADD, XREAD BLOCK + unpack; pre-packed: "
        "the same with the payloads packed beforehand (untimed): the transport alone"
    )
    notes = []
    for scenario in ("pages", "single"):
        for kind in CONTENDERS:
            note = delivered(res[f"{scenario}/{kind}"])
            if note:
                notes.append(f"   {scenario}, {CONTENDERS[kind]}:{note}")
    print("\n".join(notes) if notes else "   every trial delivered every document, stop included")

    print("\n   spread (min–max events/s over the trials)")
    print_table(
        ["case"] + [CONTENDERS[k] for k in CONTENDERS],
        [
            (scenario, *(spread(res[f"{scenario}/{k}"], events_rate) for k in CONTENDERS))
            for scenario in ("pages", "single")
        ],
    )

    print(
        "\n   where the time goes (medians). producer alone: its events / its writing time (first write to the "
        "last one acknowledged); tail: the stop's arrival after the producer was done (0: the follower kept "
        "up); CPU per 1,000 events of the producer process, the server (redis-server, resp. the 0MQ proxy) "
        "and the follower"
    )
    rows = []
    for scenario in ("pages", "single"):
        for kind in CONTENDERS:
            rs = res[f"{scenario}/{kind}"]
            per = 1000 / rs[0]["n"]
            rows.append(
                (
                    f"{scenario}, {CONTENDERS[kind]}",
                    fmt_rate(med(rs, lambda r: r["n"] / (r["t_write"] - r["t_first"]))),
                    fmt_time(med(rs, lambda r: max(0.0, r["t_end"] - r["t_write"]))),
                    fmt_time(med(rs, lambda r: r["cpu_producer"]) * per),
                    fmt_time(med(rs, lambda r: r["cpu_server"]) * per),
                    fmt_time(med(rs, lambda r: r["cpu_follower"]) * per),
                )
            )
    print_table(["case", "producer alone", "tail", "CPU producer", "CPU server", "CPU follower"], rows)

    lat_n = int(size["lat_rate"] * size["lat_seconds"])
    print(
        f"\n-- 2. latency: {lat_n:,} single events paced at {size['lat_rate']:,.0f}/s, {size['lat_repeat']} "
        "trial(s) each, samples pooled; arrival time.time() - the event's time (set just before writing)"
    )
    lats = {k: [x for r in res[f"latency/{k}"] for x in r["lat"]] for k in ("scandeck", "raw", "zmq")}
    rows = []
    for q in (50, 90, 99, 100):
        sd, raw, zmq = (percentile(lats[k], q) for k in ("scandeck", "raw", "zmq"))
        rows.append(
            (
                "max" if q == 100 else f"p{q}",
                fmt_time(sd),
                fmt_time(raw),
                fmt_time(zmq),
                f"{sd / raw:.1f}x",
                f"{sd / zmq:.1f}x",
            )
        )
    print_table(["", "scandeck", "raw limit", "0MQ peer", "scandeck/limit", "scandeck/0MQ"], rows)
    counts = " / ".join(f"{len(lats[k]):,}" for k in ("scandeck", "raw", "zmq"))
    print(f"   ratio > 1: scandeck slower. samples: {counts} (of {lat_n * size['lat_repeat']:,} each)")

    share = med(res["pages/scandeck"], events_rate) / med(res["pages/raw"], events_rate)
    print("\n-- goal")
    print_table(
        ["goal", "measured", "verdict"],
        [
            (
                f"≥ {GOAL_SHARE:.0%} of the raw limit with event pages",
                f"{share:.0%} of the limit",
                verdict(share >= GOAL_SHARE),
            ),
        ],
    )
    return share


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    size = QUICK if args.quick else FULL
    banner(
        "redis_live: writer → follow_run over Redis vs raw XADD/XREAD (limit) and bluesky 0MQ (peer)", args.quick
    )
    import redis

    print(f"   redis-py {redis.__version__}, hiredis {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}")
    root = tempfile.mkdtemp(prefix="scandeck-bench-redis-")

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    t_start = time.monotonic()
    bench: Bench | None = None
    try:
        bench = Bench(root)
        version = redis.Redis.from_url(bench.redis.url).info("server")["redis_version"]
        print(f"   redis-server {version} (our own, port {bench.redis.port}, no persistence)", flush=True)
        results = run_all(bench, size)
    finally:
        if bench is not None:
            bench.close()
        kill_children()
        shutil.rmtree(root, ignore_errors=True)
    report(results, size)
    print(f"\n   (whole run: {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
