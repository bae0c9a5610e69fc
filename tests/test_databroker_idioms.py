"""Databroker's idioms on every source: dictionary and Tiled queries, read(keys), to_dask, metadata, names.

Runs are written by a real RunEngine with ophyd.sim devices into the ``cat``
fixture's source. Dictionary queries are checked twice: against the equivalent
scandeck query, and against a small MongoDB evaluator written here from
MongoDB's documented rules (over a bounded random set of queries, fixed seed).
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import scandeck
from scandeck.catalog import Catalog
from scandeck.exceptions import InvalidQuery, QueryError, ScandeckError, StreamNotFound
from scandeck.query import FullText, Key, PartialUID, Query, ScanID, TimeRange
from scandeck.query.mongo import FIELD_OPERATORS
from scandeck.sources.protocol import FieldIndex

# Metadata of the runs: hostile to a naive translation (case variants, a null,
# missing keys, numbers as strings, booleans beside 0/1, lists, nested dicts).
RUN_MD: list[dict[str, Any]] = [
    {"sample": "Ni", "temp": 5, "flag": True, "labels": ["a", "b"], "info": {"operator": "alice"}, "note": "5"},
    {
        "sample": "ni",
        "temp": 5.0,
        "flag": 1,
        "labels": ["b"],
        "tags": ["b"],
        "info": {"operator": "bob"},
        "note": 5,
    },
    {"sample": "Cu", "temp": 300, "flag": False, "labels": [], "note": "x"},
    {"temp": "5", "flag": 0, "labels": ["c", None], "info": {"operator": None}, "note": None},
    {"temp": 10.5, "flag": None, "info": {}},
    {"sample": "Fe", "labels": ["a"], "info": {"operator": "alice", "shift": 2}, "note": "Nickel run"},
    {"sample": "Ni", "temp": -1, "flag": True, "info": "flat"},
    {"sample": "Cu", "temp": 299.5, "labels": ["A", "b"], "note": "ni?"},
]


@pytest.fixture
def filled(cat: Catalog, RE, hw) -> Iterator[tuple[Catalog, dict[str, dict[str, Any]]]]:  # noqa: N803
    """``cat`` with one small run per RUN_MD entry (a count and a scan); ``{uid: start}`` newest first."""
    import bluesky.plans as bp

    token = RE.subscribe(cat.writer())
    for i, md in enumerate(RUN_MD):
        plan = bp.count([hw.det], 1) if i % 2 else bp.scan([hw.det], hw.motor, 0, 1, 2)
        RE(plan, **md)
    RE.unsubscribe(token)
    starts = {run.uid: run.start for run in cat}
    yield cat, starts


def uids(cat: Catalog, query: object) -> list[str]:
    return list(cat.search(query).keys())


# ------------------------------------------------------------- a MongoDB evaluator

MISSING = object()


def _get(doc: Any, path: str) -> Any:
    for seg in path.split("."):
        if not isinstance(doc, dict) or seg not in doc:
            return MISSING
        doc = doc[seg]
    return doc


def _bson_kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, (int, float)):
        return "number"
    return type(x).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return _bson_kind(a) == _bson_kind(b) and a == b


def _eq(field: Any, value: Any) -> bool:
    if isinstance(value, re.Pattern):
        return _regex(field, value)
    if value is None and field is MISSING:
        return True
    if field is MISSING:
        return False
    if _same(field, value):
        return True
    return isinstance(field, list) and any(_same(x, value) for x in field)


def _regex(field: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(field, str) and pattern.search(field) is not None


def _order(field: Any, op: str, value: Any) -> bool:
    if field is MISSING or _bson_kind(field) != _bson_kind(value) or _bson_kind(value) not in ("number", "str"):
        return False
    return {"$gt": field > value, "$gte": field >= value, "$lt": field < value, "$lte": field <= value}[op]


def _field_matches(field: Any, cond: Any) -> bool:
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        for op, v in cond.items():
            if op == "$options":
                continue
            if op == "$eq" and not _eq(field, v):
                return False
            if op == "$ne" and _eq(field, v):
                return False
            if op in ("$gt", "$gte", "$lt", "$lte") and not _order(field, op, v):
                return False
            if op == "$in" and not any(_eq(field, x) for x in v):
                return False
            if op == "$nin" and any(_eq(field, x) for x in v):
                return False
            if op == "$all" and not all(_eq(field, x) for x in v):
                return False
            if op == "$exists" and (field is not MISSING) != bool(v):
                return False
            if op == "$regex":
                flags = re.IGNORECASE if "i" in cond.get("$options", "") else 0
                if not _regex(field, re.compile(v, flags)):
                    return False
            if op == "$not" and _field_matches(field, v):
                return False
        return True
    return _eq(field, cond)


def mongo_matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """MongoDB's answer for one document (the operators scandeck accepts)."""
    for key, cond in query.items():
        if key == "$and" and not all(mongo_matches(doc, q) for q in cond):
            return False
        if key == "$or" and not any(mongo_matches(doc, q) for q in cond):
            return False
        if key == "$nor" and any(mongo_matches(doc, q) for q in cond):
            return False
        if not key.startswith("$") and not _field_matches(_get(doc, key), cond):
            return False
    return True


# Keys whose values are never lists (where scandeck's $gt/$regex agree with MongoDB's), and list keys.
SCALAR_VALUES: dict[str, list[Any]] = {
    "sample": ["Ni", "ni", "Cu", "Fe", None],
    "temp": [5, 5.0, 300, 10.5, "5", -1],
    "flag": [True, False, 1, 0, None],
    "info.operator": ["alice", "bob", None],
    "note": ["5", 5, "x", None],
    "plan_name": ["scan", "count"],
    "nothing": [1, None],
}
LIST_VALUES: dict[str, list[Any]] = {"labels": ["a", "b", "c", None, "A"], "detectors": ["det", "motor"]}
PATTERNS = ["^N", "i", "^c", "u$", "l.c", "^5$"]


def random_field(rng: random.Random) -> tuple[str, Any]:
    is_list = rng.random() < 0.3
    pool = LIST_VALUES if is_list else SCALAR_VALUES
    key = rng.choice(sorted(pool))
    values = pool[key]
    ops = ["value", "$eq", "$ne", "$in", "$nin", "$exists", "$not"]
    ops += ["$all"] if is_list else ["$gt", "$gte", "$lt", "$lte", "$regex", "pattern"]
    op = rng.choice(ops)
    v = rng.choice(values)
    if op == "value":
        return key, v
    if op in ("$in", "$nin", "$all"):
        return key, {op: rng.sample(values, rng.randint(1 if op == "$all" else 0, min(3, len(values))))}
    if op == "$exists":
        return key, {"$exists": rng.random() < 0.5}
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return key, {
            op: rng.choice([x for x in values if isinstance(x, (str, int, float)) and not isinstance(x, bool)])
        }
    if op == "$regex":
        cond = {"$regex": rng.choice(PATTERNS)}
        return key, {**cond, "$options": "i"} if rng.random() < 0.5 else cond
    if op == "pattern":
        return key, re.compile(rng.choice(PATTERNS))
    if op == "$not":
        inner = {"$in": rng.sample(values, 2)} if is_list else {"$gt": rng.choice([5, "M"])}
        return key, {"$not": inner}
    return key, {op: v}


def random_query(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.3:
        return {
            rng.choice(["$and", "$or", "$nor"]): [random_query(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        }
    return dict(random_field(rng) for _ in range(rng.randint(1, 2)))


def test_random_dictionary_queries_give_mongodb_answers(filled) -> None:
    cat, starts = filled
    rng = random.Random(13)
    seen_nonempty = seen_partial = 0
    for _ in range(80):
        query = random_query(rng)
        expected = [uid for uid, start in starts.items() if mongo_matches(start, query)]
        assert uids(cat, query) == expected, query
        seen_nonempty += bool(expected)
        seen_partial += 0 < len(expected) < len(starts)
    # the generator is not degenerate: most queries split the runs
    assert seen_partial > 25 and seen_nonempty > 40


def _at(uid_list: list[str], starts: dict[str, dict[str, Any]]) -> list[str]:
    """``uid_list`` in the catalog's order (newest first)."""
    return [u for u in starts if u in set(uid_list)]


def test_dictionary_queries_equal_scandeck_queries(filled) -> None:
    cat, starts = filled
    t = sorted(s["time"] for s in starts.values())
    first = next(iter(starts.values()))
    pairs: list[tuple[dict[str, Any], Query]] = [
        ({"temp": {"$gt": 5}}, Key("temp") > 5),
        ({"temp": {"$gte": 5, "$lt": 300}}, (Key("temp") >= 5) & (Key("temp") < 300)),
        ({"plan_name": {"$in": ["scan", "count"]}}, Key("plan_name").in_(["scan", "count"])),
        ({"sample": {"$ne": "Ni"}}, ~(Key("sample") == "Ni")),
        ({"sample": {"$nin": ["Ni", "Cu"]}}, ~Key("sample").in_(["Ni", "Cu"])),
        ({"sample": {"$exists": False}}, ~Key("sample").exists()),
        ({"note": None}, ~(Key("note") != None)),  # noqa: E711 - null or missing
        ({"info.operator": "alice"}, Key("info.operator") == "alice"),
        ({"sample": re.compile("^n", re.I)}, Key("sample").regex("(?i)^n")),
        ({"sample": {"$regex": "^N", "$options": "i"}}, Key("sample").regex("(?i)^N")),
        ({"sample": {"$not": {"$regex": "i"}}}, ~Key("sample").regex("i")),
        ({"flag": True}, Key("flag") == True),  # noqa: E712
        ({"flag": 1}, Key("flag") == 1),
        ({"scan_id": first["scan_id"]}, ScanID(first["scan_id"])),
        ({"time": {"$gte": t[2], "$lt": t[5]}}, TimeRange(since=t[2], until=t[5])),
        ({"uid": first["uid"]}, PartialUID(first["uid"])),
        ({"$or": [{"sample": "Cu"}, {"temp": {"$lt": 0}}]}, (Key("sample") == "Cu") | (Key("temp") < 0)),
        ({"$nor": [{"sample": "Cu"}, {"flag": True}]}, ~((Key("sample") == "Cu") | (Key("flag") == True))),  # noqa: E712
        ({"$and": [{"sample": "Ni"}, {"flag": True}]}, (Key("sample") == "Ni") & (Key("flag") == True)),  # noqa: E712
        ({}, Query.all()),
    ]
    for spec, query in pairs:
        got = uids(cat, spec)
        assert got == uids(cat, query), spec
        assert got == _at([u for u, s in starts.items() if mongo_matches(s, spec)], starts), spec
    # start.<name>: the start document's field, also for a name the facts use (tags, columns, ...)
    tagged = [u for u, s in starts.items() if "b" in s.get("tags", ())]
    assert len(tagged) == 1
    assert uids(cat, {"start.tags": "b"}) == uids(cat, Key("tags", doc="start").contains("b")) == tagged
    # every operator the module claims is exercised above or by the random test
    assert set(FIELD_OPERATORS) == {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all",
                                    "$exists", "$regex", "$options", "$not"}  # fmt: skip


def test_tiled_query_objects_equal_scandeck_queries(filled) -> None:
    tq = pytest.importorskip("tiled.queries")
    bq = pytest.importorskip("bluesky_tiled_plugins.queries")
    cat, starts = filled
    t = sorted(s["time"] for s in starts.values())
    some = list(starts)[:3]
    first = starts[some[0]]
    pairs: list[tuple[object, Query]] = [
        (tq.Key("sample") == "Ni", Key("sample") == "Ni"),
        (tq.Key("start.sample") == "Ni", Key("sample") == "Ni"),
        (tq.Key("start.temp") != 5, Key("temp") != 5),
        (tq.Key("temp") > 5, Key("temp") > 5),
        (tq.Key("temp") <= 10.5, Key("temp") <= 10.5),
        (tq.Comparison("ge", "start.temp", 5), Key("temp") >= 5),
        (tq.Contains("start.tags", "b"), Key("tags", doc="start").contains("b")),
        (tq.In("start.sample", ["Ni", "Fe"]), Key("sample").in_(["Ni", "Fe"])),
        (tq.NotIn("start.sample", ["Ni", "Fe"]), Key("sample").not_in(["Ni", "Fe"])),
        (tq.KeyPresent("start.info.operator"), Key("info.operator").exists()),
        (tq.KeyPresent("start.info.operator", exists=False), ~Key("info.operator").exists()),
        (tq.Regex("start.sample", "^n"), Key("sample").regex("^n")),
        (tq.Regex("start.sample", "^n", case_sensitive=False), Key("sample").regex("(?i)^n")),
        (tq.Like("start.sample", "N_"), Key("sample").regex("^N.$")),
        (tq.Like("start.note", "%ic%"), Key("note").regex("^.*ic.*$")),
        (tq.FullText("alice"), FullText("alice")),
        (tq.KeysFilter(keys=some), Key("uid").in_(some)),
        (tq.Key("stop.exit_status") == "success", Key("stop.exit_status") == "success"),
        (bq.ScanID(first["scan_id"]), ScanID(first["scan_id"])),
        (bq.ScanIDRange(1, 4), (Key("scan_id") >= 1) & (Key("scan_id") < 4)),
        (bq.PartialUID(some[0][:8]), PartialUID(some[0][:8])),
        (bq.TimeRange(since=t[1], until=t[4]), TimeRange(since=t[1], until=t[4])),
    ]
    for tiled_query, query in pairs:
        assert uids(cat, tiled_query) == uids(cat, query), tiled_query
    assert len(uids(cat, tq.Key("sample") == "Ni")) == 2
    assert uids(cat, tq.FullText("NICKEL")) == uids(cat, tq.Key("note") == "Nickel run")


def test_full_text_and_regex_in_text_queries(filled) -> None:
    cat, starts = filled

    def strings(x: Any) -> list[str]:
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        if isinstance(x, list):
            return [s for v in x for s in strings(v)]
        return [x] if isinstance(x, str) else []

    for text in ("ALICE", "nick", "i?"):
        expected = [u for u, s in starts.items() if any(text.lower() in v.lower() for v in strings(s))]
        assert uids(cat, f'"{text}"') == expected and expected
    assert uids(cat, 'sample matches "^[NC]" and not "alice"') == uids(
        cat, Key("sample").regex("^[NC]") & ~FullText("alice")
    )
    if isinstance(cat.source, FieldIndex):  # a misspelt field in a regex is explained like any other
        assert "did you mean sample?" in (cat.search({"smaple": {"$regex": "N"}}).empty_hint or "")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        (42, ["int 42", "search() takes", "dictionary query"]),
        ({"sample": {"$foo": 1}}, ["'$foo'", "accepted forms", "$regex"]),
        ({"$where": "this.a > 1"}, ["'$where'", "top-level"]),
        ({"$or": {"sample": "Ni"}}, ["$or takes a non-empty list"]),
        ({"sample": {"$gt": 1, "name": "x"}}, ["mixes operators and field names"]),
        ({"sample": {"name": "Ni"}}, ["whole dict", "dotted keys"]),
        ({"detectors.0": "det"}, ["by position"]),
        ({"sample": {"$in": "Ni"}}, ["$in takes a list"]),
        ({"sample": {"$regex": "("}}, ["invalid regular expression"]),
        ({"sample": {"$options": "i"}}, ["$options goes with $regex"]),
        ({3: 1}, ["keys are strings"]),
    ],
)
def test_unsupported_queries_raise_at_search(cat: Catalog, query: object, words: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        cat.search(query)
    for word in words:
        assert word in str(info.value)
    assert QueryError is InvalidQuery is scandeck.QueryError


def test_unsupported_tiled_queries_raise_at_search(cat: Catalog) -> None:
    tq = pytest.importorskip("tiled.queries")
    with pytest.raises(QueryError, match="no scandeck equivalent"):
        cat.search(tq.SpecsQuery(["BlueskyRun"]))
    with pytest.raises(QueryError, match="not a query yet"):
        cat.search(tq.Key("sample"))


# ------------------------------------------------------------- reading only some keys, lazily


@pytest.fixture(params=["npy", "hdf5"])
def image_run(request: pytest.FixtureRequest, cat: Catalog, RE, hw, tmp_path) -> tuple[Any, str, str]:  # noqa: N803
    """A run with an external image key: ``(run, image key, scalar key)``, its files under tmp_path/assets.

    ``npy``: ophyd.sim's image detector (resource/datum documents, one .npy file per
    frame); ``hdf5``: ophyd-async's blob detector (stream_resource/stream_datum, one HDF5 file).
    """
    import bluesky.plans as bp

    if request.param == "npy":
        RE.subscribe(cat.writer())
        (uid,) = RE(bp.count([hw.img, hw.det], 3))
        return cat[uid], "img", "det"
    from test_ophyd_async import Beamline

    (tmp_path / "assets").mkdir(exist_ok=True)  # (the hw fixture made it)
    beamline = Beamline(tmp_path / "assets", cat)
    uid = beamline.run(bp.count([beamline.bdet, hw.det], 3))
    return cat[uid], "bdet", "det"


def test_read_only_some_keys(image_run, tmp_path) -> None:
    run, image, scalar = image_run
    stream = run.primary
    full = stream.read()
    assert {image, scalar} <= set(full.data_vars)
    shutil.move(tmp_path / "assets", tmp_path / "moved")  # the image files are gone
    for ds in (stream.read([scalar]), stream.read(variables=[scalar]), stream.read(scalar)):
        assert list(ds.data_vars) == [scalar]
        assert np.array_equal(ds[scalar].values, full[scalar].values)
        assert np.array_equal(ds["time"].values, full["time"].values)
    with pytest.raises(ScandeckError):
        stream.read([image])  # only now is an image file needed
    with pytest.raises(StreamNotFound) as info:
        stream.read([scalar, "nope"])
    assert "'nope'" in str(info.value) and scalar in str(info.value) and image in str(info.value)
    assert isinstance(info.value, KeyError)


def test_to_dask_reads_images_only_on_compute(image_run, tmp_path) -> None:
    pytest.importorskip("dask")
    import dask.array as da

    run, image, scalar = image_run
    stream = run.primary
    full = stream.read()
    eager_external = [k for k, v in stream.data_keys.items() if v.get("external") and k != image]
    if not eager_external:  # nothing else in the files: to_dask() must open none of them
        shutil.move(tmp_path / "assets", tmp_path / "moved")
    lazy = stream.to_dask()
    assert isinstance(lazy[image].data, da.Array) and not isinstance(lazy[scalar].data, da.Array)
    assert lazy[image].shape == full[image].shape and lazy[image].dims == full[image].dims
    assert lazy[image].dtype == full[image].dtype
    assert np.array_equal(lazy[scalar].values, full[scalar].values)
    if eager_external:  # its scalars were read from the files just now; the images are read below
        shutil.move(tmp_path / "assets", tmp_path / "moved")
    with pytest.raises(ScandeckError):
        lazy[image][1].compute()
    shutil.move(tmp_path / "moved", tmp_path / "assets")
    assert lazy[image].data.numblocks[0] == 3  # one chunk per row
    assert np.array_equal(lazy[image][1].compute().values, full[image][1].values)
    assert np.array_equal(lazy.compute()[image].values, full[image].values)


def test_to_dask_of_arrays_stored_in_the_documents(cat: Catalog, RE, hw) -> None:  # noqa: N803
    """Arrays inside the events are read with the documents; a store of columns (Tiled) slices its own."""
    pytest.importorskip("dask")
    import bluesky.plans as bp
    import dask.array as da

    from scandeck.sources.protocol import StreamTables

    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([hw.direct_img, hw.det], 3))
    stream = cat[uid].primary
    full, lazy = stream.read(), stream.to_dask()
    assert set(lazy.data_vars) == set(full.data_vars)
    assert isinstance(lazy["img"].data, da.Array) == isinstance(cat.source, StreamTables)
    for key in full.data_vars:
        assert lazy[key].dims == full[key].dims
        assert np.array_equal(lazy[key].values, full[key].values), key


# ------------------------------------------------------------- metadata, listings, names


def test_descriptors_metadata_and_listing(filled, RE, hw) -> None:  # noqa: N803
    cat, starts = filled
    run = cat[-1]
    docs = list(run.documents())
    assert run.start == docs[0][1] and run.stop == docs[-1][1]
    assert run.descriptors == [d for n, d in docs if n == "descriptor"]
    md = run.primary.metadata
    assert md["descriptors"] == run.primary.descriptors == run.descriptors
    assert md["data_keys"] == run.primary.data_keys and md["stream_name"] == "primary"
    assert "det" in md["configuration"] and md["uid"] == run.descriptors[0]["uid"]
    assert list(cat.keys()) == list(starts)
    assert [r.uid for r in cat.values()] == list(starts)
    assert [(u, r.uid) for u, r in cat.items()] == [(u, u) for u in starts]
    assert isinstance(cat.keys(), Iterator)
    found = cat.search({"sample": "Cu"})
    assert list(found.keys()) == [u for u, s in starts.items() if s.get("sample") == "Cu"]


#: databroker names on a run, and a piece of the scandeck way each message must name.
RUN_NAMES = [
    ("table", "run.primary.to_pandas()"),
    ("events", "run.documents()"),
    ("get_table", "to_pandas()"),
    ("canonical", "run.documents()"),
    ("read", "run.primary.read()"),
    ("to_dask", "run.primary.to_dask()"),
]


def test_databroker_names_on_a_run_point_at_scandeck(cat: Catalog, RE, hw) -> None:  # noqa: N803
    import bluesky.plans as bp

    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([hw.det], 1))
    run = cat[uid]
    for name, pointer in RUN_NAMES:
        with pytest.raises(AttributeError) as info:
            getattr(run, name)
        message = str(info.value)
        assert pointer in message and "databroker" in message, name
        assert "primary" in message and "no stream" not in message  # and the run's real streams
    assert run.primary.name == "primary"
    with pytest.raises(AttributeError, match="no stream 'nope'"):
        run.nope  # noqa: B018 - a name that is neither a stream nor a habit


def test_databroker_names_on_a_catalog_point_at_scandeck(cat: Catalog) -> None:
    for name in ("v1", "v2"):
        with pytest.raises(AttributeError, match="one API"):
            getattr(cat, name)
    with pytest.raises(AttributeError, match="'Catalog' object has no attribute 'nope'"):
        cat.nope  # noqa: B018
    with pytest.raises(TypeError, match=r"cat\.search\(\{'sample': 'Ni'\}\)"):
        cat(sample="Ni")
