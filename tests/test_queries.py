"""Queries: the text parser, and SQL and Python agreeing on realistic documents."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from event_model import compose_run

from scandeck.exceptions import InvalidQuery, QuerySyntaxError, ScandeckError
from scandeck.queries import (
    And,
    Comparison,
    FullText,
    Key,
    MatchAll,
    Not,
    Or,
    PartialUID,
    Query,
    ScanID,
    TimeRange,
    parse,
)
from scandeck.query.indexed import conjuncts, index_condition, index_count_sql, index_rows, indexed_sql, uses_index
from scandeck.query.sql import register_functions
from scandeck.runtable.model import empty_facts
from scandeck.sources.sqlite_facts import FACTS_SCHEMA, runs_from
from scandeck.sources.sqlite_index import ensure_index, index_ready

#: Central European time without tzdata: +01:00 in winter, +02:00 in summer.
CET = "CET-1CEST,M3.5.0,M10.5.0/3"


@pytest.fixture(scope="module", autouse=True)
def local_time() -> Iterator[None]:
    """Naive dates mean local time: pin it, so the expected instants are known."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", CET)
        time.tzset()
        yield
    time.tzset()


def T(*args: float) -> float:  # noqa: N802 - reads like a constant
    """A local wall-clock time as a unix timestamp."""
    whole = [int(a) for a in args]
    return datetime(*whole).timestamp() + (args[-1] - whole[-1])  # type: ignore[arg-type]


# name, uid, local time, metadata, (exit_status, reason) or None while running
RUNS = [
    ("ni1", "a3f0c1d2-5b6e-4f7a-8c9d-0e1f2a3b4c5d", (2026, 11, 20, 9, 0),
     {"scan_id": 1, "sample": "Ni", "detectors": ["det", "I0"], "flag": True, "note": "5",
      "plan_name": "count",
      "md": {"operator": "alice", "temperature": 300.5, "tags": ["xrd", "rt"]}},
     ("success", "")),
    ("cu", "a3e91b77-2c4d-4e5f-9a6b-7c8d9e0f1a2b", (2026, 11, 20, 14, 15),
     {"scan_id": 2, "sample": "Cu", "detectors": ["det"], "flag": False,
      "md": {"operator": "bob", "temperature": 295}},
     ("abort", "user abort")),
    ("ni_lower", "b7c2d3e4-6f70-4812-9a3b-4c5d6e7f8091", (2026, 11, 20, 23, 59, 59),
     {"scan_id": 3, "sample": "ni", "detectors": [], "flag": None, "num_points": 10},
     ("fail", "motor stalled")),
    ("running", "c0ffee00-1234-4567-89ab-cdef01234567", (2026, 11, 20, 23, 59, 59.5),
     {"scan_id": 4, "detectors": ["I0", "I1"], "note": 5,
      "md": {"operator": "alice", "temperature": None}},
     None),
    ("weird", "d41d8cd9-8f00-4b20-8e98-00998ecf8427", (2026, 11, 21, 0, 0),
     {"scan_id": 5, "sample": "Ni", "weird key": "yes", "température": 21.5,
      "md": {"é": {"x": ["a", "b"]}, "it's": 1}},
     None),
    ("null_sample", "e5a1b2c3-d4e5-4f60-8172-8394a5b6c7d8", (2026, 11, 21, 10, 30),
     {"scan_id": 6, "material": None, "md": {"nested": {"deep": [1, 2, 3]}}},
     ("success", "")),
    ("list_sample", "f6e5d4c3-b2a1-4098-8765-4321fedcba98", (2026, 11, 21, 10, 30, 30),
     {"scan_id": 7, "material": ["Ni", "Cu"], "shape": [10, 20], "flag": 1},
     ("success", "")),
    ("dict_sample", "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", (2026, 11, 21, 10, 31),
     {"scan_id": 8, "sample": {"name": "Ni"}, "flag": 0, "positions": [[1, 2], [3, 4]]},
     ("abort", "")),
    ("fractional", "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", (2026, 11, 21, 12, 0, 0.25),
     {"scan_id": 12, "sample": "Ni", "md": {"temperature": 310}},
     ("success", "")),
    ("underscore", "scan_0042%test", (2026, 11, 21, 23, 59, 59.5),
     {"scan_id": 42, "sample": "Fe", "note": "10", "md": {"temperature": "300"}},
     ("success", "")),
    ("upper", "ABCDEF01-2345-4678-9abc-def012345678", (2026, 11, 22, 0, 0),
     {"scan_id": 1, "sample": "Au", "detectors": ["det", 1, None]},
     ("success", "")),
    ("stopkey", "1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b", (2026, 11, 22, 8, 0),
     {"scan_id": 10, "sample": "Ag", "stop": {"x": 1}},
     None),
    ("quotes", "2c3d4e5f-6a7b-4c8d-9e0f-a1b2c3d4e5f6", (2026, 11, 22, 12, 0),
     {"scan_id": 11, "sample": 'it\'s "quoted"', 'q"x': "a\\b", "it's": 2, "Sample": "Ni"},
     ("fail", "user abort: beam lost")),
    ("no_scan_id", "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a", (2026, 11, 23, 1, 0),
     {"sample": "Pt", "detectors": ["det", True], "flag": True},
     ("success", "")),
    ("winter", "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c", (2026, 3, 29, 12, 0),
     {"scan_id": 13, "sample": "Ni", "md": {"temperature": 4.2}},
     ("success", "")),
]  # fmt: skip
ALL = {name for name, *_ in RUNS}

#: name -> the run's facts document (scandeck.runtable.model.facts_document's shape); hostile
#: values too: -0.0, 2**62, the largest float (an infinity as the store keeps it), unicode.
#: Values published by reruns (scandeck.glue) are grouped by record name under columns.
FACTS = {
    "ni1": {"columns": {"cen": 0.52, "label": "good", "ok": True, "peak-fit": {"cen": 0.7, "sample": "Ni"}},
            "tags": ["Ni", "redo"], "comments": "bad beam after 12:40",
            "data": {"theta": {"min": 0.0, "max": 5.0}}},
    "cu": {"columns": {"cen": 1, "big": 2**62, "ok": False, "peak fit v1.2": {"cen": 0.2, "xs": [1, 2]}},
           "tags": ["Cu"], "comments": "fine\nNi later", "data": {"theta": {"min": -1, "max": 4.0},
                                                   "det": {"min": 0, "max": 1.7976931348623157e308}}},
    "weird": {"columns": {"cen": -0.0, "é": "x", "peak-fit": {"cen": 0.1}}, "tags": ["é", "bad beam"],
              "comments": "", "data": {"theta": {"min": 1, "max": 2}}},
    "running": {"columns": {}, "tags": [], "comments": "Bad beam", "data": {}},
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(local_time: None) -> dict[str, tuple[dict, dict | None]]:
    """name -> (start, stop) composed with event-model."""
    out = {}
    for name, uid, when, md, stop in RUNS:
        bundle = compose_run(uid=uid, time=T(*when), metadata=md)
        stop_doc = None
        if stop is not None:
            stop_doc = bundle.compose_stop(exit_status=stop[0], reason=stop[1], time=T(*when) + 60)
            stop_doc = dict(stop_doc)
        out[name] = (dict(bundle.start_doc), stop_doc)
    return out


@pytest.fixture(scope="module")
def db(runs: dict[str, tuple[dict, dict | None]]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    register_functions(conn)  # Regex and FullText, as the store's connections have them
    conn.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, "
        "scan_id INTEGER, time REAL NOT NULL, start TEXT NOT NULL, stop TEXT)"
    )
    for start, stop in runs.values():
        conn.execute(
            "INSERT INTO runs (uid, scan_id, time, start, stop) VALUES (?, ?, ?, ?, ?)",
            (
                start["uid"], start.get("scan_id"), start["time"],
                json.dumps(start, allow_nan=False),
                None if stop is None else json.dumps(stop, allow_nan=False),
            ),
        )  # fmt: skip
    conn.commit()
    conn.isolation_level = None  # autocommit, as the store's connections: the migration runs its own transaction
    ensure_index(conn)  # the embedded store's start-values index, filled as a migration fills it
    assert index_ready(conn)
    conn.executescript(FACTS_SCHEMA)  # the facts, as the embedded store keeps them (sqlite_facts.py)
    ids = {uid: run_id for run_id, uid in conn.execute("SELECT id, uid FROM runs")}
    for name, facts in FACTS.items():
        run_id = ids[runs[name][0]["uid"]]
        conn.execute(
            "INSERT INTO run_facts VALUES (?, ?, ?)", (run_id, json.dumps(facts, allow_nan=False), run_id)
        )
        rows = [(f, v, run_id) for f, v in index_rows(facts, "facts")]
        conn.executemany("INSERT INTO start_values VALUES (?, ?, ?)", rows)
    yield conn
    conn.close()


def by_sql(db: sqlite3.Connection, runs: dict, query: Query) -> set[str]:
    sql, params = query.to_sql()
    uids = {row[0] for row in db.execute(f"SELECT uid FROM {runs_from(db, query)} WHERE {sql}", params)}
    return {name for name, (start, _) in runs.items() if start["uid"] in uids}


def by_index(db: sqlite3.Connection, runs: dict, query: Query) -> set[str]:
    """The runs the embedded store finds through its start-values index, the same in every shape.

    Sets (``id IN``), probes (``EXISTS``), each indexed condition as the driver, and
    the count from the index alone where the store would use it.
    """
    shapes = [indexed_sql(query), indexed_sql(query, probe=True)]
    drivers = [q for q in conjuncts(query) if index_condition(q) is not None]
    shapes += [indexed_sql(query, driver=q) for q in drivers]
    found = []
    for sql, params in shapes:
        uids = {row[0] for row in db.execute(f"SELECT uid FROM {runs_from(db, query)} WHERE {sql}", params)}
        found.append({name for name, (start, _) in runs.items() if start["uid"] in uids})
    assert all(f == found[0] for f in found), (query, found)
    for q in drivers:
        counting = index_count_sql(query, q)
        if counting is not None:
            assert db.execute(*counting).fetchone()[0] == len(found[0]), (query, q)
    return found[0]


def by_python(runs: dict, query: Query) -> set[str]:
    """The runs ``Query.matches`` keeps, given each run's facts as ``facts()`` returns them
    (runs without a row in ``run_facts``: the empty document)."""
    return {
        name for name, (start, stop) in runs.items() if query.matches(start, stop, FACTS.get(name, empty_facts()))
    }


# Each case: a factory (called after local time is pinned) or a text to parse, and the
# expected run names (None: only check that SQL and Python agree).
Case = tuple[Callable[[], Query] | str, set[str] | None]
SAMPLE_MISSING = {"running", "null_sample", "list_sample"}
NOT_NI = ALL - {"ni1", "weird", "fractional", "winter"} - SAMPLE_MISSING
DAY_21 = {"weird", "null_sample", "list_sample", "dict_sample", "fractional", "underscore"}
CASES: dict[str, Case] = {
    # equality, strings, missing keys
    "eq_str": (lambda: Key("sample") == "Ni", {"ni1", "weird", "fractional", "winter"}),
    "eq_case": (lambda: Key("sample") == "ni", {"ni_lower"}),
    "ne_str": (lambda: Key("sample") != "Ni", NOT_NI),
    "not_eq": (lambda: ~(Key("sample") == "Ni"), NOT_NI | SAMPLE_MISSING),
    "ne_missing": (lambda: Key("nope") != 1, set()),
    "not_eq_missing": (lambda: ~(Key("nope") == 1), ALL),
    "in": (lambda: Key("sample").in_(["Ni", "Cu"]), {"ni1", "cu", "weird", "fractional", "winter"}),
    "not_in": (lambda: Key("sample").not_in(["Ni", "Cu"]), NOT_NI - {"cu"}),
    "in_mixed": (lambda: Key("note").in_(["5", 10, None, True]), {"ni1"}),
    "in_empty": (lambda: Key("sample").in_([]), set()),
    "not_in_empty": (lambda: Key("note").not_in([]), {"ni1", "running", "underscore"}),
    # numbers vs strings that look like numbers
    "num_vs_str_eq": (lambda: Key("note") == 5, {"running"}),
    "str_vs_num_eq": (lambda: Key("note") == "5", {"ni1"}),
    "num_order": (lambda: Key("md.temperature") > 296, {"ni1", "fractional"}),
    "num_order_int_float": (lambda: Key("md.temperature") <= 300.5, {"ni1", "cu", "winter"}),
    "str_order_on_numbers": (lambda: Key("md.temperature") > "2", {"underscore"}),
    "note_lt": (lambda: Key("note") < 100, {"running"}),
    "str_order": (
        lambda: Key("sample") >= "N",
        {"ni1", "ni_lower", "weird", "fractional", "quotes", "no_scan_id", "winter"},
    ),
    # booleans are not numbers
    "eq_true": (lambda: Key("flag") == True, {"ni1", "no_scan_id"}),  # noqa: E712
    "eq_one": (lambda: Key("flag") == 1, {"list_sample"}),
    "eq_false": (lambda: Key("flag") == False, {"cu"}),  # noqa: E712
    "eq_zero": (lambda: Key("flag") == 0, {"dict_sample"}),
    "order_flag": (lambda: Key("flag") > 0, {"list_sample"}),
    "ne_true": (lambda: Key("flag") != True, {"cu", "ni_lower", "list_sample", "dict_sample"}),  # noqa: E712
    # null
    "eq_null": (lambda: Key("material") == None, {"null_sample"}),  # noqa: E711
    "ne_null": (lambda: Key("sample") != None, ALL - SAMPLE_MISSING),  # noqa: E711
    "ne_null_material": (lambda: Key("material") != None, {"list_sample"}),  # noqa: E711
    "flag_null": (lambda: Key("flag") == None, {"ni_lower"}),  # noqa: E711
    "nested_null": (lambda: Key("md.temperature") == None, {"running"}),  # noqa: E711
    # lists and dicts
    "eq_list": (lambda: Key("material") == ["Ni", "Cu"], {"list_sample"}),
    "eq_list_order": (lambda: Key("material") == ["Cu", "Ni"], set()),
    "eq_list_float": (lambda: Key("shape") == [10.0, 20], {"list_sample"}),
    "eq_list_bool": (lambda: Key("shape") == [True, 20], set()),
    "eq_nested_list": (lambda: Key("positions") == [[1, 2], [3, 4]], {"dict_sample"}),
    "eq_empty_list": (lambda: Key("detectors") == [], {"ni_lower"}),
    "order_list": (lambda: Key("shape") < 100, set()),
    "dict_field": (lambda: Key("sample.name") == "Ni", {"dict_sample"}),
    "through_string": (lambda: Key("md.operator.x") == 1, set()),
    "dict_ne": (
        lambda: Key("md") != 1,
        {"ni1", "cu", "running", "weird", "null_sample", "fractional", "underscore", "winter"},
    ),
    # contains
    "contains": (lambda: Key("detectors").contains("det"), {"ni1", "cu", "upper", "no_scan_id"}),
    "contains_one": (lambda: Key("detectors").contains(1), {"upper"}),
    "contains_true": (lambda: Key("detectors").contains(True), {"no_scan_id"}),
    "contains_null": (lambda: Key("detectors").contains(None), {"upper"}),
    "contains_on_string": (lambda: Key("sample").contains("Ni"), {"ni1", "weird", "fractional", "winter"}),
    "contains_substring": (lambda: Key("sample").contains("quot"), {"quotes"}),
    "contains_empty_string": (lambda: Key("md.operator").contains(""), {"ni1", "cu", "running"}),
    "contains_on_list": (lambda: Key("material").contains("Ni"), {"list_sample"}),
    "contains_nested": (lambda: Key("md.tags").contains("rt"), {"ni1"}),
    "contains_unicode": (lambda: Key("md.é.x").contains("a"), {"weird"}),
    "not_contains": (lambda: ~Key("detectors").contains("det"), None),
    # startswith, uid prefixes
    "startswith": (lambda: Key("sample").startswith("N"), {"ni1", "weird", "fractional", "winter"}),
    "startswith_case": (lambda: Key("sample").startswith("n"), {"ni_lower"}),
    "startswith_empty": (lambda: Key("uid").startswith(""), ALL),
    "startswith_wild": (lambda: Key("stop.reason").startswith("user_"), set()),
    "startswith_stop": (lambda: Key("stop.reason").startswith("user"), {"cu", "quotes"}),
    "uid_prefix": (lambda: PartialUID("a3f"), {"ni1"}),
    "uid_prefix2": (lambda: PartialUID("a3"), {"ni1", "cu"}),
    "uid_percent": (lambda: PartialUID("a3%"), set()),
    "uid_underscore_wild": (lambda: PartialUID("a_f"), set()),
    "uid_underscore": (lambda: PartialUID("scan_0042%"), {"underscore"}),
    "uid_case": (lambda: PartialUID("abc"), set()),
    "uid_upper": (lambda: PartialUID("ABC"), {"upper"}),
    "uid_many": (lambda: PartialUID("a3f", "b7", "zz"), {"ni1", "ni_lower"}),
    # scan ids
    "scan_id": (lambda: ScanID(1), {"ni1", "upper"}),
    "scan_ids": (lambda: ScanID(4, 42, 99), {"running", "underscore"}),
    "not_scan_id": (lambda: ~ScanID(1), ALL - {"ni1", "upper"}),
    "scan_id_gt": (lambda: Key("scan_id") > 10, {"underscore", "quotes", "fractional", "winter"}),
    "scan_id_ne": (lambda: Key("scan_id") != 1, ALL - {"ni1", "upper", "no_scan_id"}),
    "scan_id_float": (lambda: Key("scan_id") == 5.0, {"weird"}),
    "scan_id_str": (lambda: Key("scan_id") == "5", set()),
    "uid_eq": (lambda: Key("uid") == "scan_0042%test", {"underscore"}),
    "uid_in": (lambda: Key("uid").in_(["scan_0042%test", 5, None]), {"underscore"}),
    # stop document
    "stop_eq": (
        lambda: Key("stop.exit_status") == "success",
        {"ni1", "null_sample", "list_sample", "fractional", "underscore", "upper", "no_scan_id", "winter"},
    ),
    "stop_ne": (lambda: Key("stop.exit_status") != "success", {"cu", "ni_lower", "dict_sample", "quotes"}),
    "stop_not": (
        lambda: ~(Key("stop.exit_status") == "success"),
        {"cu", "ni_lower", "dict_sample", "quotes", "running", "weird", "stopkey"},
    ),
    "stop_missing": (lambda: Key("stop.uid").startswith(""), ALL - {"running", "weird", "stopkey"}),
    "stop_in_start": (lambda: Key(("stop", "x"), doc="start") == 1, {"stopkey"}),
    "stop_doc_x": (lambda: Key("stop.x") == 1, set()),
    "stop_time": (
        lambda: Key("stop.time") > T(2026, 11, 22, 0, 0, 30),
        {"underscore", "upper", "quotes", "no_scan_id"},
    ),
    # awkward key names
    "space_key": (lambda: Key("weird key") == "yes", {"weird"}),
    "unicode_key": (lambda: Key("température") > 20, {"weird"}),
    "dotted_key": (lambda: Key(("md", "a.b")) == 1, set()),
    "apostrophe_nested": (lambda: Key("md.it's") == 1, {"weird"}),
    "quote_key": (lambda: Key('q"x') == "a\\b", {"quotes"}),
    "apostrophe_key": (lambda: Key("it's") == 2, {"quotes"}),
    "quote_value": (lambda: Key("sample") == 'it\'s "quoted"', {"quotes"}),
    "key_case": (lambda: Key("Sample") == "Ni", {"quotes"}),
    "unicode_nested_ne": (lambda: Key("md.é.x") != ["a"], {"weird"}),
    # time
    "time_day": (lambda: TimeRange(since="2026-11-21", until="2026-11-22"), DAY_21),
    "time_minute": (
        lambda: TimeRange(since="2026-11-21 10:30", until="2026-11-21 10:31"),
        {"null_sample", "list_sample"},
    ),
    "time_seconds_T": (
        lambda: TimeRange(until="2026-11-21T10:30:00"),
        {"ni1", "cu", "ni_lower", "running", "weird", "winter"},
    ),
    "time_offset": (lambda: TimeRange(since="2026-11-21T10:30:00+01:00", until="2026-11-22"), DAY_21 - {"weird"}),
    "time_offset_compact": (
        lambda: TimeRange(since="2026-11-21T11:30:00+0200", until="2026-11-21T09:31Z"),
        {"null_sample", "list_sample"},
    ),
    "time_utc": (
        lambda: TimeRange(since="2026-11-21T09:30:00Z", until="2026-11-21 10:31"),
        {"null_sample", "list_sample"},
    ),
    "time_fraction": (
        lambda: TimeRange(since="2026-11-21T12:00:00.25"),
        {"fractional", "underscore", "upper", "stopkey", "quotes", "no_scan_id"},
    ),
    "time_fraction_until": (lambda: TimeRange(since="2026-11-21 12:00", until="2026-11-21T12:00:00.25"), set()),
    "time_datetime": (
        lambda: TimeRange(since=datetime(2026, 11, 22)),
        {"upper", "stopkey", "quotes", "no_scan_id"},
    ),
    "time_aware": (
        lambda: TimeRange(until=datetime(2026, 11, 20, 23, tzinfo=timezone.utc)),
        {"ni1", "cu", "ni_lower", "running", "winter"},
    ),
    "time_date": (lambda: TimeRange(since=date(2026, 11, 23)), {"no_scan_id"}),
    "time_number": (
        lambda: TimeRange(since=T(2026, 11, 21, 10, 30), until=int(T(2026, 11, 21, 10, 31))),
        {"null_sample", "list_sample"},
    ),
    "time_key_gt_minute": (
        lambda: Key("time") > "2026-11-21 10:30",
        {"dict_sample", "fractional", "underscore", "upper", "stopkey", "quotes", "no_scan_id"},
    ),
    "time_key_le_minute": (
        lambda: (Key("time") <= "2026-11-21 10:30") & (Key("time") >= "2026-11-21"),
        {"weird", "null_sample", "list_sample"},
    ),
    "time_key_eq_day": (lambda: Key("time") == "2026-11-21", DAY_21),
    "time_key_ne_day": (lambda: Key("time") != "2026-11-21", ALL - DAY_21),
    "time_key_gt_number": (
        lambda: Key("time") > T(2026, 11, 21, 10, 30),
        {"list_sample", "dict_sample", "fractional", "underscore", "upper", "stopkey", "quotes", "no_scan_id"},
    ),
    "time_key_le_number": (
        lambda: (Key("time") <= T(2026, 11, 21, 10, 30)) & ~ScanID(13),
        {"ni1", "cu", "ni_lower", "running", "weird", "null_sample"},
    ),
    "time_key_eq_number": (lambda: Key("time") == T(2026, 11, 21, 12, 0, 0.25), {"fractional"}),
    "time_dst_day": (lambda: Key("time") == "2026-03-29", {"winter"}),
    # composition
    "and": (
        lambda: (Key("sample") == "Ni") & (Key("stop.exit_status") == "success"),
        {"ni1", "fractional", "winter"},
    ),
    "or": (lambda: (Key("sample") == "Cu") | Key("detectors").contains("I1"), {"cu", "running"}),
    "not_and": (lambda: ~((Key("sample") == "Ni") & ScanID(1)), ALL - {"ni1"}),
    "and_or_not": (
        lambda: (
            ((Key("flag") == True) | ~(Key("scan_id") < 5))  # noqa: E712
            & ~Key("sample").in_(["Pt", "Fe"])
        ),
        None,
    ),
    "all": (Query.all, ALL),
    "none": (lambda: ~Query.all(), set()),
    # text
    "text_and_not": ('sample == "Ni" and not stop.exit_status == "success"', {"weird"}),
    "text_or_flag": ('sample in ["Cu", "Fe"] or flag == true', {"cu", "underscore", "ni1", "no_scan_id"}),
    "text_not_or": ('not (sample == "Ni" or sample == "Cu")', NOT_NI - {"cu"} | SAMPLE_MISSING),
    "text_backquote": ("`weird key` == 'yes' || température >= 21.5", {"weird"}),
    "text_dotted": ("md.`a.b` == 1 or md.`it's` == 1 or `it's` > 1", {"weird", "quotes"}),
    "text_stop_key": ("`stop`.x == 1 or stop.x == 1", {"stopkey"}),
    "text_time": ('time >= "2026-11-21" && time < "2026-11-22"', DAY_21),
    "text_time_eq": ('time == "2026-11-21" and not uid startswith "scan_"', DAY_21 - {"underscore"}),
    "text_uid": ('uid startswith "scan_0042%" | uid startswith "ABC"', {"underscore", "upper"}),
    "text_scan": ("scan_id in [1, 42] and scan_id != 42", {"ni1", "upper"}),
    "text_contains_null": ("detectors contains null", {"upper"}),
    "text_note": ('note == "5" || note == 5', {"ni1", "running"}),
    "text_symbols": ("!(flag == true) & sample != null", ALL - SAMPLE_MISSING - {"ni1", "no_scan_id"}),
    "text_not_in": ('SAMPLE == 1 OR sample NOT IN ["Ni"]', NOT_NI),
    "text_precedence": (
        'not sample == "Ni" and scan_id > 10 or scan_id == 1',
        {"underscore", "quotes", "ni1", "upper"},
    ),
    "text_escapes": ("sample == 'it\\'s \"quoted\"'", {"quotes"}),
    "text_numbers": ("md.temperature >= 3e2 and md.temperature < 1E3", {"ni1", "fractional"}),
    "text_negative": ("md.temperature > -1.5e2 and md.temperature < 5", {"winter"}),
    # regular expressions, full text, presence (databroker's $regex, FullText, $exists)
    "regex": (lambda: Key("sample").regex("^N"), {"ni1", "weird", "fractional", "winter"}),
    "regex_case": (lambda: Key("sample").regex("(?i)^ni$"), {"ni1", "ni_lower", "weird", "fractional", "winter"}),
    "regex_search": (lambda: Key("stop.reason").regex("beam|stall"), {"ni_lower", "quotes"}),
    "regex_not_string": (lambda: Key("note").regex("5"), {"ni1"}),
    "regex_list": (lambda: Key("detectors").regex("det"), set()),
    "regex_uid": (lambda: Key("uid").regex("^scan_0042%"), {"underscore"}),
    "regex_unicode_key": (lambda: Key("md.é.x").regex("a"), set()),
    "regex_quote": (lambda: Key("sample").regex('"quoted"$'), {"quotes"}),
    "regex_nested": (lambda: Key("md.operator").regex("^a"), {"ni1", "running"}),
    # what the start-values index must keep apart or together: types, ranges, prefixes
    "index_in_bool_and_one": (lambda: Key("flag").in_([1, True]), {"ni1", "no_scan_id", "list_sample"}),
    "index_in_zero_float": (lambda: Key("flag").in_([0.0]), {"dict_sample"}),
    "index_in_false_null": (lambda: Key("flag").in_([False, None]), {"cu", "ni_lower"}),
    "index_contains_float": (lambda: Key("detectors").contains(1.0), {"upper"}),
    "index_contains_false": (lambda: Key("detectors").contains(False), set()),
    "index_contains_in_dict": (lambda: Key("sample").contains("Ni"), {"ni1", "weird", "fractional", "winter"}),
    "index_order_flag": (lambda: Key("flag") >= 0, {"list_sample", "dict_sample"}),
    "index_order_lt_num": (lambda: Key("md.temperature") < 300, {"cu", "winter"}),
    "index_order_lt_str": (lambda: Key("sample") < "B", {"upper", "stopkey"}),
    "index_order_gt_str": (lambda: Key("sample") > "n", {"ni_lower"}),
    "index_order_ge_str": (lambda: Key("sample") >= "ni", {"ni_lower"}),
    "index_order_dict": (lambda: Key("sample") > 0, set()),
    "index_eq_float": (lambda: Key("md.temperature") == 310.0, {"fractional"}),
    "index_eq_deep": (lambda: Key("md.nested.deep") == [1, 2, 3], {"null_sample"}),
    "index_contains_deep": (lambda: Key("md.nested.deep").contains(3), {"null_sample"}),
    "index_startswith_max": (lambda: Key("sample").startswith("N\U0010ffff"), set()),
    "index_startswith_all": (
        lambda: Key("sample").startswith(""),
        ALL - SAMPLE_MISSING - {"dict_sample"},
    ),
    "index_startswith_unicode": (lambda: Key("weird key").startswith("y"), {"weird"}),
    "index_startswith_quote": (lambda: Key("sample").startswith("it's \""), {"quotes"}),
    "index_dotted_vs_nested": (lambda: Key(("md.é", "x")).contains("a"), set()),
    "index_stop_segment": (lambda: Key(("stop", "x"), doc="start") > 0, {"stopkey"}),
    "index_all_seeks": (
        lambda: (Key("sample") == "Ni") & ~(Key("flag") == True) & Key("md.temperature").in_([310, 4.2]),  # noqa: E712
        {"fractional", "winter"},
    ),
    "index_seek_and_range": (
        lambda: (Key("md.temperature") >= 300) & (Key("sample") == "Ni") & ~Key("md.tags").contains("rt"),
        {"fractional"},
    ),
    "index_uid_column": (lambda: Key("uid").in_(["scan_0042%test"]), {"underscore"}),
    "full_text": (lambda: FullText("alice"), {"ni1", "running"}),
    "full_text_case": (
        lambda: FullText("NI"),
        {"ni1", "ni_lower", "weird", "fractional", "winter", "quotes", "list_sample", "dict_sample"},
    ),
    "full_text_nested": (lambda: FullText("xrd"), {"ni1"}),
    "full_text_not_keys": (lambda: FullText("operator"), set()),
    "full_text_unicode": (lambda: FullText("É") | FullText("YES"), {"weird"}),
    "exists": (lambda: Key("sample").exists(), ALL - SAMPLE_MISSING),
    "exists_null": (lambda: Key("material").exists(), {"null_sample", "list_sample"}),
    "not_exists": (lambda: ~Key("md.temperature").exists(), None),
    "text_matches": ('sample matches "^[A-Z]g$" or `weird key` matches "y"', {"stopkey", "weird"}),
    "text_full_text": ('"alice" and not "xrd"', {"running"}),
    "text_star": ("*", ALL),
    "text_empty": ("  ", ALL),
    # a run's facts: computed columns, tags, comments, data summaries (runtable.model.facts_document)
    "facts_column_gt": ("columns.cen > 0.5", {"ni1", "cu"}),
    "facts_column_int": ("columns.cen == 1.0", {"cu"}),
    "facts_negative_zero": ("columns.cen == 0", {"weird"}),
    "facts_column_bool": ("columns.ok == true", {"ni1"}),
    "facts_column_bool_not_number": ("columns.ok == 0", set()),
    "facts_column_ne": ('columns.label != "bad"', {"ni1"}),
    "facts_column_missing": ("columns.nope == 1", set()),
    "facts_column_unicode": ('columns.`é` == "x"', {"weird"}),
    "facts_column_big": ("columns.big >= 4611686018427387904", {"cu"}),
    "facts_column_startswith": ('columns.label startswith "go"', {"ni1"}),
    "facts_tags": ('tags contains "Ni"', {"ni1"}),
    "facts_tags_unicode": ('tags contains "é"', {"weird"}),
    "facts_tags_whole_list": ('tags == ["Cu"]', {"cu"}),
    "facts_tags_in": ('tags in ["Ni"]', set()),
    "facts_comments": ('comments contains "bad beam"', {"ni1"}),
    "facts_comments_case": ('comments contains "Bad"', {"running"}),
    "facts_comments_line": ('comments contains "Ni"', {"cu"}),
    "facts_comments_regex": ('comments matches "(?i)^bad"', {"ni1", "running"}),
    "facts_data_range": ("data.theta.min >= 0 and data.theta.max <= 5", {"ni1", "weird"}),
    "facts_data_infinite": ("data.det.max > 1e300", {"cu"}),
    "facts_and_start": ('columns.cen > 0.5 and sample == "Ni"', {"ni1"}),
    "facts_or_not": ('not tags contains "Ni" or columns.cen < 0', ALL - {"ni1"}),
    "facts_quoted_is_start": ('`tags` contains "Ni"', set()),
    # published values: columns.<record name>.<value name>, the record name quoted unless an identifier
    "facts_published": ("columns.peak-fit.cen > 0.5", {"ni1"}),
    "facts_published_all": ("columns.peak-fit.cen >= 0", {"ni1", "weird"}),
    "facts_published_quoted": ("columns.`peak fit v1.2`.cen < 0.5", {"cu"}),
    "facts_published_list": ("columns.`peak fit v1.2`.xs contains 2", {"cu"}),
    "facts_published_not_flat": ("columns.`peak-fit.cen` > 0", set()),
    "facts_published_and_column": ('columns.peak-fit.sample == "Ni" and columns.cen > 0.5', {"ni1"}),
    "facts_published_ne": ("columns.peak-fit.cen != 0.1", {"ni1"}),
    # runs nothing was recorded about (no row in run_facts) read as the empty facts document
    "facts_empty_comments": ('comments == ""', ALL - set(FACTS) | {"weird"}),
    "facts_empty_comments_below": ('comments < "a"', ALL - {"ni1", "cu"}),
    "facts_empty_comments_regex": ('comments matches "^$"', ALL - set(FACTS) | {"weird"}),
    "facts_empty_tags_ne": ('tags != "Ni"', ALL),
    "facts_empty_tags_list": ("tags == []", ALL - {"ni1", "cu", "weird"}),
    "facts_empty_root_ne": ("columns != 1", ALL),
}


def build(case: Case) -> Query:
    made = case[0]
    return parse(made) if isinstance(made, str) else made()


@pytest.mark.parametrize("name", list(CASES))
def test_sql_and_python_agree(name: str, db: sqlite3.Connection, runs: dict) -> None:
    query = build(CASES[name])
    python = by_python(runs, query)
    assert by_sql(db, runs, query) == python
    assert by_index(db, runs, query) == python
    # NOT must flip every run: no comparison may be NULL in SQL
    assert by_sql(db, runs, ~query) == ALL - python
    assert by_index(db, runs, ~query) == ALL - python
    assert by_python(runs, ~query) == ALL - python
    expected = CASES[name][1]
    if expected is not None:
        assert python == expected


@pytest.mark.parametrize("name", list(CASES))
def test_text_round_trip(name: str) -> None:
    query = build(CASES[name])
    assert parse(str(query)) == query
    assert parse(str(~query)) == ~query
    assert hash(parse(str(query))) == hash(query)


@pytest.mark.parametrize("name", list(CASES))
def test_repr_evaluates_back(name: str) -> None:
    query = build(CASES[name])
    namespace = {"Key": Key, "TimeRange": TimeRange, "ScanID": ScanID,
                 "PartialUID": PartialUID, "Query": Query, "FullText": FullText}  # fmt: skip
    assert eval(repr(query), namespace) == query  # noqa: S307 - our own repr


def test_pairs_of_cases_agree(db: sqlite3.Connection, runs: dict) -> None:
    queries = [build(c) for c in CASES.values()]
    for a, b in zip(queries[::3], queries[1::3], strict=False):
        for combined in (a & b, a | b, ~a & b, ~(a | ~b)):
            assert by_sql(db, runs, combined) == by_python(runs, combined), combined
            assert by_index(db, runs, combined) == by_python(runs, combined), combined
            assert parse(str(combined)) == combined


# ------------------------------------------------------------------ parser

S = Key("sample") == "Ni"
A, B, C = Key("a") == 1, Key("b") == 2, Key("c") == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('sample == "Ni"', S),
        ("sample == 'Ni'", S),
        ('  sample==\t"Ni"  ', S),
        ("SAMPLE == 1", Key("SAMPLE") == 1),
        ("x != 1.5", Key("x") != 1.5),
        ("x < -3", Key("x") < -3),
        ("x <= 1e3", Key("x") <= 1000.0),
        ("x > 2.5E-3", Key("x") > 0.0025),
        ("x >= 0", Key("x") >= 0),
        ("flag == TRUE", Key("flag") == True),  # noqa: E712
        ("flag == false", Key("flag") == False),  # noqa: E712
        ("x == Null", Key("x") == None),  # noqa: E711
        ('x == [1, "a", [true, null], []]', Key("x") == [1, "a", [True, None], []]),
        ("x in []", Key("x").in_([])),
        ("x IN [1, 2]", Key("x").in_([1, 2])),
        ('x Not In ["a"]', Key("x").not_in(["a"])),
        ('dets CONTAINS "det"', Key("dets").contains("det")),
        ('name StartsWith "ab"', Key("name").startswith("ab")),
        ('md.sample == "Ni"', Key("md.sample") == "Ni"),
        ("md . sample == 1", Key("md.sample") == 1),
        ('stop.exit_status == "success"', Key("exit_status", doc="stop") == "success"),
        ("stop == 1", Key("stop") == 1),
        ("`stop`.x == 1", Key(("stop", "x"), doc="start") == 1),
        ("`weird key` == 1", Key("weird key") == 1),
        ("`a\\`b\\\\c` == 1", Key("a`b\\c") == 1),
        ("md.`a.b` == 1", Key(("md", "a.b")) == 1),
        ("md.and == 1", Key("md.and") == 1),
        ("`in` == 1", Key("in") == 1),
        ('scan-type == "x"', Key("scan-type") == "x"),
        ("_private.x2 == 1", Key("_private.x2") == 1),
        ("température > 20", Key("température") > 20),
        (r'x == "a\"b\\c\n\t\u00e9\ud83d\ude00\/"', Key("x") == 'a"b\\c\n\té\U0001f600/'),
        (r"x == 'it\'s'", Key("x") == "it's"),
        # precedence and grouping
        ("a == 1 or b == 2 and c == 3", Or(A, And(B, C))),
        ("a == 1 and b == 2 or c == 3", Or(And(A, B), C)),
        ("not a == 1 and b == 2", And(Not(A), B)),
        ("not (a == 1 and b == 2)", Not(And(A, B))),
        ("(a == 1 or b == 2) and c == 3", And(Or(A, B), C)),
        ("a == 1 and (b == 2 and c == 3)", And(A, B, C)),
        ("a == 1 or (b == 2 or c == 3)", Or(A, B, C)),
        ("a == 1 && b == 2 || c == 3", Or(And(A, B), C)),
        ("a == 1 & b == 2 | !c == 3", Or(And(A, B), Not(C))),
        ("~a == 1", Not(A)),
        ("not not a == 1", A),
        ("NOT a == 1 AND NOT b == 2", And(Not(A), Not(B))),
        ("((a == 1))", A),
        # whole-query forms
        ("", MatchAll()),
        (" \n\t", MatchAll()),
        ("*", MatchAll()),
        ("* and a == 1", A),
        ("* or a == 1", MatchAll()),
        ("not *", Not(MatchAll())),
        # special keys
        ("scan_id == 5", ScanID(5)),
        ("scan_id in [1, 2]", ScanID(1, 2)),
        ("scan_id == 5.5", Comparison("start", ("scan_id",), "==", 5.5)),
        ('scan_id in [1, "a"]', Comparison("start", ("scan_id",), "in", (1, "a"))),
        ('uid startswith "a3f"', PartialUID("a3f")),
        ('uid startswith "a" or uid startswith "b"', PartialUID("a", "b")),
        ('uid startswith ""', Comparison("start", ("uid",), "startswith", "")),
        ('stop.uid startswith "a"', Comparison("stop", ("uid",), "startswith", "a")),
        ("time == 1795000000", Comparison("start", ("time",), "==", 1795000000)),
        ('stop.time > "2026-11-21"', Comparison("stop", ("time",), ">", "2026-11-21")),
    ],
)
def test_parse(text: str, expected: Query) -> None:
    assert parse(text) == expected


def test_parse_time_forms() -> None:
    day, next_day = T(2026, 11, 21), T(2026, 11, 22)
    assert parse('time >= "2026-11-21"') == TimeRange(since=day)
    assert parse('time > "2026-11-21"') == TimeRange(since=next_day)
    assert parse('time < "2026-11-21"') == TimeRange(until=day)
    assert parse('time <= "2026-11-21"') == TimeRange(until=next_day)
    assert parse('time == "2026-11-21"') == TimeRange(since=day, until=next_day)
    assert parse('time != "2026-11-21"') == Not(TimeRange(since=day, until=next_day))
    assert parse('time > "2026-11-21 10:30"') == TimeRange(since=T(2026, 11, 21, 10, 31))
    assert parse('time <= "2026-11-21T10:30:15"') == TimeRange(until=T(2026, 11, 21, 10, 30, 16))
    assert parse('time >= "2026-11-21T10:30:00+01:00"') == TimeRange(since=T(2026, 11, 21, 10, 30))
    assert parse('time >= "2026-11-21 09:30Z"') == TimeRange(since=T(2026, 11, 21, 10, 30))
    assert parse("time >= 1795000000") == TimeRange(since=1795000000)
    assert parse("time < 1795000000.5") == TimeRange(until=1795000000.5)
    moment = parse('time == "2026-11-21T10:30:00.5"')
    assert isinstance(moment, TimeRange) and moment.since == T(2026, 11, 21, 10, 30, 0.5)
    # the parts of a range are joined into one; in any order, tightest bounds win
    assert parse('time < "2026-11-22" and a == 1 and time >= "2026-11-21"') == And(
        TimeRange(since=day, until=next_day), A
    )
    assert parse('time >= "2026-11-20" and time >= "2026-11-21" and time < "2026-11-22"') == (
        TimeRange(since=day, until=next_day)
    )
    # a day across the change to summer time has 23 hours
    spring = parse('time == "2026-03-29"')
    assert isinstance(spring, TimeRange) and spring.until - spring.since == 23 * 3600


ERRORS = [
    ("sample ==", 9, "expected a value after '==' but found end of query"),
    ("sample == ", 10, "expected a value after '==' but found end of query"),
    ("(a == 1 and (b == 2)", 20,
     "expected ')' to close '(' opened at column 1 but found end of query"),
    ("a == 1 or (b == 2]", 17, "expected ')' to close '(' opened at column 11 but found ']'"),
    ('sample == "Ni" and x == "abc', 24,
     "unterminated string starting at column 25: close it with \""),
    ("x == 'abc\\'", 5, "unterminated string starting at column 6: close it with '"),
    ('sample = "Ni"', 7, "'=' is not an operator: did you mean '=='?"),
    ("x => 1", 2, "'=>' is not an operator: did you mean '>='?"),
    ("x =< 1", 2, "'=<' is not an operator: did you mean '<='?"),
    ("x <> 1", 2, "'<>' is not an operator: did you mean '!='?"),
    ("x === 1", 2, "'===' is not an operator: did you mean '=='?"),
    ('sample == "Ni" Cu', 15,
     "unexpected 'Cu' after a complete condition: join conditions with 'and' or 'or'"),
    ('sample == "Ni" "Cu"', 15,
     "unexpected \"Cu\" after a complete condition: join conditions with 'and' or 'or'"),
    ('(sample == "Ni" scan_id == 1)', 16,
     "unexpected 'scan_id' after a complete condition: join conditions with 'and' or 'or'"),
    ("sample Ni", 7, "expected a comparison operator (==, !=, <, <=, >, >=, in, not in, "
                     "contains, startswith, matches) after 'sample' but found 'Ni'"),
    ("md.sample", 9, "expected a comparison operator (==, !=, <, <=, >, >=, in, not in, "
                     "contains, startswith, matches) after 'md.sample' but found end of query"),
    ("a == 1 and", 10, "expected a condition after 'and' but found end of query"),
    ("a == 1 ||", 9, "expected a condition after '||' but found end of query"),
    ("not", 3, "expected a condition after 'not' but found end of query"),
    ("a == 1 and or b == 2", 11, "expected a condition after 'and' but found 'or'"),
    ("()", 1, "expected a condition after '(' but found ')'"),
    (")", 0, "expected a condition but found ')'"),
    ("a == 1)", 6, "unexpected ')' with no matching '('"),
    ("and a == 1", 0, "expected a condition but found 'and'"),
    ("in == 1", 0, "expected a condition but found 'in' (to use it as a key, quote it: `in`)"),
    ('"Ni" == sample', 0,
     "expected a condition but found \"Ni\": a condition starts with a key, "
     "as in sample == \"Ni\""),
    ("x == Ni", 5, "expected a value after '==' but found 'Ni': put text in quotes, as in \"Ni\""),
    ("x == )", 5, "expected a value after '==' but found ')'"),
    ("x in 5", 5, "expected a list like [\"Ni\", \"Cu\"] after 'in' but found '5'"),
    ('x not 5', 6,
     "expected 'in' after 'x not' (as in: sample not in [\"Ni\", \"Cu\"]) but found '5'"),
    ("x not in 5", 9, "expected a list like [\"Ni\", \"Cu\"] after 'not in' but found '5'"),
    ("x contains [1]", 11, "'contains' takes one value, not a list: to require several, join "
                           "conditions with 'and', as in x contains \"a\" and x contains \"b\""),
    ("uid startswith 5", 15,
     "'startswith' needs a string, as in uid startswith \"a3f\", but found 5"),
    ("x < true", 4, "'<' compares numbers or strings, not true"),
    ("x >= [1]", 5, "'>=' compares numbers or strings, not [1]"),
    ("x == [1, 2", 10, "expected ']' to close '[' opened at column 6 but found end of query"),
    ("x == [1 2]", 8,
     "expected ',' or ']' after a list item (the list opened at column 6) but found '2'"),
    ("x == [1,]", 8, "expected a value after ',' but found ']'"),
    ("x == [", 6, "expected a value after '[' but found end of query"),
    ("md.0 == 1", 3, "expected a key name after 'md.' but found '0': quote names that don't "
                     "start with a letter or _, as in `0`"),
    ("md. == 1", 4, "expected a key name after 'md.' but found '=='"),
    ("`abc == 1", 0, "unterminated quoted key starting at column 1: close it with `"),
    ("`` == 1", 0, "empty quoted key ``: put the key's name between the backquotes"),
    ("`a\\b` == 1", 2, "in a quoted key only '\\`', '\\\\' and '\\uXXXX' are escapes: write "
                       "'\\\\' for a backslash"),
    ('x == "\\q"', 6, "unknown escape '\\q' in string: write '\\\\' for a backslash"),
    ('x == "\\u12"', 6, "invalid '\\u' escape: it needs 4 hex digits, e.g. '\\u00e9'"),
    ('x == "\\ud800"', 6, "a '\\u' escape names half of a surrogate pair without the other"),
    ("x == 1abc", 5, "invalid number '1abc'"),
    ("x == 1.5.2", 5, "invalid number '1.5.2'"),
    ("x == 1e999", 5, "number '1e999' is too large"),
    ("x $ 1", 2, "unexpected character '$'"),
    ("x == - 1", 5, "unexpected character '-'"),
    ("a == 1 or b == 2 c", 17,
     "unexpected 'c' after a complete condition: join conditions with 'and' or 'or'"),
    ('time >= "2026-13-01"', 8,
     "invalid date '2026-13-01' (month must be in 1..12): use a unix timestamp or a date "
     "string like '2026-11-21', '2026-11-21 10:30', '2026-11-21T10:30:00' or "
     "'2026-11-21T10:30:00+01:00' (seconds may have up to 6 decimals; 'Z' means UTC; "
     "without an offset it is local time)"),
    ('time < "yesterday"', 7, "invalid date 'yesterday': use a unix timestamp or a date string"),
    ('time == "2026-11-21T10:30+25:00"', 8, "UTC offset +25:00 out of range"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "position", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_parse_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    err = info.value
    assert err.position == position
    assert err.text == text
    if "date" in message or "offset" in message:
        assert message in err.message
    else:
        assert err.message == message
    assert isinstance(err, ValueError) and isinstance(err, ScandeckError)
    assert f"at column {position + 1}" in str(err)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


# ------------------------------------------------------- text and Python forms


def test_str_forms() -> None:
    assert str(S) == 'sample == "Ni"'
    assert str(Key("x").in_(["a", 1, None, True])) == 'x in ["a", 1, null, true]'
    assert str(Key("x").not_in([])) == "x not in []"
    assert str(Key("detectors").contains("det")) == 'detectors contains "det"'
    assert str(Key("stop.exit_status") != "success") == 'stop.exit_status != "success"'
    assert str(Key(("stop", "x"), doc="start") == 1) == "`stop`.x == 1"
    assert str(Key("weird key") == 'a"b\n') == '`weird key` == "a\\"b\\n"'
    assert str(Key("and") == 1) == "`and` == 1"
    assert str(Key(("md", "a`b")) == 1) == "md.`a\\`b` == 1"
    assert str(Key("x") == 1e300) == "x == 1e+300"
    assert str(ScanID(5)) == "scan_id == 5"
    assert str(ScanID(5, 6)) == "scan_id in [5, 6]"
    assert str(PartialUID("a3f")) == 'uid startswith "a3f"'
    assert str(A & (B | C)) == "a == 1 and (b == 2 or c == 3)"
    assert str(A & B | C) == "(a == 1 and b == 2) or c == 3"
    assert str(~(A | B)) == "not (a == 1 or b == 2)"
    assert str(~A & ~B) == "not a == 1 and not b == 2"
    assert str(A & PartialUID("a", "b")) == 'a == 1 and (uid startswith "a" or uid startswith "b")'
    assert str(MatchAll()) == "*"
    assert str(TimeRange(since="2026-11-21")) == 'time >= "2026-11-21T00:00:00+01:00"'
    assert str(TimeRange(since="2026-06-01", until="2026-06-01T12:00:00.5")) == (
        'time >= "2026-06-01T00:00:00+02:00" and time < "2026-06-01T12:00:00.500000+02:00"'
    )
    assert str(TimeRange(until=0.1 + 1e9 + 1e-7)) == f"time < {0.1 + 1e9 + 1e-7!r}"
    assert str(A | TimeRange(since=0, until=1)) == (
        'a == 1 or (time >= "1970-01-01T01:00:00+01:00" and time < "1970-01-01T01:00:01+01:00")'
    )


def test_repr_forms() -> None:
    assert repr(S) == "Key('sample') == 'Ni'"
    assert repr(Key("x").in_(("a", 1))) == "Key('x').in_(['a', 1])"
    assert repr(Key("x").not_in(["a"])) == "Key('x').not_in(['a'])"
    assert repr(Key("x").contains(None)) == "Key('x').contains(None)"
    assert repr(Key("stop.reason").startswith("u")) == "Key('stop.reason').startswith('u')"
    assert repr(Key(("a.b", "c")) == True) == "Key(('a.b', 'c')) == True"  # noqa: E712
    assert repr(Key(("exit.status",), doc="stop") == 1) == "Key(('exit.status',), doc='stop') == 1"
    assert repr(Key("stop.x", doc="start") == 1) == "Key('stop.x', doc='start') == 1"
    assert repr(A & (B | ~C)) == "(Key('a') == 1) & ((Key('b') == 2) | ~(Key('c') == 3))"
    assert repr(ScanID(1, 2) | PartialUID("a3f")) == "ScanID(1, 2) | PartialUID('a3f')"
    assert repr(TimeRange(since="2026-11-21")) == "TimeRange(since='2026-11-21T00:00:00+01:00')"
    assert repr(TimeRange(until=1e9 + 0.1 + 1e-7)) == f"TimeRange(until={1e9 + 0.1 + 1e-7!r})"
    assert repr(Query.all()) == "Query.all()"
    assert repr(Key("md.sample")) == "Key('md.sample')"


# ------------------------------------------------------------- object rules


def test_structural_equality_and_hash() -> None:
    assert (Key("x") == 1) == (Key("x") == 1.0)
    assert len({Key("x") == 1, Key("x") == 1.0, Key("x") == True}) == 2  # noqa: E712
    assert (Key("x") == True) != (Key("x") == 1)  # noqa: E712
    assert (Key("x") == [1, True]) != (Key("x") == [1, 1])
    assert (Key("x") == [1, 2]) == (Key("x") == (1, 2))
    assert (Key("x") == 1) != (Key("x") != 1)
    assert Key("md.x") == 1 != Key(("md", "x"), doc="stop") == 1
    assert TimeRange(since=10) == TimeRange(since=10.0) != TimeRange(until=10)
    assert {ScanID(1, 2): "a"}[ScanID(1, 2)] == "a"


def test_combinators_simplify() -> None:
    assert Query.all() & A == A
    assert A & Query.all() & B == And(A, B)
    assert (A | Query.all()) == Query.all()
    assert ~~A == A
    assert (A & B) & (C & A) == And(A, B, C, A)
    assert (A | B) | C == Or(A, B, C)
    assert PartialUID("a") | A | Key("uid").startswith("b") == Or(PartialUID("a", "b"), A)
    assert TimeRange(since=5) & A & TimeRange(until=9) & TimeRange(since=7) == And(TimeRange(since=7, until=9), A)
    assert Key("uid").startswith("a3f") == PartialUID("a3f")
    assert (Key("scan_id") == 3) == ScanID(3)
    assert Key("scan_id").in_(range(3)) == ScanID(0, 1, 2)
    assert (Key("time") >= 5) == TimeRange(since=5)
    assert (Key("time") < datetime(2026, 11, 21)) == TimeRange(until="2026-11-21")
    assert (Key("time") == date(2026, 11, 21)) == TimeRange(since="2026-11-21", until="2026-11-22")


def test_sql_is_parameterized() -> None:
    sql, params = (Key("sample") == "x'; DROP TABLE runs; --").to_sql()
    assert "DROP" not in sql and params == ["x'; DROP TABLE runs; --"]
    sql, params = (Key("it's") == 1).to_sql()
    assert "'$.\"it''s\"'" in sql and params == [1]
    assert Query.all().to_sql() == ("1", [])
    assert isinstance(ScanID(1).to_sql()[1], list)


@pytest.mark.parametrize(
    ("build_it", "message"),
    [
        (lambda: Key(""), "empty name"),
        (lambda: Key("md..x"), "empty name between dots"),
        (lambda: Key(("md", 1)), "key names must be strings"),
        (lambda: Key("x", doc="event"), "doc must be 'start', 'stop' or 'facts'"),
        (lambda: Key("x\0y"), "NUL"),
        (lambda: Key("x") < True, "'<' compares numbers or strings, not true"),
        (lambda: Key("x") >= None, "'>=' compares numbers or strings, not null"),
        (lambda: Key("x") == {"a": 1}, "compare its fields with dotted keys"),
        (lambda: Key("x") == float("nan"), "finite"),
        (lambda: Key("x") == datetime(2026, 1, 1), "dates compare only with the 'time' key"),
        (lambda: Key("x") == object(), "cannot compare with object"),
        (lambda: Key("x").in_("Ni"), "needs a list of values"),
        (lambda: Key("x").in_(5), "needs a list of values"),
        (lambda: Key("x").contains([1]), "'contains' takes one value"),
        (lambda: Key("x").startswith(5), "'startswith' needs a string"),
        (lambda: TimeRange(), "TimeRange needs since, until or both"),
        (lambda: TimeRange(since="21/11/2026"), "'2026-11-21T10:30:00+01:00'"),
        (lambda: TimeRange(since="2026-02-30"), "day is out of range"),
        (lambda: TimeRange(until=float("inf")), "finite"),
        (lambda: TimeRange(since=True), "invalid time True"),
        (lambda: Key("time") > "noon", "invalid date 'noon'"),
        (lambda: ScanID(), "at least one"),
        (lambda: ScanID(True), "a scan_id is an integer"),
        (lambda: ScanID(1.5), "a scan_id is an integer"),
        (lambda: PartialUID(), "at least one"),
        (lambda: PartialUID(""), "non-empty string"),
        (lambda: Comparison("start", ("x",), "~=", 1), "unknown operator '~='"),
    ],
)
def test_invalid_objects(build_it: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidQuery, match=None) as info:
        build_it()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ScandeckError)


def test_key_misuse_explains_parentheses() -> None:
    with pytest.raises(TypeError, match="parentheses"):
        Key("a") == 1 & Key("b") == 2  # noqa: B015 - the mistake under test
    with pytest.raises(TypeError, match="parentheses"):
        (Key("a") == 1) & Key("b")
    with pytest.raises(TypeError):
        (Key("a") == 1) & 5  # type: ignore[operator]


def test_matches_without_stop_and_with_odd_documents() -> None:
    start = {"uid": "abc", "time": 10.0, "scan_id": 3, "md": ("a", "b")}
    assert (Key("md") == ["a", "b"]).matches(start)
    assert Key("md").contains("b").matches(start, None)
    assert not (Key("stop.exit_status") != "x").matches(start, None)
    assert (~(Key("stop.exit_status") == "x")).matches(start, None)
    assert TimeRange(since=10, until=11).matches(start)
    assert not TimeRange(since=10).matches({"uid": "abc", "time": True})
    assert not ScanID(1).matches({"uid": "abc", "time": 1.0, "scan_id": True})


def test_local_time_is_pinned() -> None:
    assert T(2026, 11, 21) == datetime(2026, 11, 20, 23, tzinfo=timezone.utc).timestamp()
    assert T(2026, 6, 1) == datetime(2026, 5, 31, 22, tzinfo=timezone.utc).timestamp()
    assert timedelta(seconds=T(2026, 3, 30) - T(2026, 3, 29)) == timedelta(hours=23)


def test_the_index_answers_every_kind_of_condition() -> None:
    """The index-compiled agreement above is no copy of to_sql(): each kind of condition uses it."""
    kinds = {"==", "in", "<", "<=", ">", ">=", "startswith", "contains", "matches"}
    used = set()
    for case in CASES.values():
        query = build(case)
        for leaf in (query, *getattr(query, "items", ())):
            if uses_index(leaf):
                used.add(getattr(leaf, "op", "matches"))
    assert kinds <= used
    assert "start_values" in indexed_sql(Key("sample") == "Ni")[0]
    both = build(CASES["index_all_seeks"])
    drivers = [q for q in conjuncts(both) if index_condition(q) is not None]
    assert len(drivers) == 2 and all(index_count_sql(both, q) is not None for q in drivers)
    ranged = build(CASES["index_seek_and_range"])
    assert index_count_sql(ranged, conjuncts(ranged)[1]) is None  # a range is probed in the JSON
    # ... unless it drives; but a contains of a string may be a substring test, read in the JSON
    assert index_count_sql(ranged, conjuncts(ranged)[0]) is None
    seeks = (Key("md.temperature") >= 300) & (Key("sample") == "Ni") & ~Key("detectors").contains(1)
    assert index_count_sql(seeks, conjuncts(seeks)[0]) is not None
    assert not uses_index(Key("sample") != "Ni") and not uses_index(Key("material") == ["Ni", "Cu"])
