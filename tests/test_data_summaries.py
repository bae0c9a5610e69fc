"""Per-key data summaries: recorded by the embedded store's writer as streams are written, searchable.

``data.theta.min >= 0 and data.theta.max <= 5`` is the DataBroker requirement "all runs
where theta was between 0 and 5". The summaries are compared with numpy on what the
runs read back.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from bluesky.plans import count, scan
from event_model import compose_run
from ophyd.sim import det, det4, direct_img, motor1, motor2

from scandeck.catalog import Catalog
from scandeck.sources import sqlite_columns
from scandeck.sources.protocol import RunFacts


def _expected(run: object, streams: tuple[str, ...] = ("primary",)) -> dict[str, dict[str, float]]:
    """min/max of every numeric key over the streams, as numpy has them (NaN left out)."""
    out: dict[str, dict[str, float]] = {}
    for name in streams:
        ds = run[name].read()  # type: ignore[index]
        for key in ds.data_vars:
            values = np.asarray(ds[key].values)
            if values.dtype.kind not in "iuf":
                continue
            values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
            lo, hi = values.min().item(), values.max().item()
            have = out.setdefault(key, {"min": lo, "max": hi})
            have["min"], have["max"] = min(have["min"], lo), max(have["max"], hi)
    return out


def test_a_scan_records_each_keys_range_and_finds_it(sqlite_cat: Catalog, RE) -> None:  # noqa: N803
    RE.subscribe(sqlite_cat.writer())
    (inside,) = RE(scan([det4], motor1, 0, 5, 11))
    (outside,) = RE(scan([det4], motor1, -2, 7, 10))
    (grid,) = RE(scan([det4], motor1, 1, 4, motor2, 0, 2, 5))
    source = sqlite_cat.source
    assert isinstance(source, RunFacts)
    for uid in (inside, outside, grid):
        assert source.data_summary(uid) == _expected(sqlite_cat[uid])
    found = sqlite_cat.search("data.motor1.min >= 0 and data.motor1.max <= 5")
    assert set(found.keys()) == {inside, grid}
    assert set(sqlite_cat.search("data.motor2.max > 1").keys()) == {grid}
    tops = {u: source.data_summary(u)["det4"]["max"] for u in (inside, outside, grid)}
    least = min(tops.values())
    assert set(sqlite_cat.search(f"data.det4.max > {least!r}").keys()) == {u for u, t in tops.items() if t > least}
    assert len(sqlite_cat.search("data.nope.max > 0")) == 0


def test_images_strings_and_booleans(sqlite_cat: Catalog, RE) -> None:  # noqa: N803
    """An image in events is summarised over its pixels; strings and booleans have no range."""
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(count([direct_img, det], num=3))
    summary = sqlite_cat.source.data_summary(uid)
    frames = np.asarray(sqlite_cat[uid].primary.read()["img"].values)
    assert summary["img"] == {"min": frames.min().item(), "max": frames.max().item()}
    assert summary["det"] == _expected(sqlite_cat[uid])["det"]

    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "label": {"source": "x", "dtype": "string", "shape": []},
            "flag": {"source": "x", "dtype": "boolean", "shape": []},
            "x": {"source": "x", "dtype": "number", "shape": []},
        },
    )
    writer = sqlite_cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for i, x in enumerate([1.5, math.nan, -math.inf, 2.5]):
        data = {"label": f"s{i}", "flag": bool(i % 2), "x": x}
        writer("event", desc.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0)))
    writer("stop", bundle.compose_stop())
    summary = sqlite_cat.source.data_summary(bundle.start_doc["uid"])
    assert set(summary) == {"x"}  # no range for strings or booleans
    assert summary["x"]["min"] == -math.inf and summary["x"]["max"] == 2.5  # NaN has no place in an order
    facts = sqlite_cat.source.facts([bundle.start_doc["uid"]])[bundle.start_doc["uid"]]
    assert facts["data"]["x"] == {"min": -sys.float_info.max, "max": 2.5}  # JSON has no infinity
    assert bundle.start_doc["uid"] in sqlite_cat.search("data.x.min < -1e300").keys()
    assert bundle.start_doc["uid"] not in sqlite_cat.search("data.x.min >= 0").keys()


def test_a_running_run_is_summarised_at_each_flush(sqlite_cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks flush as a run grows; each flush widens the ranges, so a long run is searchable while running."""
    monkeypatch.setattr(sqlite_columns, "MIN_ROWS", 4)
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"theta": {"source": "m", "dtype": "number", "shape": []}}
    )
    writer = sqlite_cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    uid = bundle.start_doc["uid"]
    values = [0.5, 1.0, 2.0, 3.0, 4.0, 4.5, 9.0, 0.1, 0.2]
    for i, theta in enumerate(values):
        writer("event", desc.compose_event(data={"theta": theta}, timestamps={"theta": 0.0}))
        if i == 5:  # the first block (4 events) was flushed with the fifth event
            assert sqlite_cat.source.data_summary(uid) == {"theta": {"min": 0.5, "max": 3.0}}
            assert uid in sqlite_cat.search("data.theta.min >= 0 and data.theta.max <= 5").keys()
    writer("stop", bundle.compose_stop())
    assert sqlite_cat.source.data_summary(uid) == {"theta": {"min": 0.1, "max": 9.0}}
    assert uid not in sqlite_cat.search("data.theta.min >= 0 and data.theta.max <= 5").keys()
    assert sqlite_cat.source.data_summary(uid) == _expected(sqlite_cat[uid])


def test_an_empty_search_names_the_unknown_column_or_key(sqlite_cat: Catalog, RE) -> None:  # noqa: N803
    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(scan([det4], motor1, 0, 5, 3))
    sqlite_cat[uid].annotate(tags=["Ni"])
    source = sqlite_cat.source
    assert isinstance(source, RunFacts)
    from scandeck.runtable.model import Cell

    source.put_cells(uid, {"peak_cen": Cell(2.5, "h")})
    hint = sqlite_cat.search("data.motr1.max <= 5").empty_hint
    assert hint == "no run has the field data.motr1.max (did you mean data.motor1.max?)"
    hint = sqlite_cat.search('columns.peak_cn > 0.5 and sample == "Ni"').empty_hint
    assert hint is not None and "columns.peak_cn (did you mean columns.peak_cen?)" in hint
    assert "sample" in hint  # the start field no run has, named too
    assert sqlite_cat.search("columns.cen > 100").empty_hint is None  # a built-in column: known, just no match
    assert sqlite_cat.search('tags contains "Cu"').empty_hint is None  # every run has tags


def test_a_block_of_integers_and_floats_is_summarised(
    sqlite_cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readings 0, 2.5, 5 (an int, a float, an int: a motor moved to list positions) make a block
    the store keeps as a list; it still has its range, as each event has it, and a block of one
    type beside it does not make the range partial (here: min 4 where the data's is 0)."""
    monkeypatch.setattr(sqlite_columns, "MIN_ROWS", 4)
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"source": "m", "dtype": "number", "shape": []}}
    )
    writer = sqlite_cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for x in [0, 2.5, True, 5, 4.0, 6.0, 4.5, 5.5]:  # a boolean has no range: left out, as NaN
        writer("event", desc.compose_event(data={"x": x}, timestamps={"x": 0.0}))
    page = desc.compose_event_page(
        data={"x": [7, 0.5]}, timestamps={"x": [0.0, 0.0]}, seq_num=[9, 10], time=[0, 0]
    )
    writer("event_page", page)
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]
    assert sqlite_cat.source.data_summary(uid) == {"x": {"min": 0, "max": 7}}
    assert uid in sqlite_cat.search("data.x.min >= 0 and data.x.max <= 7").keys()
    assert uid not in sqlite_cat.search("data.x.min > 1").keys()


KILLED = """
import os, sys
import scandeck
from event_model import compose_run
writer = scandeck.open_catalog(sys.argv[1]).writer()
bundle = compose_run()
writer("start", bundle.start_doc)
print(bundle.start_doc["uid"], flush=True)
os._exit(0)  # killed: no stop document, no close: the run stays marked open
"""


def test_a_run_whose_writer_died_is_ended_for_the_column_service(sqlite_cat: Catalog) -> None:
    """needing() lists incomplete runs too: their writer is gone, no stop document will come."""
    import subprocess
    import textwrap

    store = str(sqlite_cat.source.directory)
    args = [sys.executable, "-c", textwrap.dedent(KILLED), store]
    uid = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    assert sqlite_cat[uid].status == "incomplete"
    source = sqlite_cat.source
    assert isinstance(source, RunFacts)
    assert source.needing("cen", "h") == [uid]
    from scandeck.runtable.model import Cell

    source.put_cells(uid, {"cen": Cell(None, "h")})
    assert source.needing("cen", "h") == []


def test_a_page_mixing_integers_and_floats_has_the_range_its_events_have() -> None:
    """The Redis writer's rule (RunRanges) on an event page equals the embedded store's on a block."""
    from scandeck.runtable.summaries import RunRanges, column_range

    page, events = RunRanges(), RunRanges()
    page.add("d", {"x": [0, 2.5, 5], "flag": [True, False, True]}, page=True)
    for x in (0, 2.5, 5):
        events.add("d", {"x": x, "flag": True})
    assert page.by_descriptor == events.by_descriptor == {"d": {"x": [0, 5]}}
    assert column_range([0, 2.5, 5]) == (0, 5)
