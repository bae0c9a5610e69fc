"""The run table's server API (issue 15) over a store of 100,000 runs, against its peers.

The store is ``panel_api.py``'s (``search.py``'s runs, every 50th with a primary
stream), with a columns file defining ``peak`` beside it, a stored ``peak`` cell for
every run (under the column's own code hash: fresh values) and tags on every tenth run.
A real ``jupyter server`` of this venv serves it, its column service off (the cells
are there already); one keep-alive HTTP connection, bodies read but not parsed.

Measured, the contenders taking turns (p50 and p99 over 50 repetitions):

1. ``GET table?columns=peak,tags,sample&limit=50``, the panel's first page, against
   ``GET runs?limit=50``, the page the panel asked for before the table (peer): what
   the cells of three columns add to a page (one ``cells`` and one ``facts`` read);
2. ``GET table.csv?columns=peak,tags,sample``, the whole store as CSV (3 repetitions),
   against the limit of the same work in this process without HTTP (the server's
   :class:`~scandeck.server.csv_export.CsvExport`, page after page), and against
   reading the same runs' index rows alone (``source.search`` page after page).

Usage: ``python bench/table_api.py [--quick]``
"""

from __future__ import annotations

import csv
import gc
import io
import os
import random
import sys
import tempfile
import time
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    JupyterServer,
    banner,
    fmt_ratio,
    fmt_time,
    interleaved,
    median,
    parse_args,
    percentile,
    print_table,
)
from panel_api import Client, compose_store, fill_store  # noqa: E402

import scandeck  # noqa: E402
from scandeck.runtable.columns import columns_for  # noqa: E402
from scandeck.runtable.model import Cell  # noqa: E402
from scandeck.server.csv_export import CsvExport  # noqa: E402

API = "/scandeck/api/"
COLUMNS = "peak,tags,sample"
COLUMNS_FILE = """\
import scandeck


@scandeck.column("peak", title="Peak", units="counts")
def peak(run):
    return float(run.primary.read()["det"].values.max())
"""


class _Pool:
    """What :class:`CsvExport` asks of the server's catalog pool: the catalog by name."""

    def __init__(self, cat: scandeck.Catalog) -> None:
        self.cat = cat

    def get(self, name: str) -> scandeck.Catalog:
        return self.cat


def put_facts(store: str, rng: random.Random) -> tuple[int, float]:
    """A fresh ``peak`` cell for every run and two tags on every tenth; (runs, seconds)."""
    cat = scandeck.open_catalog(store)
    code_hash = columns_for(cat)["peak"].code_hash
    uids = [s.uid for s in cat.summaries()]
    t0 = time.perf_counter()
    for i, uid in enumerate(uids):
        cat.source.put_cells(uid, {"peak": Cell(rng.uniform(0, 1e4), code_hash)})
        if i % 10 == 0:
            cat[uid].annotate(tags=["Ni", "redo"])
    elapsed = time.perf_counter() - t0
    cat.close()
    return len(uids), elapsed


def in_process_csv(cat: scandeck.Catalog) -> int:
    export = CsvExport(_Pool(cat), "", "", COLUMNS.split(","))  # type: ignore[arg-type]
    size = len(export.first())
    while chunk := export.next():
        size += len(chunk)
    return size


def index_rows_only(cat: scandeck.Catalog) -> int:
    n, before = 0, None
    while True:
        page = cat.source.search(cat.query, limit=500, before=before)
        n += len(page)
        if len(page) < 500:
            return n
        before = (page[-1].time, page[-1].seq)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    banner("run table API: GET table and GET table.csv vs GET runs and in-process", args.quick)
    n_runs = 2_000 if args.quick else 100_000
    repeat = 10 if args.quick else 50
    csv_repeat = 2 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="scandeck-table-bench-") as tmp:
        store = os.path.join(tmp, "store")
        runs, _ = compose_store(n_runs)
        fill_s = fill_store(store, runs)
        del runs
        with open(os.path.join(store, "columns.py"), "w") as f:
            f.write(COLUMNS_FILE)
        n, put_s = put_facts(store, random.Random(3))
        print(
            f"\n-- store: {n:,} runs written in {fmt_time(fill_s)}; a peak cell each and tags on every "
            f"tenth stored in {fmt_time(put_s)} ({fmt_time(put_s / n)} per run)",
            flush=True,
        )
        gc.collect()
        cat = scandeck.open_catalog(store)
        server = JupyterServer(tmp, [f"--ScandeckApp.catalog={store}", "--ScandeckApp.column_service=False"])
        client = None
        try:
            server.start(API + "catalogs")
            client = Client(server)
            table = f"{API}table?{urlencode({'columns': COLUMNS, 'limit': 50}, quote_via=quote)}"
            runs_page = f"{API}runs?limit=50"
            page = client.json(table)
            cells = page["cells"]
            assert len(page["runs"]) == 50 and all(cells[r["uid"]]["peak"]["state"] == "ok" for r in page["runs"])
            times = interleaved(
                {
                    "GET table (3 columns)": (lambda: client.get(table), None),
                    "GET runs": (lambda: client.get(runs_page), None),
                },
                repeat,
                warmup=2,
                block=max(1, repeat // 5),
            )
            t_table, t_runs = times["GET table (3 columns)"], times["GET runs"]
            print("\n-- a first page of 50 runs (p50 / p99)")
            p50_table, p50_runs = median(t_table), median(t_runs)
            page_rows = [
                ["GET table?columns=peak,tags,sample", fmt_time(p50_table), fmt_time(percentile(t_table, 99))],
                ["GET runs (peer)", fmt_time(p50_runs), fmt_time(percentile(t_runs, 99))],
            ]
            page_rows[0].append(fmt_ratio(p50_table, p50_runs))
            page_rows[1].append("1.00x")
            print_table(["request", "p50", "p99", "vs GET runs"], page_rows)

            csv_path = f"{API}table.csv?{urlencode({'columns': COLUMNS}, quote_via=quote)}"
            body = client.get(csv_path)
            rows = list(csv.reader(io.StringIO(body.decode())))
            assert len(rows) == n + 1, (len(rows), n)
            assert rows[0][:6] == ["uid", "scan_id", "time", "plan_name", "status", "peak (counts)"]
            sizes: dict[str, Any] = {}
            times = interleaved(
                {
                    "GET table.csv": (lambda: sizes.__setitem__("http", len(client.get(csv_path))), None),
                    "in process": (lambda: sizes.__setitem__("local", in_process_csv(cat)), None),
                    "index rows only": (lambda: sizes.__setitem__("rows", index_rows_only(cat)), None),
                },
                csv_repeat,
            )
            t_http, t_local, t_rows = (
                median(times[k]) for k in ("GET table.csv", "in process", "index rows only")
            )
            print(
                f"\n-- the whole store as CSV: {n:,} runs, {sizes['http'] / 1e6:.1f} MB (median of {csv_repeat})"
            )
            contenders = [
                ("GET table.csv?columns=peak,tags,sample", t_http),
                ("same export in process (limit)", t_local),
                ("index rows only (floor)", t_rows),
            ]
            print_table(
                ["contender", "time", "runs/s", "GET table.csv vs it"],
                [[label, fmt_time(t), f"{n / t:,.0f}", fmt_ratio(t_http, t)] for label, t in contenders],
            )
        finally:
            if client is not None:
                client.close()
            server.stop()
            cat.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
