"""``cat.writer()`` on Tiled: what Tiled cannot keep is refused loudly, and the writer goes on.

A real Tiled server, documents from event-model's ``compose_run`` where the case needs
exact values. What scandeck's other stores keep and Tiled cannot (numbers TiledWriter
would clamp, rows of another length than the stream's first) is an error naming the
value, never a quietly changed copy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from event_model import compose_run

import scandeck
from scandeck.exceptions import InvalidDocument, ScandeckError


@pytest.fixture
def tiled_cat(tiled_server):
    cat = scandeck.open_catalog(tiled_server.new_catalog())
    yield cat
    cat.close()


def _count_run(cat, writer, **metadata):
    bundle = compose_run(metadata={"plan_name": "count", **metadata})
    keys = {"det": {"dtype": "number", "shape": [], "source": "d"}}
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"det": 1.5}, timestamps={"det": 1.0}, seq_num=1))
    writer("stop", bundle.compose_stop())
    return bundle.start_doc["uid"]


@pytest.mark.parametrize(
    "value,field",
    [(2**64 - 1, "edges/1"), (math.nan, "edges/1"), (math.inf, "edges/1"), (1e308, "edges/1")],
    ids=["u64", "nan", "inf", "1e308"],
)
def test_metadata_tiled_would_change_is_refused_naming_the_field(tiled_cat, value, field):
    writer = tiled_cat.writer()
    bundle = compose_run(metadata={"plan_name": "count", "edges": [1, value]})
    with pytest.raises(InvalidDocument, match="Tiled would not keep") as err:
        writer("start", bundle.start_doc)
    assert err.value.field == field
    assert len(tiled_cat) == 0  # nothing stored
    uid = _count_run(tiled_cat, writer, edges=[1, 2**53 - 1, 0.5])  # the writer goes on; the limit itself is kept
    assert tiled_cat[uid].start["edges"] == [1, 2**53 - 1, 0.5]
    assert tiled_cat[uid].primary.read()["det"].values.tolist() == [1.5]


def test_numpy_metadata_is_stored_as_plain_values(tiled_cat):
    writer = tiled_cat.writer()
    uid = _count_run(tiled_cat, writer, gain=np.float32(1.5), shape=np.arange(3), zero_d=np.array(7.0))
    start = tiled_cat[uid].start
    assert (start["gain"], start["shape"], start["zero_d"]) == (1.5, [0, 1, 2], 7.0)


def test_rows_of_another_length_are_refused_or_unreadable_never_misread(tiled_cat):
    """A waveform declared [3] whose second row has 4 values: Tiled cannot keep it; someone says so."""
    writer = tiled_cat.writer()
    bundle = compose_run(metadata={"plan_name": "count"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"wf": {"dtype": "array", "shape": [3], "source": "w"}}
    )
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"wf": [1.0, 2.0, 3.0]}, timestamps={"wf": 1.0}, seq_num=1))
    refused = False
    try:
        writer("event", desc.compose_event(data={"wf": [1.0, 2.0, 3.0, 4.0]}, timestamps={"wf": 1.0}, seq_num=2))
    except ScandeckError:
        refused = True
    writer("stop", bundle.compose_stop())
    run = tiled_cat[bundle.start_doc["uid"]]
    if refused:
        assert run.primary.read()["wf"].values.tolist() == [[1.0, 2.0, 3.0]]
    else:  # stored: then reading it must fail, naming the shapes, rather than cut or pad the row
        with pytest.raises(ScandeckError, match="shape"):
            run.primary.read()


def test_external_data_of_a_spec_tiled_cannot_read_is_named_on_read(tiled_cat):
    bundle = compose_run()
    keys = {"cam": {"dtype": "array", "shape": [2], "source": "c", "external": "FILESTORE:"}}
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    res = bundle.compose_resource(spec="MY_DETECTOR_SPEC", root="/", resource_path="nowhere", resource_kwargs={})
    datum = res.compose_datum(datum_kwargs={"index": 0})
    writer = tiled_cat.writer()
    for name, doc in [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("resource", res.resource_doc),
        ("datum", datum),
        ("event", desc.compose_event(data={"cam": datum["datum_id"]}, timestamps={"cam": 1.0}, seq_num=1)),
        ("stop", bundle.compose_stop()),
    ]:
        writer(name, doc)
    with pytest.raises(ScandeckError, match="'cam'"):
        tiled_cat[-1].primary.read()


def test_closing_a_batching_writer_mid_run_says_what_was_not_sent(tiled_server):
    cat = scandeck.open_catalog(tiled_server.new_catalog() + "&batch_size=10")
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "count"})
    keys = {"det": {"dtype": "number", "shape": [], "source": "d"}}
    desc = bundle.compose_descriptor(name="primary", data_keys=keys)
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"det": 1.5}, timestamps={"det": 1.0}, seq_num=1))
    with pytest.warns(RuntimeWarning, match=f"{bundle.start_doc['uid'][:8]}.*never sent"):
        writer.close()
    assert cat[bundle.start_doc["uid"]].status == "incomplete"
    cat.close()
