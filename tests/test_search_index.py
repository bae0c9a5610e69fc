"""The embedded store's start-values index: kept with each run, built for older stores, never wrong.

Every search here is also answered by the queries' Python ``matches`` over the
start documents and by ``to_sql()`` (json_extract) on the same file: the index only
makes a search faster.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from event_model import compose_run

import scandeck
from scandeck.exceptions import StoreError
from scandeck.queries import Key, Query, parse
from scandeck.query.sql import register_functions
from scandeck.sources.sqlite_facts import runs_from
from scandeck.sources.sqlite_index import index_ready

OLD_STORE = Path(__file__).parent / "data" / "store-0.1.0"

QUERIES = [
    'sample == "Ni"',
    'sample == "Ni" and plan_name == "scan"',
    'sample in ["Cu", "Fe"] or plan_name == "count"',
    'not sample == "Ni"',
    'plan_name startswith "grid" and not sample == "Cu"',
    '`tags` contains "a"',
    'tags contains "a" or columns.cen > 1',
    'sample matches "^N"',
    '"ann" and sample == "Ni"',
    "num_points >= 21",
    'scan_id > 1 and sample != "Ni"',
    "x == null",
    "x != null",
    "flag == true",
    "flag == 1",
    "flag in [1.0]",
    "md.odd.key == 2",
    "big >= 9.2e18",
    "big < 0",
    'md.`é "q"` startswith "ü"',
]


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _ready(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return index_ready(conn)
    finally:
        conn.close()


def _by_json(db: Path, query: Query) -> set[str]:
    """The runs ``to_sql()`` finds on the file itself (json_extract, no index)."""
    conn = sqlite3.connect(db)
    register_functions(conn)
    try:
        where, params = query.to_sql()
        sql = f"SELECT uid FROM {runs_from(conn, query)} WHERE {where}"
        return {uid for (uid,) in conn.execute(sql, params)}
    finally:
        conn.close()


def _check_every_query(cat: scandeck.Catalog, db: Path) -> None:
    starts = {s.uid: s for s in cat.source.search(Query.all())}
    for text in QUERIES:
        query = parse(text)
        python = {uid for uid, s in starts.items() if query.matches(s.start, s.stop)}
        found = [s.uid for s in cat.search(query).summaries()]
        assert set(found) == python == _by_json(db, query), text
        assert len(cat.search(query)) == len(python), text
        # the first page, newest first, as a page of the whole list
        assert [s.uid for s in cat.search(query).summaries(limit=2)] == found[:2], text


def _more_runs(cat: scandeck.Catalog) -> None:
    writer = cat.writer()
    for md in (
        {"plan_name": "count", "sample": "Ni", "flag": True, "md": {'é "q"': "üx"}, "x": math.nan},
        {
            "plan_name": "count",
            "sample": "Cu",
            "flag": 1,
            "md": {"odd": {"key": 2}},
            "x": None,
            "tags": ["a", 1.0],
        },
        {"plan_name": "scan", "sample": "Ni", "flag": 1.0, "x": "nan", "num_points": 21.0, "big": 2**63},
    ):
        bundle = compose_run(metadata=md)
        writer("start", bundle.start_doc)
        writer("stop", bundle.compose_stop())
    writer.close()


def test_an_old_store_read_only_is_searched_through_its_json(tmp_path: Path) -> None:
    shutil.copytree(OLD_STORE, tmp_path / "old")
    db = tmp_path / "old" / "scandeck.sqlite"
    assert "start_values" not in _tables(db)  # as release 0.1.0 wrote it
    cat = scandeck.open_catalog(f"sqlite://{tmp_path / 'old'}?mode=ro")
    assert not _ready(db)
    assert len(cat) == 5
    _check_every_query(cat, db)
    assert "start_values" not in _tables(db)  # reading changed nothing
    cat.close()


def test_an_old_store_opened_writable_gets_the_index_and_keeps_its_answers(tmp_path: Path) -> None:
    shutil.copytree(OLD_STORE, tmp_path / "old")
    db = tmp_path / "old" / "scandeck.sqlite"
    before = {text: _by_json(db, parse(text)) for text in QUERIES}
    cat = scandeck.open_catalog(tmp_path / "old")
    assert {"start_values", "start_values_pending"} <= _tables(db)
    assert _ready(db)
    for text, uids in before.items():
        assert {s.uid for s in cat.search(parse(text)).summaries()} == uids, text
    _check_every_query(cat, db)
    _more_runs(cat)  # appended runs are indexed as they are written
    assert _ready(db)
    _check_every_query(cat, db)
    assert len(cat.search('sample == "Ni"')) == 4
    cat.close()


def test_booleans_numbers_null_and_nan_stay_apart(tmp_path: Path) -> None:
    cat = scandeck.open_catalog(tmp_path / "store")
    _more_runs(cat)
    db = tmp_path / "store" / "scandeck.sqlite"
    _check_every_query(cat, db)
    assert len(cat.search("flag == true")) == 1
    assert len(cat.search("flag == 1")) == 2  # 1 and 1.0, not true
    assert len(cat.search("big >= 9.2e18")) == 1  # 2**63, past SQLite's integers: a REAL, as json_extract reads it
    # NaN is stored as JSON null (SQLite's JSON has no NaN): the index says what the JSON says
    assert len(cat.search("x == null")) == len(_by_json(db, parse("x == null"))) == 2
    cat.close()


def test_a_run_written_without_the_index_is_found_and_indexed_on_the_next_writable_open(tmp_path: Path) -> None:
    """A writer that does not know the index (release 0.1.0 on the same file) leaves its runs pending.

    Its INSERT into ``runs`` is replayed here as that release's writer makes it;
    while the run is pending, searches read the JSON, so they still find it.
    """
    cat = scandeck.open_catalog(tmp_path / "store")
    _more_runs(cat)
    db = tmp_path / "store" / "scandeck.sqlite"
    bundle = compose_run(metadata={"plan_name": "scan", "sample": "Ni", "flag": True})
    old = sqlite3.connect(db)
    start = bundle.start_doc
    old.execute(
        "INSERT INTO runs (uid, scan_id, time, start, num_documents) VALUES (?, ?, ?, ?, 1)",
        (start["uid"], start.get("scan_id"), start["time"], json.dumps(start)),
    )
    old.commit()
    old.close()
    assert not _ready(db)
    assert start["uid"] in {s.uid for s in cat.search('sample == "Ni" and flag == true').summaries()}
    _check_every_query(cat, db)
    cat.close()
    cat = scandeck.open_catalog(tmp_path / "store")
    assert _ready(db)
    assert start["uid"] in {s.uid for s in cat.search('sample == "Ni" and flag == true').summaries()}
    _check_every_query(cat, db)
    cat.close()


def test_a_run_whose_insert_fails_leaves_no_index_rows(tmp_path: Path) -> None:
    """The index rows are written in the run's own transaction: a failure later in it takes them back."""
    cat = scandeck.open_catalog(tmp_path / "store")
    _more_runs(cat)
    db = tmp_path / "store" / "scandeck.sqlite"
    rows_before = sqlite3.connect(db).execute("SELECT count(*) FROM start_values").fetchone()[0]
    blocker = sqlite3.connect(db)
    # A real failure after the index rows are in: the start document's own row is refused.
    blocker.execute(
        "CREATE TRIGGER refuse_start BEFORE INSERT ON documents WHEN NEW.name = 'start' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    blocker.commit()
    bundle = compose_run(metadata={"plan_name": "scan", "sample": "Zr", "unique_field": 1})
    writer = cat.writer()
    with pytest.raises(StoreError, match="refused by the test"):
        writer("start", bundle.start_doc)
    blocker.execute("DROP TRIGGER refuse_start")
    blocker.commit()
    assert blocker.execute("SELECT count(*) FROM start_values").fetchone()[0] == rows_before
    assert blocker.execute("SELECT count(*) FROM start_values_pending").fetchone()[0] == 0
    blocker.close()
    assert len(cat.search('sample == "Zr"')) == 0 and len(cat.search(Key("unique_field") == 1)) == 0
    writer("start", bundle.start_doc)  # the writer goes on: the same run, stored whole
    writer("stop", bundle.compose_stop())
    writer.close()
    assert [s.uid for s in cat.search('sample == "Zr"').summaries()] == [bundle.start_doc["uid"]]
    _check_every_query(cat, db)
    cat.close()
