"""Facts on the Redis bus: several clients, searches, the keeper's archive, restarts, hostile text.

The RunFacts contract itself runs on the bus in tests/test_run_facts.py; here are the
bus's own cases. Runs come from a real bluesky RunEngine with ophyd.sim devices, or
from event-model's ``compose_run`` where a case needs chosen values. Each test has
its own prefix on the session's real redis-server (or a server of its own, to
restart) and its own SQLite archive under ``tmp_path``.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bluesky.plans as bp
import pytest
import redis
from event_model import compose_run
from redis_server import RedisServer

from scandeck.catalog import Catalog
from scandeck.exceptions import StoreError
from scandeck.runtable.model import Annotation, Cell
from scandeck.sources import open_source
from scandeck.sources.protocol import RunFacts, Source
from scandeck.sources.redis_facts import persist_facts
from scandeck.sources.redis_keeper import Keeper, TrimPolicy
from scandeck.sources.redis_layout import Keys


class Bus:
    """One prefix on a redis-server and its archive; closes what a test opened on it."""

    def __init__(self, server: RedisServer, tmp_path: Path) -> None:
        self.server = server
        self.prefix = f"facts-{uuid.uuid4().hex[:12]}"
        self.archive = tmp_path / "archive"
        self.keys = Keys(self.prefix)
        self.opened: list[Any] = []

    def uri(self, **options: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in options.items())
        return f"{self.server.url}?prefix={self.prefix}&archive={self.archive}{extra}"

    def catalog(self, **options: str) -> Catalog:
        """A client of the bus: a catalog with its own source object and connection."""
        return self.keep(Catalog(open_source(self.uri(**options))))

    def archive_catalog(self) -> Catalog:
        return self.keep(Catalog(open_source(self.archive)))

    def keeper(self, max_runs: int | None = None) -> Keeper:
        policy = TrimPolicy(max_runs=max_runs)
        return self.keep(Keeper(self.uri(), archive=str(self.archive), policy=policy, say=lambda line: None))

    def client(self) -> redis.Redis:
        return self.keep(redis.Redis.from_url(self.server.url))

    def keep(self, thing: Any) -> Any:
        self.opened.append(thing)
        return thing

    def close(self) -> None:
        for thing in reversed(self.opened):
            thing.close()


@pytest.fixture
def bus(redis_server: RedisServer, tmp_path: Path) -> Iterator[Bus]:
    b = Bus(redis_server, tmp_path)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _no_catalog_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SCANDECK_AUTHOR", "tester")


def record(RE: Any, cat: Catalog, plan: Any, **md: Any) -> str:  # noqa: N803
    writer = cat.writer()
    token = RE.subscribe(writer)
    try:
        (uid,) = RE(plan, **md)
    finally:
        RE.unsubscribe(token)
        writer.close()
    return uid


def facts(cat: Catalog) -> RunFacts:
    assert isinstance(cat.source, RunFacts)
    return cat.source


def test_two_clients_annotate_one_run_and_both_see_both(RE, hw, bus: Bus) -> None:  # noqa: N803
    one, two = bus.catalog(), bus.catalog()
    uid = record(RE, one, bp.count([hw.det], num=3), sample="Ni")
    mark, _ = facts(two).facts_since(0)
    token = two.source.change_token()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(two.source.wait(token, 30)))
    waiter.start()
    one[uid].annotate(comment="from client one", tags=["Ni"])
    waiter.join(60)
    assert woke == [True]  # the other client's wait() wakes on the annotation
    two[uid].annotate(comment="from client two", tags=["redo"])
    one[uid].untag("Ni")
    for cat in (one, two):
        run = cat[uid]
        assert [(n.kind, n.text) for n in run.annotations] == [
            ("comment", "from client one"),
            ("tag", "Ni"),
            ("comment", "from client two"),
            ("tag", "redo"),
            ("untag", "Ni"),
        ]
        assert run.tags == ["redo"]
    assert facts(two).facts_since(mark)[1] == [uid]
    # cells from one client, read by the other
    facts(one).put_cells(uid, {"cen": Cell(0.5, "h1", time=1.0)})
    assert facts(two).cells([uid]) == {uid: {"cen": Cell(0.5, "h1", time=1.0)}}


def test_searches_on_the_bus_read_tags_comments_columns_and_data(RE, hw, bus: Bus) -> None:  # noqa: N803
    cat = bus.catalog()
    a, b, c = (
        record(RE, cat, bp.scan([hw.det], hw.motor, -1 - i, 1 + i, 5), sample=s) for i, s in enumerate("ABC")
    )
    cat[a].annotate(comment="bad beam after 12:40", tags=["Ni"])
    cat[b].annotate(tags=["Cu", "redo"])
    facts(cat).put_cells(a, {"cen": Cell(0.75, "h")})
    facts(cat).put_cells(b, {"cen": Cell(0.25, "h"), "bad": Cell(None, "h", "error", "ValueError: no")})
    other = bus.catalog()  # another client searches
    for query, expected in [
        ('tags contains "Ni"', {a}),
        ('tags contains "redo" or comments contains "12:40"', {a, b}),
        ("columns.cen > 0.5", {a}),
        ("columns.cen < 0.5", {b}),
        ("columns.bad == null", set()),  # a failed cell is a missing key
        ("data.motor.min >= -2 and data.motor.max <= 2", {a, b}),
        ('data.motor.max > 2 and sample == "C"', {c}),
        ('not tags contains "Ni"', {b, c}),
    ]:
        found = other.search(query)
        assert set(found.keys()) == expected, query
        assert len(found) == len(expected), query


def test_data_summaries_on_the_bus_equal_the_embedded_stores(bus: Bus, tmp_path: Path) -> None:
    """The same documents through both writers: one rule (runtable.summaries) for both."""
    bundle = compose_run(metadata={"sample": "edge cases"})
    keys = {
        "f": {"dtype": "number", "shape": [], "source": "sim:f"},
        "i": {"dtype": "integer", "shape": [], "source": "sim:i"},
        "img": {"dtype": "array", "shape": [2, 2], "source": "sim:img"},
        "flag": {"dtype": "boolean", "shape": [], "source": "sim:flag"},
        "name": {"dtype": "string", "shape": [], "source": "sim:name"},
        "gap": {"dtype": "number", "shape": [], "source": "sim:gap"},
    }
    primary = bundle.compose_descriptor(name="primary", data_keys=keys)
    baseline = bundle.compose_descriptor(name="baseline", data_keys={"f": keys["f"]})
    rows = [
        (1.5, 3, [[1, 2], [3, 4]], True, "a", math.nan),
        (math.nan, -7, [[0, 9], [5, 5]], False, "b", math.nan),
        (-math.inf, 2, [[-1, 2], [3, 4]], True, "c", math.nan),
    ]
    docs: list[tuple[str, dict[str, Any]]] = [("start", bundle.start_doc), ("descriptor", primary.descriptor_doc)]
    docs.append(("descriptor", baseline.descriptor_doc))
    for n, (f, i, img, flag, name, gap) in enumerate(rows, 1):
        data = {"f": f, "i": i, "img": img, "flag": flag, "name": name, "gap": gap}
        docs.append(("event", primary.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=n)))
    page = {"f": [10.0, 2.0], "i": [100, -100], "img": [[[0, 0], [0, 0]]] * 2, "flag": [True] * 2}
    page |= {"name": ["d", "e"], "gap": [math.nan] * 2}
    docs.append(
        (
            "event_page",
            primary.compose_event_page(data=page, timestamps={k: [0.0] * 2 for k in page}, seq_num=[4, 5]),
        )
    )
    docs.append(("event", baseline.compose_event(data={"f": 1e300}, timestamps={"f": 0.0}, seq_num=1)))
    docs.append(("stop", bundle.compose_stop()))
    summaries = []
    for cat in (bus.catalog(), bus.keep(Catalog(open_source(tmp_path / "store")))):
        writer = cat.writer()
        for name, doc in docs:
            writer(name, doc)
        writer.close()
        summaries.append(facts(cat).data_summary(bundle.start_doc["uid"]))
    on_bus, embedded = summaries
    assert (
        on_bus
        == embedded
        == {
            "f": {"min": -math.inf, "max": 1e300},
            "i": {"min": -100, "max": 100},
            "img": {"min": -1, "max": 9},
        }
    )


def test_a_running_runs_data_summary_is_on_the_bus_before_its_stop(bus: Bus) -> None:
    cat = bus.catalog()
    bundle = compose_run()
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "s"}}
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"x": 4.0}, timestamps={"x": 0.0}, seq_num=1))
    assert writer.flush(timeout=30)
    uid = bundle.start_doc["uid"]
    assert cat[uid].status == "running"
    assert facts(cat).data_summary(uid) == {"x": {"min": 4.0, "max": 4.0}}  # the first event is stored at once
    assert set(cat.search("data.x.max >= 4").keys()) == {uid}
    writer("event", desc.compose_event(data={"x": -4.0}, timestamps={"x": 0.0}, seq_num=2))
    writer("stop", bundle.compose_stop())
    writer.close()
    assert facts(cat).data_summary(uid) == {"x": {"min": -4.0, "max": 4.0}}  # with the stop, whatever the clock


def test_the_keepers_archive_keeps_annotations_and_cells_and_trimming_loses_none(RE, hw, bus: Bus) -> None:  # noqa: N803
    cat = bus.catalog()
    uid = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 5), sample="Ni")
    cat[uid].annotate(comment="first", tags=["Ni"])
    facts(cat).put_cells(uid, {"cen": Cell(0.1, "h", time=1.0)})
    keeper = bus.keeper(max_runs=None)  # persist, keep in Redis
    assert keeper.run_once().persisted == [uid]
    archive = bus.archive_catalog()
    assert [n.text for n in archive[uid].annotations] == ["first", "Ni"]
    assert facts(archive).cells([uid]) == {uid: {"cen": Cell(0.1, "h", time=1.0)}}
    # annotated again while still in Redis: no longer marked persisted, so no trim loses it
    cat[uid].annotate(comment="second", tags=["redo"])
    facts(cat).put_cells(uid, {"cen": Cell(0.2, "h2", time=2.0)})
    client = bus.client()
    assert not client.sismember(bus.keys.persisted, uid)
    assert not keeper._trim(uid)
    keeper.policy = TrimPolicy(max_runs=0)
    report = keeper.run_once()
    assert report.persisted == [uid] and report.trimmed == [uid]
    assert client.exists(*bus.keys.facts_of(uid), bus.keys.run(uid)) == 0
    assert client.zscore(bus.keys.facts, uid) is None
    history = [(n.kind, n.text) for n in archive[uid].annotations]
    assert history == [("comment", "first"), ("tag", "Ni"), ("comment", "second"), ("tag", "redo")]
    assert facts(archive).cells([uid]) == {uid: {"cen": Cell(0.2, "h2", time=2.0)}}
    # the bus reads a trimmed run's facts from the archive, and writes them there
    assert cat[uid].tags == ["Ni", "redo"]
    mark, _ = facts(cat).facts_since(0)
    cat[uid].annotate(comment="third, after the trim")
    assert [n.text for n in archive[uid].annotations][-1] == "third, after the trim"
    assert facts(bus.catalog()).facts_since(mark)[1] == [uid]  # watchers of the bus hear of it
    assert set(cat.search('comments contains "after the trim"').keys()) == {uid}
    assert set(cat.search('tags contains "redo"').keys()) == {uid}


def test_an_annotation_during_the_keepers_copy_is_not_lost(RE, hw, bus: Bus) -> None:  # noqa: N803
    """A note lands between the keeper's copy and its mark: the mark is refused, the copy repeated."""
    cat, other = bus.catalog(), bus.catalog()
    uid = record(RE, cat, bp.count([hw.det], num=2))
    cat[uid].annotate(comment="before")
    keeper = bus.keeper()
    writer = keeper.archive.writer()  # the documents are archived, the notes not yet
    for entry in cat.source.documents(uid):
        writer(entry.name, entry.doc)
    writer.close()

    class Meanwhile:
        """The archive, with another client annotating on the bus while the keeper copies."""

        def __init__(self, archive: Source) -> None:
            self.archive, self.fired = archive, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.archive, name)

        def add_annotations(self, run: str, notes: list[Annotation]) -> None:
            self.archive.add_annotations(run, notes)  # type: ignore[attr-defined]
            if not self.fired:
                self.fired = True
                other[uid].annotate(comment="during the copy")

    archive = Meanwhile(keeper.archive)
    assert isinstance(archive, RunFacts)
    assert persist_facts(keeper.bus, archive, uid, cat.source.get(uid).num_documents) is None
    assert archive.fired
    assert [n.text for n in archive.annotations(uid)] == ["before", "during the copy"]
    assert bus.client().sismember(bus.keys.persisted, uid)


def test_a_redis_restart_loses_no_acknowledged_fact(RE, hw, tmp_path: Path) -> None:  # noqa: N803
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    b = Bus(server, tmp_path)
    try:
        cat = b.catalog()
        uid = record(RE, cat, bp.scan([hw.det], hw.motor, -2, 2, 5))
        cat[uid].annotate(comment="kept across the restart", tags=["Ni"])
        facts(cat).put_cells(uid, {"cen": Cell(0.3, "h", time=1.0)})
        before = facts(cat).facts([uid])
        mark, _ = facts(cat).facts_since(0)
        server.restart()
        again = b.catalog()
        assert facts(again).facts([uid]) == before
        assert before[uid]["data"]["motor"] == {"min": -2.0, "max": 2.0}
        assert [n.text for n in again[uid].annotations] == ["kept across the restart", "Ni"]
        assert facts(again).facts_since(0) == (mark, [uid])
        cat[uid].annotate(tags=["after"])  # the first client reconnects by itself
        assert again[uid].tags == ["Ni", "after"]
    finally:
        b.close()
        server.kill()


def test_a_dead_connection_is_the_buses_usual_clear_error(RE, hw, tmp_path: Path) -> None:  # noqa: N803
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    b = Bus(server, tmp_path)
    try:
        cat = b.catalog(reconnect="0.3")
        uid = record(RE, cat, bp.count([hw.det]))
        run = cat[uid]
        server.stop()
        with pytest.raises(
            StoreError, match=r"unreachable while storing notes of run .*what is stored stays stored"
        ):
            run.annotate(comment="lost?")
        with pytest.raises(StoreError, match="unreachable while reading facts"):
            facts(cat).facts([uid])
        server.start()
        assert run.annotations == []  # nothing half-stored
    finally:
        b.close()
        server.kill()


def test_hostile_text_is_kept_exactly_on_the_bus_and_in_the_archive(RE, hw, bus: Bus) -> None:  # noqa: N803
    cat = bus.catalog()
    uid = record(RE, cat, bp.count([hw.det]))
    texts = [
        "Ni ✓ 镍 \U0001f52c",
        "\x1b]0;pwned\x07\x1b[2J",
        "report\u202egnp.exe",
        '{"kind": "tag", "text": "forged"}',
        "redis.call('FLUSHALL') -- ]]",
        "tab\there",
    ]
    comment = "multi\nline\r\n" + "y" * 9_000
    cat[uid].annotate(comment=comment, tags=texts)
    cell = Cell("<script>alert(1)</script>\x00\u202e", "h", time=1.0)
    facts(cat).put_cells(uid, {"label": cell})
    other = bus.catalog()
    assert [n.text for n in other[uid].annotations] == [comment, *texts]
    assert other[uid].tags == texts
    assert facts(other).cells([uid])[uid]["label"] == cell
    assert set(other.search('tags contains "report\u202egnp.exe" and comments contains "multi"').keys()) == {uid}
    bus.keeper(max_runs=0).run_once()
    archive = bus.archive_catalog()
    assert [n.text for n in archive[uid].annotations] == [comment, *texts]
    assert facts(archive).cells([uid])[uid]["label"] == cell
    assert [n.text for n in other[uid].annotations] == [comment, *texts]  # now through the archive


def test_count_agrees_with_search_while_the_archive_lags_behind(RE, hw, bus: Bus) -> None:  # noqa: N803
    """A persisted run in Redis annotated since its copy: the bus's facts decide, and counted once."""
    cat = bus.catalog()
    a, b = (record(RE, cat, bp.count([hw.det]), sample=s) for s in "AB")
    cat[a].annotate(tags=["Ni"])
    bus.keeper().run_once()  # both persisted, both still in Redis
    cat[a].untag("Ni")
    cat[b].annotate(tags=["Ni"])  # the archive still says: a is Ni, b is not
    for query, expected in [('tags contains "Ni"', {b}), ("not tags contains 'Ni'", {a}), ("sample == 'A'", {a})]:
        assert set(cat.search(query).keys()) == expected, query
        assert len(cat.search(query)) == len(expected), query


def test_needing_and_delete_cells_reach_trimmed_runs(RE, hw, bus: Bus) -> None:  # noqa: N803
    cat = bus.catalog()
    old = record(RE, cat, bp.count([hw.det]))
    facts(cat).put_cells(old, {"cen": Cell(1.0, "h")})
    bus.keeper(max_runs=0).run_once()  # old is trimmed, in the archive only
    new, newer = record(RE, cat, bp.count([hw.det])), record(RE, cat, bp.count([hw.det]))
    facts(cat).put_cells(new, {"cen": Cell(2.0, "h")})
    source = facts(cat)
    assert source.needing("cen", "h") == [newer]
    assert source.needing("cen", "new code") == [newer, new, old]
    assert source.delete_cells("cen") == 2
    assert source.cells([old, new, newer]) == {}
    assert source.needing("cen", "h") == [newer, new, old]


def test_an_empty_search_on_the_bus_names_the_closest_column_or_key(RE, hw, bus: Bus) -> None:  # noqa: N803
    cat = bus.catalog()
    old = record(RE, cat, bp.count([hw.det]))
    facts(cat).put_cells(old, {"fwhm_x": Cell(1.0, "h")})
    bus.keeper(max_runs=0).run_once()  # old: in the archive only
    new = record(RE, cat, bp.scan([hw.det], hw.motor, 0, 1, 3))
    facts(cat).put_cells(new, {"peak_cen": Cell(2.5, "h")})
    assert cat.search("columns.peak_cn > 0.5").empty_hint == (
        "no run has the field columns.peak_cn (did you mean columns.peak_cen?)"
    )
    assert "(did you mean columns.fwhm_x?)" in (cat.search("columns.fwhm_y > 0").empty_hint or "")
    assert "(did you mean data.motor.max?)" in (cat.search("data.motr.max <= 5").empty_hint or "")
    assert cat.search("columns.peak_cen > 100").empty_hint is None  # known, just no match


def test_a_note_the_archive_cannot_store_keeps_the_run_in_redis(RE, hw, bus: Bus) -> None:  # noqa: N803
    """Text SQLite cannot encode (a lone surrogate, which JSON on the bus keeps): said, not trimmed."""
    cat = bus.catalog()
    uid = record(RE, cat, bp.count([hw.det]))
    facts(cat).add_annotations(uid, [Annotation("comment", "half a pair \ud800", "a", "h", 1.0)])
    assert [n.text for n in cat[uid].annotations] == ["half a pair \ud800"]
    report = bus.keeper(max_runs=0).run_once()
    assert report.trimmed == [] and "copying its comments, tags and cells" in report.skipped[uid]
    assert [n.text for n in cat[uid].annotations] == ["half a pair \ud800"]  # still on the bus
