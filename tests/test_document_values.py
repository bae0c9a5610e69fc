"""Values no store can hold are refused with InvalidDocument, and refusing never blocks anyone.

Every case runs on every source (the ``cat`` fixture): a refused document names the
field and the reason, nothing of it is stored, the writer goes on with the next
document, and what was accepted reads back exactly as written (modulo
:func:`scandeck.documents.normalize`). The SQLite cases also check that no write
lock is left behind, with a second process writing a run.
"""

from __future__ import annotations

import datetime
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from document_equivalence import as_stored
from event_model import compose_run

import scandeck
from scandeck.docfiles import read_documents, write_documents
from scandeck.documents import pack, validate_schema
from scandeck.exceptions import InvalidDocument

PROCS = str(Path(__file__).with_name("procs.py"))


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


#: (metadata or start fields, the field named, words the message must hold)
REFUSED_STARTS = {
    "set": ({"tags": {"Ni", "powder"}}, "tags", "is a set: documents hold JSON values, use a list"),
    "frozenset": ({"tags": frozenset({"Ni"})}, "tags", "use a list"),
    "bytes": ({"note": b"\x00raw"}, "note", "is bytes"),
    "nested bytes": ({"sample": {"id": [1, b"x"]}}, "sample/id/1", "is bytes"),
    "scan_id >= 2**63": ({"scan_id": 2**63}, "scan_id", "signed 64-bit"),
    "int time >= 2**63": ({"time": 2**63}, "time", "finite number"),
    "time NaN": ({"time": math.nan}, "time", "finite number"),
    "time inf": ({"time": math.inf}, "time", "finite number"),
    "int >= 2**64": ({"count": 2**64}, "count", "outside the integers"),
    "int < -2**63": ({"count": -(2**63) - 1}, "count", "outside the integers"),
    "lone surrogate": ({"sample": "Ni\udc80"}, "sample", "lone surrogate"),
    "surrogate key": ({"md": {"k\ud800": 1}}, "md", "lone surrogate"),
    "tuple key": ({"md": {(1, 2): "x"}}, "md", "keys must be str"),
    "int key": ({"md": {1: "x"}}, "md", "keys must be str"),
    "too deep": ({"md": deep(200)}, "md/0/0/.../0/0/0", "deeper than 64 levels"),
    "complex": ({"gain": 1j}, "gain", "real and imaginary"),
    "numpy complex": ({"gain": np.complex128(1j)}, "gain", "real and imaginary"),
    "datetime": ({"when": datetime.datetime(2024, 1, 1)}, "when", "ISO 8601"),
    "object": ({"thing": object()}, "thing", "is an object"),
    "numpy bytes": ({"raw": np.array([b"ab"])}, "raw", "decode it to str"),
    "numpy datetime": ({"when": np.datetime64("2024-01-01")}, "when", "datetimes"),
}


def good_run(scan_id: int = 1) -> list[tuple[str, dict[str, Any]]]:
    bundle = compose_run(metadata={"plan_name": "count", "scan_id": scan_id, "sample": "Ni"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"det": {"dtype": "number", "shape": [], "source": "sim:det"}}
    )
    events = [desc.compose_event(data={"det": float(i)}, timestamps={"det": 1.0}, seq_num=i + 1) for i in range(3)]
    return [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        *(("event", e) for e in events),
        ("stop", bundle.compose_stop()),
    ]


def assert_reads_back(cat, docs: list[tuple[str, dict[str, Any]]]) -> None:
    """The run reads back byte for byte as written (msgpack compares NaN too); as stored, on Tiled."""
    run = cat[docs[0][1]["uid"]]
    got = [(name, pack(doc)) for name, doc in as_stored(cat, run.documents())]
    assert got == [(name, pack(doc)) for name, doc in as_stored(cat, docs)]
    for stream in run:
        run[stream].read()
        run[stream].to_pandas()


@pytest.mark.parametrize("case", sorted(REFUSED_STARTS))
def test_a_start_the_store_cannot_hold_is_refused_and_the_writer_goes_on(cat, case):
    fields, field, words = REFUSED_STARTS[case]
    time = fields.get("time")
    metadata = {k: v for k, v in fields.items() if k != "time"}
    bundle = compose_run(
        metadata={"plan_name": "count", **metadata}, validate=False, **({"time": time} if time is not None else {})
    )
    writer = cat.writer()
    with pytest.raises(InvalidDocument) as info:
        writer("start", bundle.start_doc)
    err = info.value
    assert err.name == "start" and err.field == field
    assert f"field {field!r}" in str(err) and words in str(err)
    assert "already in the store" not in str(err)
    assert len(cat) == 0
    docs = good_run()
    for name, doc in docs:
        writer(name, doc)
    assert len(cat) == 1
    assert_reads_back(cat, docs)


@pytest.mark.not_on(
    "tiled",
    reason=(
        "TiledWriter and Tiled's JSON metadata change whole numbers beyond +-(2**53 - 1), NaN and "
        "infinities; the Tiled writer refuses them instead (tests/test_tiled_writer.py)"
    ),
)
def test_values_a_store_can_hold_read_back_exactly(cat):
    """Everything check_storable lets through reads back as normalize() says, on every source."""
    import enum

    class Mode(enum.IntEnum):
        FAST = 2

    metadata = {
        "edges": [2**63 - 1, 2**64 - 1, -(2**63), -0.0, math.nan, math.inf, 1e308, 5e-324],
        "numpy": {
            "f32": np.float32(1.5),
            "u64": np.uint64(2**64 - 1),
            "b": np.bool_(True),
            "s": np.str_("Ni"),
            "f16": np.float16(0.5),
            "i8": np.int8(-3),
        },
        "arrays": [
            np.arange(3),
            np.zeros((2, 2), dtype=np.float32),
            np.array(["a", "bc"]),
            np.array([None, {"a": 1}], dtype=object),
            np.array(7.0),
        ],
        "table": np.array([(1, 2.5, "x")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "U2")]),
        "text": "ünïcödé ☃ \U0001f600 \x00",
        "tuple": (1, (2, 3)),
        "mode": Mode.FAST,
        "deep": deep(60),
    }
    bundle = compose_run(metadata={"plan_name": "count", **metadata}, time=1_700_000_000, validate=False)
    docs = [("start", bundle.start_doc), ("stop", bundle.compose_stop())]
    writer = cat.writer()
    for name, doc in docs:
        writer(name, doc)
    assert_reads_back(cat, docs)
    start = dict(next(cat[-1].documents())[1])
    assert start["numpy"]["u64"] == 2**64 - 1 and start["table"] == [[1, 2.5, "x"]]
    assert start["tuple"] == [1, [2, 3]] and start["mode"] == 2


def test_a_set_in_run_engine_metadata_is_refused_and_the_next_run_is_stored(RE, cat):
    from bluesky.plans import count
    from ophyd.sim import det

    RE.subscribe(cat.writer())
    with pytest.raises(InvalidDocument, match=r"field 'tags' is a set: documents hold JSON values, use a list"):
        RE(count([det], 3), tags={"Ni", "powder"})
    (uid,) = RE(count([det], 3), tags=["Ni", "powder"])
    assert len(cat) == 1
    run = cat[uid]
    assert run.metadata["start"]["tags"] == ["Ni", "powder"]
    assert run.status == "success" and len(run.primary.read()["det"]) == 3


def test_a_refused_start_leaves_no_lock_for_another_writer_process(RE, tmp_path):
    """The RunEngine's writer stays open while another process writes a run of its own."""
    from bluesky.plans import count
    from ophyd.sim import det

    store = str(tmp_path / "store")
    cat = scandeck.open_catalog(store)
    try:
        RE.subscribe(cat.writer())
        refused = []
        for md in ({"tags": {"Ni", "powder"}}, {"note": b"raw"}, {"scan_id": 2**63}):
            with pytest.raises(Exception) as info:  # noqa: PT011 - its type is checked below
                RE(count([det], 3), **md)
            refused.append(info.value)
        other = subprocess.run(
            [sys.executable, PROCS, "write", store, "2", "0"], capture_output=True, text=True, timeout=120
        )
        assert other.returncode == 0, other.stderr[-2000:]
        assert [type(err) for err in refused] == [InvalidDocument] * 3, refused
        assert [err.field for err in refused] == ["tags", "note", "scan_id"]
        (uid,) = RE(count([det], 3), sample="Ni")  # the same RunEngine and writer go on
        assert len(cat) == 2
        assert cat[uid].num_events == 3
        assert [cat[-1].metadata["start"].get("sample"), cat[-2].metadata["start"].get("sample")] == ["Ni", "Ni"]
    finally:
        cat.close()


def test_a_failure_inside_the_transaction_rolls_back(sqlite_cat, monkeypatch):
    """Whatever fails after BEGIN (here a bug injected into the index copy), nothing stays locked."""
    import scandeck.sources.sqlite_writer as sqlite_writer

    def broken(doc):
        raise RuntimeError("injected")

    writer = sqlite_cat.writer()
    docs = good_run()
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_writer, "json_index_copy", broken)
        with pytest.raises(RuntimeError, match="injected"):
            writer(*docs[0])
    other = sqlite3.connect(sqlite_cat.source.db_path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if the lock were held
        other.execute("ROLLBACK")
    finally:
        other.close()
    for name, doc in docs:
        writer(name, doc)
    assert_reads_back(sqlite_cat, docs)


def _object_run(value: Any) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    bundle = compose_run(metadata={"plan_name": "count"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"det": {"dtype": "number", "shape": [], "source": "sim:det"}}
    )
    bad = desc.compose_event(data={"det": value}, timestamps={"det": 1.0}, seq_num=1, validate=False)
    good = desc.compose_event(data={"det": 2.0}, timestamps={"det": 1.0}, seq_num=1)
    return [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("event", good),
        ("stop", bundle.compose_stop()),
    ], bad


def test_a_poison_event_with_a_tuple_key_is_refused_and_the_run_stays_readable(cat, tmp_path):
    docs, bad = _object_run({(1, 2): "x"})
    writer = cat.writer()
    for name, doc in docs[:2]:
        writer(name, doc)
    with pytest.raises(InvalidDocument, match="keys must be str") as info:
        writer("event", bad)
    assert info.value.field == "data/det"
    for name, doc in docs[2:]:
        writer(name, doc)
    assert_reads_back(cat, docs)
    run = cat[docs[0][1]["uid"]]
    assert run.primary.to_pandas()["det"].tolist() == [2.0]
    for fmt in ("jsonl", "msgpack"):
        (path,) = write_documents(run.documents(), tmp_path / fmt, format=fmt)
        assert [name for name, _ in read_documents(path)] == [name for name, _ in docs]


@pytest.mark.parametrize(
    "value,words",
    [
        ({"a": {1, 2}}, "is a set"),
        (np.array([1 + 2j]), "complex"),
        ("\ud800", "lone surrogate"),
        (2**64, "outside the integers"),
        (deep(100), "deeper than 64 levels"),
    ],
    ids=["set", "complex", "surrogate", "2**64", "deep"],
)
def test_event_values_the_store_cannot_hold_are_refused(cat, value, words):
    docs, bad = _object_run(value)
    writer = cat.writer()
    for name, doc in docs[:2]:
        writer(name, doc)
    with pytest.raises(InvalidDocument, match=words):
        writer("event", bad)
    for name, doc in docs[2:]:
        writer(name, doc)
    assert_reads_back(cat, docs)


def test_an_event_page_with_a_nan_time_is_refused_naming_its_row(cat):
    docs = _shaped([], [1.0, 2.0, 3.0], page=True)
    page = dict(docs[2][1], time=[1.0, math.nan, 3.0])
    writer = cat.writer()
    for name, doc in docs[:2]:
        writer(name, doc)
    with pytest.raises(InvalidDocument, match="finite number") as info:
        writer("event_page", page)
    assert info.value.field == "time/1"
    for name, doc in docs[2:]:
        writer(name, doc)
    assert_reads_back(cat, docs)


@pytest.mark.parametrize("big", [2**63, 1e308], ids=["int", "whole-float"])
@pytest.mark.parametrize("page", [False, True], ids=["event", "event_page"])
def test_a_seq_num_beyond_int64_is_refused(cat, page, big):
    """Readers index rows by seq_num as int64: a larger one would make the run unreadable.

    The schema's "integer" takes a whole float, 1e308 too.
    """
    docs = _shaped([], [1.0, 2.0], page=page)
    bad = dict(docs[2][1], seq_num=[1, big] if page else big)
    writer = cat.writer()
    for name, doc in docs[:2]:
        writer(name, doc)
    with pytest.raises(InvalidDocument, match="signed 64-bit") as info:
        writer(docs[2][0], bad)
    assert info.value.field == ("seq_num/1" if page else "seq_num")
    for name, doc in docs[2:]:
        writer(name, doc)
    assert_reads_back(cat, docs)


def test_a_stream_datum_range_beyond_int64_is_refused(cat):
    bundle = compose_run(metadata={"plan_name": "fly"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"cam": {"dtype": "array", "shape": [2], "source": "cam", "external": "STREAM:"}}
    )
    sres = bundle.compose_stream_resource(
        mimetype="application/x-hdf5", uri="file:///a.h5", data_key="cam", parameters={}
    )
    bad = sres.compose_stream_datum(
        indices={"start": 0, "stop": 1},
        seq_nums={"start": 2**63, "stop": 2**63 + 1},
        descriptor=desc.descriptor_doc,
        validate=False,
    )
    writer = cat.writer()
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", sres.stream_resource_doc),
    ]:
        writer(name, doc)
    with pytest.raises(InvalidDocument, match="signed 64-bit") as info:
        writer("stream_datum", bad)
    assert info.value.field == "seq_nums/start"
    writer("stop", bundle.compose_stop())


def test_validate_schema_never_crashes_on_hostile_input():
    """The validators themselves break on these; the boundary turns it into InvalidDocument."""
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
    )
    d = desc.descriptor_doc
    for name, broken in [
        ("start", {**bundle.start_doc, 1: 2}),  # TypeError in the patternProperties regex
        ("descriptor", {**d, (1, 2): 1}),
        ("descriptor", dict(d, data_keys={(1, 2): d["data_keys"]["x"]})),
        ("descriptor", dict(d, data_keys={"x": dict(d["data_keys"]["x"], shape=deep(5000))})),
    ]:
        with pytest.raises(InvalidDocument, match="event-model schema"):
            validate_schema(name, broken)


# -- shapes -----------------------------------------------------------------------------------


def _shaped(shape: list[Any], values: list[Any], *, page: bool = False):
    bundle = compose_run(metadata={"plan_name": "fly"})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "x": {"dtype": "array" if shape else "number", "shape": shape, "source": "x"},
            "n": {"dtype": "number", "shape": [], "source": "n"},
        },
    )
    docs = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    if page:
        n = len(values)
        docs.append(
            (
                "event_page",
                desc.compose_event_page(
                    data={"x": values, "n": [float(i) for i in range(n)]},
                    timestamps={"x": [1.0] * n, "n": [1.0] * n},
                    seq_num=list(range(1, n + 1)),
                    time=[1.0] * n,
                    validate=False,
                ),
            )
        )
    else:
        docs += [
            (
                "event",
                desc.compose_event(
                    data={"x": v, "n": float(i)}, timestamps={"x": 1.0, "n": 1.0}, seq_num=i + 1, validate=False
                ),
            )
            for i, v in enumerate(values)
        ]
    return docs + [("stop", bundle.compose_stop())]


@pytest.mark.parametrize(
    "shape,values,page,words",
    [
        (
            [],
            [1.0, [1.0, 2.0, 3.0]],
            False,
            "data key 'x' has shape [3] (1 dimensions) but its descriptor declares shape [] (0)",
        ),
        ([2], [np.zeros((2, 2))], False, "has shape [2, 2] (2 dimensions) but its descriptor declares shape [2]"),
        ([2, 3], [np.zeros(6)], False, "has shape [6] (1 dimensions) but its descriptor declares shape [2, 3]"),
        ([], [1.0, [1.0]], True, "(row 1 of the page) has shape [1] (1 dimensions) but its descriptor declares"),
    ],
    ids=["scalar-got-list", "array-extra-dim", "array-missing-dim", "page-scalar"],
)
def test_events_that_disagree_with_their_declared_shape_are_refused(cat, shape, values, page, words):
    docs = _shaped(shape, values, page=page)
    writer = cat.writer()
    accepted = []
    refused = []
    for name, doc in docs:
        try:
            writer(name, doc)
        except InvalidDocument as err:
            refused.append(err)
        else:
            accepted.append((name, doc))
    assert len(refused) == 1 and words in str(refused[0]) and refused[0].field == "data/x"
    assert_reads_back(cat, accepted)


@pytest.mark.not_on(
    "tiled",
    reason=(
        "Tiled stores each key in a fixed-shape table column or array: rows of other lengths, "
        "missing keys and 0-d arrays are refused by its writer or reader, loudly "
        "(tests/test_tiled_writer.py)"
    ),
)
@pytest.mark.parametrize(
    "shape,values,page",
    [
        ([None], [[1.0, 2.0], [1.0, 2.0, 3.0]], False),
        ([0, 0], [np.zeros((2, 3)), np.zeros((4, 5))], False),
        ([None], [[1.0], [1.0, 2.0]], True),
        ([], [1.0, 2, "text", None, True], True),
        ([3], [[1, 2, 3], None], False),
        ([2], [[[1, 2], [3, 4]]], False),  # ophyd declares a nested list by its length alone
        # A waveform whose length changes during the run (EPICS NORD): declared by its first reading.
        ([4], [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]], False),
        ([2, 3], [np.zeros((3, 2))], False),
        ([2, 2], [[[1, 2], [3]]], False),
        ([2], [[1, 2], [1, 2, 3]], True),
    ],
    ids=[
        "variable",
        "zero-dims",
        "page-variable",
        "page-scalars",
        "missing",
        "ophyd-nested-list",
        "waveform-grows",
        "other-lengths",
        "ragged",
        "page-rows-grow",
    ],
)
def test_events_within_their_declared_shape_are_accepted_and_readable(cat, shape, values, page):
    docs = _shaped(shape, values, page=page)
    writer = cat.writer()
    for name, doc in docs:
        writer(name, doc)
    assert_reads_back(cat, docs)


@pytest.mark.not_on(
    "tiled",
    reason=(
        "ophyd.sim's direct_img_list declares shape [10] and reads 10x10: Tiled stores the 10x10 "
        "array and the reader refuses it as not the declared shape, loudly"
    ),
)
def test_ophyd_sim_devices_pass_the_shape_checks(RE, cat, hw):
    """ophyd.sim detectors, including the nested list declared by its length."""
    from bluesky.plans import count

    RE.subscribe(cat.writer())
    (uid,) = RE(count([hw.det, hw.direct_img_list, hw.det1, hw.motor], 2))
    ds = cat[uid].primary.read()
    assert ds["direct_img_list"].shape == (2, 10, 10)
    assert ds["det"].shape == (2,)


@pytest.mark.not_on(
    "tiled",
    reason=(
        "Tiled stores a waveform in a fixed-shape array: rows of another length are refused by its "
        "reader, loudly (tests/test_tiled_writer.py)"
    ),
)
def test_a_waveform_whose_length_changes_never_aborts_the_run(RE, cat):
    """ophyd declares a waveform by its first reading; EPICS waveforms change length (NORD)."""
    import itertools

    import bluesky.plans as bp
    from ophyd.sim import SynSignal

    lengths = itertools.count(4)
    wf = SynSignal(func=lambda: np.arange(float(next(lengths))), name="wf")
    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([wf], num=3))
    run = cat[uid]
    assert run.status == "success" and run.num_events == 3
    rows = run.primary.read()["wf"].values
    assert [len(r) for r in rows] == [5, 6, 7]  # describe() took the 4
