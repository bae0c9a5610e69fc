"""scandeck against Tiled (databroker 2's engine), on the same documents, against one real Tiled server.

One Tiled server is started here, in a child process, set up as tiled's
``SimpleTiledServer`` sets one up (SQLite catalog, files in a temporary directory,
HTTP on a free loopback port, its in-memory streaming cache so WebSocket
subscriptions work), with tables in SQLite; ``--tables duckdb`` runs
``SimpleTiledServer`` itself, whose tables are in DuckDB (its driver crashed the
server when a follower read a table TiledWriter was appending to). The documents
come from ``event_model.compose_run`` (``_common.grid_scan_run``: what
``grid_scan([det4], motor1, ..., motor2, ...)`` emits) and, for the search part,
``search.make_runs`` (start + stop documents with varied metadata).

Three contenders per operation, taking turns (``_common.interleaved``):

* **scandeck**: the embedded store (``scandeck.open_catalog(DIR)``, SQLite);
* **peer**: Tiled's own Python client on the server (``tiled.client.from_uri``;
  writes through bluesky-tiled-plugins' ``TiledWriter`` at its default batch size,
  10,000 events per write; reads ``run["primary"].read()``; searches with
  ``tiled.queries.Key``);
* **scandeck over Tiled**: ``scandeck.open_catalog("tiled+http://...")`` on the same
  server and runs (the issue's goal: at most 1.2x the peer; reported, not asserted).

Operations: write a 75x75 grid_scan (5,625 events) into a new store / a new
container each time; read it back (all columns); read a 400x250 one (100,000
events); count ``plan_name == "scan" and sample == "Ni"`` over N runs; find the
newest run; the first page of 20 matches, newest first. Writing the N runs
through TiledWriter costs ~0.1-0.25 s per run (several writer threads share it);
N is 2,000, printed with the fill time.

Live: a RunEngine (ophyd.sim ``det``, ``count`` with a delay) writes a run while
a thread of this process follows it with ``cat.follow()`` then ``run.follow()``;
per event, the time from the event's own ``time`` to its arrival in the
follower, p50/p99: into the embedded store, and into Tiled through scandeck's
writer with ``batch_size=1`` (each event written as it comes), followed over
Tiled's WebSocket subscription.

Usage: ``python bench/vs_tiled.py [--quick] [--tables sqlite|duckdb]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    banner,
    count_events,
    fmt_ratio,
    fmt_time,
    free_port,
    grid_scan_run,
    interleaved,
    median,
    parse_args,
    percentile,
    print_table,
)
from search import QUERY, make_runs  # noqa: E402

import scandeck  # noqa: E402

API_KEY = "benchkey"
SPEC = ("CatalogOfBlueskyRuns", "3.0")

#: --tables duckdb: tiled's SimpleTiledServer as it comes (tables in DuckDB).
DUCKDB_SERVER = """
import sys
from tiled.server import SimpleTiledServer
server = SimpleTiledServer(directory=sys.argv[1], api_key=sys.argv[2], port=int(sys.argv[3]))
print(server.uri, flush=True)
sys.stdin.read()
server.close()
"""

#: --tables sqlite (default): what SimpleTiledServer serves, tables in SQLite. DuckDB's
#: driver crashed the server when a follower read a table TiledWriter was appending to.
SQLITE_SERVER = """
import os, sys, threading
from pathlib import Path
import uvicorn
from tiled.catalog import from_uri
from tiled.config import Authentication, StreamingCacheConfig
from tiled.server.app import build_app
root = Path(sys.argv[1])
(root / "data").mkdir(parents=True, exist_ok=True)
catalog = from_uri(
    f"sqlite:///{root / 'catalog.db'}",
    writable_storage=[str(root / "data"), f"sqlite:///{root / 'tables.sqlite'}"],
    init_if_not_exists=True,
    cache_config=StreamingCacheConfig(uri="memory").model_dump(),
)
app = build_app(catalog, authentication=Authentication(single_user_api_key=sys.argv[2]))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


class TiledServer:
    """tiled's SimpleTiledServer in a child process on a free port; stopped by its own pid."""

    def __init__(self, directory: str, tables: str = "sqlite") -> None:
        self.dir, self.port, self.tables = directory, free_port(), tables
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None

    def start(self) -> TiledServer:
        import httpx

        log = os.path.join(self.dir, "tiled.log")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SQLITE_SERVER if self.tables == "sqlite" else DUCKDB_SERVER,
                    self.dir,
                    API_KEY,
                    str(self.port),
                ],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the tiled server did not start:\n{open(log).read()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def root(self) -> Any:
        from tiled.client import from_uri

        return from_uri(self.base, api_key=API_KEY)

    def new_container(self, root: Any) -> str:
        from tiled.structures.core import Spec

        name = f"raw-{uuid.uuid4().hex[:10]}"
        root.create_container(name, specs=[Spec(*SPEC)])
        return name

    def uri(self, name: str, **options: Any) -> str:
        extra = "".join(f"&{k}={v}" for k, v in options.items())
        return f"tiled+{self.base}/{name}?api_key={API_KEY}{extra}"


def write_all(writer: Any, docs: list) -> None:
    for name, doc in docs:
        writer(name, doc)


def tiled_writer(root: Any, name: str, **kwargs: Any) -> Any:
    from bluesky_tiled_plugins import TiledWriter

    return TiledWriter(root[name], **kwargs)


# -- write / read of one run ----------------------------------------------------------------


def bench_write(server: TiledServer, root: Any, tmp: str, docs: list, repeat: int) -> dict[str, float]:
    """One run's documents into a new store / container each time (setup untimed)."""
    state: dict[str, Any] = {}
    opened: list[Any] = []

    def fresh_store() -> None:
        cat = scandeck.open_catalog(os.path.join(tmp, f"w-{uuid.uuid4().hex[:8]}"))
        opened.append(cat)
        state["sd"] = cat.writer()

    def fresh_tiled() -> None:
        state["peer"] = tiled_writer(root, server.new_container(root))

    def fresh_sd_tiled() -> None:
        cat = scandeck.open_catalog(server.uri(server.new_container(root), batch_size=10_000))
        opened.append(cat)
        state["sdt"] = cat.writer()

    def run(key: str) -> Any:
        def go() -> None:
            write_all(state[key], docs)
            close = getattr(state[key], "close", None)
            if close is not None:
                close()

        return go

    cases = {
        "sd": (run("sd"), fresh_store),
        "peer": (run("peer"), fresh_tiled),
        "sdt": (run("sdt"), fresh_sd_tiled),
    }
    times = interleaved(cases, repeat, warmup=0)
    for cat in opened:
        cat.close()
    return {k: median(v) for k, v in times.items()}


def store_run(server: TiledServer, root: Any, tmp: str, docs: list) -> tuple[str, str, str]:
    """The run written once into a store and once into a container: (store dir, container, uid)."""
    store = os.path.join(tmp, f"r-{uuid.uuid4().hex[:8]}")
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    write_all(writer, docs)
    writer.close()
    cat.close()
    name = server.new_container(root)
    write_all(tiled_writer(root, name), docs)
    return store, name, docs[0][1]["uid"]


def bench_read(server: TiledServer, root: Any, tmp: str, docs: list, repeat: int) -> dict[str, float]:
    import numpy as np

    store, name, uid = store_run(server, root, tmp, docs)
    cat = scandeck.open_catalog(store)
    tcat = scandeck.open_catalog(server.uri(name))
    container = root[name]
    a = cat[uid].primary.read()
    b = container[uid]["primary"].read()
    c = tcat[uid].primary.read()
    for key in ("det4", "motor1", "motor2"):  # the same numbers from all three, or no figures
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(c[key]), err_msg=key)
    cases = {
        "sd": (lambda: cat[uid].primary.read(), None),
        "peer": (lambda: container[uid]["primary"].read(), None),
        "sdt": (lambda: tcat[uid].primary.read(), None),
    }
    times = interleaved(cases, repeat)
    cat.close()
    tcat.close()
    return {k: median(v) for k, v in times.items()}


# -- searches over many runs -----------------------------------------------------------------


def fill(server: TiledServer, root: Any, tmp: str, runs: list, threads: int) -> tuple[str, str, float, float]:
    """The runs into a store (one writer) and a container (``threads`` TiledWriters); the fill times."""
    store = os.path.join(tmp, "search-store")
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    t0 = time.perf_counter()
    for start, stop in runs:
        writer("start", start)
        writer("stop", stop)
    sd_s = time.perf_counter() - t0
    writer.close()
    cat.close()

    name = server.new_container(root)
    errors: list[BaseException] = []

    def part(k: int) -> None:
        try:
            w = tiled_writer(root, name)
            for start, stop in runs[k::threads]:
                w("start", start)
                w("stop", stop)
        except BaseException as err:  # noqa: BLE001 - reported below, the figures would be wrong
            errors.append(err)

    t0 = time.perf_counter()
    workers = [threading.Thread(target=part, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    tiled_s = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"filling the Tiled container failed: {errors[0]!r}") from errors[0]
    return store, name, sd_s, tiled_s


def bench_search(
    server: TiledServer, root: Any, tmp: str, n: int, threads: int, repeat: int
) -> tuple[dict[str, dict[str, float]], str]:
    from tiled.queries import Key

    runs = make_runs(n)
    store, name, sd_s, tiled_s = fill(server, root, tmp, runs, threads)
    note = (
        f"{n:,} runs (start+stop): scandeck store filled in {fmt_time(sd_s)}, Tiled through "
        f"{threads} TiledWriter threads in {fmt_time(tiled_s)} ({fmt_time(tiled_s / n)} per run)"
    )
    expect = sum(1 for s, _ in runs if s.get("plan_name") == "scan" and s.get("sample") == "Ni")
    newest = max(runs, key=lambda r: r[0]["time"])[0]["uid"]
    cat = scandeck.open_catalog(store)
    tcat = scandeck.open_catalog(server.uri(name))
    container = root[name]

    def peer_hits() -> Any:
        return container.search(Key("start.plan_name") == "scan").search(Key("start.sample") == "Ni")

    def peer_newest() -> str:
        return container.sort(("start.time", -1)).keys().first()

    def peer_page() -> list:
        return list(peer_hits().sort(("start.time", -1)).items()[:20])

    # Every answer checked before timing.
    assert len(cat.search(QUERY)) == len(peer_hits()) == len(tcat.search(QUERY)) == expect
    assert cat[-1].uid == peer_newest() == tcat[-1].uid == newest
    page = [s.uid for s in cat.search(QUERY).summaries(limit=20)]
    assert page == [k for k, _ in peer_page()] == [s.uid for s in tcat.search(QUERY).summaries(limit=20)]

    ops = {
        "count": (lambda: len(cat.search(QUERY)), lambda: len(peer_hits()), lambda: len(tcat.search(QUERY))),
        "newest": (lambda: cat[-1].uid, peer_newest, lambda: tcat[-1].uid),
        "page": (
            lambda: cat.search(QUERY).summaries(limit=20),
            peer_page,
            lambda: tcat.search(QUERY).summaries(limit=20),
        ),
    }
    out = {}
    for op, (sd, peer, sdt) in ops.items():
        times = interleaved({"sd": (sd, None), "peer": (peer, None), "sdt": (sdt, None)}, repeat)
        out[op] = {k: median(v) for k, v in times.items()}
    cat.close()
    tcat.close()
    return out, note


# -- follow latency --------------------------------------------------------------------------


def follow_latency(catalog_uri: str, writer_uri: str, points: int, delay: float) -> list[float]:
    """Seconds from each event's ``time`` to its arrival in a follower (cat.follow, run.follow)."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det

    follower_cat = scandeck.open_catalog(catalog_uri)
    after = follower_cat.source.latest_seq()
    follower_cat.source.change_token()  # subscribe (or choose polling) before the run starts
    live = getattr(follower_cat.source, "_live", None)  # TiledSource internals: which wake-ups
    if live is not None:
        how = "WebSocket subscription" if getattr(live, "subscribed", False) else "polling (no subscription)"
        print(f"   follower over Tiled wakes up by: {how}")
    lags: list[float] = []
    seqs: list[int] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            for run in follower_cat.follow(after=after, timeout=60):
                for name, doc in run.follow(timeout=60):
                    if name == "event":
                        lags.append(time.time() - doc["time"])
                        seqs.append(doc["seq_num"])
                return
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
            errors.append(err)

    thread = threading.Thread(target=follow, name="bench-follower", daemon=True)
    thread.start()
    writer_cat = scandeck.open_catalog(writer_uri)
    writer = writer_cat.writer()
    RE = RunEngine({}, context_managers=[])  # noqa: N806 - the name every bluesky user knows
    token = RE.subscribe(writer)
    try:
        RE(bp.count([det], points, delay=delay))
    finally:
        RE.unsubscribe(token)
        writer.close()
    thread.join(120)
    writer_cat.close()
    follower_cat.close()
    if errors:
        raise errors[0]
    if sorted(seqs) != list(range(1, points + 1)):
        twice = sorted({n for n in seqs if seqs.count(n) > 1})
        missing = sorted(set(range(1, points + 1)) - set(seqs))
        raise RuntimeError(
            f"the follower saw {len(seqs)} events of the {points} written "
            f"(seq_num twice: {twice or 'none'}; missing: {missing or 'none'})"
        )
    return lags


class SubscriptionLags:
    """Tiled's own live path: bluesky-tiled-plugins' stream subscription, the lag of each new row.

    A class, not a closure: the subscription holds its callbacks by weak reference.
    """

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.seqs: list[int] = []
        self.done = threading.Event()
        self.points = 0

    def __call__(self, update: Any) -> None:
        raw = update.update
        if not hasattr(raw, "payload"):  # array updates: this run has none
            return
        now = time.time()
        table = raw.data()  # every column of the new rows (update.data() keeps only data keys)
        for t, n in zip(table["time"], table["seq_num"], strict=True):
            self.lags.append(now - float(t))
            self.seqs.append(int(n))
        if len(self.seqs) >= self.points:
            self.done.set()


def subscription_latency(root: Any, name: str, points: int, delay: float) -> list[float]:
    """The peer of :func:`follow_latency`: TiledWriter (batch_size=1) -> ``subscribe_to_streams``."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from bluesky_tiled_plugins.streaming import subscribe_to_streams
    from ophyd.sim import det

    container = root[name]
    sink = SubscriptionLags()
    sink.points = points
    # start=0: replay what the server's cache holds, so a table's first rows, written
    # before the subscription reaches the new table, are not missed (the container is new).
    subscription = subscribe_to_streams(container, sink, streams=None, start=0)
    try:
        RE = RunEngine({}, context_managers=[])  # noqa: N806 - the name every bluesky user knows
        token = RE.subscribe(tiled_writer(root, name, batch_size=1))
        try:
            RE(bp.count([det], points, delay=delay))
        finally:
            RE.unsubscribe(token)
        sink.done.wait(30)
    finally:
        subscription.disconnect()
    if sorted(sink.seqs) != list(range(1, points + 1)):
        raise RuntimeError(f"Tiled's subscription delivered seq_nums {sorted(sink.seqs)} of 1..{points}")
    return sink.lags


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument(
            "--tables",
            choices=("sqlite", "duckdb"),
            default="sqlite",
            help="where the server keeps tables (duckdb: SimpleTiledServer as it comes)",
        )

    args = parse_args(__doc__.splitlines()[0], options)
    banner("vs_tiled: scandeck's store and scandeck over Tiled vs Tiled's own client", args.quick)
    if args.quick:
        small, big, n_runs, repeat, points, threads = (10, 10), (20, 25), 40, 3, 5, 2
    else:
        small, big, n_runs, repeat, points, threads = (75, 75), (400, 250), 2_000, 10, 50, 4
    delay = 0.1
    from importlib.metadata import version

    print(f"   tiled {version('tiled')}, bluesky-tiled-plugins {version('bluesky-tiled-plugins')}")
    with tempfile.TemporaryDirectory(prefix="scandeck-bench-tiled-") as tmp:
        os.makedirs(os.path.join(tmp, "tiled"))
        t0 = time.perf_counter()
        server = TiledServer(os.path.join(tmp, "tiled"), args.tables).start()
        print(
            f"   Tiled server (SimpleTiledServer's setup, tables in {args.tables}, child process) "
            f"up in {fmt_time(time.perf_counter() - t0)}"
        )
        root = server.root()
        try:
            rows: list[tuple[str, dict[str, float]]] = []
            one = grid_scan_run(*small)
            n1 = count_events(one)
            rows.append((f"write {n1:,} events", bench_write(server, root, tmp, one, max(2, repeat // 3))))
            rows.append((f"read {n1:,} events", bench_read(server, root, tmp, one, repeat)))
            many = grid_scan_run(*big, seed=1)
            n2 = count_events(many)
            rows.append((f"read {n2:,} events", bench_read(server, root, tmp, many, max(2, repeat // 2))))
            del many
            found, note = bench_search(server, root, tmp, n_runs, threads, repeat * 2)
            rows.append((f"count a search over {n_runs:,} runs", found["count"]))
            rows.append(("newest run", found["newest"]))
            rows.append(("first page of 20", found["page"]))

            print(f"\n-- {note}; median of interleaved repetitions")
            print_table(
                [
                    "operation",
                    "scandeck store",
                    "peer: tiled client",
                    "peer/scandeck",
                    "scandeck over Tiled",
                    "over Tiled/peer (goal <= 1.2x)",
                ],
                [
                    (
                        label,
                        fmt_time(t["sd"]),
                        fmt_time(t["peer"]),
                        fmt_ratio(t["peer"], t["sd"]),
                        fmt_time(t["sdt"]),
                        fmt_ratio(t["sdt"], t["peer"]),
                    )
                    for label, t in rows
                ],
            )
            print("   peer/scandeck > 1: scandeck's store is that many times faster than Tiled's client")
            print("   writes: TiledWriter at its default batch (10,000 events); scandeck over Tiled the same")

            lat_store = follow_latency(
                os.path.join(tmp, "follow-store"), os.path.join(tmp, "follow-store"), points, delay
            )
            name = server.new_container(root)
            try:
                lat_tiled = follow_latency(server.uri(name), server.uri(name, batch_size=1), points, delay)
            except Exception as err:
                code = server.proc.poll()
                state = "is still running" if code is None else f"exited with code {code}"
                log = open(os.path.join(server.dir, "tiled.log"), errors="replace").read()[-3000:]
                raise RuntimeError(
                    f"following a live run over Tiled failed ({type(err).__name__}: {err}); "
                    f"the Tiled server {state}; the end of its log:\n{log}"
                ) from err
            lat_peer = subscription_latency(root, server.new_container(root), points, delay)
            print(
                f"\n-- follow latency: RunEngine count of {points} events, {delay} s apart; "
                "event time -> arrival in cat.follow()/run.follow() in another thread "
                "(peer: TiledWriter -> bluesky-tiled-plugins' subscribe_to_streams callback)"
            )
            print_table(
                ["follower", "p50", "p99", "p50 vs embedded", "p50 vs peer"],
                [
                    (
                        "embedded store (SQLite)",
                        fmt_time(percentile(lat_store, 50)),
                        fmt_time(percentile(lat_store, 99)),
                        "1.00x",
                        fmt_ratio(percentile(lat_store, 50), percentile(lat_peer, 50)),
                    ),
                    (
                        "scandeck over Tiled, batch_size=1, WebSocket",
                        fmt_time(percentile(lat_tiled, 50)),
                        fmt_time(percentile(lat_tiled, 99)),
                        fmt_ratio(percentile(lat_tiled, 50), percentile(lat_store, 50)),
                        fmt_ratio(percentile(lat_tiled, 50), percentile(lat_peer, 50)),
                    ),
                    (
                        "peer: Tiled's subscribe_to_streams",
                        fmt_time(percentile(lat_peer, 50)),
                        fmt_time(percentile(lat_peer, 99)),
                        fmt_ratio(percentile(lat_peer, 50), percentile(lat_store, 50)),
                        "1.00x",
                    ),
                ],
            )
        finally:
            root.context.close()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
