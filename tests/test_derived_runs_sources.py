"""The panel's derived-run lookups (``scandeck.server.derived_runs``) on every source.

A parent run and two runs derived from it (``parent_uids``, as ``scandeck.derive()`` and
``to_run`` write them), and an unrelated run, composed with event-model and written
through each source's writer: the parents a page of derived runs names are found in one
search, and a run's detail names its parents and the runs derived from it.
"""

from __future__ import annotations

import pytest
from event_model import compose_run
from source_uris import SOURCES

import scandeck
from scandeck.server.derived_runs import derived_detail, page_parents


def write(cat, time_: float, **metadata) -> str:
    bundle = compose_run(metadata={"plan_name": "count", **metadata}, time=time_)
    writer = cat.writer()
    try:
        writer("start", bundle.start_doc)
        desc = bundle.compose_descriptor(
            name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "x"}}
        )
        writer("descriptor", desc.descriptor_doc)
        writer("event", desc.compose_event(data={"x": 1.0}, timestamps={"x": time_}))
        writer("stop", bundle.compose_stop(exit_status="success"))
    finally:
        writer.close()
    return bundle.start_doc["uid"]


@pytest.mark.parametrize("where", sorted(SOURCES))
def test_parents_and_derived_runs_are_found_on_every_source(request, tmp_path, where):
    cat = scandeck.open_catalog(SOURCES[where](request, tmp_path))
    try:
        parent = write(cat, 1000.0, scan_id=7)
        write(cat, 1001.0, scan_id=8)
        first = write(cat, 1002.0, plan_name="derived", parent_uids=[parent])
        second = write(cat, 1003.0, plan_name="derived", parent_uids=[parent, "not-in-this-catalog"])

        derived = [cat.source.get(first), cat.source.get(second)]
        refs = page_parents(cat, derived)
        assert set(refs) == {parent}
        assert refs[parent]["scan_id"] == 7 and refs[parent]["plan_name"] == "count"
        assert refs[parent]["status"] == "success"
        assert page_parents(cat, [cat.source.get(parent), *derived]) == {}

        summary = cat.source.get(parent)
        out = derived_detail(cat, summary, summary.start)
        assert [r["uid"] for r in out["derived"]] == [second, first]
        assert out["parents"] == [] and out["pipeline"] is None and out["derived_more"] is False

        summary = cat.source.get(second)
        out = derived_detail(cat, summary, summary.start)
        assert [p["uid"] for p in out["parents"]] == [parent, "not-in-this-catalog"]
        assert out["parents"][1] == {"uid": "not-in-this-catalog", "missing": True}
        assert out["derived"] == []
    finally:
        cat.close()
