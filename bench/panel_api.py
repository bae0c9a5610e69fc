"""The Scans panel's server API over a store of 100,000 runs, against the same work in-process.

The store is filled through ``cat.writer()`` with the runs of ``search.py``
(start + stop documents, varied plan_name/sample/operator/...), and every 50th
run also gets a ``primary`` descriptor and its ``num_points`` single events
(motor readbacks and setpoints, detectors), as a RunEngine writes them, so
that the run detail and the preview have streams to show. The time the fill
takes is printed.

A real ``jupyter server`` of this venv serves the store (``--ScandeckApp.catalog``),
with private config/data/runtime directories; the benchmark talks to it over one
keep-alive HTTP connection (``http.client``, ``Authorization: token``), reading
each answer's body but not parsing it (the client's JSON decoding is not the
server's cost). Measured, p50 and p99 over 50 repetitions:

1. the first page, ``GET runs?limit=50`` (with ``total`` and ``live``);
2. a deep page: ``GET runs?limit=50&before=CURSOR`` at the ``next`` cursor of
   the 20th page;
3. a searched first page, ``GET runs?q=plan_name == "scan" and sample == "Ni"&limit=50``;
4. a run detail, ``GET runs/UID`` (a run with events, a new one each time);
5. a preview, ``GET runs/UID/preview`` (ditto).

Limit, in the same run (the contenders take turns): the same work in this
process on a scandeck ``Catalog`` opened on the same store, without HTTP, JSON
or the server's thread pool. For pages: ``cat.search(q)``, one page of summaries
(``source.search(query, limit=51, before=...)``: 51 tells whether there is a next
page, as the server asks), ``len()`` for the total and, on first pages, the live
list (``scandeck.server.catalogs.live_runs``). For detail and preview: the
server package's own functions (``preview.lookup``, ``run_detail``,
``snippets.code_for``, ``preview.preview``). Also printed: what turning the
in-process result into the API's JSON costs (``run_summary`` + ``dumps``), so
that ``server - in-process - JSON`` is what HTTP, tornado, jupyter_server's
authentication and the thread pool add.

``--quick`` also walks every page through the ``next`` cursor and checks that
each run comes exactly once.

The server is stopped by its pid (SIGTERM, then SIGKILL) on exit, on error and
on SIGTERM.

Usage: ``python bench/panel_api.py [--quick]``
"""

from __future__ import annotations

import functools
import gc
import http.client
import json
import math
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import event_model  # noqa: E402
from _common import (  # noqa: E402
    Doc,
    JupyterServer,
    banner,
    fail_soft,
    fmt_ratio,
    fmt_time,
    interleaved,
    median,
    parse_args,
    percentile,
    print_table,
    timed,
)
from search import QUERY, make_runs  # noqa: E402

import scandeck  # noqa: E402
from scandeck.server.catalogs import live_runs  # noqa: E402
from scandeck.server.cells import run_cells  # noqa: E402
from scandeck.server.derived_runs import derived_detail, page_parents  # noqa: E402
from scandeck.server.preview import lookup, preview, run_detail  # noqa: E402
from scandeck.server.serialize import dumps, encode_cursor, run_summary  # noqa: E402
from scandeck.server.snippets import code_for  # noqa: E402
from scandeck.sources.fields import empty_search_hint  # noqa: E402

API = "/scandeck/api/"
LIMIT = 50
#: Every EVENTS_EVERY-th run gets a descriptor and events.
EVENTS_EVERY = 50
#: The deep page is the one after this many pages.
DEEP_PAGES = 20


# ------------------------------------------------------------------------------------ the store


def _data_key(name: str, units: str) -> dict[str, Any]:
    return {
        "dtype": "number",
        "shape": [],
        "source": f"SIM:{name}",
        "precision": 3,
        "units": units,
        "object_name": name.removesuffix("_setpoint"),
    }


def with_events(start: dict[str, Any], stop: dict[str, Any], seed: int) -> list[Doc]:
    """Descriptor, ``num_points`` single events and a stop counting them, for ``start`` (composed)."""
    rng = random.Random(seed)
    motors = list(start.get("motors") or [])
    dets = list(start["detectors"])
    keys: dict[str, Any] = {}
    object_keys: dict[str, list[str]] = {}
    hints: dict[str, Any] = {}
    for m in motors:
        keys[m], keys[f"{m}_setpoint"] = _data_key(m, "mm"), _data_key(f"{m}_setpoint", "mm")
        object_keys[m], hints[m] = [m, f"{m}_setpoint"], {"fields": [m]}
    for d in dets:
        keys[d], object_keys[d], hints[d] = _data_key(d, "counts"), [d], {"fields": [d]}
    counters: dict[str, int] = {}
    desc = event_model.compose_descriptor(
        start=start,
        streams={},
        event_counters=counters,
        name="primary",
        data_keys=keys,
        object_keys=object_keys,
        hints=hints,
        time=start["time"] + 0.01,
        validate=False,
    )
    docs: list[Doc] = [("descriptor", desc.descriptor_doc)]
    n = int(start["num_points"])
    centre = rng.uniform(-0.5, 0.5)
    for i in range(n):
        t = start["time"] + 0.1 * (i + 1)  # a stop comes >= 30 s after its start; n <= 121
        x = -1.0 + 2.0 * i / max(n - 1, 1)
        data: dict[str, float] = {}
        for m in motors:
            data[m], data[f"{m}_setpoint"] = x + rng.gauss(0.0, 1e-4), x
        for d in dets:
            data[d] = 1e4 * math.exp(-(((x - centre) / 0.3) ** 2)) + rng.gauss(0.0, 10.0)
        docs.append(
            (
                "event",
                desc.compose_event(
                    data=data, timestamps=dict.fromkeys(data, t - 1e-3), seq_num=i + 1, time=t, validate=False
                ),
            )
        )
    docs.append(
        (
            "stop",
            event_model.compose_stop(
                start=start,
                event_counters=counters,
                poison_pill=[],
                exit_status=stop["exit_status"],
                reason=stop.get("reason", ""),
                uid=stop["uid"],
                time=stop["time"],
                validate=False,
            ),
        )
    )
    return docs


def compose_store(n_runs: int) -> tuple[list[list[Doc]], list[str]]:
    """The documents of each run, and the uids of the runs that have events."""
    runs: list[list[Doc]] = []
    eventful: list[str] = []
    for i, (start, stop) in enumerate(make_runs(n_runs)):
        if i % EVENTS_EVERY == EVENTS_EVERY - 1:
            runs.append([("start", start), *with_events(start, stop, seed=i)])
            eventful.append(start["uid"])
        else:
            runs.append([("start", start), ("stop", stop)])
    return runs, eventful


def fill_store(store: str, runs: list[list[Doc]]) -> float:
    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    t0 = time.perf_counter()
    for docs in runs:
        for name, doc in docs:
            writer(name, doc)
    elapsed = time.perf_counter() - t0
    close = getattr(writer, "close", None)
    if close is not None:
        close()
    cat.close()
    return elapsed


# ------------------------------------------------------------------------------------- the client


class Client:
    """One keep-alive HTTP/1.1 connection to the server; counts the connections it had to open."""

    def __init__(self, server: JupyterServer) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        self.connects = 0
        self.requests = 0
        self._sock: Any = None

    def get(self, path: str) -> bytes:
        """The body of ``GET path`` (200 expected); the connection stays open."""
        self.conn.request("GET", path, headers=self.server.headers)
        if self.conn.sock is not self._sock:
            self._sock = self.conn.sock
            self.connects += 1
        resp = self.conn.getresponse()
        body = resp.read()
        self.requests += 1
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}: {body[:500]!r}")
        return body

    def json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def close(self) -> None:
        self.conn.close()


def runs_path(q: str = "", before: str | None = None, limit: int = LIMIT) -> str:
    params: dict[str, Any] = {"limit": limit}
    if q:
        params["q"] = q
    if before is not None:
        params["before"] = before
    return f"{API}runs?{urlencode(params, quote_via=quote)}"


# ------------------------------------------------------------------------------------- the limit


def page_in_process(cat: scandeck.Catalog, q: str, before: tuple[float, int] | None) -> dict[str, Any]:
    """What ``GET runs`` computes, as scandeck objects: page (+1), total, live list on a first page."""
    view = cat.search(q) if q else cat
    page = view.source.search(view.query, limit=LIMIT + 1, before=before)
    return {
        "runs": page[:LIMIT],
        "live": live_runs(view) if before is None else [],
        "total": len(view),
        "next": page[LIMIT - 1] if len(page) > LIMIT else None,
        "hint": empty_search_hint(view.source, view.query) if not page and before is None else None,
        # The parents of derived runs the page lists without them (one search; none here).
        "parents": page_parents(cat, [*(live_runs(view) if before is None else []), *page[:LIMIT]]),
    }


def page_to_json(result: dict[str, Any]) -> str:
    """The API's JSON of :func:`page_in_process`'s result (what the server adds to it)."""
    nxt = result["next"]
    return dumps(
        {
            "runs": [run_summary(s) for s in result["runs"]],
            "live": [run_summary(s) for s in result["live"]],
            "total": result["total"],
            "next": encode_cursor(nxt) if nxt is not None else None,
            "hint": result["hint"],
            "parents": result["parents"],
        }
    )


def detail_in_process(cat: scandeck.Catalog, store: str, uid: str) -> dict[str, Any]:
    summary = lookup(cat, uid)
    out = run_detail(cat, summary)
    out.update(derived_detail(cat, summary, out["start"]))  # parents, pipeline, derived runs
    out["code"] = code_for(summary.uid, store, [s["name"] for s in out["streams"]])
    cells = run_cells(cat, summary)  # the run table's computed cells, as GET runs/UID adds them
    if cells is not None:
        out["cells"] = cells
    return out


def preview_in_process(cat: scandeck.Catalog, uid: str) -> dict[str, Any]:
    return preview(cat, lookup(cat, uid), "primary", 500)


# ------------------------------------------------------------------------------------ measuring


def picker(values: list[str], box: dict[str, str], key: str) -> Callable[[], None]:
    """A setup that puts the next of ``values`` in ``box[key]``: each contender gets the same sequence."""
    it: Iterator[str] = iter(values * 1000)

    def setup() -> None:
        box[key] = next(it)

    return setup


def walk_all(fetch: Callable[[str | None], tuple[list[str], str | None]]) -> list[str]:
    """Every uid, page after page through the ``next`` cursor."""
    uids: list[str] = []
    cursor = None
    while True:
        page, cursor = fetch(cursor)
        uids += page
        if cursor is None:
            return uids


def run(args: Any, tmp: str) -> None:
    n_runs = 2_000 if args.quick else 100_000
    repeat = 50
    rng = random.Random(11)
    store = os.path.join(tmp, "store")

    t0 = time.perf_counter()
    runs, eventful = compose_store(n_runs)
    compose_s = time.perf_counter() - t0
    n_docs = sum(len(d) for d in runs)
    n_events = sum(1 for d in runs for name, _ in d if name == "event")
    fill_s = fill_store(store, runs)
    del runs
    gc.collect()
    db_mb = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store)) / 1e6
    print(
        f"\n-- store: {n_runs:,} runs, {len(eventful):,} of them with a primary stream "
        f"({n_events:,} single events); {n_docs:,} documents composed in {fmt_time(compose_s)}, "
        f"written through cat.writer() in {fmt_time(fill_s)} = {fmt_time(fill_s / n_runs)} per run, "
        f"{n_docs / fill_s:,.0f} documents/s; {db_mb:.1f} MB",
        flush=True,
    )

    cat = scandeck.open_catalog(store)
    gc.collect()
    gc.freeze()  # what survives (modules, the catalog) stays out of the GC's walks, as in search.py

    # The column service off: it would compute the runs' cells meanwhile, so the detail the server
    # answers and the one computed here for the check would differ by them (and it competes for CPU).
    server = JupyterServer(tmp, [f"--ScandeckApp.catalog={store}", "--ScandeckApp.column_service=False"])
    client = None
    try:
        t0 = time.perf_counter()
        server.start(API + "catalogs")
        start_s = time.perf_counter() - t0
        client = Client(server)
        measure(args, cat, store, server, client, eventful, n_runs, repeat, rng, start_s)
    finally:
        if client is not None:
            client.close()
        server.stop()
        cat.close()


def parse_cursor(text: str) -> tuple[float, int]:
    head, _, tail = text.rpartition(":")
    return float(head), int(tail)


def cursor_at(cat: scandeck.Catalog, index: int) -> tuple[str, tuple[float, int]]:
    """The ``next`` cursor of the page that ends with the ``index``-th run of ``cat`` (newest = 0)."""
    row = cat.source.search(cat.query, limit=1, offset=index)[0]
    return encode_cursor(row), (row.time, row.seq)


def measure(
    args: Any,
    cat: scandeck.Catalog,
    store: str,
    server: JupyterServer,
    client: Client,
    eventful: list[str],
    n_runs: int,
    repeat: int,
    rng: random.Random,
    start_s: float,
) -> None:
    catalogs = client.json(API + "catalogs")
    default = catalogs["catalogs"][0]
    if "error" in default or not str(default.get("uri", "")).endswith(os.path.join(store, "scandeck.sqlite")):
        raise RuntimeError(f"the server does not serve the benchmark's store: {default}")
    print(
        f"   jupyter server (pid {server.pid}, port {server.port}) answered GET catalogs "
        f"{fmt_time(start_s)} after its start; default catalog {default['uri']}",
        flush=True,
    )

    # -- the pages, each checked against the in-process answer before anything is timed
    view = cat.search(QUERY)
    n_q = len(view)
    cursor = None
    t0 = time.perf_counter()
    for _ in range(DEEP_PAGES):
        cursor = client.json(runs_path(before=cursor))["next"]
        assert cursor is not None
    walk20_s = time.perf_counter() - t0
    last_page, q_last_page = math.ceil(n_runs / LIMIT), math.ceil(n_q / LIMIT)
    last_cursor, _ = cursor_at(cat, (last_page - 1) * LIMIT - 1)
    pages = [  # (label, q, cursor); a cursor is what the previous page's 'next' says
        ("first page", "", None),
        (f"page {DEEP_PAGES + 1} (cursor)", "", cursor),
        (f"page {last_page:,}, the last (cursor)", "", last_cursor),
        ("searched first page", QUERY, None),
    ]
    if q_last_page > 1:  # not in --quick: the query matches one page there
        pages.append(
            (
                f"searched page {q_last_page}, the last (cursor)",
                QUERY,
                cursor_at(view, (q_last_page - 1) * LIMIT - 1)[0],
            )
        )

    Case = tuple[Callable[[], Any], Callable[[], None] | None]
    groups: dict[str, dict[str, Case]] = {}
    to_json: dict[str, Callable[[], str]] = {}
    paths: dict[str, str] = {}
    for label, q, cur in pages:
        path, before = runs_path(q, before=cur), None if cur is None else parse_cursor(cur)
        answer, ref = client.json(path), page_in_process(cat, q, before)
        assert json.loads(page_to_json(ref)) == answer, label
        assert answer["total"] == (n_q if q else n_runs) and ("the last" not in label or answer["next"] is None)
        groups[label] = {
            "server": (functools.partial(client.get, path), None),
            "in-process": (functools.partial(page_in_process, cat, q, before), None),
        }
        to_json[label], paths[label] = functools.partial(page_to_json, ref), path

    # -- detail and preview: a new run with events each time, the same sequence for both contenders
    uid0 = eventful[0]
    detail, ref_detail = client.json(f"{API}runs/{quote(uid0)}"), detail_in_process(cat, store, uid0)
    assert json.loads(dumps(ref_detail)) == detail and detail["streams"][0]["num_events"] > 0
    prev, ref_prev = client.json(f"{API}runs/{quote(uid0)}/preview"), preview_in_process(cat, uid0)
    assert json.loads(dumps(ref_prev)) == prev and prev["y"]
    picks = [rng.choice(eventful) for _ in range(200)]
    box: dict[str, str] = {}
    groups["run detail"] = {
        "server": (lambda: client.get(f"{API}runs/{quote(box['d'])}"), picker(picks, box, "d")),
        "in-process": (lambda: detail_in_process(cat, store, box["d"]), picker(picks, box, "d")),
    }
    groups["preview"] = {
        "server": (lambda: client.get(f"{API}runs/{quote(box['p'])}/preview"), picker(picks, box, "p")),
        "in-process": (lambda: preview_in_process(cat, box["p"]), picker(picks, box, "p")),
    }
    to_json["run detail"], paths["run detail"] = functools.partial(dumps, ref_detail), f"{API}runs/{uid0}"
    to_json["preview"], paths["preview"] = functools.partial(dumps, ref_prev), f"{API}runs/{uid0}/preview"

    results = {
        label: interleaved(cases, repeat, warmup=2, block=max(1, repeat // 5)) for label, cases in groups.items()
    }
    # The floor of any authenticated jupyter_server API request (its own handler, no thread pool).
    floor = timed(lambda: client.get("/api/status"), repeat, warmup=2)
    # What turning the in-process answer into the API's JSON costs (no store access: timed alone).
    json_times = {label: median(timed(fn, repeat, warmup=2)) for label, fn in to_json.items()}
    sizes = {label: len(client.get(path)) for label, path in paths.items()}

    print(
        f"\n-- {n_runs:,} runs; query {QUERY!r} matches {n_q:,}; limit={LIMIT}; "
        f"p50 / p99 of {repeat} repetitions; ratio = server p50 / in-process p50 (the limit)"
    )
    rows = []
    for label, times in results.items():
        sv, ip = times["server"], times["in-process"]
        extra = median(sv) - median(ip)
        rows.append(
            (
                label,
                fmt_time(percentile(sv, 50)),
                fmt_time(percentile(sv, 99)),
                fmt_time(percentile(ip, 50)),
                fmt_time(percentile(ip, 99)),
                fmt_ratio(median(sv), median(ip)),
                fmt_time(extra) if extra > 0 else f"-{fmt_time(-extra)}",
                fmt_time(json_times[label]),
                f"{sizes[label] / 1e3:.1f} kB",
            )
        )
    rows.append(
        (
            "floor: GET /api/status",
            fmt_time(percentile(floor, 50)),
            fmt_time(percentile(floor, 99)),
            "",
            "",
            "",
            "",
            "",
            "",
        )
    )
    print_table(
        [
            "request",
            "server p50",
            "p99",
            "in-process p50",
            "p99",
            "ratio",
            "server - in-proc",
            "to JSON",
            "answer",
        ],
        rows,
    )
    print(
        f"   {client.requests:,} requests over {client.connects} TCP connection(s) (keep-alive); "
        f"walking the first {DEEP_PAGES} pages to the cursor took {fmt_time(walk20_s)}"
    )

    if args.quick:

        def http_page(c: str | None) -> tuple[list[str], str | None]:
            body = client.json(runs_path(before=c))
            return [r["uid"] for r in body["runs"]], body["next"]

        def local_page(c: str | None) -> tuple[list[str], str | None]:
            r = page_in_process(cat, "", None if c is None else parse_cursor(c))
            return [s.uid for s in r["runs"]], encode_cursor(r["next"]) if r["next"] is not None else None

        t0 = time.perf_counter()
        uids = walk_all(http_page)
        walk_s = time.perf_counter() - t0
        assert len(uids) == n_runs and len(set(uids)) == n_runs, (len(uids), len(set(uids)))
        t0 = time.perf_counter()
        local = walk_all(local_page)
        local_s = time.perf_counter() - t0
        assert local == uids
        pages = math.ceil(n_runs / LIMIT)
        print(
            f"\n-- walking all {pages} pages through 'next': server {fmt_time(walk_s)}, in-process "
            f"{fmt_time(local_s)} ({fmt_ratio(walk_s, local_s)}); {len(uids):,} runs, each exactly once"
        )

    server.stop()  # nothing is measured over HTTP after this; the breakdown adds an index to the store
    fail_soft("breakdown", lambda: breakdown(cat, parse_cursor(last_cursor)))


RUN_COLUMNS = (
    "id, uid, scan_id, time, start, stop, exit_status, num_events, num_documents, "
    "writer_host, writer_pid, writer_token, writer_open"
)


def breakdown(cat: scandeck.Catalog, last_before: tuple[float, int]) -> None:
    """Where the in-process time of the pages goes, and plain SQL that does the same faster.

    Runs after the server stopped: it adds an index to the (temporary) store at the end.
    """
    view = cat.search(QUERY)
    src = cat.source
    n_q = len(view)
    q_last = (n_q - 1) // LIMIT * LIMIT  # where the searched view's last page starts
    parts = {
        "page of 51": lambda: src.search(cat.query, limit=LIMIT + 1),
        "page of 51 at the last page's cursor": lambda: src.search(cat.query, limit=LIMIT + 1, before=last_before),
        "total: len(cat)": lambda: len(cat),
        "live: live_runs(cat)": lambda: live_runs(cat),
        "searched page of 51": lambda: src.search(view.query, limit=LIMIT + 1),
        "searched total: len(cat.search(q))": lambda: len(view),
        "searched live: live_runs(cat.search(q))": lambda: live_runs(view),
    }
    if q_last > 0:
        row = src.search(view.query, limit=1, offset=q_last - 1)[0]
        parts[f"searched page of 51 at its last page's cursor (page {q_last // LIMIT + 1})"] = lambda: src.search(
            view.query, limit=LIMIT + 1, before=(row.time, row.seq)
        )
    repeat = 15
    rows = [(label, fmt_time(median(timed(fn, repeat, warmup=1)))) for label, fn in parts.items()]

    conn = sqlite3.connect(src.db_path)
    try:

        def sql_time(sql: str, params: tuple[Any, ...] = ()) -> str:
            return fmt_time(median(timed(lambda: conn.execute(sql, params).fetchall(), repeat, warmup=1)))

        def plan(sql: str, params: tuple[Any, ...] = ()) -> str:
            return "; ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

        t, seq = last_before
        cursor_or = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE (1) AND (time < ? OR (time = ? AND id < ?)) "
            f"ORDER BY time DESC, id DESC LIMIT {LIMIT + 1}"
        )
        cursor_rv = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE (time, id) < (?, ?) "
            f"ORDER BY time DESC, id DESC LIMIT {LIMIT + 1}"
        )
        where, params = live_query_sql()
        live_json = f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} ORDER BY time DESC, id DESC LIMIT 200"
        live_col = (
            f"SELECT {RUN_COLUMNS} FROM runs WHERE exit_status IS NULL ORDER BY time DESC, id DESC LIMIT 200"
        )
        rows += [
            ("SQL: last page's cursor as scandeck writes it (OR)", sql_time(cursor_or, (t, t, seq))),
            ("SQL: the same with a row value, (time, id) < (?, ?)", sql_time(cursor_rv, (t, seq))),
            ("SQL: live list as scandeck writes it (json_extract on stop)", sql_time(live_json, tuple(params))),
            ("SQL: live list on the exit_status column, no index", sql_time(live_col)),
        ]
        plans = [
            ("cursor, OR", plan(cursor_or, (t, t, seq))),
            ("cursor, row value", plan(cursor_rv, (t, seq))),
            ("live, json", plan(live_json, tuple(params))),
        ]
        conn.execute("CREATE INDEX bench_unfinished ON runs(time, id) WHERE exit_status IS NULL")
        rows.append(("SQL: the same with a partial index WHERE exit_status IS NULL", sql_time(live_col)))
        plans.append(("live, partial index", plan(live_col)))
    finally:
        conn.close()
    print(f"\n-- where the in-process time of the pages goes, and plain SQL for comparison (median of {repeat})")
    print_table(["part", "time"], rows)
    for label, text in plans:
        print(f"   query plan, {label}: {text}")


def live_query_sql() -> tuple[str, list[Any]]:
    """The WHERE clause ``live_runs`` searches with (its unfinished-runs query)."""
    from scandeck.queries import Key

    return (~Key("stop.exit_status").in_(["success", "abort", "fail"])).to_sql()


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    banner("panel_api: the Scans panel's server API (HTTP) vs the same work in-process (limit)", args.quick)
    import jupyter_server
    import tornado

    print(f"   jupyter_server {jupyter_server.__version__}, tornado {tornado.version}")

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scandeck-bench-panel-") as tmp:
        run(args, tmp)
    print(f"\n   (whole run: {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
