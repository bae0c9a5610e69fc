"""The Redis bus when things go wrong: restarts, crashes, a full buffer, dead writers.

Every test runs a real redis-server of its own on a free port (tests/redis_server.py),
a real bluesky RunEngine where runs are recorded, and followers in other processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from event_model import compose_run
from redis_server import RedisServer, free_port

import scandeck
from scandeck.documents import normalize
from scandeck.exceptions import ScandeckError, StoreError
from scandeck.follow import follow_run

PROCS = str(Path(__file__).with_name("procs.py"))


def bus(server: RedisServer, tmp_path: Path, **options: str) -> str:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    return f"{server.url}?prefix=bus-{uuid.uuid4().hex[:8]}&archive={tmp_path / 'archive'}{query}"


@pytest.fixture
def own_server(tmp_path):
    """A redis-server with the append-only file on, that a test may restart or kill."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.kill()


def when(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def record_while(RE, uri, plan, action, at_event: int):
    """Record ``plan`` into ``uri``; run ``action()`` on a thread once ``at_event`` events went out."""
    cat = scandeck.open_catalog(uri)
    writer = cat.writer()
    emitted = []
    fired = threading.Event()

    def watch(name, doc):
        emitted.append((name, normalize(doc)))
        if name == "event" and doc["seq_num"] == at_event and not fired.is_set():
            fired.set()
            threading.Thread(target=action, daemon=True).start()

    tokens = [RE.subscribe(writer), RE.subscribe(watch)]
    try:
        (uid,) = RE(plan)
    finally:
        for token in tokens:
            RE.unsubscribe(token)
    assert fired.is_set()
    assert writer.flush(timeout=60)
    writer.close()
    return cat, uid, emitted


def test_redis_restart_mid_run_loses_and_doubles_nothing(RE, own_server, tmp_path):
    """Redis (appendonly yes) restarts mid-run: writer and followers resume where they were."""
    import bluesky.plans as bp
    from ophyd.sim import det

    uri = bus(own_server, tmp_path)
    scandeck.open_catalog(uri)  # the bus exists before the follower looks at it
    out = tmp_path / "seen.json"
    follower = subprocess.Popen(
        [sys.executable, PROCS, "follow", uri, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert follower.stdout.readline().strip() == "following"  # connected before Redis goes away
    seen_here = []

    def follow_here():
        cat = scandeck.open_catalog(uri)
        when(lambda: len(cat) > 0, what="the run to appear")
        seen_here.extend((e.pos, e.name, e.doc) for e in follow_run(cat.source, cat[-1].uid, timeout=60))

    here = threading.Thread(target=follow_here, daemon=True)
    here.start()
    cat, uid, emitted = record_while(
        RE, uri, bp.count([det], num=300, delay=0.004), lambda: own_server.restart(down_for=0.3), at_event=60
    )
    here.join(60)
    assert follower.wait(60) == 0
    follower.stdout.close()
    stored = [(e.pos, e.name, e.doc) for e in cat.source.documents(uid)]
    assert [(n, d) for _, n, d in stored] == emitted  # every document once, in order
    assert [p for p, _, _ in stored] == list(range(len(emitted)))
    assert seen_here == stored
    ids = [[p, n, d.get("uid") or d.get("datum_id")] for p, n, d in stored]
    assert json.loads(out.read_text()) == ids
    assert cat[uid].status == "success" and cat[uid].num_events == 300


def test_redis_crash_without_persistence_is_healed_by_the_writer(RE, tmp_path, caplog):
    """SIGKILL on a Redis without an append-only file: it comes back empty and the
    writer sends the open run again from its start document."""
    import bluesky.plans as bp
    from ophyd.sim import det

    server = RedisServer(tmp_path / "redis", appendonly=False).start()
    try:
        uri = bus(server, tmp_path)

        def crash():
            server.kill()
            server.start()

        cat, uid, emitted = record_while(RE, uri, bp.count([det], num=200, delay=0.004), crash, at_event=50)
        stored = [(e.name, e.doc) for e in cat.source.documents(uid)]
        assert stored == emitted
        assert cat[uid].status == "success"
        assert "lost documents 0.." in caplog.text and "sending them again" in caplog.text
    finally:
        server.kill()


def _open_run(writer, n_keys: int = 1):
    bundle = compose_run(metadata={"plan_name": "buffer"})
    keys = {f"x{i}": {"dtype": "number", "shape": [], "source": f"x{i}"} for i in range(n_keys)}
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    return bundle, desc


def _event(desc, i: int, n_keys: int = 1):
    return desc.compose_event(
        data={f"x{k}": float(i) for k in range(n_keys)},
        timestamps={f"x{k}": 1.0 for k in range(n_keys)},
        seq_num=i + 1,
    )


def test_writer_buffers_while_redis_is_away_and_refuses_when_full(own_server, tmp_path):
    uri = bus(own_server, tmp_path, buffer="64kB")
    cat = scandeck.open_catalog(uri)
    writer = cat.writer()
    bundle, desc = _open_run(writer, n_keys=8)
    assert writer.flush(timeout=30)
    own_server.stop()
    accepted = 0
    with pytest.raises(StoreError, match=r"buffer is full .* unreachable since .* not stored") as err:
        for i in range(10_000):
            writer("event", _event(desc, i, n_keys=8))
            accepted += 1
    assert "buffer=" in str(err.value)  # says how to hold more
    assert 20 < accepted < 10_000
    own_server.start()
    assert writer.flush(timeout=60)  # what it holds goes out in order once Redis is back
    writer("event", _event(desc, accepted, n_keys=8))  # and it goes on
    writer("stop", bundle.compose_stop())
    assert writer.flush(timeout=60)
    writer.close()
    run = cat[bundle.start_doc["uid"]]
    assert run.status == "success"
    assert run.primary.read()["x0"].values.tolist() == [float(i) for i in range(accepted + 1)]


def test_a_batch_sent_twice_is_stored_once(redis_server, tmp_path):
    """What a writer does when a reply was lost: send again. Redis answers 'already stored'."""
    from scandeck.sources.redis_writer import _Item

    cat = scandeck.open_catalog(bus(redis_server, tmp_path))
    writer = cat.writer()
    bundle, desc = _open_run(writer)
    writer("event", _event(desc, 0))
    assert writer.flush(timeout=30)
    sender = writer._sender
    kept = sender.kept[bundle.start_doc["uid"]]
    assert [item.pos for item in kept] == [0, 1, 2]
    again = sender._send([_Item(k.uid, k.pos, k.name, k.blob, k.args) for k in kept])
    assert again == [0, 0, 0]
    assert [e.name for e in cat.source.documents(bundle.start_doc["uid"])] == ["start", "descriptor", "event"]
    writer.close()


def test_a_writer_gone_silent_on_another_host_leaves_an_incomplete_run(redis_server, tmp_path):
    """A writer process on 'another host' (its hostname faked: one machine here) is killed.

    The reader cannot check a remote pid, so the writer's heartbeat expiring is what
    tells it the run is incomplete.
    """
    uri = bus(redis_server, tmp_path, heartbeat="2")  # refreshed every 0.67 s: a loaded machine keeps it
    program = f"""
import time, scandeck.sources.liveness as liveness
liveness.HOST = "beamline-ioc-host"
import scandeck
from event_model import compose_run
writer = scandeck.open_catalog({uri!r}).writer()
writer("start", compose_run(metadata={{"plan_name": "remote"}}).start_doc)
print("started", flush=True)
time.sleep(600)
"""
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        cat = scandeck.open_catalog(uri)
        run = cat[-1]
        time.sleep(2.5)  # longer than the heartbeat: a live writer keeps its run running
        assert run.status == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        when(lambda: run.status == "incomplete", what="the heartbeat to expire")
        assert list(run.follow(timeout=5))[0][0] == "start"  # following it ends
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_unreachable_redis_is_a_clear_error(tmp_path):
    port = free_port()
    with pytest.raises(StoreError, match=rf"Redis at 127.0.0.1:{port}/0 is unreachable while opening"):
        scandeck.open_catalog(f"redis://127.0.0.1:{port}/0?prefix=x")


def test_a_reader_gives_up_after_reconnect_seconds(own_server, tmp_path):
    cat = scandeck.open_catalog(bus(own_server, tmp_path, reconnect="0.3"))
    assert len(cat) == 0
    own_server.stop()
    with pytest.raises(StoreError, match="unreachable while listing runs.*what is stored stays stored"):
        len(cat)
    own_server.start()
    assert len(cat) == 0  # the same catalog works again


@pytest.mark.parametrize(
    "query, message",
    [
        ("buffer=lots", "not a size"),
        ("heartbeat=-1", "heartbeat must be a positive"),
        ("prefix=a b", "may hold only"),
    ],
)
def test_bad_options_in_the_uri_are_named(redis_server, query, message):
    with pytest.raises(ScandeckError, match=message):
        scandeck.open_catalog(f"{redis_server.url}?{query}")


def test_late_readers_start_from_the_start_document(RE, redis_server, tmp_path):
    """Unlike a 0MQ subscriber, a reader that arrives mid-run misses no descriptor."""
    import bluesky.plans as bp
    from ophyd.sim import det, motor

    uri = bus(redis_server, tmp_path)
    seen_mid = []

    def join_late():
        cat = scandeck.open_catalog(uri)
        seen_mid.extend(cat[-1].follow(timeout=30))

    cat, uid, emitted = record_while(RE, uri, bp.scan([det], motor, -1, 1, 100), join_late, at_event=40)
    when(lambda: len(seen_mid) == len(emitted), what="the late reader to finish")
    assert seen_mid == emitted
    assert list(scandeck.open_catalog(uri)[uid].documents()) == emitted  # and one after the run


def test_images_bypass_the_stream_through_stream_resources(redis_server, tmp_path):
    """A detector writes frames to HDF5 and publishes only stream_resource/stream_datum
    documents (data decoupled from events, as blissdata does); readers fill the frames."""
    import h5py
    import numpy as np

    frames = np.random.default_rng(0).random((200, 64, 64), dtype=np.float32)
    path = tmp_path / "cam.h5"
    cat = scandeck.open_catalog(bus(redis_server, tmp_path))
    bundle = compose_run(metadata={"plan_name": "fly"})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "cam": {"dtype": "array", "shape": [64, 64], "source": "cam", "external": "STREAM:"},
            "x": {"dtype": "number", "shape": [], "source": "x"},
        },
    )
    sres = bundle.compose_stream_resource(
        mimetype="application/x-hdf5",
        uri=f"file://localhost{path}",
        data_key="cam",
        parameters={"dataset": "/entry/data"},
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("stream_resource", sres.stream_resource_doc)
    with h5py.File(path, "w") as f:
        data = f.create_dataset("/entry/data", shape=(0, 64, 64), maxshape=(None, 64, 64), dtype="f4")
        for start in range(0, 200, 50):  # the detector writes a block, then says so
            data.resize(start + 50, axis=0)
            data[start : start + 50] = frames[start : start + 50]
            f.flush()
            writer(
                "event_page",
                desc.compose_event_page(
                    data={"x": [float(i) for i in range(start, start + 50)]},
                    timestamps={"x": [1.0] * 50},
                    seq_num=list(range(start + 1, start + 51)),
                    time=[1.0] * 50,
                ),
            )
            writer(
                "stream_datum",
                sres.compose_stream_datum(
                    indices={"start": start, "stop": start + 50},
                    seq_nums={"start": start + 1, "stop": start + 51},
                    descriptor=desc.descriptor_doc,
                ),
            )
    writer("stop", bundle.compose_stop())
    writer.close()
    uid = bundle.start_doc["uid"]
    in_redis = sum(cat.source._client.memory_usage(k, samples=0) or 0 for k in cat.source.keys.of_run(uid))
    assert in_redis < frames.nbytes / 100  # 3.3 MB of frames; Redis holds the documents only
    late = scandeck.open_catalog(cat.source.uri)[uid].primary.read()
    np.testing.assert_array_equal(late["cam"].values, frames)
    np.testing.assert_array_equal(late["x"].values, np.arange(200.0))


def test_a_bound_cell_in_a_kernel_follows_the_bus(redis_server, tmp_path):
    """The whole path: a RunEngine in another process publishes, a real kernel's
    ``%%bind`` cell re-runs as the events arrive over Redis."""
    from kernel_harness import KernelSession, output_text

    uri = bus(redis_server, tmp_path)
    scandeck.open_catalog(uri).close()
    session = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    try:
        session.execute(f"%load_ext scandeck\n%catalog {uri}")
        session.execute('%%bind --every 0.1\nprint("rows", len(df), "status", run.status)')
        proc = subprocess.Popen(
            [sys.executable, PROCS, "write", uri, "100", "0.01"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().strip() == "writing"

            def last() -> str:
                updates = session.widget_outputs()
                return output_text(updates[-1][2]) if updates else ""

            assert session.wait_for(lambda: "rows 100 status success" in last(), 60)
            assert proc.wait(60) == 0
        finally:
            proc.kill()
            proc.wait(10)
            proc.stdout.close()
        texts = [output_text(u[2]) for u in session.widget_outputs()]
        assert any("status running" in t for t in texts)  # updated while the run was measured
    finally:
        session.close()
