"""Runs read through scandeck are noted in the process's provenance context."""

from __future__ import annotations

import pytest
from event_model import compose_run

from scandeck.provenance.context import current


@pytest.fixture(autouse=True)
def fresh_context():
    current().clear()
    yield
    current().clear()


def _run(cat, scan_id):
    bundle = compose_run(metadata={"scan_id": scan_id})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": 0.0}, seq_num=1))
    writer("stop", bundle.compose_stop())
    return bundle.start_doc["uid"]


def test_lookups_and_reads_are_noted_in_order(cat):
    first, second = _run(cat, 1), _run(cat, 2)
    assert current().inputs() == []  # writing is not reading
    cat[-1]
    cat[first].primary.read()
    inputs = current().inputs()
    assert [i["uid"] for i in inputs] == [second, first]
    assert inputs[0]["scan_id"] == 2 and inputs[0]["streams"] == []
    assert inputs[1]["streams"] == ["primary"] and inputs[1]["fields"] == ["x"]
    assert inputs[1]["catalog"]


def test_listing_is_not_reading(cat):
    _run(cat, 1)
    len(cat), cat.summaries(), repr(cat)
    assert current().inputs() == []
