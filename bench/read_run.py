"""Reading a stored run's primary stream into an xarray.Dataset, against copying its bytes.

scandeck: ``cat[uid].primary.read()`` (and ``read(["det4"])``) on an embedded store,
a new Catalog object (new connection) every repetition, the OS page cache warm.
The store keeps the events as numpy column blocks beside the documents
(``sources/sqlite_columns.py``).

Limit: the bytes of the same columns (``time``, ``seq_num`` and the five float64
keys, or only ``time``, ``seq_num`` and ``det4`` for the one-key read), written
once back to back in one file, read with ``f.read()`` and wrapped by
``numpy.frombuffer``: one copy from the page cache, no decoding. A read cannot do
less. Printed beside it: that limit plus building the ``xarray.Dataset`` from the
arrays (what xarray itself costs), the documents path (``reading.collect`` over
the run's decoded documents: how this store read before the blocks, and how every
document source reads) and a msgpack decode of the same documents from one file.

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
GOAL_SMALL_SECONDS = 0.005
ONE_KEY = "det4"


def store_run(store: str, docs) -> float:
    """Write a run through ``cat.writer()``; returns the seconds it took."""
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    elapsed = time.perf_counter() - t0
    writer.close()
    cat.close()
    return elapsed


def write_columns(path: str, ds: xr.Dataset) -> dict[str, tuple[int, int, np.dtype]]:
    """The columns' bytes back to back in one file: ``{name: (offset, count, dtype)}``."""
    layout = {}
    offset = 0
    with open(path, "wb") as f:
        for name in ("time", "seq_num", *KEYS):
            arr = np.ascontiguousarray(ds[name].values)
            f.write(arr.tobytes())
            layout[name] = (offset, arr.size, arr.dtype)
            offset += arr.nbytes
    return layout


def frombuffer_limit(path: str, layout, names) -> dict[str, np.ndarray]:
    """Read the named columns' bytes (one ``read`` per column) and wrap them with ``numpy.frombuffer``."""
    out = {}
    with open(path, "rb", buffering=0) as f:
        for name in names:
            offset, count, dtype = layout[name]
            f.seek(offset)
            out[name] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    return out


def xarray_of(cols: dict[str, np.ndarray]) -> xr.Dataset:
    data = {k: ("time", v) for k, v in cols.items() if k not in ("time", "seq_num")}
    return xr.Dataset(data, coords={"time": cols["time"], "seq_num": ("time", cols["seq_num"])})


class ScandeckRead:
    """``cat[uid].primary.read(keys)`` with a new Catalog per call (made untimed in ``setup``)."""

    def __init__(self, store: str, uid: str, keys=None) -> None:
        self.store, self.uid, self.keys, self.cat = store, uid, keys, None

    def setup(self) -> None:
        if self.cat is not None:
            self.cat.close()
        self.cat = scandeck.open_catalog(self.store)
        gc.collect()

    def __call__(self) -> xr.Dataset:
        return self.cat[self.uid].primary.read(self.keys)

    def close(self) -> None:
        if self.cat is not None:
            self.cat.close()
            self.cat = None


def documents_path(store: str, uid: str) -> xr.Dataset:
    """The stream gathered from its decoded documents (the read before column blocks)."""
    from scandeck.reading import STREAM_DOCUMENTS, collect, to_xarray

    cat = scandeck.open_catalog(store)
    try:
        uids = {d["uid"] for d in cat[uid].primary.descriptors}
        return to_xarray(collect(cat.source.documents(uid, names=STREAM_DOCUMENTS, descriptors=uids), uids))
    finally:
        cat.close()


def bench_one(label: str, nx: int, ny: int, repeat: int, tmp: str, profile: bool) -> dict:
    docs = grid_scan_run(nx, ny)
    n = count_events(docs)
    uid = docs[0][1]["uid"]
    store = os.path.join(tmp, f"store-{nx}x{ny}")
    write_s = store_run(store, docs)
    mp_path = os.path.join(tmp, f"run-{nx}x{ny}.msgpack")
    write_msgpack_file(mp_path, docs)
    del docs
    gc.collect()

    reader, one = ScandeckRead(store, uid), ScandeckRead(store, uid, [ONE_KEY])
    try:
        reader.setup()
        ds = reader()
        assert ds.sizes["time"] == n, (ds.sizes, n)
        xr.testing.assert_identical(ds, documents_path(store, uid))  # the blocks read as the documents do
        col_path = os.path.join(tmp, f"columns-{nx}x{ny}.bin")
        layout = write_columns(col_path, ds)
        col_bytes = sum(count * dtype.itemsize for _, count, dtype in layout.values())
        all_names, one_names = list(layout), ["time", "seq_num", ONE_KEY]
        np.testing.assert_array_equal(frombuffer_limit(col_path, layout, all_names)[ONE_KEY], ds[ONE_KEY].values)

        def msgpack_decode():
            with open(mp_path, "rb") as f:
                return list(msgpack.Unpacker(f, raw=False))

        times = interleaved(
            {
                "sd": (reader, reader.setup),
                "lim": (lambda: frombuffer_limit(col_path, layout, all_names), gc.collect),
                "ref": (lambda: xarray_of(frombuffer_limit(col_path, layout, all_names)), gc.collect),
                "sd_one": (one, one.setup),
                "lim_one": (lambda: frombuffer_limit(col_path, layout, one_names), gc.collect),
            },
            repeat,
        )
        # Timed apart: they build hundreds of MB of Python objects, and interleaved they
        # would leave the allocator handing the fast cases freshly mapped pages.
        times.update(
            interleaved(
                {
                    "docs": (lambda: documents_path(store, uid), gc.collect),
                    "msgpack": (msgpack_decode, gc.collect),
                },
                max(3, repeat // 5),
            )
        )
    finally:
        reader.close()
        one.close()

    res = {k: median(v) for k, v in times.items()}
    res.update(label=label, n=n, write=write_s, bytes=col_bytes)
    print(
        f"\n-- {label}: {n:,} events, stored by cat.writer() in {fmt_time(write_s)} "
        f"({n / write_s:,.0f} events/s); columns {col_bytes / 1e6:.2f} MB; median of {repeat}, cases interleaved"
    )
    print_table(
        ["", "median", "per event", "vs limit"],
        [
            ("scandeck read()", fmt_time(res["sd"]), fmt_time(res["sd"] / n), fmt_ratio(res["sd"], res["lim"])),
            ("limit: read + frombuffer, 7 columns", fmt_time(res["lim"]), fmt_time(res["lim"] / n), "1.00x"),
            (
                "  reference: limit + xarray.Dataset",
                fmt_time(res["ref"]),
                fmt_time(res["ref"] / n),
                fmt_ratio(res["ref"], res["lim"]),
            ),
            (
                f"scandeck read(['{ONE_KEY}'])",
                fmt_time(res["sd_one"]),
                fmt_time(res["sd_one"] / n),
                fmt_ratio(res["sd_one"], res["lim_one"]),
            ),
            (
                f"limit: time, seq_num, {ONE_KEY}",
                fmt_time(res["lim_one"]),
                fmt_time(res["lim_one"] / n),
                "1.00x",
            ),
            (
                "documents path (collect over documents)",
                fmt_time(res["docs"]),
                fmt_time(res["docs"] / n),
                fmt_ratio(res["docs"], res["lim"]),
            ),
            (
                "msgpack decode of the documents",
                fmt_time(res["msgpack"]),
                fmt_time(res["msgpack"] / n),
                fmt_ratio(res["msgpack"], res["lim"]),
            ),
        ],
    )
    print(
        f"   read() is {fmt_ratio(res['docs'], res['sd'])} faster than the documents path, "
        f"{fmt_ratio(res['msgpack'], res['sd'])} faster than decoding the documents; "
        f"one key costs {100 * res['sd_one'] / res['sd']:.0f}% of all five"
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
    banner("read_run: cat[uid].primary.read() vs reading the columns' bytes", args.quick)
    if args.quick:
        sizes = [("grid_scan 10x10", 10, 10, 3), ("grid_scan 50x40", 50, 40, 3)]
    else:
        sizes = [("grid_scan 75x75", 75, 75, 31), ("grid_scan 400x250", 400, 250, 15)]
    results = []
    with tempfile.TemporaryDirectory(prefix="scandeck-bench-read-") as tmp:
        for label, nx, ny, repeat in sizes:
            results.append(bench_one(label, nx, ny, repeat, tmp, profile=not args.quick))

    print("\n-- summary")
    print_table(
        ["run", "events", "scandeck", "frombuffer limit", "ratio", f"<= {GOAL_RATIO:g}x limit", "documents path"],
        [
            (
                r["label"],
                f"{r['n']:,}",
                fmt_time(r["sd"]),
                fmt_time(r["lim"]),
                fmt_ratio(r["sd"], r["lim"]),
                verdict(r["sd"] <= GOAL_RATIO * r["lim"]),
                fmt_time(r["docs"]),
            )
            for r in results
        ],
    )
    big, small = results[-1], results[0]
    print(
        f"   goal 'within {GOAL_RATIO:g}x of numpy.frombuffer' on {big['n']:,} events: "
        f"{verdict(big['sd'] <= GOAL_RATIO * big['lim'])} ({fmt_ratio(big['sd'], big['lim'])})"
    )
    if args.quick:
        print("   goal '<5 ms for 5,625 events': not measured (--quick uses smaller runs)")
    else:
        ok = verdict(small["sd"] < GOAL_SMALL_SECONDS)
        print(f"   goal '<5 ms for 5,625 events': {ok} ({fmt_time(small['sd'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
