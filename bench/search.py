"""Searching and looking up runs in a store of 100,000 runs.

The store is filled with start + stop documents through ``cat.writer()`` (the
time that takes is printed), with varied metadata: plan_name among
count/scan/grid_scan/rel_scan, ~20 samples, operators, num_points, proposals,
scan_id and time increasing.

Measured (p50 and p99 over >= 50 repetitions; the three contenders take turns
in blocks of repeat/5 calls, so that one never runs right after another has
flushed the CPU caches, yet all see the same load):

* count: ``len(cat.search('plan_name == "scan" and sample == "Ni"'))``
* first page: ``cat.search(...).summaries(limit=20)``
* ``cat[-1]``, ``cat[scan_id]``, ``cat[uid_prefix]`` (8 hex digits)

scandeck answers the count and the page from its index of start-document values
(``start_values``, :mod:`scandeck.sources.sqlite_index`); the goals of issue 14 (count
p50 under 20 ms, first page under 2 ms) are printed as limits beside them. The fill
time includes writing that index; the index's own cost is measured at the end by
building it again for every stored run (what opening a store made before the index
does once).

Peers, in the same run:

* plain SQL on the same SQLite file (a second connection):
  ``SELECT count(*) FROM runs WHERE json_extract(start,'$.plan_name')='scan'
  AND json_extract(start,'$.sample')='Ni'``, and the equivalent page/lookup
  queries (their JSON decoded, as scandeck returns decoded documents);
* a Python loop over the start documents loaded in memory (list of dicts).

Usage: ``python bench/search.py [--quick]``
"""

from __future__ import annotations

import gc
import json
import os
import random
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import event_model  # noqa: E402
from _common import (  # noqa: E402
    banner,
    fail_soft,
    fmt_ratio,
    fmt_time,
    interleaved,
    median,
    parse_args,
    percentile,
    print_profile,
    print_table,
)

import scandeck  # noqa: E402
from scandeck.queries import parse  # noqa: E402

GOALS = {"count": 20e-3, "first page (20)": 2e-3}  # issue 14: p50 limits at 100,000 runs

QUERY = 'plan_name == "scan" and sample == "Ni"'
PLANS = ("count", "scan", "grid_scan", "rel_scan")
SAMPLES = (
    "Ni",
    "Cu",
    "Fe",
    "Si",
    "LaB6",
    "CeO2",
    "Al2O3",
    "Au",
    "Ag",
    "Pt",
    "Pd",
    "Ti",
    "ZnO",
    "GaAs",
    "SrTiO3",
    "MgO",
    "NaCl",
    "KBr",
    "TiO2",
    "Y2O3",
)
OPERATORS = ("jdoe", "asmith", "mchen", "rpatel", "lgarcia")
MOTORS = ("motor", "motor1", "motor2", "sample_x", "sample_y", "theta")
DETECTORS = ("det", "det4", "diode", "I0", "It")

RUN_COLUMNS = (
    "id, uid, scan_id, time, start, stop, exit_status, num_events, num_documents, "
    "writer_host, writer_pid, writer_token, writer_open"
)
SQL_WHERE = "json_extract(start,'$.plan_name')='scan' AND json_extract(start,'$.sample')='Ni'"


def make_runs(n: int, seed: int = 1) -> list[tuple[dict, dict]]:
    """``n`` (start, stop) pairs, composed with event_model; time and scan_id increase."""
    rng = random.Random(seed)
    t = 1.7e9
    runs = []
    for i in range(n):
        plan = rng.choice(PLANS)
        num = 1 if plan == "count" and rng.random() < 0.5 else rng.choice((5, 11, 21, 41, 101, 121))
        motors = [] if plan == "count" else (["motor1", "motor2"] if plan == "grid_scan" else [rng.choice(MOTORS)])
        dets = sorted(rng.sample(DETECTORS, rng.randint(1, 3)))
        md = {
            "scan_id": i + 1,
            "plan_name": plan,
            "plan_type": "generator",
            "plan_args": {"detectors": dets, "num": num, **({"motor": motors[0]} if motors else {})},
            "detectors": dets,
            "motors": motors,
            "num_points": num,
            "num_intervals": num - 1,
            "sample": rng.choice(SAMPLES),
            "operator": rng.choice(OPERATORS),
            "proposal": f"GU-{300000 + rng.randrange(40)}",
            "beamline_id": "BL-7",
            "hints": {"dimensions": [[motors or ["time"], "primary"]]},
            "versions": {"bluesky": "1.15.1", "ophyd": "1.11.2"},
        }
        bundle = event_model.compose_run(metadata=md, time=t, validate=False)
        t += 30 + rng.random() * 60
        status = "success" if rng.random() < 0.95 else rng.choice(("abort", "fail"))
        stop = bundle.compose_stop(exit_status=status, time=t, validate=False)
        t += rng.random() * 10
        runs.append((bundle.start_doc, stop))
    return runs


def fill_store(store: str, runs) -> float:
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    t0 = time.perf_counter()
    for start, stop in runs:
        writer("start", start)
        writer("stop", stop)
    elapsed = time.perf_counter() - t0
    close = getattr(writer, "close", None)
    if close is not None:
        close()
    cat.close()
    return elapsed


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    banner("search: queries and lookups over stored runs vs plain SQL and a Python loop", args.quick)
    n_runs = 2_000 if args.quick else 100_000
    repeat = 50 if args.quick else 60
    rng = random.Random(7)

    with tempfile.TemporaryDirectory(prefix="scandeck-bench-search-") as tmp:
        store = os.path.join(tmp, "store")
        t0 = time.perf_counter()
        runs = make_runs(n_runs)
        compose_s = time.perf_counter() - t0
        fill_s = fill_store(store, runs)
        print(
            f"\n-- store: {n_runs:,} runs (start+stop) composed in {fmt_time(compose_s)}; "
            f"written through cat.writer() in {fmt_time(fill_s)} "
            f"= {fmt_time(fill_s / n_runs)} per run, {2 * n_runs / fill_s:,.0f} documents/s"
        )
        uids = [s["uid"] for s, _ in runs]
        del runs
        gc.collect()

        cat = scandeck.open_catalog(store)
        conn = sqlite3.connect(os.path.join(store, "scandeck.sqlite"))
        db_mb = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)) / 1e6

        t0 = time.perf_counter()
        starts = [json.loads(row[0]) for row in conn.execute("SELECT start FROM runs ORDER BY id")]
        load_s = time.perf_counter() - t0
        gc.collect()
        gc.freeze()  # the benchmark's own 100k dicts: no GC pauses charged to whoever runs next
        print(
            f"   store size {db_mb:.1f} MB; loading every start document into Python "
            f"(SELECT + json.loads) takes {fmt_time(load_s)} (once, untimed below)"
        )

        # Every answer checked against the others before timing.
        expect = sum(1 for s in starts if s.get("plan_name") == "scan" and s.get("sample") == "Ni")
        assert len(cat.search(QUERY)) == expect
        assert conn.execute("SELECT count(*) FROM runs WHERE " + SQL_WHERE).fetchone()[0] == expect

        scan_ids = [rng.randrange(1, n_runs + 1) for _ in range(1000)]
        prefixes = [rng.choice(uids)[:8] for _ in range(1000)]
        it = {"sid": iter(scan_ids * 100), "pfx": iter(prefixes * 100)}
        picked: dict[str, object] = {}

        def pick(kind):  # a fresh key per call, the same key for all three peers of a round
            def setup():
                picked[kind] = next(it[kind])

            return setup

        def sql_rows(sql, params=()):
            rows = conn.execute(sql, params).fetchall()
            return [(r, json.loads(r[4]), json.loads(r[5]) if r[5] else None) for r in rows]

        def py_page():
            out = []
            for s in reversed(starts):  # starts are in insertion (= time) order
                if s.get("plan_name") == "scan" and s.get("sample") == "Ni":
                    out.append(s)
                    if len(out) == 20:
                        break
            return out

        page_sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE {SQL_WHERE} ORDER BY time DESC, id DESC LIMIT 20"
        count_sql = f"SELECT count(*) FROM runs WHERE {SQL_WHERE}"
        last_sql = f"SELECT {RUN_COLUMNS} FROM runs ORDER BY time DESC, id DESC LIMIT 1"
        sid_sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE scan_id = ? ORDER BY time DESC, id DESC LIMIT 1"
        pfx_sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE uid >= ? AND uid < ? ORDER BY uid LIMIT 2"
        groups = {
            "count": {
                "scandeck": (lambda: len(cat.search(QUERY)), None),
                "plain SQL": (lambda: conn.execute(count_sql).fetchone()[0], None),
                "Python loop": (
                    lambda: sum(1 for s in starts if s.get("plan_name") == "scan" and s.get("sample") == "Ni"),
                    None,
                ),
            },
            "first page (20)": {
                "scandeck": (lambda: cat.search(QUERY).summaries(limit=20), None),
                "plain SQL": (lambda: sql_rows(page_sql), None),
                "Python loop": (py_page, None),
            },
            "cat[-1]": {
                "scandeck": (lambda: cat[-1], None),
                "plain SQL": (lambda: sql_rows(last_sql), None),
                "Python loop": (lambda: max(starts, key=lambda s: s["time"]), None),
            },
            "cat[scan_id]": {
                "scandeck": (lambda: cat[picked["sid"]], pick("sid")),
                "plain SQL": (lambda: sql_rows(sid_sql, (picked["sid"],)), pick("sid")),
                "Python loop": (
                    lambda: next(s for s in reversed(starts) if s.get("scan_id") == picked["sid"]),
                    pick("sid"),
                ),
            },
            "cat[uid_prefix]": {
                "scandeck": (lambda: cat[picked["pfx"]], pick("pfx")),
                "plain SQL": (lambda: sql_rows(pfx_sql, (picked["pfx"], picked["pfx"] + "\uffff")), pick("pfx")),
                "Python loop": (lambda: [s for s in starts if s["uid"].startswith(picked["pfx"])], pick("pfx")),
            },
        }
        # sanity: the lookups agree
        assert cat[-1].uid == uids[-1]
        sid = scan_ids[0]
        assert cat[sid].uid == uids[sid - 1]
        assert cat[prefixes[0]].uid.startswith(prefixes[0])
        assert [s.uid for s in cat.search(QUERY).summaries(limit=20)] == [s["uid"] for s in py_page()]

        results = {}
        for label, cases in groups.items():
            results[label] = interleaved(cases, repeat, warmup=2, block=max(1, repeat // 5))

        print(
            f"\n-- {n_runs:,} runs, query {QUERY!r} matches {expect:,}; "
            f"p50 / p99 of {repeat} repetitions; ratio = scandeck p50 / peer p50"
        )
        rows = []
        for label, times in results.items():
            sd, sq, py = (times[k] for k in ("scandeck", "plain SQL", "Python loop"))
            rows.append(
                (
                    label,
                    fmt_time(percentile(sd, 50)),
                    fmt_time(percentile(sd, 99)),
                    fmt_time(percentile(sq, 50)),
                    fmt_time(percentile(sq, 99)),
                    fmt_time(percentile(py, 50)),
                    fmt_time(percentile(py, 99)),
                    fmt_ratio(median(sd), median(sq)),
                    fmt_ratio(median(sd), median(py)),
                )
            )
        print_table(
            ["operation", "scandeck p50", "p99", "SQL p50", "p99", "loop p50", "p99", "vs SQL", "vs loop"], rows
        )
        if not args.quick:
            for label, limit in GOALS.items():
                p50 = percentile(results[label]["scandeck"], 50)
                verdict = "meets" if p50 < limit else "MISSES"
                print(
                    f"   goal {label}: p50 {fmt_time(p50)} against the limit {fmt_time(limit)}: "
                    f"ratio {fmt_ratio(p50, limit)}, {verdict} it"
                )

        fail_soft("plans", lambda: print_plans(conn, n_runs))
        if not args.quick:
            print()
            fail_soft(
                "profile",
                lambda: print_profile("scandeck count, hottest functions", lambda: len(cat.search(QUERY)), n=6),
            )
            fail_soft(
                "profile",
                lambda: print_profile(
                    "scandeck cat[uid_prefix], hottest functions", lambda: cat[prefixes[1]], n=8
                ),
            )
        conn.close()
        cat.close()
        fail_soft("index build", lambda: time_index_build(store, n_runs))
    return 0


def print_plans(conn: sqlite3.Connection, n_runs: int) -> None:
    """The SQL scandeck runs for the count and the first page, and SQLite's plans for them."""
    from scandeck.query.indexed import indexed_sql
    from scandeck.sources.sqlite_index import where_sql

    query = parse(QUERY)
    print(f"   scandeck's WHERE without the index (to_sql): {query.to_sql()[0]}")
    with where_sql(conn, query, 20) as (where, params):
        page = f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} ORDER BY time DESC, id DESC LIMIT 20"
        plan = conn.execute("EXPLAIN QUERY PLAN " + page, params).fetchall()
    shape = "probes walking runs_time" if where == indexed_sql(query, probe=True)[0] else "a driving set"
    print(f"   first page: {shape}: {where}")
    print("     plan: " + "; ".join(r[-1] for r in plan))


def time_index_build(store: str, n_runs: int) -> None:
    """Drop the index and build it again, as opening a store made before it does (its cost per run)."""
    from scandeck.sources.sqlite_index import ensure_index

    db = os.path.join(store, "scandeck.sqlite")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER start_values_pending")
    conn.execute("DROP TABLE start_values_pending")
    conn.execute("DROP TABLE start_values")
    t0 = time.perf_counter()
    ensure_index(conn)
    build_s = time.perf_counter() - t0
    rows = conn.execute("SELECT count(*) FROM start_values").fetchone()[0]
    conn.close()
    print(
        f"\n-- the start-values index: {rows:,} rows for {n_runs:,} runs; building it for every stored run "
        f"(the one-time migration of an older store) takes {fmt_time(build_s)} = "
        f"{fmt_time(build_s / n_runs)} per run, the index's share of writing a run"
    )


if __name__ == "__main__":
    sys.exit(main())
