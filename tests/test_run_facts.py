"""The RunFacts contract (annotations, computed cells, data summaries), run against every
source that implements it, with runs written by a real bluesky RunEngine.

A source joins by implementing :class:`scandeck.sources.protocol.RunFacts`: the
fixture opens each registered source (``source_uris.SOURCES``) and keeps those that do.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bluesky.plans as bp
import numpy as np
import pytest
from event_model import compose_run
from source_uris import SOURCES

from scandeck.catalog import Catalog
from scandeck.exceptions import InvalidAnnotation, InvalidQuery, RunNotFound
from scandeck.query import parse
from scandeck.runtable.model import Annotation, Cell, current_tags, facts_document
from scandeck.sources import open_source
from scandeck.sources.facts_overlay import FactsOverlay
from scandeck.sources.protocol import RunFacts


@pytest.fixture(params=sorted(SOURCES))
def fcat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """An empty catalog on each registered source that keeps facts."""
    source = open_source(SOURCES[request.param](request, tmp_path))
    if not isinstance(source, RunFacts):
        source.close()
        pytest.skip(f"{request.param} does not implement RunFacts")
    catalog = Catalog(source)
    yield catalog
    catalog.close()


@pytest.fixture
def scans(RE, hw, fcat: Catalog) -> list[str]:  # noqa: N803 - RE, as every bluesky user names it
    """Three finished 1-D scans (oldest first), written by a real RunEngine."""
    token = RE.subscribe(fcat.writer())
    try:
        return [RE(bp.scan([hw.det], hw.motor, -1 - i, 1 + i, 5), sample=s)[0] for i, s in enumerate("ABC")]
    finally:
        RE.unsubscribe(token)


def facts(cat: Catalog) -> RunFacts:
    assert isinstance(cat.source, RunFacts)
    return cat.source


def test_history_kept_in_order_and_tags_replayed(fcat: Catalog, scans: list[str], monkeypatch) -> None:
    monkeypatch.setenv("SCANDECK_AUTHOR", "beamline scientist")
    run = fcat[scans[0]]
    before = time.time()
    run.annotate(comment="bad beam after 12:40", tags=["Ni", "redo"])
    run.untag("redo")
    run.annotate(tags=["redo", "paper"])
    run.annotate(comment="fixed")
    history = run.annotations
    assert [(n.kind, n.text) for n in history] == [
        ("comment", "bad beam after 12:40"),
        ("tag", "Ni"),
        ("tag", "redo"),
        ("untag", "redo"),
        ("tag", "redo"),
        ("tag", "paper"),
        ("comment", "fixed"),
    ]
    assert {(n.author, n.host) for n in history} == {("beamline scientist", socket.gethostname())}
    times = [n.time for n in history]
    assert times == sorted(times) and before <= times[0] <= times[-1] <= time.time()
    assert run.tags == ["Ni", "redo", "paper"] == current_tags(history)
    assert [c.text for c in run.comments] == ["bad beam after 12:40", "fixed"]
    # The other runs are untouched; a new Run object reads the same from the store.
    assert fcat[scans[1]].annotations == []
    assert fcat[scans[0]].tags == ["Ni", "redo", "paper"]


def test_untagging_a_tag_the_run_lacks_lists_its_tags_and_stores_nothing(fcat: Catalog, scans: list[str]) -> None:
    run = fcat[scans[0]]
    run.annotate(tags=["Ni"])
    with pytest.raises(InvalidAnnotation, match=r"has no tag 'Cu'; its tags: 'Ni'"):
        run.untag("Ni", "Cu")
    assert run.tags == ["Ni"] and len(run.annotations) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"comment": "nul\0here"}, "NUL"),
        ({"tags": ["ok", "nul\0"]}, "NUL"),
        ({"comment": "lone \ud800 surrogate"}, "valid Unicode"),
        ({"tags": ["\udfff"]}, "valid Unicode"),
        ({"comment": "x" * 10_001}, "at most 10000 characters"),
        ({"tags": ["t" * 101]}, "at most 100 characters"),
        ({"tags": ["two\nlines"]}, "one line"),
        ({"comment": "   "}, "cannot be empty"),
        ({"tags": [3]}, "must be a string"),
        ({}, "nothing to add"),
    ],
)
def test_hostile_or_empty_text_is_refused_and_nothing_stored(
    fcat: Catalog, scans: list[str], kwargs: dict, message: str
) -> None:
    run = fcat[scans[0]]
    with pytest.raises(InvalidAnnotation, match=message):
        run.annotate(**kwargs)
    assert run.annotations == []


def test_unicode_controls_and_the_longest_comment_are_kept_exactly(fcat: Catalog, scans: list[str]) -> None:
    run = fcat[scans[0]]
    texts = ["Ni ✓ 镍 \U0001f52c", "\x1b]0;pwned\x07\x1b[2J", "report\u202egnp.exe", "y" * 10_000]
    run.annotate(comment=texts[3], tags=texts[:3])
    assert [n.text for n in run.annotations] == [texts[3], *texts[:3]]
    assert run.tags == texts[:3]
    assert len(fcat.search('comments contains "yyyy"')) == 1


def test_unknown_uid_is_run_not_found(fcat: Catalog, scans: list[str]) -> None:
    source = facts(fcat)
    note = Annotation("comment", "x", "a", "h", 1.0)
    for call in (
        lambda: source.add_annotations("no-such-run", [note]),
        lambda: source.annotations("no-such-run"),
        lambda: source.put_cells("no-such-run", {"x": Cell(1.0, "h")}),
        lambda: source.data_summary("no-such-run"),
        lambda: source.cells([scans[0], "no-such-run"]),
        lambda: source.facts(["no-such-run"]),
    ):
        with pytest.raises(RunNotFound):
            call()


def test_cells_replaced_per_column_and_deleted_by_name(fcat: Catalog, scans: list[str]) -> None:
    source = facts(fcat)
    a, b, c = scans
    source.put_cells(a, {"cen": Cell(0.5, "h1", time=1.0), "label": Cell("Ni", "h2", time=1.0)})
    source.put_cells(b, {"cen": Cell(None, "h1", "error", "ZeroDivisionError: division by zero", 2.0)})
    source.put_cells(a, {"cen": Cell(0.75, "h3", time=3.0, final=False)})
    assert source.cells([a, b, c]) == {
        a: {"cen": Cell(0.75, "h3", time=3.0, final=False), "label": Cell("Ni", "h2", time=1.0)},
        b: {"cen": Cell(None, "h1", "error", "ZeroDivisionError: division by zero", 2.0)},
    }
    assert source.cells([a, b, c], ["label"]) == {a: {"label": Cell("Ni", "h2", time=1.0)}}
    assert fcat[a].cells == {"cen": Cell(0.75, "h3", time=3.0, final=False), "label": Cell("Ni", "h2", time=1.0)}
    assert source.delete_cells("cen") == 2
    assert source.delete_cells("cen") == 0
    assert source.cells([a, b, c]) == {a: {"label": Cell("Ni", "h2", time=1.0)}}


def test_needing_lists_ended_runs_missing_stale_or_not_final_newest_first(fcat: Catalog, scans: list[str]) -> None:
    source = facts(fcat)
    a, b, c = scans  # oldest first
    # a running run (start and a descriptor, no stop) is never needed yet
    bundle = compose_run()
    writer = fcat.writer()
    writer("start", bundle.start_doc)
    assert fcat[bundle.start_doc["uid"]].status == "running"
    assert source.needing("cen", "h") == [c, b, a]
    source.put_cells(c, {"cen": Cell(1.0, "h")})  # current: not needed
    source.put_cells(b, {"cen": Cell(None, "h", "timeout", "took more than 30 s")})  # failed by this code
    source.put_cells(a, {"cen": Cell(1.0, "old")})  # other code
    assert source.needing("cen", "h") == [a]
    source.put_cells(a, {"cen": Cell(1.0, "h", final=False)})  # computed while running
    assert source.needing("cen", "h") == [a]
    source.put_cells(a, {"cen": Cell(1.0, "h")})
    assert source.needing("cen", "h") == []
    assert source.needing("cen", "new", limit=2) == [c, b]
    assert source.needing("other", "h", limit=1) == [c]


def test_facts_since_tells_which_runs_changed_and_writes_wake_wait(fcat: Catalog, scans: list[str]) -> None:
    source = facts(fcat)
    a, b, _ = scans
    mark, _changed = source.facts_since(0)
    assert source.facts_since(mark) == (mark, [])
    token = fcat.source.change_token()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(fcat.source.wait(token, 30)))
    waiter.start()
    fcat[a].annotate(tags=["Ni"])
    waiter.join(60)
    assert woke == [True]
    mark2, changed = source.facts_since(mark)
    assert changed == [a] and mark2 > mark
    source.put_cells(b, {"cen": Cell(0.1, "h")})
    fcat[a].annotate(comment="again")
    mark3, changed = source.facts_since(mark2)
    assert changed == [b, a] and mark3 > mark2
    assert source.facts_since(mark3) == (mark3, [])


def test_facts_documents_and_search_read_them(fcat: Catalog, scans: list[str]) -> None:
    source = facts(fcat)
    a, b, c = scans
    fcat[a].annotate(comment="bad beam after 12:40", tags=["Ni", "redo"])
    fcat[b].annotate(tags=["Cu"])
    source.put_cells(a, {"cen": Cell(0.75, "h"), "bad": Cell(None, "h", "error", "ValueError: no")})
    source.put_cells(b, {"cen": Cell(0.25, "h")})
    docs = source.facts([a, b, c])
    for uid in (a, b, c):
        expected = facts_document(
            source.annotations(uid), source.cells([uid]).get(uid, {}), source.data_summary(uid)
        )
        assert docs[uid] == expected
    assert docs[a]["columns"] == {"cen": 0.75} and docs[a]["tags"] == ["Ni", "redo"]
    assert set(fcat.search('tags contains "Ni"').keys()) == {a}
    assert set(fcat.search('comments contains "bad beam"').keys()) == {a}
    assert set(fcat.search("columns.cen > 0.5").keys()) == {a}
    assert set(fcat.search("columns.cen < 0.5").keys()) == {b}
    # scan i runs the motor over [-1 - i, 1 + i]
    data = "data.motor.min >= -2 and data.motor.max <= 2"
    if isinstance(source, FactsOverlay):  # a Tiled archive: scandeck did not write it, no summaries
        with pytest.raises(InvalidQuery, match="data summaries are recorded by scandeck's own writers"):
            list(fcat.search(data).keys())
        return
    assert set(fcat.search(data).keys()) == {a, b}


def test_data_summaries_agree_with_the_data_read_back(fcat: Catalog, RE, hw) -> None:  # noqa: N803
    if isinstance(fcat.source, FactsOverlay):
        pytest.skip("a Tiled archive's runs are written by bluesky-tiled-plugins: no data summaries")
    RE.subscribe(fcat.writer())
    (uid,) = RE(bp.grid_scan([hw.det4], hw.motor1, -1, 2, 3, hw.motor2, 0.5, 4, 4))
    (image,) = RE(bp.count([hw.direct_img, hw.det], num=2))
    for run_uid in (uid, image):
        ds = fcat[run_uid].primary.read()
        expected = {}
        for key in ds.data_vars:
            values = np.asarray(ds[key].values)
            if values.dtype.kind in "iuf":
                values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
                expected[key] = {"min": values.min().item(), "max": values.max().item()}
        summary = facts(fcat).data_summary(run_uid)
        assert summary.keys() == expected.keys()
        for key, bounds in expected.items():
            assert math.isclose(summary[key]["min"], bounds["min"]) and math.isclose(
                summary[key]["max"], bounds["max"]
            )


def test_a_catalog_searched_on_facts_finds_its_runs_by_uid(fcat: Catalog, scans: list[str]) -> None:
    a, b, _ = scans
    fcat[a].annotate(tags=["Ni"])
    tagged = fcat.search('tags contains "Ni"')
    assert a in tagged and b not in tagged
    assert tagged[a[:8]].uid == a and tagged[a].uid == a
    with pytest.raises(RunNotFound):
        tagged[b]
    assert [run.uid for run in tagged] == [a]


def test_a_run_nothing_was_said_about_is_searched_as_its_empty_facts_document(
    fcat: Catalog, scans: list[str]
) -> None:
    """Tags ``[]``, comments ``""``: searches, counts and lookups agree with the Python evaluator
    given ``facts()``, for runs no write of facts has touched (no events, no annotation, no cell)."""
    source = facts(fcat)
    bare = []
    writer = fcat.writer()
    for _ in range(2):  # start and stop only: nothing recorded about them
        bundle = compose_run()
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop())
        bare.append(bundle.start_doc["uid"])
    fcat[scans[0]].annotate(comment="bad beam", tags=["Ni"])
    fcat[bare[0]].annotate(tags=["Ni"])
    fcat[bare[0]].untag("Ni")  # annotated, and left as bare as the other
    uids = [*scans, *bare]
    docs = source.facts(uids)
    summaries = {uid: fcat.source.get(uid) for uid in uids}
    for text in (
        'tags != "Cu"',
        'not tags contains "Ni"',
        'comments == ""',
        'comments startswith ""',
        'comments < "a"',
        'comments matches "^$"',
        "tags == []",
        "columns != 1",
        'comments != "bad beam" and tags != "Ni"',
    ):
        q = parse(text)
        expected = {u for u in uids if q.matches(summaries[u].start, summaries[u].stop, docs[u])}
        assert set(bare) <= expected, text
        assert {s.uid for s in fcat.source.search(q)} == expected, text
        assert fcat.source.count(q) == len(expected), text
        found = fcat.search(text)
        assert all(uid in found for uid in expected) and set(found.keys()) == expected, text


def test_published_values_are_cells_searched_by_record_and_value_name(fcat: Catalog, scans: list[str]) -> None:
    """A rerun's ``scandeck.glue`` values, as ``scandeck rerun`` and ``scandeck auto`` publish them:
    the same search finds them on every store (SQL, its index, Python, Redis, a Tiled sidecar)."""
    from scandeck.provenance.published import publish_values
    from scandeck.provenance.record import Environment, ProvenanceRecord
    from scandeck.runtable.rows import published_columns, table_rows

    a, b, c = scans
    env = Environment(python="3.11", platform="Linux")
    for uid, cen in ((a, 0.75), (b, 0.25)):
        for name in ("peak-fit", "peak fit v1.2"):
            record = ProvenanceRecord(
                name=name, kind="rerun", target_scan=uid, environment=env, values={"cen": cen, "xs": [1, 2]}
            )
            assert publish_values(fcat, record) == [f"{name}.cen", f"{name}.xs"]
    facts(fcat).put_cells(a, {"cen": Cell(0.1, "h")})  # a computed column beside them
    assert published_columns(fcat.source) == [
        "peak fit v1.2.cen",
        "peak fit v1.2.xs",
        "peak-fit.cen",
        "peak-fit.xs",
    ]
    assert facts(fcat).facts([a])[a]["columns"] == {
        "cen": 0.1,
        "peak-fit": {"cen": 0.75, "xs": [1, 2]},
        "peak fit v1.2": {"cen": 0.75, "xs": [1, 2]},
    }
    assert set(fcat.search("columns.peak-fit.cen > 0.5").keys()) == {a}
    assert set(fcat.search("columns.`peak fit v1.2`.cen < 0.5").keys()) == {b}
    assert set(fcat.search("columns.peak-fit.xs contains 2 and columns.cen < 0.5").keys()) == {a}
    assert set(fcat.search("not columns.peak-fit.cen > 0").keys()) == {c}
    (row,) = table_rows(fcat, [fcat.source.get(a)], ["peak-fit.cen", "columns.peak fit v1.2.xs"])
    assert {n: (cell.value, cell.state) for n, cell in row.cells.items()} == {
        "peak-fit.cen": (0.75, "ok"),
        "peak fit v1.2.xs": ([1, 2], "ok"),
    }
