"""scandeck.plot: HoloViews objects fed live, batched to at most ~30 updates a second.

In-process tests attach real Bokeh plots (so every Buffer send does the work a
notebook's would) and write runs from another thread; the kernel tests show a
plot the way JupyterLab does, open its comm like the front end would, and count
the plot updates on IOPub under a fast producer.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from test_live import in_thread, wait_for, write_run

import scandeck

hv = pytest.importorskip("holoviews")
splot = pytest.importorskip("scandeck.plot")

PROCS = str(Path(__file__).with_name("procs.py"))


def rendered(obj):
    """Attach a Bokeh plot, as displaying it in a notebook would."""
    return hv.renderer("bokeh").get_plot(obj)


def counting_sends(buffer) -> list[int]:
    """Count Buffer.send calls (``clear`` sends too)."""
    calls = [0]
    send = buffer.send

    def counted(*args, **kwargs):
        calls[0] += 1
        return send(*args, **kwargs)

    buffer.send = counted
    return calls


def test_line_gets_every_row_in_few_batched_sends(sqlite_cat, plots):
    plot = plots(splot.line("x", "det", catalog=sqlite_cat, width=500))
    bokeh_plot = rendered(plot)
    buffer = plot.streams[0]
    sends = counting_sends(buffer)
    events = 6_000
    in_thread(write_run, sqlite_cat, events, page=20).join()
    assert wait_for(lambda: len(buffer.data) == events)
    time.sleep(0.2)  # nothing more comes
    np.testing.assert_array_equal(buffer.data["x"], np.arange(1.0, events + 1))
    np.testing.assert_array_equal(buffer.data["det"], np.arange(1.0, events + 1) % 7)
    assert len(bokeh_plot.handles["source"].data["x"]) == events  # the Bokeh plot has them all
    feed = splot.feed(plot)
    assert sends[0] == feed.sends and feed.rows == events and feed.live.failures == 0
    assert sends[0] < events / 20 / 5  # far fewer than the 300 event pages, let alone events
    print(f"line: {events} events in {events // 20} event pages -> {sends[0]} Buffer sends")


def test_line_resets_on_a_new_run_but_not_when_following_one(sqlite_cat, plots):
    first = write_run(sqlite_cat, 300, page=10)
    newest = plots(splot.line("x", "det", catalog=sqlite_cat))
    pinned = plots(splot.line("seq_num", "det", run=first[:8], catalog=sqlite_cat))
    assert wait_for(lambda: len(newest.streams[0].data) == 300 and len(pinned.streams[0].data) == 300)
    rendered(newest)  # here: outside a kernel, sends come from the private loop thread
    in_thread(write_run, sqlite_cat, 120).join()
    assert wait_for(lambda: splot.feed(newest).rows == 420)
    time.sleep(0.1)
    np.testing.assert_array_equal(newest.streams[0].data["x"], np.arange(1.0, 121))  # the new run only
    assert splot.feed(newest).runs == 2
    assert len(pinned.streams[0].data) == 300 and splot.feed(pinned).runs == 1


def test_table_shows_the_newest_rows_of_scalar_keys(sqlite_cat, plots):
    table = plots(splot.table(catalog=sqlite_cat, length=50))
    rendered(table)
    in_thread(write_run, sqlite_cat, 500, page=25).join()
    buffer = table.streams[0]
    assert wait_for(lambda: len(buffer.data) == 50 and buffer.data["seq_num"].iloc[-1] == 500)
    assert list(buffer.data.columns) == ["seq_num", "time", "x", "det"]
    assert buffer.data["seq_num"].tolist() == list(range(451, 501))
    element = table[()]
    assert isinstance(element, hv.Table) and element["seq_num"].tolist() == list(range(500, 450, -1))


def test_image_fills_npy_seq_frames_and_sums_them(sqlite_cat, plots, RE, hw):
    import bluesky.plans as bp

    layout = plots(splot.image("img", catalog=sqlite_cat, cmap="viridis"))
    rendered(layout)
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.count([hw.img], num=7))
    feed = splot.feed(layout)
    assert wait_for(lambda: feed.image["frames"] == 7)
    frames = sqlite_cat[uid].primary.read()["img"].values  # read back through the NPY_SEQ handler
    assert frames.shape[0] == 7 and frames.ndim == 3
    assert isinstance(sqlite_cat[uid].primary.read(fill=False)["img"].values[0], str)  # a datum id
    np.testing.assert_allclose(feed.image["sum"], frames.sum(axis=0))
    np.testing.assert_array_equal(feed.image["latest"], frames[-1])
    latest, total = layout.values()
    shown = total.streams[0].data  # what the Pipe last sent: the state after the stop document
    assert shown["frames"] == 7 and latest.streams[0] is total.streams[0]
    np.testing.assert_allclose(shown["sum"], frames.sum(axis=0))
    assert isinstance(total[()], hv.Image) and total[()].label == "img sum of 7 frames"
    assert feed.live.failures == 0 and feed.sends < 7 + 2


# -- a real kernel -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hv_kernel(tmp_path_factory):
    from kernel_harness import KernelSession

    tmp = tmp_path_factory.mktemp("plotkernel")
    store = tmp / "store"
    scandeck.open_catalog(store).close()
    kernel = KernelSession({"SCANDECK_DATA": str(tmp / "data")})
    kernel.execute(
        "import holoviews as hv, scandeck, scandeck.plot\nhv.extension('bokeh')\n"
        f"%load_ext scandeck\n%catalog {store}\ncat = scandeck.open_catalog({str(store)!r})"
    )
    yield kernel, store
    kernel.close()


def open_plot_comm(kernel, reply) -> None:
    """Open the plot's comm from the 'front end', as the output's JavaScript does in JupyterLab."""
    (result,) = [m for m in reply["outputs"] if m["msg_type"] == "execute_result"]
    assert "application/vnd.holoviews_exec.v0+json" in result["content"]["data"]
    target = re.search(r'client_comm_id":"(\w+)"', result["content"]["data"]["text/html"]).group(1)
    msg = kernel.kc.session.msg("comm_open", {"comm_id": uuid.uuid4().hex, "target_name": target, "data": {}})
    kernel.kc.shell_channel.send(msg)


def widget_outputs(kernel) -> list[list[dict]]:
    """``outputs`` of Output widget updates (like KernelSession.widget_outputs, which expects
    every comm message to carry a dict: Bokeh's comm messages carry JSON text)."""
    with kernel._lock:
        found = []
        for m in kernel.messages:
            data = m["content"].get("data") if m["msg_type"] == "comm_msg" else None
            if isinstance(data, dict) and data.get("method") == "update" and "outputs" in data.get("state", {}):
                found.append(data["state"]["outputs"])
    return found


def test_kernel_plot_updates_stay_near_30_per_second(hv_kernel):
    kernel, store = hv_kernel
    reply = kernel.execute("p = scandeck.plot.line('x', 'det', catalog=cat)\np")
    open_plot_comm(kernel, reply)
    kernel.execute("1")  # the comm_open is handled before this request
    rate, seconds, page = 20_000, 1.0, 50
    events = int(rate * seconds)
    seen = len(kernel.messages)
    proc = subprocess.Popen(
        [sys.executable, PROCS, "stream", str(store), str(rate), str(seconds), str(page)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "writing"
    t0 = time.monotonic()
    while proc.poll() is None:
        assert kernel.text_of(kernel.execute("40 + 2", timeout=30)["msg_id"]) == "42"
    assert proc.wait(60) == 0
    proc.stdout.close()

    def shown() -> int:
        return int(kernel.text_of(kernel.execute("print(len(p.streams[0].data))")["msg_id"]))

    assert wait_for(lambda: shown() == events, 30)
    time.sleep(0.3)  # the last update's messages are out
    with kernel._lock:
        comm = [m for m in kernel.messages[seen:] if m["msg_type"] == "comm_msg"]
    # One plot update is one Bokeh PATCH-DOC message, sent as a header comm message
    # followed by its metadata, content and binary buffers.
    updates = [m for m in comm if '"msgtype": "PATCH-DOC"' in str(m["content"]["data"])]
    duration = comm[-1]["received"] - t0
    sends = int(kernel.text_of(kernel.execute("print(scandeck.plot.feed(p).sends)")["msg_id"]))
    print(
        f"kernel plot: {events} events -> {sends} Buffer sends, {len(updates)} PATCH-DOC updates, "
        f"{len(comm)} comm messages in {duration:.1f} s"
    )
    assert 2 <= len(updates) <= 40 * duration + 20  # a rate cap (~30 Hz), not a speed test
    assert sends <= 40 * duration + 20


def test_bound_cell_returning_a_holoviews_object_shows_it(hv_kernel):
    kernel, store = hv_kernel
    kernel.execute('%%bind --every 0.1\nhv.Curve(df, "x", "det")')
    cat = scandeck.open_catalog(store)
    write_run(cat, 20, page=4)
    cat.close()

    def holoviews_outputs():
        return [
            o
            for outs in widget_outputs(kernel)
            for o in outs
            if o["output_type"] == "display_data" and "application/vnd.holoviews_exec.v0+json" in o.get("data", {})
        ]

    assert wait_for(lambda: holoviews_outputs(), 30)
    data = holoviews_outputs()[-1]["data"]
    assert "text/html" in data and "Curve" in data.get("text/plain", "")
    kernel.execute("%unbind --all")


def test_importing_scandeck_imports_no_plotting():
    code = "import sys, scandeck; print(any(m in sys.modules for m in ('holoviews', 'bokeh', 'streamz')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
