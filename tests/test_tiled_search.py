"""Scandeck queries over a real Tiled server give the embedded store's answers (issue 13).

One module-scoped container is filled once by a real RunEngine through
bluesky-tiled-plugins' ``TiledWriter``, and the same documents go into a memory store.
Metadata is hostile to Tiled's SQLite translation: case variants, ``_``/``%``/``[``/``{``
in strings, numbers next to booleans (SQLite's 1 is ``true``), ``null``, lists, objects,
missing keys, hyphenated and spaced key names, equal start times, failed and aborted runs
and one run left without a stop document. For hand-picked edge cases and ~200 random
queries, count, the ordered uids, pages, time cursors and oldest-first must agree.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from plan_steps import failing_after

from scandeck.exceptions import InvalidQuery
from scandeck.query import FullText, Key, PartialUID, Query, ScanID, TimeRange
from scandeck.sources import open_source
from scandeck.sources.protocol import Source
from scandeck.sources.tiled.search import TiledSearch
from scandeck.sources.tiled.translate import AllOf, Leaf, NoneOf, plan

SAMPLES: list[Any] = [
    "Ni", "ni", "NI", "Nickel", "Cu", "cu_2", "cu%2", "x_y", "[1,2]", "{a}", "", "é", 'q"uote',
    "back\\slash", "|pipe", "zr", None, 5, 5.0, 0, 1, 1.5, -3, True, False, [1, 2], ["Ni", "Cu"],
    ["ni"], [5, 1.5], [True], [0], [], {"a": 1}, "Zr", "a",
]  # fmt: skip
TEMPS: list[Any] = [300, 300.0, 4.2, -1, "300", None, True, 0, "missing"]
TAGS: list[Any] = [["a", "t0"], ["t0"], [], "t0", ["A"], "missing", [1, "1"], [["a"]], ["x%", "t_0"]]
FLAGS: list[Any] = [True, False, 1, 0, "missing", None, "true"]
OPERATORS: list[Any] = ["alice", "bob", "missing", "Alice"]
TIED = {3, 4, 5}  # runs whose start time is made equal (two RunEngines at one instant)


@dataclass
class Runs:
    search: TiledSearch
    memory: Source
    uids: list[str]  # in writing order
    open_uid: str
    times: list[float]


def _metadata(i: int, sample: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"specimen": sample, "idx": i}
    for name, pool in (("temp", TEMPS), ("labels", TAGS), ("flag", FLAGS), ("operator", OPERATORS)):
        value = pool[i % len(pool)]
        if value != "missing":
            md[name] = value
    if i % 3 == 0:
        md["md"] = {"sample": SAMPLES[(i * 7) % len(SAMPLES)], "n": i % 4}
    elif i % 3 == 1:
        md["md"] = "flat"
    if i % 4 == 0:
        md["odd"] = {"da-sh": i % 2, "sp ace": i % 3}
        md["weird key"] = "x" if i % 8 == 0 else "y"
    if i in TIED:
        md["tie"] = True
    return md


@pytest.fixture(scope="module")
def runs(tiled_server: Any) -> Iterator[Runs]:
    from bluesky import RunEngine
    from bluesky import plan_stubs as bps
    from bluesky import plans as bp
    from bluesky import preprocessors as bpp
    from bluesky.utils import RunEngineInterrupted
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import det, motor
    from tiled.client import from_uri

    name = f"search-{uuid.uuid4().hex[:10]}"
    tiled_server.new_catalog(name)
    container = from_uri(f"{tiled_server.base}/api/v1/metadata/{name}", api_key=tiled_server.api_key)
    try:
        memory = open_source(f"memory://tiled-search-{name}")
        memory.start()
        to_memory = memory.writer()
        to_tiled = TiledWriter(container, batch_size=10_000)
        held: set[str] = set()
        tie_time: list[float] = []

        def feed(name: str, doc: dict[str, Any]) -> None:
            if name == "start" and doc.get("tie"):
                tie_time[:] = tie_time or [doc["time"]]
                doc = {**doc, "time": tie_time[0]}
            if name == "stop" and doc["run_start"] in held:
                return  # the run stays open in both stores
            to_memory(name, doc)
            to_tiled(name, doc)

        RE = RunEngine({}, context_managers=[])  # noqa: N806 - bluesky's name
        RE.subscribe(feed)
        uids: list[str] = []
        for i, sample in enumerate(SAMPLES):
            plan = bp.scan([det], motor, 0, 1, 2 + i % 2) if i % 5 == 0 else bp.count([det], 1)
            uids += RE(plan, **_metadata(i, sample))
        with pytest.raises(RuntimeError, match="beam dump"):
            RE(bp.scan([det], motor, 0, 1, 3, per_step=failing_after(1)), specimen="Ni", operator="bob")
        uids.append(memory.search(Query.all(), limit=1)[0].uid)

        def paused() -> Any:
            yield from bps.checkpoint()
            yield from bps.pause()

        with pytest.raises(RunEngineInterrupted):
            RE(bpp.run_wrapper(paused(), md={"specimen": "Cu", "operator": "alice"}))
        RE.abort()
        uids.append(memory.search(Query.all(), limit=1)[0].uid)

        def hold(name: str, doc: dict[str, Any]) -> None:
            held.add(doc["uid"])

        token = RE.subscribe(hold, "start")
        (open_uid,) = RE(bp.count([det], 2), specimen="Ni", temp=300)
        RE.unsubscribe(token)
        uids.append(open_uid)
        times = [memory.get(u).time for u in uids]
        yield Runs(TiledSearch(container), memory, uids, open_uid, times)
    finally:
        container.context.close()


# -- comparison ----------------------------------------------------------------------------------


def _mine(runs: Runs, query: Query, **kw: Any) -> list[str]:
    return [uid for uid, _ in runs.search.page(query, **kw)]


def _theirs(runs: Runs, query: Query, **kw: Any) -> list[str]:
    before = kw.pop("before", None)
    if before is not None:
        # the memory store's cursor is (time, seq); Tiled's is time alone: seq 0 / past every seq
        kw["before"] = (before[0], 2**62 if kw.get("oldest_first") else 0)
    return [s.uid for s in runs.memory.search(query, **kw)]


def _agree(runs: Runs, query: Query, *, thorough: bool = True) -> list[str]:
    """Assert TiledSearch and the memory store agree on ``query``; return the matching uids.

    Every query: the whole ordered list. Thorough: also the count, a page, and a page
    oldest first after a time cursor (test_windows_at_the_edges has more windows).
    """
    expected = _theirs(runs, query)
    assert _mine(runs, query) == expected, query
    if thorough:
        assert runs.search.count(query) == len(expected), query
        middle = runs.times[len(runs.times) // 2]
        for window in ({"limit": 5, "offset": 3}, {"before": (middle, 0), "limit": 6, "oldest_first": True}):
            assert _mine(runs, query, **window) == _theirs(runs, query, **window), (query, window)
    return expected


def _edge_cases(runs: Runs) -> list[Query]:
    uid = runs.uids[7]
    tied = runs.times[list(TIED)[0]]
    sample, tags, temp = Key("specimen"), Key("labels"), Key("temp")
    exit_status = Key("stop.exit_status")
    return [
        Query.all(),
        sample == "Ni",
        sample == "ni",
        sample == "cu_2",
        sample == "[1,2]",
        sample == [1, 2],
        sample == [],
        sample == None,  # noqa: E711 - a query, not a test
        sample == True,  # noqa: E712
        sample == False,  # noqa: E712
        sample == 1,
        sample == 0,
        sample == 5,
        sample != "Ni",
        sample != None,  # noqa: E711
        sample != 1,
        sample != [1, 2],
        sample.in_(["Ni", 5, None, [1, 2], True]),
        sample.in_(["ni", "Cu"]),
        sample.in_([]),
        sample.not_in(["Ni", 5, None]),
        sample.not_in([]),
        sample > "M",
        sample < "N",
        sample <= "[",
        sample >= "|",
        sample > 1,
        sample < 1,
        sample >= 0,
        sample < 0,
        sample > -5,
        temp >= 0,
        temp < 300,
        sample <= "{",
        sample >= "[",
        sample < "|",
        tags.contains("t0"),
        tags.contains("a"),
        tags.contains("A"),
        tags.contains(1),
        tags.contains(True),
        tags.contains("x%"),
        tags.contains("t_0"),
        sample.contains("Ni"),
        sample.contains(1.5),
        sample.startswith("N"),
        sample.startswith("x_"),
        sample.startswith("cu%"),
        sample.startswith("["),
        temp == 300,
        temp != 300,
        temp > 4,
        temp >= "300",
        Key("flag") == True,  # noqa: E712
        Key("flag") == 1,
        Key("flag") != False,  # noqa: E712
        Key("md.sample") == "Ni",
        Key("md.n") >= 2,
        Key("md") == "flat",
        Key("odd.da-sh") == 1,
        Key(("odd", "sp ace")) != 2,
        Key("weird key") == "x",
        Key("nope") == 1,
        ~(Key("nope") == 1),
        exit_status == "success",
        ~(exit_status == "success"),
        exit_status.in_(["abort", "fail"]),
        ~exit_status.in_(["abort", "fail"]),
        Key("stop.num_events.primary") >= 2,
        Key("stop.num_events") != 1,  # presence of an object-valued key
        Key("md") != "flat",
        ~(Key("md") == "flat"),
        Key("operator") != "bob",
        ~(sample == "Ni"),
        (sample == "Ni") | (temp > 100),
        (sample == "Ni") | (Key("flag") == True),  # noqa: E712
        ~((sample == "Ni") | (sample == "Cu")),
        (Key("operator") == "alice") & ~(sample.in_(["Ni", "Cu"])),
        (temp > 0) & ((sample == True) | tags.contains("t0")) & ~(Key("flag") == 0),  # noqa: E712
        ~~(sample == "ni"),
        PartialUID(uid[:3]),
        PartialUID(uid[:2].upper()),
        PartialUID(uid[:1], runs.uids[9][:4]),
        ScanID(1),
        ScanID(2, 3),
        TimeRange(since=tied),
        TimeRange(until=tied),
        TimeRange(since=runs.times[1], until=runs.times[10]),
        Key("uid") == uid,
        (sample == "Ni") | (sample == "Cu") | sample.in_(["zr", 5]) | (temp == 4.2),  # one In on the server
        (sample == "Ni") | (sample == True),  # noqa: E712 - an inexact one stays apart
        sample.regex("(?i)^ni"),
        sample.regex("^\\["),
        Key(("odd", "sp ace")).regex("1"),
        FullText("ni"),
        FullText("ni") & ~(sample == "Ni"),
        sample.exists(),
        ~temp.exists(),
        Key("scan_id") > 30,
    ]


def test_edge_cases_agree_with_the_memory_store(runs: Runs) -> None:
    nonempty = [q for q in _edge_cases(runs) if _agree(runs, q)]
    # the fixture is what makes these cases mean something: most of them match some runs
    assert len(nonempty) > 60


def test_sets_too_big_for_one_url_are_applied_on_this_side(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    # a budget of a few uids: every OR/NOT result goes through key listings and chunked fetches
    monkeypatch.setattr(runs.search, "url_budget", 200)
    for query in _edge_cases(runs)[::3]:
        _agree(runs, query, thorough=False)


def test_random_queries_agree_with_the_memory_store(runs: Runs) -> None:
    rng = random.Random(13)
    made = 0
    while made < 200:
        try:
            query = _random_query(rng, runs, depth=3)
        except InvalidQuery:  # an operator that does not take that value: draw again
            continue
        _agree(runs, query, thorough=made % 10 == 0)
        made += 1


_KEYS = [
    "specimen", "temp", "labels", "flag", "operator", "md.sample", "md.n", "md", "plan_name",
    "stop.exit_status", "stop.num_events.primary", "nope", "odd.da-sh", ("odd", "sp ace"), "weird key",
    "scan_id", "idx",
]  # fmt: skip
_VALUES: list[Any] = [
    *SAMPLES, 300, 4.2, "alice", "success", "fail", "abort", "count", "scan", "t0", 3, 2, None,
    "N", "M", "[", "{", "|", "z", "x", 0.5,
]  # fmt: skip


def _random_query(rng: random.Random, runs: Runs, depth: int) -> Query:
    if depth > 0 and rng.random() < 0.45:
        kind = rng.choice(["and", "or", "not"])
        if kind == "not":
            return ~_random_query(rng, runs, depth - 1)
        items = [_random_query(rng, runs, depth - 1) for _ in range(rng.randint(2, 3))]
        out = items[0]
        for item in items[1:]:
            out = out & item if kind == "and" else out | item
        return out
    roll = rng.random()
    if roll < 0.05:
        return PartialUID(rng.choice(runs.uids)[: rng.randint(1, 3)])
    if roll < 0.1:
        return ScanID(*rng.sample(range(0, 45), rng.randint(1, 3)))
    if roll < 0.15:
        a, b = sorted(rng.sample(runs.times, 2))
        return TimeRange(since=a, until=b)
    key = Key(rng.choice(_KEYS))
    if roll < 0.2:
        return key.regex(rng.choice(["^N", "(?i)ni", "u", "^$", "\\d", "^\\["]))
    if roll < 0.22:
        return FullText(rng.choice(["ni", "CU", "a", "t0"]))
    op = rng.choice(["==", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith"])
    value = rng.choice(_VALUES)
    if op in ("in", "not in"):
        values = rng.sample(_VALUES, rng.randint(0, 3))
        return key.in_(values) if op == "in" else key.not_in(values)
    if op == "contains":
        return key.contains(value)
    if op == "startswith":
        return key.startswith(value if isinstance(value, str) else "N")
    return {
        "==": key.__eq__, "!=": key.__ne__, "<": key.__lt__, "<=": key.__le__, ">": key.__gt__, ">=": key.__ge__,
    }[op](value)  # fmt: skip


def test_windows_at_the_edges(runs: Runs) -> None:
    tied = runs.times[min(TIED)]
    specimen = Key("specimen")
    queries = [Query.all(), (specimen == "Ni") | (Key("temp") > 4), ~(specimen == "Ni"), specimen == True]  # noqa: E712
    windows: list[dict[str, Any]] = [
        {"before": (tied, 0)},  # equal start times: strictly older / newer only
        {"before": (tied, 0), "oldest_first": True},
        {"before": (runs.times[min(TIED) + 1], 0), "limit": 2, "offset": 1},
        {"limit": 0},
        {"offset": 1000},
        {"limit": 3, "offset": 2, "oldest_first": True},
    ]
    for query in queries:
        for window in windows:
            assert _mine(runs, query, **window) == _theirs(runs, query, **window), (query, window)
    # the tied runs are in the fixture and come out in the order they were written (newest first)
    tied_uids = [runs.uids[i] for i in sorted(TIED)]
    assert [u for u in _mine(runs, Query.all()) if u in tied_uids] == tied_uids[::-1]


def test_open_runs_are_those_without_a_stop_document(runs: Runs) -> None:
    assert [uid for uid, _ in runs.search.open_runs(Query.all())] == [runs.open_uid]
    ((uid, run),) = runs.search.open_runs(Key("specimen") == "Ni")
    assert uid == runs.open_uid and "stop" not in run.metadata and run.metadata["start"]["uid"] == uid
    assert runs.search.open_runs(Key("specimen") == "Cu") == []
    assert runs.search.open_runs(Query.all(), limit=0) == []


def test_pages_carry_the_run_metadata(runs: Runs) -> None:
    for uid, run in runs.search.page(Query.all()):
        summary, md = runs.memory.get(uid), run.metadata
        assert md["start"]["uid"] == uid
        assert md["start"]["specimen"] == summary.start["specimen"]
        assert (md.get("stop") or {}).get("exit_status") == (summary.stop or {}).get("exit_status")


def test_find_prefix_is_case_sensitive_and_sorted_by_uid(runs: Runs) -> None:
    for uid in runs.uids[:6]:
        for n in (1, 2, 4):
            prefix = uid[:n]
            expected = sorted(u for u in runs.uids if u.startswith(prefix))
            found = runs.search.find_prefix(prefix, limit=50)
            assert [u for u, _ in found] == expected
            assert all(run.metadata["start"]["uid"] == u for u, run in found)
            assert [u for u, _ in runs.search.find_prefix(prefix, limit=1)] == expected[:1]
    letters = next(u for u in runs.uids if u[0].isalpha())
    assert runs.search.find_prefix(letters[:3].upper()) == []  # uuids are lower-case; LIKE is not
    assert runs.search.find_prefix("_") == [] and runs.search.find_prefix("%") == []
    assert [u for u, _ in runs.search.find_prefix("", limit=3)] == sorted(runs.uids)[:3]


def test_bad_windows_are_refused(runs: Runs) -> None:
    with pytest.raises(InvalidQuery, match="limit must be 0 or more"):
        runs.search.page(Query.all(), limit=-1)
    with pytest.raises(InvalidQuery, match="offset must be 0 or more"):
        runs.search.page(Query.all(), offset=-2)


def test_counts_are_fresh(tiled_server: Any) -> None:
    # Tiled's client caches a container's length for a second: a run written right after
    # a count must be in the next count
    from bluesky import RunEngine
    from bluesky import plans as bp
    from bluesky_tiled_plugins import TiledWriter
    from ophyd.sim import det
    from tiled.client import from_uri

    name = f"fresh-{uuid.uuid4().hex[:10]}"
    tiled_server.new_catalog(name)
    container = from_uri(f"{tiled_server.base}/api/v1/metadata/{name}", api_key=tiled_server.api_key)
    try:
        RE = RunEngine({}, context_managers=[])  # noqa: N806 - bluesky's name
        RE.subscribe(TiledWriter(container, batch_size=100))
        search = TiledSearch(container)
        counts = []
        for _ in range(3):
            counts.append((search.count(Query.all()), search.count(Key("specimen") == "Ni")))
            RE(bp.count([det], 1), specimen="Ni")
        counts.append((search.count(Query.all()), search.count(Key("specimen") == "Ni")))
        assert counts == [(0, 0), (1, 1), (2, 2), (3, 3)]
        assert len(container) == 3  # (the container's own length is what got cached)
    finally:
        container.context.close()


def test_exact_queries_stay_on_the_server() -> None:
    # what the comparisons above cannot see: which queries Tiled answers alone (one request
    # for a count, no metadata downloaded) and which download candidates to re-check
    specimen = Key("specimen")
    exact = [
        specimen == "Ni",
        specimen == 5,
        (specimen == "Ni") | (specimen == "Cu") | specimen.in_(["Zr"]),
        Key("temp") > 4,
        specimen < "N",
        specimen >= "|",
        TimeRange(since=1.0, until=2.0),
        ScanID(2, 3),
        Key("stop.exit_status").in_(["abort", "fail"]),
    ]
    rechecked = [
        specimen == True,  # noqa: E712 - SQLite's true is 1
        specimen == 1,
        Key("labels").contains("t0"),
        specimen.startswith("N"),
        PartialUID("ab"),
        specimen.regex("^N"),
        FullText("ni"),
    ]
    # ranges whose strays are few and known: booleans as 0/1, lists and objects as JSON text
    strays_checked = [specimen > "M", specimen <= "{", Key("temp") >= 0, Key("temp") < 5]
    for query in exact:
        leaf = plan(query)
        assert isinstance(leaf, Leaf) and leaf.check is None and leaf.queries, query
    for query in strays_checked:
        whole = plan(query)
        assert isinstance(whole, AllOf), query
        first, *strays = whole.items
        assert isinstance(first, Leaf) and first.check is None and strays, query
        assert all(isinstance(s, NoneOf) and isinstance(s.item, Leaf) and s.item.check == ~query for s in strays)
    for query in rechecked:
        leaf = plan(query)
        assert isinstance(leaf, Leaf) and leaf.check == query, query
