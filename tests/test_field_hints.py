"""A search on a field that no run has says so and suggests the closest field runs have.

The field index is checked on every source (a real RunEngine writes the runs), the
SQLite migration on a store made before the index existed, and what ``scandeck ls``
prints. The server's answer is in tests/server/test_server_api.py.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from test_cli import scandeck
from test_source_conformance import record

from scandeck.catalog import Catalog
from scandeck.query import parse
from scandeck.query.hints import MAX_DEPTH, start_fields, unknown_field_hint
from scandeck.sources import open_source
from scandeck.sources.protocol import FieldIndex


@pytest.mark.not_on(
    "tiled",
    reason=("Tiled's catalog lists no metadata keys of its runs: empty-search hints are not offered there"),
)
def test_every_source_indexes_the_fields_its_runs_have(RE, cat, hw):
    import bluesky.plans as bp

    assert isinstance(cat.source, FieldIndex)
    assert cat.source.fields() == set()
    record(RE, cat, bp.count([hw.det], 2), sample="Ni", md={"operator": {"name": "jdoe"}})
    fields = cat.source.fields()
    assert {"sample", "md", "md.operator", "md.operator.name", "plan_name", "uid", "detectors"} <= fields

    typo = cat.search('smaple == "Cu"')
    assert len(typo) == 0  # a legal query: empty, not an error
    assert typo.empty_hint == "no run has the field smaple (did you mean sample?)"
    assert "did you mean sample?" in repr(typo)
    nested = cat.search('md.operator.nme == "jdoe"')
    assert nested.empty_hint == "no run has the field md.operator.nme (did you mean md.operator.name?)"
    # A known field with no matching value, or runs found: nothing to explain.
    assert cat.search('sample == "Cu"').empty_hint is None
    assert repr(cat.search('sample == "Cu"')).endswith(": 0 runs>")  # no "; None"
    assert cat.search('sample == "Ni" or smaple == "Ni"').empty_hint is None
    assert cat.empty_hint is None


def test_the_hint_names_every_unknown_field_and_escapes_them() -> None:
    known = start_fields({"uid": "u", "time": 1.0, "sample": "Ni", "operator": "jdoe", "md": {"x": 1}})
    hint = unknown_field_hint(parse('not (smaple == "Ni" or opertor == "x") and md.y > 1 and zzz == 1'), known)
    assert hint == (
        "no run has the fields smaple (did you mean sample?), opertor (did you mean operator?), "
        "md.y (did you mean md.x?), zzz"
    )
    # Run columns are always there; a stop-document field is not the start's index's business.
    assert unknown_field_hint(parse('scan_id == 3 and stop.exit_status == "abort"'), known) is None
    hostile = start_fields({"sam\x1b[2Jple": 1})
    assert unknown_field_hint(parse("`sam\x1b[2Jplx` == 1"), hostile) == (
        "no run has the field sam\\u001b[2Jplx (did you mean sam\\u001b[2Jple?)"
    )


def test_a_hostile_start_document_is_indexed_within_bounds() -> None:
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["d"] = node = {}
    wide = {f"k{i}": {"x": i} for i in range(5000)}
    assert max(name.count(".") for name in start_fields({"deep": deep})) == MAX_DEPTH - 1
    fields = start_fields(wide)  # every top-level key; no nested ones past MAX_FIELDS
    assert {f"k{i}" for i in range(5000)} <= fields and len(fields) == 5000


def test_a_store_made_before_the_index_gets_it_from_its_runs(RE, hw, tmp_path: Path) -> None:
    import bluesky.plans as bp

    path = tmp_path / "store"
    cat = Catalog(open_source(path))
    record(RE, cat, bp.count([hw.det], 1), sample="Ni")
    cat.close()
    with sqlite3.connect(path / "scandeck.sqlite") as conn:  # as an older scandeck left it
        conn.execute("DROP TABLE fields")

    old = tmp_path / "old-read-only"
    shutil.copytree(path, old)
    read_only = Catalog(open_source(f"sqlite://{old}/scandeck.sqlite?mode=ro"))
    assert "sample" in read_only.source.fields()  # computed: a read-only store is never changed
    read_only.close()

    cat = Catalog(open_source(path))  # the first writable open adds the table, filled
    assert cat.search('smaple == "Ni"').empty_hint == "no run has the field smaple (did you mean sample?)"
    with sqlite3.connect(path / "scandeck.sqlite") as conn:
        assert ("sample",) in conn.execute("SELECT name FROM fields").fetchall()
    record(RE, cat, bp.count([hw.det], 1), purpose="new key")
    assert "purpose" in cat.source.fields()
    cat.close()


@pytest.fixture
def ls_store(RE, hw, tmp_path: Path) -> Path:
    import bluesky.plans as bp

    path = tmp_path / "store"
    cat = Catalog(open_source(path))
    record(RE, cat, bp.count([hw.det], 1), sample="Ni", operator="jdoe")
    cat.close()
    return path


def test_ls_says_which_field_no_run_has(ls_store: Path, tmp_path: Path) -> None:
    result = scandeck("ls", 'smaple == "Cu"', "--catalog", str(ls_store), data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"no matching runs in sqlite://{(ls_store / 'scandeck.sqlite').resolve()}",
        "no run has the field smaple (did you mean sample?)",
    ]
    result = scandeck("ls", 'sample == "Cu"', "--catalog", str(ls_store), data=tmp_path / "data")
    store = (ls_store / "scandeck.sqlite").resolve()
    assert result.stdout.splitlines() == [f"no matching runs in sqlite://{store}"]
