"""The contract every source keeps, run against each registered source.

Documents come from a real bluesky RunEngine with ophyd.sim devices, or from
event-model's ``compose_run`` where a case needs exact control (event pages,
chosen uids, broken order).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from document_equivalence import as_stored
from event_model import compose_run

from scandeck.documents import normalize
from scandeck.exceptions import AmbiguousUID, InvalidDocument, RunNotFound, StreamNotFound
from scandeck.queries import Key, PartialUID, ScanID, TimeRange


def record(RE, cat, plan, **md):
    """Run ``plan`` into ``cat``; return the run's uid and the documents RE emitted."""
    emitted = []
    writer = cat.writer()
    t1 = RE.subscribe(writer)
    t2 = RE.subscribe(lambda name, doc: emitted.append((name, normalize(doc))))
    try:
        (uid,) = RE(plan, **md)
    finally:
        RE.unsubscribe(t1)
        RE.unsubscribe(t2)
    return uid, emitted


def test_records_every_document_in_order(RE, cat, hw):
    import bluesky.plans as bp

    uid, emitted = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 7), sample="Ni")
    run = cat[uid]
    assert as_stored(cat, run.documents()) == as_stored(cat, emitted)
    assert run.metadata["start"]["sample"] == "Ni"
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.status == "success"
    assert run.num_events == 7
    assert list(run) == ["primary"]


def test_read_scan_to_xarray_and_pandas(RE, cat, hw):
    import bluesky.plans as bp

    uid, emitted = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 5))
    events = [doc for name, doc in emitted if name == "event"]
    ds = cat[uid].primary.read()
    assert ds.sizes["time"] == 5
    np.testing.assert_array_equal(ds["det"].values, [e["data"]["det"] for e in events])
    np.testing.assert_array_equal(ds["motor"].values, [e["data"]["motor"] for e in events])
    np.testing.assert_array_equal(ds["time"].values, [e["time"] for e in events])
    assert ds["motor"].attrs["source"] == "SIM:motor"
    df = cat[uid].primary.to_pandas()
    assert list(df.index) == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(df["det"].to_numpy(), ds["det"].values)
    assert len(cat[uid].primary) == 5


def test_grid_scan_baseline_and_image_external_data(RE, cat, hw):
    import bluesky.plans as bp
    from bluesky.preprocessors import baseline_wrapper

    plan = baseline_wrapper(bp.grid_scan([hw.det4, hw.img], hw.motor1, -1, 1, 3, hw.motor2, -1, 1, 4), [hw.motor3])
    uid, _ = record(RE, cat, plan)
    run = cat[uid]
    assert set(run) == {"primary", "baseline"}
    ds = run.primary.read()
    assert ds["img"].shape == (12, 10, 10)
    assert ds["img"].dims == ("time", "img_dim_1", "img_dim_2")
    assert ds["det4"].shape == (12,)
    assert run.baseline.read().sizes["time"] == 2
    raw = run.primary.read(fill=False)
    assert isinstance(raw["img"].values[0], str)  # datum ids kept
    assert "img" not in run.primary.to_pandas().columns


def test_event_pages_read_like_events(cat):
    bundle = compose_run(metadata={"plan_name": "fly"})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "x": {"dtype": "number", "shape": [], "source": "x", "units": "mm"},
            "y": {"dtype": "integer", "shape": [], "source": "y"},
        },
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for k in range(3):
        n = 4
        page = desc.compose_event_page(
            data={"x": [0.5 * (k * n + i) for i in range(n)], "y": [k * n + i for i in range(n)]},
            timestamps={"x": [1.0] * n, "y": [1.0] * n},
            seq_num=[k * n + i + 1 for i in range(n)],
            time=[float(k * n + i) for i in range(n)],
        )
        writer("event_page", page)
    writer("stop", bundle.compose_stop())
    run = cat[-1]
    assert run.num_events == 12
    ds = run.primary.read()
    np.testing.assert_array_equal(ds["y"].values, np.arange(12))
    assert ds["y"].dtype.kind == "i"
    assert ds["x"].attrs["units"] == "mm"


def _runs(cat, n, **md):
    writer = cat.writer()
    uids = []
    for i in range(n):
        bundle = compose_run(metadata={"scan_id": i + 1, "plan_name": "count", **md}, time=1_700_000_000.0 + i)
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop())
        uids.append(bundle.start_doc["uid"])
    return uids


def test_lookup_by_index_scan_id_uid_and_prefix(cat):
    uids = _runs(cat, 5)
    assert len(cat) == 5
    assert cat[-1].uid == uids[-1]
    assert cat[-5].uid == uids[0]
    assert cat[3].uid == uids[2]
    assert cat[uids[1]].uid == uids[1]
    assert cat[uids[1][:10]].uid == uids[1]
    assert [r.uid for r in cat] == uids[::-1]
    assert [r.uid for r in cat[-2:]] == uids[:-3:-1]
    assert [r.uid for r in cat[-4:-2]] == [uids[2], uids[1]]
    assert [r.uid for r in cat[2:4]] == [uids[2], uids[1]]
    assert uids[0] in cat and "nope" not in cat
    with pytest.raises(RunNotFound, match="only 5"):
        cat[-6]
    with pytest.raises(RunNotFound, match="scan_id 99"):
        cat[99]
    with pytest.raises(KeyError):  # RunNotFound is a KeyError too
        cat["zzzz"]


def test_ambiguous_prefix_lists_matches(cat):
    writer = cat.writer()
    for tail in ("1", "2"):
        bundle = compose_run(uid=f"a3f9c2-{tail}")
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop())
    with pytest.raises(AmbiguousUID) as info:
        cat["a3f9"]
    assert "a3f9c2-1" in str(info.value) and "a3f9c2-2" in str(info.value)
    assert cat["a3f9c2-2"].uid == "a3f9c2-2"


def test_search_objects_text_nested_and_count(cat):
    _runs(cat, 4, sample="Ni")
    _runs(cat, 3, sample="Cu")
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "scan", "sample": "Fe", "num_points": 20})
    writer("start", bundle.start_doc)
    writer("stop", bundle.compose_stop(exit_status="abort"))
    assert len(cat.search(Key("sample") == "Ni")) == 4
    assert len(cat.search('sample == "Ni" or sample == "Cu"')) == 7
    assert len(cat.search(~(Key("sample") == "Ni"))) == 4
    assert len(cat.search(Key("num_points") > 10)) == 1
    assert len(cat.search('plan_name == "count"').search('sample == "Cu"')) == 3
    assert len(cat.search(ScanID(1, 2))) == 4
    # Ni runs 3 and 4, Cu run 3 and the Fe run (now) start at or after t0 + 2.
    assert len(cat.search(TimeRange(since=1_700_000_002))) == 4
    assert len(cat.search(Key("stop.exit_status") == "abort")) == 1
    assert cat.search(PartialUID(bundle.start_doc["uid"][:6]))[-1].uid == bundle.start_doc["uid"]
    ni = cat.search(Key("sample") == "Ni")
    assert all(r.metadata["start"]["sample"] == "Ni" for r in ni)
    with pytest.raises(RunNotFound):
        ni[bundle.start_doc["uid"]]  # exists, but not in this search


def test_rejects_bad_documents_and_keeps_going(cat):
    writer = cat.writer()
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
    )
    writer("start", bundle.start_doc)
    with pytest.raises(InvalidDocument, match="descriptor .* is unknown"):
        writer("event", desc.compose_event(data={"x": 1}, timestamps={"x": 1}, seq_num=1))
    writer("descriptor", desc.descriptor_doc)
    with pytest.raises(InvalidDocument, match=r"data keys \['y'\]"):
        writer(
            "event",
            desc.compose_event(data={"x": 1, "y": 2}, timestamps={"x": 1, "y": 2}, seq_num=1, validate=False),
        )
    with pytest.raises(InvalidDocument, match="schema"):
        writer("event", {"descriptor": desc.descriptor_doc["uid"], "data": {}})
    with pytest.raises(InvalidDocument, match="not a document name"):
        writer("evnt", {})
    other = compose_run()
    with pytest.raises(InvalidDocument, match="not a run started"):
        writer("stop", other.compose_stop())
    writer("event", desc.compose_event(data={"x": 1.5}, timestamps={"x": 1}, seq_num=1))
    stop = bundle.compose_stop()
    writer("stop", stop)
    with pytest.raises(InvalidDocument, match="already has a stop"):
        writer("stop", stop)
    with pytest.raises(InvalidDocument, match="already"):
        writer("start", bundle.start_doc)
    with pytest.raises(InvalidDocument, match="already in the store"):
        cat.writer()("start", bundle.start_doc)  # a second writer, same uid
    run = cat[-1]
    assert run.status == "success"
    assert [name for name, _ in run.documents()] == ["start", "descriptor", "event", "stop"]
    assert run.primary.read()["x"].values.tolist() == [1.5]


def test_stream_errors_name_the_streams(RE, cat, hw):
    import bluesky.plans as bp

    uid, _ = record(RE, cat, bp.count([hw.det]))
    with pytest.raises(StreamNotFound, match="primary"):
        cat[uid]["baseline"]
    with pytest.raises(AttributeError, match="primary"):
        _ = cat[uid].baseline


def test_writer_closed_without_stop_leaves_incomplete_run(cat):
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    assert cat[-1].status == "running"
    writer.close()
    assert cat[-1].status == "incomplete"
    assert cat[-1].metadata["stop"] is None


def test_writer_dropped_without_stop_leaves_incomplete_run(cat):
    import gc

    writer = cat.writer()
    writer("start", compose_run().start_doc)
    assert cat[-1].status == "running"
    del writer
    gc.collect()
    assert cat[-1].status == "incomplete"


def test_follow_a_live_run_without_gaps_or_duplicates(RE, cat, hw):
    import bluesky.plans as bp

    started = threading.Event()
    emitted = []
    RE.subscribe(lambda name, doc: started.set() if name == "start" else None)
    RE.subscribe(lambda name, doc: emitted.append((name, normalize(doc))))
    RE.subscribe(cat.writer())

    def produce():
        RE(bp.count([hw.det], num=200))

    thread = threading.Thread(target=produce)
    thread.start()
    started.wait(10)
    run = None
    while run is None:
        try:
            run = cat[-1]
        except RunNotFound:
            pass
    seen = list(run.follow(timeout=30))
    thread.join()
    assert [n for n, _ in seen] == [n for n, _ in emitted]
    assert as_stored(cat, seen) == as_stored(cat, emitted)
    positions = [pos for pos, _, _ in cat[-1].follow(start=3, positions=True)]
    assert positions == list(range(3, len(emitted)))


def test_follow_catalog_yields_new_runs(RE, cat, hw):
    import bluesky.plans as bp

    _runs(cat, 2)  # already there: not yielded
    found = []

    def watch():
        for run in cat.search('plan_name == "count"').follow(timeout=5):
            found.append(run.uid)
            if len(found) == 2:
                return

    thread = threading.Thread(target=watch)
    thread.start()
    import time

    time.sleep(0.2)
    writer = cat.writer()
    RE.subscribe(writer)
    (u1,) = RE(bp.count([hw.det]))
    RE(bp.scan([hw.det], hw.motor, 0, 1, 2))  # not a count: filtered out
    (u2,) = RE(bp.count([hw.det]))
    thread.join(10)
    assert found == [u1, u2]
