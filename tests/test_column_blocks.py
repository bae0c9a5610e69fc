"""The embedded store's column blocks read exactly as the documents they repeat.

Blocks are made small here (a flush every 2-5 rows) so that every run has many
blocks, a tail of events after the last flush, and flushes between events and
pages. Each read through the blocks (``SQLiteSource.event_table``, what
``Stream.read`` uses) is compared with the same stream gathered from its
documents (``reading.collect``, the path every other source takes): same rows,
same dtypes, same values, same Python types in object columns.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from event_model import compose_run

import scandeck
from scandeck.exceptions import InvalidDocument, StoreError
from scandeck.reading import STREAM_DOCUMENTS, collect, columns, to_xarray
from scandeck.sources import sqlite_column_reads, sqlite_columns

DATA = Path(__file__).parent / "data" / "store-0.1.0"


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(sqlite_columns, "MIN_ROWS", 2)
    monkeypatch.setattr(sqlite_columns, "MAX_ROWS", 5)


def _both(cat, uid, stream="primary", keys=None, fill=True):
    """The stream read from blocks and from documents (None from blocks: a run without them)."""
    uids = {d["uid"] for d in cat[uid][stream].descriptors}
    from_blocks = cat.source.event_table(uid, uids, keys=keys, fill=fill)
    entries = cat.source.documents(uid, names=STREAM_DOCUMENTS, descriptors=uids)
    return from_blocks, collect(entries, uids, fill=fill, keys=keys)


def _assert_same(a, b):
    (ta, sa, ca), (tb, sb, cb) = columns(a), columns(b)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(sa, sb)
    assert ca.keys() == cb.keys()
    for key in ca:
        x, y = ca[key], cb[key]
        assert (x.dtype, x.shape) == (y.dtype, y.shape), key
        if x.dtype == object:
            assert [(type(v), repr(v)) for v in x] == [(type(v), repr(v)) for v in y], key
        else:
            np.testing.assert_array_equal(x, y, err_msg=key)


def _check(cat, uid, **kw):
    from_blocks, from_docs = _both(cat, uid, **kw)
    assert from_blocks is not None, "the run should have column blocks"
    _assert_same(from_blocks, from_docs)
    return from_blocks


def _x_run(writer, metadata=None):
    """Start a run of one number key ``x`` through ``writer``: ``(bundle, event(value, seq_num))``."""
    bundle = compose_run(metadata=metadata or {})
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(data_keys={"x": KEYS["x"]}, name="primary")
    writer("descriptor", desc.descriptor_doc)
    return bundle, lambda x, seq: desc.compose_event(data={"x": x}, timestamps={"x": 0}, seq_num=seq)


KEYS = {
    "x": {"source": "sim", "dtype": "number", "shape": []},
    "n": {"source": "sim", "dtype": "integer", "shape": []},
    "i32": {"source": "sim", "dtype": "integer", "shape": [], "dtype_numpy": "<i4"},
    "flag": {"source": "sim", "dtype": "boolean", "shape": []},
    "label": {"source": "sim", "dtype": "string", "shape": []},
    "gap": {"source": "sim", "dtype": "number", "shape": []},
    "spec": {"source": "sim", "dtype": "array", "shape": [3]},
    "rag": {"source": "sim", "dtype": "array", "shape": [None]},
    "img": {"source": "sim", "dtype": "array", "shape": [2, 2], "dtype_numpy": "<u2"},
}


def _value(rng: random.Random, key: str, i: int):
    pick = rng.random()
    if key == "x":
        return [float(i) / 7, i, np.float64(i / 3), float("nan"), -0.0][int(pick * 5)]
    if key == "n":
        return [i, -(2**62) + i, np.int64(i), 2**53 + 1][int(pick * 4)]
    if key == "i32":
        return i - 3
    if key == "flag":
        return pick < 0.5
    if key == "label":
        return ["", "Ni", "ünï", "a\x00b", "x" * 40][int(pick * 5)]
    if key == "gap":
        return None if pick < 0.3 else float(i)
    if key == "spec":
        return [[i, i + 0.5, 2.0], [1, 2, 3], np.arange(3.0) + i][int(pick * 3)]
    if key == "rag":
        return list(range(int(pick * 4)))
    return np.full((2, 2), i, dtype=np.uint16)


def _hostile_run(rng: random.Random, writer, cat, *, read_every_doc: bool) -> str:
    bundle = compose_run(metadata={"plan_name": "blocks"})
    writer("start", bundle.start_doc)
    uid = bundle.start_doc["uid"]
    desc = bundle.compose_descriptor(data_keys=KEYS, name="primary")
    writer("descriptor", desc.descriptor_doc)
    seq = 1
    for _ in range(14):
        n = rng.choice([1, 1, 1, 3, 6])
        rows = [{k: _value(rng, k, seq + j) for k in KEYS} for j in range(n)]
        if n == 1:
            doc = desc.compose_event(data=rows[0], timestamps={k: 1.0 for k in KEYS}, seq_num=seq)
            name = "event"
        else:
            data = {k: [r[k] for r in rows] for k in KEYS}
            ts = {k: [1.0] * n for k in KEYS}
            doc = desc.compose_event_page(
                data=data, timestamps=ts, seq_num=list(range(seq, seq + n)), time=[1e9 + seq + j for j in range(n)]
            )
            name = "event_page"
        writer(name, doc)
        seq += n
        if read_every_doc:
            _check(cat, uid)  # a growing run: blocks, then the events after them
    writer("stop", bundle.compose_stop())
    return uid


def test_blocks_read_exactly_as_documents(tmp_path, small_blocks):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    rng = random.Random(14)
    uids = [_hostile_run(rng, writer, cat, read_every_doc=i == 0) for i in range(6)]
    for uid in uids:
        table = _check(cat, uid)
        blocks = cat.source._conn().execute(
            "SELECT count(*) FROM column_blocks AS b JOIN runs ON runs.id = b.run_id "
            "WHERE uid = ? AND part = 'seq_num'",
            (uid,),
        )
        assert blocks.fetchone()[0] >= 4  # really read from several blocks
        assert len(table) > 14
        # A subset of keys, and references kept (nothing external here: the same values).
        _check(cat, uid, keys=["x", "label"])
        _check(cat, uid, keys=["img"], fill=False)
    xr.testing.assert_identical(cat[uids[0]].primary.read(), to_xarray(_both(cat, uids[0])[1]))


def test_numbers_are_numpy_columns_and_only_asked_keys_are_read(tmp_path, small_blocks, RE, hw):
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    from bluesky.plans import scan

    (uid,) = RE(scan([hw.det], hw.motor, -1, 1, 23))
    table = _check(cat, uid)
    assert isinstance(table.data["det"], np.ndarray) and isinstance(table.time, np.ndarray)
    only = _check(cat, uid, keys=["det"])
    assert set(only.data) == {"det"}
    ds = cat[uid].primary.read(["det"])
    assert list(ds.data_vars) == ["det"] and ds.sizes["time"] == 23


def test_external_images_fill_from_blocks(tmp_path, small_blocks, RE, hw):
    """Datum ids sit in blocks as references; the handlers read them as from documents."""
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    from bluesky.plans import count

    (uid,) = RE(count([hw.img, hw.det], num=7))
    filled = _check(cat, uid)
    assert columns(filled)[2]["img"].shape[0] == 7
    refs = _check(cat, uid, fill=False)
    assert all(isinstance(v, str) for v in columns(refs)[2]["img"])


@pytest.mark.parametrize("fly", [False, True])
def test_ophyd_async_stream_data_joins_rows_from_blocks(tmp_path, small_blocks, fly):
    """ophyd-async's HDF5 blob detector: stream data (kept in run_extras) on its rows, filled by its handler."""
    from test_ophyd_async import Beamline, step_scan_into
    from test_ophyd_async import fly as fly_scan

    cat = scandeck.open_catalog(tmp_path / "store")
    if fly:
        (tmp_path / "files").mkdir()
        uid = fly_scan(Beamline(tmp_path / "files", cat), events=7, per_event=2)
    else:
        uid = step_scan_into(cat, tmp_path / "files", 9)[1]
    table = _check(cat, uid)
    assert len(table) == (7 if fly else 9)
    _check(cat, uid, fill=False)


def test_multi_descriptor_stream_reads_from_documents(tmp_path, small_blocks):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    a = bundle.compose_descriptor(data_keys={"x": KEYS["x"]}, name="primary")
    b = bundle.compose_descriptor(data_keys={"x": KEYS["x"]}, name="primary", configuration={"c": {}})
    writer("descriptor", a.descriptor_doc)
    writer("descriptor", b.descriptor_doc)
    for i in range(6):
        writer("event", a.compose_event(data={"x": i}, timestamps={"x": 0}, seq_num=2 * i + 1))
        writer("event", b.compose_event(data={"x": -i}, timestamps={"x": 0}, seq_num=2 * i + 2))
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    from_blocks, from_docs = _both(cat, uid)
    assert from_blocks is None  # interleaved descriptors: the documents keep the order
    ds = cat[uid].primary.read()
    assert ds["x"].values.tolist() == [0, 0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5]


KILLED = """
import sys, os
import scandeck
from scandeck.sources import sqlite_columns
from event_model import compose_run
sqlite_columns.MIN_ROWS, sqlite_columns.MAX_ROWS = 3, 4
writer = scandeck.open_catalog(sys.argv[1]).writer()
bundle = compose_run()
writer("start", bundle.start_doc)
desc = bundle.compose_descriptor(data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}, name="primary")
writer("descriptor", desc.descriptor_doc)
for i in range(int(sys.argv[2])):
    writer("event", desc.compose_event(data={"x": i * 0.5}, timestamps={"x": 0}, seq_num=i + 1))
print(bundle.start_doc["uid"], flush=True)
os._exit(0)  # killed: no stop document, no close, buffered rows never flushed
"""


def test_killed_writer_leaves_a_readable_run(tmp_path):
    store = tmp_path / "store"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(store), "17"],
        capture_output=True,
        text=True,
        check=True,
    )
    uid = out.stdout.strip()
    cat = scandeck.open_catalog(store)
    assert cat[uid].status == "incomplete"
    table = _check(cat, uid)
    assert columns(table)[2]["x"].tolist() == [i * 0.5 for i in range(17)]
    cover = cat.source._conn().execute(
        "SELECT pos FROM column_cover JOIN runs ON runs.id = run_id WHERE uid = ?", (uid,)
    )
    assert 1 < cover.fetchone()[0] < 18  # some events in blocks, the last ones only as documents


def test_resumed_run_goes_on_in_blocks(tmp_path, small_blocks):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle, event = _x_run(writer)
    events = [event(i, i + 1) for i in range(20)]
    for doc in events[:9]:
        writer("event", doc)
    writer.close()  # the run is incomplete now
    uid = bundle.start_doc["uid"]
    other = cat.writer()
    assert other.resume(uid) == 11
    for doc in events[9:]:
        other("event", doc)
    other("stop", bundle.compose_stop())
    assert columns(_check(cat, uid))[2]["x"].tolist() == list(range(20))


def test_a_failed_flush_refuses_the_document_and_loses_nothing(tmp_path, small_blocks, monkeypatch):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle, event = _x_run(writer)
    events = [event(i, i + 1) for i in range(12)]
    for doc in events[:4]:
        writer("event", doc)
    flush = sqlite_columns.ColumnBuffer.flush

    def failing(self, conn, run_id, last_pos):
        flush(self, conn, run_id, last_pos)  # the rows are written, then the disk fails
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_columns.ColumnBuffer, "flush", failing)
    with pytest.raises(StoreError, match="nothing was stored"):
        writer("event", events[4])
    monkeypatch.setattr(sqlite_columns.ColumnBuffer, "flush", flush)
    for doc in events[4:]:  # the refused event again, and the rest
        writer("event", doc)
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    assert columns(_check(cat, uid))[2]["x"].tolist() == list(range(12))
    with pytest.raises(InvalidDocument):
        writer("event", events[0])  # after the stop: refused, as ever


def _copy_old_store(tmp_path: Path) -> Path:
    store = tmp_path / "old"
    shutil.copytree(DATA, store)
    return store


def test_store_of_release_0_1_reads_as_it_is(tmp_path):
    """Runs written before column blocks are read from their documents; new runs get blocks."""
    store = _copy_old_store(tmp_path)
    read_only = scandeck.open_catalog(f"{store}?mode=ro")
    expected = {}
    for run in read_only:
        expected[run.uid] = {name: run[name].read() for name in run}
    assert len(expected) == 5
    handmade = read_only.search('sample == "Fe"')[-1]
    ds = handmade.primary.read()
    assert ds["label"].values.tolist() == ["p0", "p1", "p2", "p3", "q4", "q5"]
    assert np.isnan(ds["gap"].values[2]) and ds["spec"].shape == (6, 3)
    assert read_only.search('sample == "Zn"')[-1].status == "incomplete"
    read_only.close()

    cat = scandeck.open_catalog(store)  # writable: the new tables are created, old runs untouched
    for uid, streams in expected.items():
        assert cat.source.event_table(uid, {d["uid"] for d in cat[uid].primary.descriptors}) is None
        for name, ds in streams.items():
            xr.testing.assert_identical(cat[uid][name].read(), ds)
    writer = cat.writer()
    bundle, event = _x_run(writer, {"sample": "new"})
    writer("event", event(1.5, 1))
    writer("stop", bundle.compose_stop())
    assert _check(cat, bundle.start_doc["uid"]).data["x"].tolist() == [1.5]
    assert len(cat) == 6


SLICES = [
    slice(None),
    slice(0, 1),
    slice(3, 11),
    slice(-7, None),
    slice(-100, None),
    slice(5, 5),
    slice(40, 90),
    slice(1, None, 3),
    slice(None, -2, 4),
    slice(None, None, -1),  # read whole, then sliced
    slice(2, 1000),
]


def _same_dataset(a, b):
    """Same rows, values, coordinates and attributes (a column's dtype is that of the rows read)."""
    xr.testing.assert_identical(a, b)


def test_rows_read_only_their_blocks_and_agree_with_isel(tmp_path, small_blocks, monkeypatch):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    uid = bundle.start_doc["uid"]
    keys = {k: KEYS[k] for k in ("x", "label", "spec", "img")}
    desc = bundle.compose_descriptor(data_keys=keys, name="primary")
    writer("descriptor", desc.descriptor_doc)
    rng = random.Random(3)
    for i in range(23):
        data = {k: _value(rng, k, i) for k in keys}
        writer("event", desc.compose_event(data=data, timestamps={k: 0 for k in keys}, seq_num=i + 1))
        if i in (0, 6, 22):  # a growing run: blocks, then events after them
            for rows in SLICES:
                _same_dataset(cat[uid].primary.read(rows=rows), cat[uid].primary.read().isel(time=rows))
    for rows in SLICES:
        whole = cat[uid].primary.read()
        _same_dataset(cat[uid].primary.read(rows=rows), whole.isel(time=rows))
        _same_dataset(cat[uid].primary.read(["x"], rows=rows), whole[["x"]].isel(time=rows))
    writer("stop", bundle.compose_stop())
    decoded = []
    decode = sqlite_column_reads._decode

    def spy(rows, dtype, shape, data):  # the blocks a read decodes
        decoded.append(rows)
        return decode(rows, dtype, shape, data)

    monkeypatch.setattr(sqlite_column_reads, "_decode", spy)
    table = cat.source.event_table(uid, {desc.descriptor_doc["uid"]}, rows=slice(-2, None))
    assert columns(table)[1].tolist() == [22, 23]
    blocks = len(decoded) - 5  # seq_num's blocks, then only the last block of each other column
    assert blocks >= 5 and decoded[blocks:] == [decoded[blocks - 1]] * 5
    with pytest.raises(TypeError, match="slice"):
        cat[uid].primary.read(rows=3)


def test_rows_of_images_fill_only_those_rows(tmp_path, small_blocks, RE, hw, monkeypatch):
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    from bluesky.plans import count

    (uid,) = RE(count([hw.img, hw.det], num=9))
    whole = cat[uid].primary.read()
    from scandeck.external import Filler

    filled = []
    fill_datum = Filler.fill_datum
    monkeypatch.setattr(Filler, "fill_datum", lambda self, d: filled.append(d) or fill_datum(self, d))
    part = cat[uid].primary.read(rows=slice(6, 8))
    _same_dataset(part, whole.isel(time=slice(6, 8)))
    assert len(filled) == 2  # two frames read from their files, not nine


def test_rows_of_unordered_events_are_taken_after_sorting(tmp_path, small_blocks):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle, event = _x_run(writer)
    for seq in (3, 1, 2, 6, 5, 4, 7):
        writer("event", event(seq * 1.0, seq))
    writer("stop", bundle.compose_stop())
    ds = cat[bundle.start_doc["uid"]].primary.read(rows=slice(1, 4))
    assert ds["x"].values.tolist() == [2.0, 3.0, 4.0]


def test_rows_on_a_source_of_documents(tmp_path):
    cat = scandeck.open_catalog("memory://")
    writer = cat.writer()
    _, event = _x_run(writer)
    for i in range(5):
        writer("event", event(i * 1.0, i + 1))
    assert cat[-1].primary.read(rows=slice(-2, None))["x"].values.tolist() == [3.0, 4.0]


def test_an_empty_event_page_leaves_integers_exact(tmp_path, small_blocks):
    """An empty page of one stream, flushed with another's rows, must not make that stream's integers floats."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    keys = {"n": KEYS["n"]}
    primary = bundle.compose_descriptor(data_keys=keys, name="primary")
    baseline = bundle.compose_descriptor(data_keys=keys, name="baseline")
    writer("descriptor", primary.descriptor_doc)
    writer("descriptor", baseline.descriptor_doc)
    writer("event_page", baseline.compose_event_page(data={"n": []}, timestamps={"n": []}, seq_num=[], time=[]))
    for i in range(4):  # primary's rows make the block that holds baseline's empty page
        writer("event", primary.compose_event(data={"n": i}, timestamps={"n": 0}, seq_num=i + 1))
    big = [2**53 + 1 + i for i in range(6)]
    for i, n in enumerate(big):
        writer("event", baseline.compose_event(data={"n": n}, timestamps={"n": 0}, seq_num=i + 1))
        if i == 1:
            _check(cat, bundle.start_doc["uid"], stream="baseline")  # the empty block, then documents
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    assert columns(_check(cat, uid, stream="baseline"))[2]["n"].tolist() == big
    assert cat[uid].baseline.read(rows=slice(1, 4))["n"].values.tolist() == big[1:4]


def test_a_key_only_some_events_carry_reads_as_none_elsewhere(tmp_path, small_blocks):
    """A STREAM: key may be left out of events; blocks without it are None rows there, as in documents."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    keys = {"x": KEYS["x"], "s": {**KEYS["x"], "external": "STREAM:"}}
    desc = bundle.compose_descriptor(data_keys=keys, name="primary")
    writer("descriptor", desc.descriptor_doc)
    carried = {2, 3, 6, 7, 8, 9, 13}  # in some blocks, not in others
    for i in range(15):
        data = {"x": i * 1.0, **({"s": i * 10.0} if i in carried else {})}
        writer("event", desc.compose_event(data=data, timestamps={k: 0 for k in data}, seq_num=i + 1))
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    table = _check(cat, uid, fill=False)
    assert [None if np.isnan(v) else v for v in columns(table)[2]["s"].tolist()] == [
        i * 10.0 if i in carried else None for i in range(15)
    ]
    ds = cat[uid].primary.read(rows=slice(2, 9))
    assert ds["x"].values.tolist() == [i * 1.0 for i in range(2, 9)]


def test_stream_data_replaces_values_events_carried(tmp_path, small_blocks):
    """Events that carry a STREAM: key's value (numbers in a block) take stream_datum's rows, as from documents."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    keys = {"x": KEYS["x"], "s": {**KEYS["n"], "external": "STREAM:"}}
    desc = bundle.compose_descriptor(data_keys=keys, name="primary")
    writer("descriptor", desc.descriptor_doc)
    sres = bundle.compose_stream_resource(
        mimetype="application/x-hdf5", uri="file:///a.h5", data_key="s", parameters={}
    )
    writer("stream_resource", sres.stream_resource_doc)
    for i in range(8):
        writer(
            "event", desc.compose_event(data={"x": i * 1.0, "s": i}, timestamps={"x": 0, "s": 0}, seq_num=i + 1)
        )
    rows = {"start": 1, "stop": 9}
    writer(
        "stream_datum",
        sres.compose_stream_datum(indices={"start": 0, "stop": 8}, seq_nums=rows, descriptor=desc.descriptor_doc),
    )
    writer("stop", bundle.compose_stop())
    table = _check(cat, bundle.start_doc["uid"], fill=False)
    assert columns(table)[2]["s"].tolist() == [f"{sres.stream_resource_doc['uid']}/{i}" for i in range(8)]


@pytest.mark.parametrize(
    ("info", "values"),
    [
        ({"dtype": "number", "shape": []}, [1, 2.5, 3, 4, "n/a", 5, 6, 7.5]),  # a string column: "1", not "1.0"
        ({"dtype": "array", "shape": [None]}, [[1, 2.5], [3, 4], [1], [1, 2, 3], [0, 1], [2, 3]]),
        ({"dtype": "boolean", "shape": []}, [True, 1, False, True, None, True]),
        ({"dtype": "integer", "shape": []}, [2**63 + 1, -1, 3, 4, "x", 5]),  # numpy makes that pair float64
    ],
)
def test_a_block_of_mixed_number_types_reads_as_its_documents(tmp_path, small_blocks, info, values):
    """A block whose values numpy would promote (ints among floats) must give them back as they were."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(data_keys={"v": {"source": "sim", **info}}, name="primary")
    writer("descriptor", desc.descriptor_doc)
    for i, value in enumerate(values):
        writer("event", desc.compose_event(data={"v": value}, timestamps={"v": 0}, seq_num=i + 1))
    writer("stop", bundle.compose_stop())
    _check(cat, bundle.start_doc["uid"])


def test_numpy_event_times_are_stored_as_their_documents(tmp_path, small_blocks):
    """A float32 event time (the writer accepts it) reads back as the float its document holds."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle, event = _x_run(writer)
    for i in range(9):
        doc = event(i * 1.0, i + 1)
        doc["time"] = np.float32(1000.5 + i) if i % 2 else np.float64(1000.25 + i)
        writer("event", doc)
    writer("stop", bundle.compose_stop())
    assert len(_check(cat, bundle.start_doc["uid"])) == 9


def test_a_block_the_writer_cannot_make_leaves_the_run_to_its_documents(
    tmp_path, small_blocks, monkeypatch, caplog
):
    """A bug in making blocks (here injected) never stops the writer: the run reads from its documents."""
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    bundle, event = _x_run(writer)

    def broken(values):
        raise ValueError("injected")

    monkeypatch.setattr(sqlite_columns, "_encode", broken)
    for i in range(9):
        writer("event", event(i * 1.0, i + 1))
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    assert "column blocks of run" in caplog.text
    assert _both(cat, uid)[0] is None  # no blocks: the documents are read
    assert cat[uid].primary.read()["x"].values.tolist() == [i * 1.0 for i in range(9)]
