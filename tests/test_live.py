"""scandeck.live: followed runs as streamz streams.

In-process tests run on the private loop thread (no kernel) against a SQLite
store written from another thread; the last test drives a real kernel fed by
a producer process, as JupyterLab would.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from event_model import compose_run

import scandeck
from scandeck.livestream import Live

PROCS = str(Path(__file__).with_name("procs.py"))
DATA_KEYS = {
    "x": {"dtype": "number", "shape": [], "source": "sim:x"},
    "det": {"dtype": "number", "shape": [], "source": "sim:det"},
}


def write_run(cat, num: int, *, page: int = 1, every: int = 0, pause: float = 0.0, **md) -> str:
    """Write a run of ``num`` primary events (pages of ``page``) and a baseline reading."""
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "test", **md})
    primary = bundle.compose_descriptor(name="primary", data_keys=DATA_KEYS)
    baseline = bundle.compose_descriptor(
        name="baseline", data_keys={"T": {"dtype": "number", "shape": [], "source": "sim:T"}}
    )
    writer("start", bundle.start_doc)
    writer("descriptor", primary.descriptor_doc)
    writer("descriptor", baseline.descriptor_doc)
    writer("event", baseline.compose_event(data={"T": 300.0}, timestamps={"T": 0.0}, seq_num=1))
    for first in range(1, num + 1, page):
        seq = list(range(first, min(first + page, num + 1)))
        if page > 1:
            writer(
                "event_page",
                primary.compose_event_page(
                    data={"x": [float(s) for s in seq], "det": [float(s % 7) for s in seq]},
                    timestamps={"x": [0.0] * len(seq), "det": [0.0] * len(seq)},
                    seq_num=seq,
                    time=[time.time()] * len(seq),
                ),
            )
        else:
            writer(
                "event",
                primary.compose_event(
                    data={"x": float(first), "det": float(first % 7)},
                    timestamps={"x": 0.0, "det": 0.0},
                    seq_num=first,
                ),
            )
        if every and first % every == 0 and pause:
            time.sleep(pause)
    writer("stop", bundle.compose_stop())
    return bundle.start_doc["uid"]


def in_thread(fn, *args, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, kwargs=kwargs)
    thread.start()
    return thread


def wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def live_of(sqlite_cat):
    made = []

    def make(target=None, **kwargs):
        item = Live(target, catalog=kwargs.pop("catalog", sqlite_cat), **kwargs)
        made.append(item)
        return item

    yield make
    for item in made:
        item.stop()


def test_rows_arrive_in_order_without_gaps_or_duplicates(sqlite_cat, live_of):
    live = live_of()
    rows = []
    live.stream().sink(rows.append)
    uid_holder = {}
    writer = in_thread(lambda: uid_holder.setdefault("uid", write_run(sqlite_cat, 1500, every=300, pause=0.01)))
    writer.join()
    assert wait_for(lambda: len(rows) >= 1500)
    time.sleep(0.1)  # nothing more may come
    assert [r["seq_num"] for r in rows] == list(range(1, 1501))
    assert {r["uid"] for r in rows} == {uid_holder["uid"]}
    assert rows[6] == {"uid": uid_holder["uid"], "seq_num": 7, "time": rows[6]["time"], "x": 7.0, "det": 0.0}
    assert live.emissions == 1500 and live.failures == 0


def test_pages_batch_rows(sqlite_cat, live_of):
    live = live_of()
    pages = []
    live.stream(pages=True).sink(pages.append)
    in_thread(write_run, sqlite_cat, 10_000, page=25).join()
    assert wait_for(lambda: sum(len(p["seq_num"]) for p in pages) >= 10_000)
    seqs = [s for p in pages for s in p["seq_num"]]
    assert seqs == list(range(1, 10_001))
    assert all(len(p["x"]) == len(p["seq_num"]) == len(p["det"]) for p in pages)
    assert isinstance(pages[0]["uid"], str)
    assert len(pages) < 10_000 / 25  # fewer emissions than event pages, let alone events
    print(f"pages: 10000 events in 400 event_page documents -> {len(pages)} emissions")


def test_other_streams_and_filtered_catalogs(sqlite_cat, live_of):
    write_run(sqlite_cat, 3, sample="Cu")
    live = live_of(sqlite_cat.search('sample == "Ni"'))
    rows, baseline = [], []
    live.stream().sink(rows.append)
    live.stream("baseline").sink(baseline.append)
    in_thread(lambda: [write_run(sqlite_cat, n, sample=s) for n, s in ((4, "Cu"), (5, "Ni"))]).join()
    assert wait_for(lambda: len(rows) == 5 and len(baseline) == 1)
    assert baseline[0]["T"] == 300.0 and baseline[0]["uid"] == rows[0]["uid"]
    assert sqlite_cat[rows[0]["uid"]].start["sample"] == "Ni"


def test_a_new_runs_rows_follow_and_runs_are_announced(sqlite_cat, live_of):
    live = live_of()
    rows, runs = [], []
    live.runs.sink(runs.append)
    live.stream().sink(rows.append)

    def two_runs():
        return [write_run(sqlite_cat, 300, page=7), write_run(sqlite_cat, 200)]

    result = []
    in_thread(lambda: result.extend(two_runs())).join()
    assert wait_for(lambda: len(rows) == 500)
    first, second = result
    assert [r["uid"] for r in rows] == [first] * 300 + [second] * 200
    assert [r["seq_num"] for r in rows] == list(range(1, 301)) + list(range(1, 201))
    assert [run.uid for run in runs] == [first, second]


def test_runs_that_start_right_after_live_is_made_are_not_skipped(sqlite_cat, live_of, monkeypatch):
    # The follower thread is held back, as a loaded machine may: "each new run" counts from
    # live.stream(), not from when the thread first runs (it used to skip to the newest).
    from scandeck.pipeline.follower import Follower

    original, gate = Follower._follow, threading.Event()

    def late(self):
        gate.wait(10)
        original(self)

    monkeypatch.setattr(Follower, "_follow", late)
    live = live_of()
    rows = []
    live.stream().sink(rows.append)
    first, second = write_run(sqlite_cat, 30), write_run(sqlite_cat, 20)
    gate.set()
    assert wait_for(lambda: len(rows) == 50)
    assert [r["uid"] for r in rows] == [first] * 30 + [second] * 20


def test_a_failing_sink_is_counted_and_the_stream_goes_on(sqlite_cat, live_of, capsys):
    live = live_of()
    good = []

    def picky(row):
        if row["seq_num"] % 10 == 0:
            raise ValueError(f"no {row['seq_num']}")
        return row

    live.stream().map(picky).sink(good.append)
    in_thread(write_run, sqlite_cat, 200).join()
    assert wait_for(lambda: live.failures == 20 and len(good) == 180)
    assert [r["seq_num"] for r in good] == [s for s in range(1, 201) if s % 10]
    assert isinstance(live.last_error, ValueError) and str(live.last_error) == "no 200"
    err = capsys.readouterr().err
    assert "ValueError: no 10" in err and "Traceback" in err
    assert err.count("Traceback") == 5 and "further failures are counted" in err  # not 20 tracebacks
    assert live.alive


def test_targets_and_stop(sqlite_cat, live_of):
    a = write_run(sqlite_cat, 4, scan_id=7)
    b = write_run(sqlite_cat, 6, scan_id=8)
    for target in (a[:8], 7, sqlite_cat[a]):
        live = live_of(target)
        rows = []
        live.stream().sink(rows.append)
        assert wait_for(lambda rows=rows: len(rows) == 4)
        assert wait_for(lambda live=live: not live.alive)  # a finished run: the follower ends
        assert {r["uid"] for r in rows} == {a}
    live = live_of()  # the newest run, then each new one
    rows = []
    live.stream(pages=True).sink(rows.append)
    assert wait_for(lambda: rows and rows[0]["uid"] == b)
    assert live.alive
    live.stop()
    assert not live.alive  # its threads ended
    with pytest.raises(RuntimeError, match="stopped"):
        live.stream()
    with pytest.raises(TypeError, match="scan_id"):
        Live(2.5, catalog=sqlite_cat)


def test_filled_frames_come_in_bounded_batches(sqlite_cat, live_of, RE, hw, monkeypatch):
    import bluesky.plans as bp
    import numpy as np

    import scandeck.livestream as live_module

    monkeypatch.setattr(live_module, "FILL_ROWS", 2)
    monkeypatch.setattr(live_module, "MAX_FILLED_BYTES", 1)  # the follower waits for each batch
    live = live_of()
    pages = live.stream(pages=True, fill=True).sink_to_list()
    raw = live.stream(pages=True).sink_to_list()
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.count([hw.img], num=7))
    assert wait_for(lambda: sum(len(p["seq_num"]) for p in pages) == 7)
    frames = sqlite_cat[uid].primary.read()["img"].values
    got = [frame for p in pages for frame in p["img"]]
    assert len(got) == 7 and all(np.array_equal(a, b) for a, b in zip(got, frames, strict=True))
    assert all(len(p["seq_num"]) <= 2 for p in pages) and len(pages) >= 4
    # Not asked for: the image is not a column at all; a datum id never stands in for it.
    assert raw and all("img" not in p for p in raw)
    assert live.failures == 0


def test_rows_wait_for_the_pipeline_to_end_in_a_sink(sqlite_cat, live_of):
    write_run(sqlite_cat, 50)  # finished before the pipeline exists: read at once
    live = live_of()
    source = live.stream()
    doubled = source.map(lambda row: 2 * row["seq_num"])
    time.sleep(0.3)  # the rows are read meanwhile, but held: the pipeline has no sink yet
    assert live.emissions == 0
    got = doubled.sink_to_list()
    assert wait_for(lambda: len(got) == 50)
    assert got == [2 * s for s in range(1, 51)]


def test_the_package_function_is_lazy(tmp_path):
    code = (
        "import sys, scandeck\n"
        "assert 'streamz' not in sys.modules and 'scandeck.livestream' not in sys.modules\n"
        f"cat = scandeck.open_catalog({str(tmp_path / 's')!r})\n"
        "one = scandeck.live(catalog=cat)\n"
        "import scandeck.livestream\n"
        "two = scandeck.live(catalog=cat)\n"
        "print(type(one).__name__, type(two).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Live", "Live"]


# -- a real kernel, a real producer -------------------------------------------------------


def test_kernel_pipeline_totals_every_event_and_the_kernel_answers(tmp_path):
    from kernel_harness import KernelSession

    store = tmp_path / "store"
    scandeck.open_catalog(store).close()
    kernel = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    try:
        kernel.execute(
            "import scandeck\n"
            f"live = scandeck.live(catalog=scandeck.open_catalog({str(store)!r}))\n"
            "total, pages = [0], [0]\n"
            "def count(page):\n"
            "    total[0] += len(page['seq_num'])\n"
            "    pages[0] += 1\n"
            "live.stream(pages=True).sink(count)"
        )
        rate, seconds, page = 20_000, 1.0, 50
        proc = subprocess.Popen(
            [sys.executable, PROCS, "stream", str(store), str(rate), str(seconds), str(page)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "writing"
        answers = []
        while proc.poll() is None:
            reply = kernel.execute("40 + 2", timeout=30)
            answers.append(kernel.text_of(reply["msg_id"]))
        assert proc.wait(60) == 0
        proc.stdout.close()
        assert answers and set(answers) == {"42"}
        events = int(rate * seconds)

        def counts():
            text = kernel.text_of(kernel.execute("print(total[0], pages[0], live.failures)")["msg_id"])
            return [int(v) for v in text.split()]

        assert wait_for(lambda: counts()[0] == events, 30)
        total, pages, failures = counts()
        assert failures == 0 and pages < events / page
        print(f"kernel: {events} events in {events // page} event pages -> {pages} page emissions")
    finally:
        kernel.close()
