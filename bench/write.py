"""Events per second through ``cat.writer()``, against raw SQLite inserts of the same rows.

scandeck: a grid_scan run's documents fed straight to ``cat.writer()`` (what
``RE.subscribe(cat.writer())`` does), into a new SQLite store each repetition:
(a) one ``event`` document per point, as the RunEngine emits them;
(b) ``event_page`` documents of 100 events.

Limits, in the same run, with the same msgpack blobs (packed beforehand,
untimed) into an identical ``documents`` table (same columns, WITHOUT ROWID,
same primary key, WAL, synchronous=NORMAL) of a new file:
(i) one INSERT + COMMIT per row: the same visibility as scandeck, each
document readable as soon as it is written;
(ii) every row in a single transaction (``executemany``): the absolute limit.

Breakdown: scandeck's validation alone (``RunOrder.check`` + ``commit`` on the
same documents; its schema part ``validate_schema`` alone), msgpack packing
alone (``scandeck.documents.pack``), and limit (i) plus the per-document
``UPDATE runs`` that keeps scandeck's index row current.

Usage: ``python bench/write.py [--quick]``
"""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import msgpack  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    banner,
    count_events,
    fail_soft,
    fmt_rate,
    fmt_ratio,
    fmt_time,
    grid_scan_run,
    interleaved,
    median,
    parse_args,
    print_profile,
    print_table,
)

import scandeck  # noqa: E402

PAGE = 100

# The same layout as scandeck's documents table; written here, not imported,
# so that the limit does not move when the store changes.
DOCUMENTS_TABLE = """
CREATE TABLE documents (
    run_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    descriptor TEXT,
    n INTEGER NOT NULL,
    doc BLOB NOT NULL,
    PRIMARY KEY (run_id, pos)
) WITHOUT ROWID;
CREATE TABLE runs (id INTEGER PRIMARY KEY, num_events INTEGER NOT NULL DEFAULT 0,
                   num_documents INTEGER NOT NULL DEFAULT 0);
INSERT INTO runs (id) VALUES (1);
"""


def rows_of(docs) -> list[tuple]:
    """``(run_id, pos, name, descriptor, n, blob)`` per document, as a store would keep them."""
    out = []
    for pos, (name, doc) in enumerate(docs):
        if name == "event":
            desc, n = doc["descriptor"], 1
        elif name == "event_page":
            desc, n = doc["descriptor"], len(doc["seq_num"])
        else:
            desc, n = None, 0
        out.append((1, pos, name, desc, n, msgpack.packb(doc, use_bin_type=True)))
    return out


def raw_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(DOCUMENTS_TABLE)
    return conn


class Fresh:
    """A new empty directory per repetition (the previous one removed), under ``root``."""

    def __init__(self, root: str, tag: str) -> None:
        self.root, self.tag, self.path, self.k = root, tag, None, 0
        self.closers: list = []

    def next(self) -> str:
        for close in self.closers:
            close()
        self.closers.clear()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        self.k += 1
        self.path = os.path.join(self.root, f"{self.tag}-{self.k}")
        os.makedirs(self.path)
        gc.collect()
        return self.path


class _NoBlocks:
    """Stands in for the writer's column blocks: the writer as it was before them (release 0.1.0)."""

    def in_transaction(self, *args) -> None:
        pass

    def committed(self, *args) -> None:
        pass

    def rolled_back(self) -> None:
        pass


class ScandeckWrite:
    def __init__(self, root: str, tag: str, docs, blocks: bool = True) -> None:
        self.dirs, self.docs, self.writer, self.blocks = Fresh(root, tag), docs, None, blocks

    def setup(self) -> None:
        path = self.dirs.next()
        cat = scandeck.open_catalog(path)
        self.writer = cat.writer()
        if not self.blocks:
            self.writer._blocks = _NoBlocks()
        self.dirs.closers += [getattr(self.writer, "close", lambda: None), cat.close]

    def __call__(self) -> None:
        writer = self.writer
        for name, doc in self.docs:
            writer(name, doc)


class RawWrite:
    def __init__(self, root: str, tag: str, rows, mode: str) -> None:
        self.dirs, self.rows, self.mode, self.conn = Fresh(root, tag), rows, mode, None

    def setup(self) -> None:
        path = self.dirs.next()
        self.conn = raw_connect(os.path.join(path, "raw.sqlite"))
        self.dirs.closers.append(self.conn.close)

    def __call__(self) -> None:
        conn = self.conn
        insert = "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)"
        if self.mode == "per-row":
            for row in self.rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(insert, row)
                conn.execute("COMMIT")
        elif self.mode == "per-row+update":
            for row in self.rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(insert, row)
                conn.execute(
                    "UPDATE runs SET num_events = num_events + ?, num_documents = ? WHERE id = 1",
                    (row[4], row[1] + 1),
                )
                conn.execute("COMMIT")
        else:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, self.rows)
            conn.execute("COMMIT")


def validation_times(docs, repeat: int) -> tuple[float, float]:
    """Median seconds of RunOrder.check+commit over ``docs``, and of validate_schema alone."""
    from scandeck.documents import RunOrder, validate_schema

    def order():
        ro = RunOrder()
        for name, doc in docs:
            ro.commit(name, doc, ro.check(name, doc))

    def schema():
        for name, doc in docs:
            validate_schema(name, doc)

    t = interleaved({"order": (order, gc.collect), "schema": (schema, gc.collect)}, repeat)
    return median(t["order"]), median(t["schema"])


def pack_time(docs, repeat: int) -> float:
    from scandeck.documents import pack

    def run():
        for _, doc in docs:
            pack(doc)

    return median(interleaved({"pack": (run, gc.collect)}, repeat)["pack"])


def to_numpy_scalars(docs):
    """The same documents with numpy.float64 values in event data, as ophyd.sim emits them."""
    out = []
    for name, doc in docs:
        if name == "event":
            doc = dict(doc, data={k: np.float64(v) for k, v in doc["data"].items()})
        out.append((name, doc))
    return out


class AppendWrite:
    """The other design the store could have used: documents appended to a file beside the index.

    Each blob is written and flushed (so a reader in another process sees it), with no
    index update and no fsync: a lower bound for that design's per-document cost.
    """

    def __init__(self, root: str, tag: str, rows) -> None:
        self.dirs, self.blobs, self.file = Fresh(root, tag), [r[5] for r in rows], None

    def setup(self) -> None:
        path = self.dirs.next()
        self.file = open(os.path.join(path, "run.msgpack"), "ab")  # noqa: SIM115 - closed by Fresh
        self.dirs.closers.append(self.file.close)

    def __call__(self) -> None:
        f = self.file
        for blob in self.blobs:
            f.write(blob)
            f.flush()


def bench_case(label: str, docs, repeat: int, root: str, tag: str, extra=None) -> dict:
    n = count_events(docs)
    rows = rows_of(docs)
    from scandeck.documents import pack

    assert rows[2][5] == pack(docs[2][1]), "limit blobs differ from scandeck's"
    sd = ScandeckWrite(root, f"{tag}-sd", docs)
    sd0 = ScandeckWrite(root, f"{tag}-sd0", docs, blocks=False)
    raw1 = RawWrite(root, f"{tag}-raw1", rows, "per-row")
    raw1u = RawWrite(root, f"{tag}-raw1u", rows, "per-row+update")
    raw2 = RawWrite(root, f"{tag}-raw2", rows, "single")
    app = AppendWrite(root, f"{tag}-append", rows)
    cases = {
        "append": (app, app.setup),
        "sd": (sd, sd.setup),
        "sd0": (sd0, sd0.setup),
        "raw1": (raw1, raw1.setup),
        "raw1u": (raw1u, raw1u.setup),
        "raw2": (raw2, raw2.setup),
    }
    if extra is not None:
        sdx = ScandeckWrite(root, f"{tag}-sdx", extra)
        cases["sdx"] = (sdx, sdx.setup)
    t = interleaved(cases, repeat)
    for c in cases.values():
        c[0].dirs.next()  # close and remove the last store of each case
    res = {k: median(v) for k, v in t.items()}
    res["validate"], res["schema"] = validation_times(docs, repeat)
    res["pack"] = pack_time(docs, repeat)
    res.update(n=n, docs=len(docs), label=label, mb=sum(len(r[5]) for r in rows) / 1e6)
    return res


def report(r: dict, numpy_label: str | None = None) -> None:
    n, nd = r["n"], r["docs"]
    print(
        f"\n-- {r['label']}: {n:,} events in {nd:,} documents ({r['mb']:.1f} MB of msgpack); "
        "median, cases interleaved"
    )
    rate = lambda s: fmt_rate(n / s)  # noqa: E731
    rows = [
        (
            "scandeck cat.writer()",
            fmt_time(r["sd"]),
            rate(r["sd"]),
            fmt_time(r["sd"] / nd),
            fmt_ratio(r["sd"], r["raw1"]),
            fmt_ratio(r["sd"], r["raw2"]),
        ),
        (
            "  the same without column blocks (0.1.0)",
            fmt_time(r["sd0"]),
            rate(r["sd0"]),
            fmt_time(r["sd0"] / nd),
            fmt_ratio(r["sd0"], r["raw1"]),
            fmt_ratio(r["sd0"], r["raw2"]),
        ),
        (
            "limit (i): INSERT + COMMIT per row",
            fmt_time(r["raw1"]),
            rate(r["raw1"]),
            fmt_time(r["raw1"] / nd),
            "1.00x",
            fmt_ratio(r["raw1"], r["raw2"]),
        ),
        (
            "limit (ii): one transaction",
            fmt_time(r["raw2"]),
            rate(r["raw2"]),
            fmt_time(r["raw2"] / nd),
            fmt_ratio(r["raw2"], r["raw1"]),
            "1.00x",
        ),
        (
            "design alternative: append-only file, flush/doc",
            fmt_time(r["append"]),
            rate(r["append"]),
            fmt_time(r["append"] / nd),
            fmt_ratio(r["append"], r["raw1"]),
            fmt_ratio(r["append"], r["raw2"]),
        ),
    ]
    if "sdx" in r and numpy_label:
        rows.insert(
            1,
            (
                numpy_label,
                fmt_time(r["sdx"]),
                rate(r["sdx"]),
                fmt_time(r["sdx"] / nd),
                fmt_ratio(r["sdx"], r["raw1"]),
                fmt_ratio(r["sdx"], r["raw2"]),
            ),
        )
    print_table(["", "total", "events/s", "per doc", "vs (i)", "vs (ii)"], rows)
    other = r["sd"] - r["validate"] - r["pack"]
    print("   breakdown of the scandeck time (each part timed alone, median):")
    print_table(
        ["part", "total", "per doc", "share"],
        [
            (
                "validation: RunOrder.check + commit",
                fmt_time(r["validate"]),
                fmt_time(r["validate"] / nd),
                f"{100 * r['validate'] / r['sd']:.0f}%",
            ),
            (
                "  of which validate_schema (fastjsonschema)",
                fmt_time(r["schema"]),
                fmt_time(r["schema"] / nd),
                f"{100 * r['schema'] / r['sd']:.0f}%",
            ),
            (
                "msgpack: documents.pack",
                fmt_time(r["pack"]),
                fmt_time(r["pack"] / nd),
                f"{100 * r['pack'] / r['sd']:.0f}%",
            ),
            (
                "the rest: SQLite + writer bookkeeping",
                fmt_time(other),
                fmt_time(other / nd),
                f"{100 * other / r['sd']:.0f}%",
            ),
            (
                "  cf. limit (i) + per-doc UPDATE runs",
                fmt_time(r["raw1u"]),
                fmt_time(r["raw1u"] / nd),
                f"{100 * r['raw1u'] / r['sd']:.0f}%",
            ),
        ],
        indent="     ",
    )


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    banner("write: events/s through cat.writer() vs raw SQLite inserts", args.quick)
    nx, ny = (50, 40) if args.quick else (250, 200)
    repeat = 3 if args.quick else 5
    single = grid_scan_run(nx, ny)
    paged = grid_scan_run(nx, ny, page_size=PAGE)
    with tempfile.TemporaryDirectory(prefix="scandeck-bench-write-") as root:
        a = bench_case(
            f"(a) single events, grid_scan {nx}x{ny}", single, repeat, root, "a", extra=to_numpy_scalars(single)
        )
        report(a, numpy_label="  same, numpy.float64 values (ophyd.sim)")
        b = bench_case(f"(b) event_page of {PAGE}, grid_scan {nx}x{ny}", paged, repeat, root, "b")
        report(b)
        if not args.quick:

            def profile_single():
                sd = ScandeckWrite(root, "prof", single[:5000])
                sd.setup()
                print_profile("scandeck writer, 5,000 documents of (a), hottest functions", sd, n=14)
                sd.dirs.next()

            print()
            fail_soft("profile", profile_single)

    print("\n-- summary (events/s)")
    print_table(
        ["case", "scandeck", "limit (i) per-row commit", "ratio", "limit (ii) one txn", "ratio"],
        [
            (
                r["label"].split(",")[0],
                fmt_rate(r["n"] / r["sd"]),
                fmt_rate(r["n"] / r["raw1"]),
                fmt_ratio(r["sd"], r["raw1"]),
                fmt_rate(r["n"] / r["raw2"]),
                fmt_ratio(r["sd"], r["raw2"]),
            )
            for r in (a, b)
        ],
    )
    print("   ratio = scandeck time / limit time (1.00x = at the limit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
