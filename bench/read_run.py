"""Reading a stored run's primary stream into a filled xarray.Dataset.

scandeck: ``cat[uid].primary.read()`` on a SQLite store, a new Catalog object
(new connection) every repetition, the OS page cache warm.

Limit: the same documents, written once as ``msgpack.packb([name, doc])`` per
document concatenated in one file, decoded by msgpack alone
(``list(msgpack.Unpacker(f, raw=False))``): what any msgpack-based store pays
before it has built a single column.

Floor (not a goal): the limit with Python's cyclic GC paused. Materialising
every document at once makes the GC traverse a growing heap; a reader that
streams and drops documents as it goes can beat the limit above on big runs.

Reference (not a goal): that same msgpack decode plus the least one can do to
turn the events into numpy columns and an ``xarray.Dataset``; the floor for a
pipeline that keeps row-wise event documents.

Usage: ``python bench/read_run.py [--quick]``
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from _common import (  # noqa: E402
    KEYS,
    banner,
    count_events,
    fail_soft,
    fmt_ratio,
    fmt_time,
    grid_scan_run,
    interleaved,
    median,
    parse_args,
    print_profile,
    print_table,
    verdict,
    write_msgpack_file,
)

import scandeck  # noqa: E402

GOAL_RATIO = 3.0
GOAL_SMALL_SECONDS = 0.050


def store_run(store: str, docs) -> float:
    """Write a run through ``cat.writer()``; returns the seconds it took."""
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    elapsed = time.perf_counter() - t0
    close = getattr(writer, "close", None)
    if close is not None:
        close()
    cat.close()
    return elapsed


def reference_pipeline(path: str) -> xr.Dataset:
    """msgpack decode + plain list-of-columns + numpy + xarray (no validation, no filling)."""
    with open(path, "rb") as f:
        docs = list(msgpack.Unpacker(f, raw=False))
    times: list[float] = []
    seq: list[int] = []
    cols: dict[str, list[float]] = {k: [] for k in KEYS}
    for name, doc in docs:
        if name == "event":
            times.append(doc["time"])
            seq.append(doc["seq_num"])
            data = doc["data"]
            for k, col in cols.items():
                col.append(data[k])
    variables = {k: ("time", np.asarray(v, dtype=float)) for k, v in cols.items()}
    return xr.Dataset(variables, coords={"time": np.asarray(times), "seq_num": ("time", np.asarray(seq))})


def without_gc(fn):
    """``fn`` run with the cyclic garbage collector paused (reference counting still frees)."""

    def call():
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()

    return call


class ScandeckRead:
    """``cat[uid].primary.read()`` with a new Catalog per call (made untimed in ``setup``)."""

    def __init__(self, store: str, uid: str) -> None:
        self.store, self.uid, self.cat = store, uid, None

    def setup(self) -> None:
        if self.cat is not None:
            self.cat.close()
        self.cat = scandeck.open_catalog(self.store)
        gc.collect()

    def __call__(self) -> xr.Dataset:
        ds = self.cat[self.uid].primary.read()
        for var in ds.data_vars.values():  # filled: every value materialised in memory
            var.values  # noqa: B018
        return ds

    def close(self) -> None:
        if self.cat is not None:
            self.cat.close()
            self.cat = None


def breakdown(store: str, uid: str, repeat: int) -> list[tuple[str, float]]:
    """Median time of each stage of the read, timed one stage at a time.

    Uses scandeck internals (``reading.collect``/``columns``/``to_xarray`` and the
    source's ``raw_documents``); they may change, so the caller wraps this in
    :func:`fail_soft`.
    """
    from scandeck.documents import unpack
    from scandeck.reading import STREAM_DOCUMENTS, collect, columns, to_xarray
    from scandeck.sources.protocol import Entry

    stages: dict[str, list[float]] = {}

    def clock(label: str, fn, *args):
        # Stages hand each other every document at once (the real read streams
        # them); with the GC on, that pile-up alone would be charged to decoding.
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            out = fn(*args)
            stages.setdefault(label, []).append(time.perf_counter() - t0)
        finally:
            gc.enable()
        return out

    def lookup(cat):
        return cat[uid]["primary"]

    def fetch(cat, uids):
        return cat.source.raw_documents(uid, names=STREAM_DOCUMENTS, descriptors=uids)

    def decode(rows):
        return [Entry(i, name, unpack(blob)) for i, (name, blob) in enumerate(rows)]

    for _ in range(repeat + 1):
        cat = scandeck.open_catalog(store)
        gc.collect()
        stream = clock("lookup: cat[uid].primary (index row, descriptors)", lookup, cat)
        uids = {d["uid"] for d in stream.descriptors}
        rows = clock("SQLite fetch (rows with msgpack blobs)", fetch, cat, uids)
        docs = clock("msgpack decode (unpack per document)", decode, rows)
        table = clock("column building (reading.collect -> lists)", collect, docs, uids)
        # columns() is pure given the table; time it, then time to_xarray (which
        # calls columns() again) and attribute the difference to xarray.
        clock("lists -> numpy (reading.columns)", columns, table)
        clock("xarray construction (to_xarray - columns)#total", to_xarray, table)
        cat.close()
    for key in stages:  # drop the warm-up round
        stages[key] = stages[key][1:]
    total_x = stages.pop("xarray construction (to_xarray - columns)#total")
    xr_only = [max(t - c, 0.0) for t, c in zip(total_x, stages["lists -> numpy (reading.columns)"], strict=True)]
    out = [(k, median(v)) for k, v in stages.items()]
    out.append(("xarray construction (to_xarray - columns)", median(xr_only)))
    return out


def bench_one(label: str, nx: int, ny: int, repeat: int, tmp: str, profile: bool) -> dict:
    docs = grid_scan_run(nx, ny)
    n = count_events(docs)
    uid = docs[0][1]["uid"]
    store = os.path.join(tmp, f"store-{nx}x{ny}")
    write_s = store_run(store, docs)
    mp_path = os.path.join(tmp, f"run-{nx}x{ny}.msgpack")
    mp_bytes = write_msgpack_file(mp_path, docs)
    db_bytes = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store))
    del docs
    gc.collect()

    reader = ScandeckRead(store, uid)
    reader_nogc = without_gc(reader)

    def limit():
        with open(mp_path, "rb") as f:
            return list(msgpack.Unpacker(f, raw=False))

    try:
        reader.setup()
        ds = reader()
        assert ds.sizes["time"] == n, (ds.sizes, n)
        assert set(KEYS) <= set(ds.data_vars), list(ds.data_vars)
        assert len(limit()) == n + 3
        times = interleaved(
            {
                "sd": (reader, reader.setup),
                "lim": (limit, gc.collect),
                "floor": (without_gc(limit), gc.collect),
                "ref": (lambda: reference_pipeline(mp_path), gc.collect),
                "sd_nogc": (reader_nogc, reader.setup),
            },
            repeat,
        )
    finally:
        reader.close()
    ref = reference_pipeline(mp_path)
    np.testing.assert_allclose(ref["det4"].values, ds["det4"].values)

    res = {k: median(v) for k, v in times.items()}
    res.update(label=label, n=n, write=write_s, mp_bytes=mp_bytes, db_bytes=db_bytes)
    print(
        f"\n-- {label}: {n:,} events, stored by cat.writer() in {fmt_time(write_s)} "
        f"({n / write_s:,.0f} events/s); SQLite store {db_bytes / 1e6:.1f} MB, "
        f"msgpack file {mp_bytes / 1e6:.1f} MB; median of {repeat}, cases interleaved"
    )
    print_table(
        ["", "median", "per event", "vs limit"],
        [
            (
                "scandeck cat[uid].primary.read()",
                fmt_time(res["sd"]),
                fmt_time(res["sd"] / n),
                fmt_ratio(res["sd"], res["lim"]),
            ),
            ("limit: msgpack.Unpacker over one file", fmt_time(res["lim"]), fmt_time(res["lim"] / n), "1.00x"),
            (
                "  same decode, gc disabled (floor)",
                fmt_time(res["floor"]),
                fmt_time(res["floor"] / n),
                fmt_ratio(res["floor"], res["lim"]),
            ),
            (
                "reference: msgpack + numpy cols + xarray",
                fmt_time(res["ref"]),
                fmt_time(res["ref"] / n),
                fmt_ratio(res["ref"], res["lim"]),
            ),
            (
                "what-if: scandeck read, gc disabled",
                fmt_time(res["sd_nogc"]),
                fmt_time(res["sd_nogc"] / n),
                fmt_ratio(res["sd_nogc"], res["lim"]),
            ),
        ],
    )
    print(
        f"   scandeck vs gc-disabled floor: {fmt_ratio(res['sd'], res['floor'])} "
        "(Python's cyclic GC runs over every decoded dict while they pile up)"
    )
    parts = fail_soft("breakdown", lambda: breakdown(store, uid, max(3, repeat // 2)))
    if parts:
        total = sum(t for _, t in parts)
        print(
            f"   breakdown (each stage timed alone with the GC paused, median; sum {fmt_time(total)} "
            f"vs end-to-end {fmt_time(res['sd'])}):"
        )
        print_table(
            ["stage", "time", "share"],
            [(k, fmt_time(t), f"{100 * t / total:.0f}%") for k, t in parts],
            indent="     ",
        )
    if profile:
        reader = ScandeckRead(store, uid)
        try:
            reader.setup()
            fail_soft("profile", lambda: print_profile("scandeck read, hottest functions", reader))
        finally:
            reader.close()
    return res


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    banner("read_run: cat[uid].primary.read() vs msgpack decode of the same documents", args.quick)
    if args.quick:
        sizes = [("grid_scan 10x10", 10, 10, 3), ("grid_scan 50x40", 50, 40, 3)]
    else:
        sizes = [("grid_scan 75x75", 75, 75, 31), ("grid_scan 400x250", 400, 250, 9)]
    results = []
    with tempfile.TemporaryDirectory(prefix="scandeck-bench-read-") as tmp:
        for label, nx, ny, repeat in sizes:
            results.append(bench_one(label, nx, ny, repeat, tmp, profile=not args.quick))

    print("\n-- summary")
    print_table(
        ["run", "events", "scandeck", "msgpack limit", "ratio", f"<= {GOAL_RATIO:g}x limit"],
        [
            (
                r["label"],
                f"{r['n']:,}",
                fmt_time(r["sd"]),
                fmt_time(r["lim"]),
                fmt_ratio(r["sd"], r["lim"]),
                verdict(r["sd"] <= GOAL_RATIO * r["lim"]),
            )
            for r in results
        ],
    )
    small = results[0]
    print(
        f"   goal 'within {GOAL_RATIO:g}x of the limit': "
        f"{verdict(all(r['sd'] <= GOAL_RATIO * r['lim'] for r in results))}"
    )
    if args.quick:
        print("   goal '<50 ms for 5,625 events': not measured (--quick uses smaller runs)")
    else:
        print(
            f"   goal '<50 ms for 5,625 events': {verdict(small['sd'] < GOAL_SMALL_SECONDS)} "
            f"({fmt_time(small['sd'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
