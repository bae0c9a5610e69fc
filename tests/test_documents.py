"""Validation uses event-model's schemas, agrees with event-model's validators, mutates nothing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from event_model import DocumentNames, compose_run, schema_validators

from scandeck.documents import RunOrder, normalize, pack, unpack, validate_schema
from scandeck.exceptions import InvalidDocument


def _valid_documents():
    bundle = compose_run(metadata={"sample": "Ni", "num_points": 3})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
    )
    res = bundle.compose_resource(spec="NPY_SEQ", root="/", resource_path="a", resource_kwargs={})
    sres = bundle.compose_stream_resource(
        mimetype="application/x-hdf5", uri="file:///a.h5", data_key="x", parameters={}
    )
    return [
        ("start", bundle.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("resource", res.resource_doc),
        ("datum", res.compose_datum(datum_kwargs={"index": 0})),
        ("stream_resource", sres.stream_resource_doc),
        (
            "stream_datum",
            sres.compose_stream_datum(
                indices={"start": 0, "stop": 1}, seq_nums={"start": 1, "stop": 2}, descriptor=desc.descriptor_doc
            ),
        ),
        ("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 1.0}, seq_num=1)),
        (
            "event_page",
            desc.compose_event_page(data={"x": [1.0]}, timestamps={"x": [1.0]}, seq_num=[2], time=[1.0]),
        ),
        ("stop", bundle.compose_stop()),
    ]


def _mutations(doc):
    """Broken copies of ``doc``: each required field dropped, each field set to a wrong type."""
    for key in doc:
        broken = copy.deepcopy(doc)
        del broken[key]
        yield f"without {key}", broken
        for wrong in (None, 12345, "text", [1, 2], {"a": 1}):
            broken = copy.deepcopy(doc)
            broken[key] = wrong
            yield f"{key}={wrong!r}", broken


@pytest.mark.parametrize("name,doc", _valid_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_verdicts_match_event_models_validators(name, doc):
    validate_schema(name, doc)
    validator = schema_validators[DocumentNames[name]]
    checked = 0
    for label, broken in _mutations(doc):
        if validator.is_valid(broken):
            validate_schema(name, broken)  # event-model accepts it: so do we
        else:
            try:
                validate_schema(name, broken)
            except InvalidDocument as err:
                assert "event-model schema" in str(err), label
            else:
                pytest.fail(f"{name} {label}: event-model rejects it but scandeck accepted it")
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("name,doc", _valid_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_checks_leave_the_document_untouched(name, doc):
    before = copy.deepcopy(doc)
    validate_schema(name, doc)
    assert doc == before


def test_run_order_remembers_nothing_for_rejected_documents():
    docs = dict(_valid_documents())
    order = RunOrder()
    placed = order.check("start", docs["start"])
    order.commit("start", docs["start"], placed)
    with pytest.raises(InvalidDocument):
        order.check("event", docs["event"])  # descriptor not yet seen
    placed = order.check("descriptor", docs["descriptor"])
    order.commit("descriptor", docs["descriptor"], placed)
    assert order.check("event", docs["event"]).num_events == 1
    assert order.check("event_page", docs["event_page"]).num_events == 1


def test_numpy_values_pack_to_builtins():
    doc = {"a": np.float64(1.5), "b": np.int32(3), "c": np.arange(3), "d": (1, 2), "e": np.bool_(True)}
    assert unpack(pack(doc)) == {"a": 1.5, "b": 3, "c": [0, 1, 2], "d": [1, 2], "e": True}
    assert normalize(doc) == unpack(pack(doc))
    with pytest.raises(TypeError, match="object"):
        pack({"x": object()})
