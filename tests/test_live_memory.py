"""Bounded live memory: one shared follower per run, readers at their own pace, rows forgotten once taken.

In-process cases use ``cat.writer()`` documents (``test_live.write_run``) and a real
RunEngine; the ``%%bind --window`` and sharing cases run in a real kernel fed by a
producer process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from event_model import compose_run
from kernel_harness import output_text
from test_live import DATA_KEYS, wait_for, write_run

import scandeck
from scandeck.livestream import MAX_QUEUED_ROWS, TAKE_ROWS, Live
from scandeck.pipeline import hub
from scandeck.pipeline.columns import KeptColumns
from scandeck.pipeline.follower import READ_EVENTS
from scandeck.pipeline.table import LiveTable

PROCS = str(Path(__file__).with_name("procs.py"))


class OpenRun:
    """A run written by ``cat.writer()`` page by page, its stop sent when asked."""

    def __init__(self, cat, page: int = 100) -> None:
        self.writer = cat.writer()
        self.bundle = compose_run(metadata={"plan_name": "test"})
        self.desc = self.bundle.compose_descriptor(name="primary", data_keys=DATA_KEYS)
        self.page, self.written = page, 0
        self.writer("start", self.bundle.start_doc)
        self.writer("descriptor", self.desc.descriptor_doc)
        self.uid = self.bundle.start_doc["uid"]

    def pages(self, count: int) -> None:
        for _ in range(count):
            seq = list(range(self.written + 1, self.written + self.page + 1))
            self.writer(
                "event_page",
                self.desc.compose_event_page(
                    data={"x": [float(s) for s in seq], "det": [float(s % 7) for s in seq]},
                    timestamps={"x": [0.0] * len(seq), "det": [0.0] * len(seq)},
                    seq_num=seq,
                    time=[time.time()] * len(seq),
                ),
            )
            self.written += self.page

    def stop(self) -> None:
        self.writer("stop", self.bundle.compose_stop())


def counted(live: Live) -> list[int]:
    """Rows of each page a pipeline that keeps nothing saw (a count per page)."""
    counts: list[int] = []
    live.stream(pages=True).map(lambda page: len(page["seq_num"])).sink(counts.append)
    return counts


def seqs(live: Live) -> list[int]:
    got: list[int] = []
    live.stream(pages=True).sink(lambda page: got.extend(page["seq_num"]))
    return got


def test_a_counting_pipeline_holds_a_bounded_batch_of_a_long_run(sqlite_cat):
    """200,000 events in pages of 1,000: the follower's table never holds more than one read of them."""
    total, page = 200_000, 1_000
    uid = write_run(sqlite_cat, total, page=page)
    with Live(sqlite_cat[uid], catalog=sqlite_cat) as live:
        counts = counted(live)
        assert live.flush(120)
        (feed,) = live._feeds.values()
        table = feed.reader.follower.state.table
        assert sum(counts) == total
        assert len(table) == total and table.held == 0  # every row handed on, none kept
        assert 0 < table.peak_held <= READ_EVENTS + page < total / 5
        assert live._queued_rows == 0 and MAX_QUEUED_ROWS + TAKE_ROWS < total


def test_consumers_of_one_run_share_one_follower_and_each_gets_every_row(sqlite_cat):
    run = OpenRun(sqlite_cat)
    first = Live(sqlite_cat[run.uid], catalog=sqlite_cat)
    second = Live(sqlite_cat[run.uid], catalog=sqlite_cat)
    try:
        a, b = seqs(first), seqs(second)
        (fa,), (fb,) = first._feeds.values(), second._feeds.values()
        assert fa.reader.follower is fb.reader.follower is hub.registered(sqlite_cat.source, run.uid)
        run.pages(20)
        assert wait_for(lambda: len(a) == len(b) == 2_000)
        assert wait_for(lambda: fa.reader.follower.state.table.held == 0)  # both took them: dropped
        second.stop()  # one consumer stops; the other goes on being fed
        assert fa.reader.follower.alive and hub.registered(sqlite_cat.source, run.uid) is fa.reader.follower
        run.pages(20)
        run.stop()
        assert first.flush(30)
        assert a == list(range(1, 4_001)) and b == list(range(1, 2_001))
        assert hub.registered(sqlite_cat.source, run.uid) is None  # the run ended: its follower left
        assert wait_for(lambda: not fa.reader.follower.alive)
    finally:
        first.stop()
        second.stop()


def test_a_late_consumer_reads_the_dropped_rows_from_the_source(sqlite_cat):
    run = OpenRun(sqlite_cat)
    early = Live(sqlite_cat[run.uid], catalog=sqlite_cat)
    late = None
    try:
        a = seqs(early)
        run.pages(30)
        (feed,) = early._feeds.values()
        assert wait_for(lambda: len(a) == 3_000 and feed.reader.follower.state.table.base == 3_000)
        late = Live(sqlite_cat[run.uid], catalog=sqlite_cat)  # joins the running follower
        b = seqs(late)
        (late_feed,) = late._feeds.values()
        assert late_feed.reader.follower is feed.reader.follower
        run.pages(10)
        run.stop()
        assert late.flush(30) and early.flush(30)
        assert a == b == list(range(1, 4_001))
    finally:
        early.stop()
        if late is not None:
            late.stop()


def test_stopping_the_last_consumer_stops_the_follower(sqlite_cat):
    run = OpenRun(sqlite_cat)
    live = Live(sqlite_cat[run.uid], catalog=sqlite_cat)
    got = seqs(live)
    run.pages(3)
    assert wait_for(lambda: len(got) == 300)
    (feed,) = live._feeds.values()
    live.stop()
    assert hub.registered(sqlite_cat.source, run.uid) is None and not feed.reader.follower.alive
    run.stop()


def test_newest_run_followers_release_each_finished_run(sqlite_cat, RE):
    """Following "the newest run": every run's rows pass through and are dropped; no table keeps a run."""
    import bluesky.plans as bp
    from ophyd.sim import det

    RE.subscribe(sqlite_cat.writer())
    with Live(catalog=sqlite_cat) as live:
        pages: list[tuple[str, int]] = []
        live.stream(pages=True).sink(lambda page: pages.append((page["uid"], len(page["seq_num"]))))
        uids = [RE(bp.count([det], num=50))[0] for _ in range(3)]
        assert wait_for(lambda: sum(n for _, n in pages) == 150)
        assert {u for u, _ in pages} == set(uids)
        (feed,) = live._feeds.values()
        assert feed.reader.follower.state.uid == uids[-1] and feed.reader.follower.state.table.held == 0
        newest = hub.registered(sqlite_cat.source, None, every_run=True)
        assert newest is feed.reader.follower  # "the newest" goes on after a run ends
    assert hub.registered(sqlite_cat.source, None, every_run=True) is None


def test_kept_columns_hold_the_run_in_numpy_at_most_twice_its_bytes(sqlite_cat):
    uid = write_run(sqlite_cat, 30_000, page=500)
    table, kept, window = LiveTable("primary"), KeptColumns(), KeptColumns(window=1_000)
    for name, doc in sqlite_cat[uid].documents():
        if table.add(name, doc):
            cols = table.columns(table.base)
            kept.extend(cols)
            window.extend(cols)
            table.drop(len(table))
    df = kept.frame()
    assert len(df) == 30_000 and df["det"].tolist() == [float(s % 7) for s in range(1, 30_001)]
    columns = 4  # seq_num, time, x, det: 8 bytes a value
    assert kept.nbytes <= 2 * 30_000 * columns * 8
    last = window.frame()
    assert list(last.index) == list(range(29_001, 30_001))
    assert last["x"].tolist() == [float(s) for s in range(29_001, 30_001)]
    assert window.nbytes <= 2 * 1_000 * columns * 8
    assert window.row()["seq_num"] == 30_000
    df.loc[1, "det"] = -1.0  # a frame is the user's: editing it never changes what is kept
    assert kept.frame()["det"].iloc[0] == 1.0


def produce(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, PROCS, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def printed(kernel, code: str) -> str:
    return kernel.text_of(kernel.execute(code, timeout=60)["msg_id"])


@pytest.mark.timeout(240)
def test_bindings_pipeline_and_plot_of_a_run_share_one_follower_in_a_kernel(kernel, store):
    """Two ``%%bind`` cells (one ``--window 50``), a counting ``live()`` pipeline and a plot of one
    running run: one follower; the window holds the newest 50 rows; the finished run's follower is gone."""
    printed(kernel, "import scandeck, scandeck.plot")  # holoviews takes seconds: before the run
    proc = produce("stream", str(store), "400", "10", "20")  # 4,000 events in pages of 20
    try:
        cat = scandeck.open_catalog(store)
        assert wait_for(lambda: len(cat) == 1)
        uid = cat[-1].uid
        kernel.execute(f'%%bind --uid {uid} --every 0\nprint("full", len(df), df["det"].sum())')
        kernel.execute(
            f"%%bind --uid {uid} --window 50 --every 0\n"
            'print("window", len(df), df.index[0], df.index[-1], '
            'df["det"].tolist() == [float(s % 7) for s in df.index], len(new) <= 50)'
        )
        kernel.execute(
            f"cat = scandeck.open_catalog({str(store)!r})  # not the session's object: the same store\n"
            f"live = scandeck.live({uid!r}, catalog=cat)\n"
            "counts = []\n"
            'live.stream(pages=True).map(lambda p: len(p["seq_num"])).sink(counts.append)\n'
            f'curve = scandeck.plot.line("seq_num", "det", run={uid!r}, catalog=cat)'
        )
        shared = printed(
            kernel,
            "from scandeck.pipeline import hub\n"
            'magics = get_ipython().magics_manager.registry["ScandeckMagics"]\n'
            "readers = [b.reader for b in magics._bindings.values()]\n"
            "readers += [f.reader for f in live._feeds.values()]\n"
            "readers += [f.reader for f in scandeck.plot.feed(curve).live._feeds.values()]\n"
            "print(len(readers), len({id(r.follower) for r in readers}), hub.followers())",
        )
        assert shared.split() == ["4", "1", "1"], shared
    finally:
        assert proc.wait(60) == 0
        proc.stdout.close()
    full = sum(float(s % 7) for s in range(1, 4_001))

    def texts() -> list[str]:
        return [output_text(u[2]).strip() for u in kernel.widget_outputs()]

    assert kernel.wait_for(lambda: f"full 4000 {full}" in texts(), 60), texts()
    assert kernel.wait_for(lambda: "window 50 3951 4000 True True" in texts(), 60), texts()
    assert kernel.wait_for(lambda: printed(kernel, "print(sum(counts))").strip() == "4000", 60)
    assert kernel.wait_for(lambda: printed(kernel, "print(scandeck.plot.feed(curve).rows)").strip() == "4000", 60)
    assert printed(kernel, "print(hub.followers())").strip() == "0"  # the finished run's follower is gone
    # Each window update showed at most 50 rows, all of them the newest at the time.
    windows = [t.split() for t in texts() if t.startswith("window")]
    assert windows and all(int(w[1]) <= 50 and w[4] == "True" for w in windows)


def test_unbinding_one_cell_leaves_the_other_fed(kernel, store):
    proc = produce("stream", str(store), "300", "4", "10")
    try:
        cat = scandeck.open_catalog(store)
        assert wait_for(lambda: len(cat) == 1)
        uid = cat[-1].uid
        kernel.execute(f'%%bind --uid {uid} --every 0\nprint("a", len(df))')
        kernel.execute(f'%%bind --uid {uid} --every 0\nprint("b", len(df))')
        kernel.execute("%unbind 1")
        assert printed(kernel, "from scandeck.pipeline import hub\nprint(hub.followers())").strip() == "1"
    finally:
        assert proc.wait(60) == 0
        proc.stdout.close()
    assert kernel.wait_for(lambda: any(output_text(u[2]).strip() == "b 1200" for u in kernel.widget_outputs()), 60)
    assert not any(output_text(u[2]).strip() == "a 1200" for u in kernel.widget_outputs())


def test_window_must_keep_a_row(kernel, store):
    with pytest.raises(AssertionError, match="--window keeps the newest N rows"):
        kernel.execute("%%bind --window 0\nprint(len(df))")
