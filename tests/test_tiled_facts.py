"""Comments, tags and computed cells of a Tiled archive's runs, kept in a sidecar file (sources/facts_overlay.py).

A real Tiled server holds the runs (written by a RunEngine through bluesky-tiled-plugins'
TiledWriter); scandeck never writes into them. The facts go to a SQLite file beside,
and searches mixing facts and start fields give the answers the in-memory store gives
for the same runs and facts.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from bluesky.plans import count
from ophyd.sim import det

from scandeck.catalog import Catalog
from scandeck.catalog_files import open_entry
from scandeck.exceptions import InvalidQuery, RunNotFound
from scandeck.runtable.model import Annotation, Cell
from scandeck.sources import open_source
from scandeck.sources.facts_overlay import FactsOverlay, default_facts_path
from scandeck.sources.protocol import RunFacts

QUERIES = [
    'tags contains "Ni"',
    'tags contains "Ni" and sample == "Ni"',
    'not tags contains "Ni"',
    'columns.cen > 0.5 or sample == "Cu"',
    'comments contains "bad beam" and not columns.cen < 0',
    "columns.cen >= 0",
]


@pytest.fixture
def tiled_cat(tiled_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, RE) -> Iterator[Catalog]:  # noqa: N803
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    uri = tiled_server.new_catalog()
    cat = Catalog(open_source(uri))
    cat.test_uri = uri  # type: ignore[attr-defined]  # with its API key, for a second client
    RE.subscribe(cat.writer())
    for sample in ("Ni", "Cu", "Ni", "Fe"):
        RE(count([det], num=2), sample=sample)
    yield cat
    cat.close()


def _annotate(source: RunFacts, uids: list[str]) -> None:
    note = [
        Annotation("tag", "Ni", "ann", "host", 1.0),
        Annotation("comment", "bad beam at 12:40", "ann", "h", 2.0),
    ]
    source.add_annotations(uids[0], note)
    source.add_annotations(uids[1], [Annotation("tag", "redo", "bob", "host", 3.0)])
    source.put_cells(uids[0], {"cen": Cell(0.75, "h1")})
    source.put_cells(uids[2], {"cen": Cell(-1.0, "h1")})
    source.put_cells(uids[3], {"cen": Cell(None, "h1", status="error", error="ValueError: no peak")})


def test_facts_of_a_tiled_archive_are_kept_beside_it_and_searched_with_it(
    tiled_cat: Catalog, tmp_path: Path
) -> None:
    source = tiled_cat.source
    assert isinstance(source, FactsOverlay) and isinstance(source, RunFacts)
    assert source.facts_path == default_facts_path(tiled_cat.name)
    assert source.facts_path.is_relative_to(tmp_path / "data")
    uids = [s.uid for s in source.search(tiled_cat.query, oldest_first=True)]
    assert len(uids) == 4
    _annotate(source, uids)

    # the same runs and facts in the in-memory store: the reference answers
    memory = Catalog(open_source("memory://"))
    writer = memory.writer()
    for uid in uids:
        for name, doc in tiled_cat[uid].documents():
            writer(name, doc)
    assert isinstance(memory.source, RunFacts)
    _annotate(memory.source, uids)
    for text in QUERIES:
        assert set(tiled_cat.search(text).keys()) == set(memory.search(text).keys()), text
        assert len(tiled_cat.search(text)) == len(memory.search(text)), text
    assert set(tiled_cat.search('tags contains "Ni"').keys()) == {uids[0]}

    assert source.annotations(uids[0])[0].text == "Ni"
    assert source.annotations(uids[3]) == []  # a run of the archive without facts
    with pytest.raises(RunNotFound):
        source.add_annotations("no-such-run", [Annotation("tag", "x", "a", "h", 0.0)])
    assert source.cells(uids, ["cen"])[uids[3]]["cen"].status == "error"
    assert source.facts([uids[1]])[uids[1]]["tags"] == ["redo"]
    assert set(source.needing("cen", "h1")) == {uids[1]}  # the others have a cell by that code
    with pytest.raises(InvalidQuery, match="data summaries"):
        list(tiled_cat.search("data.det.max > 1").keys())


def test_a_wait_wakes_on_facts_and_a_second_client_sees_them(tiled_cat: Catalog) -> None:
    source = tiled_cat.source
    assert isinstance(source, FactsOverlay)
    uid = next(iter(tiled_cat.keys()))
    other = open_source(tiled_cat.test_uri)  # type: ignore[attr-defined]  # another client, same sidecar
    assert isinstance(other, FactsOverlay) and other.facts_path == source.facts_path
    token = source.change_token()
    other.add_annotations(uid, [Annotation("tag", "seen", "b", "h", 0.0)])
    try:
        assert source.wait(token, 10.0)
    finally:
        other.close()
    assert source.annotations(uid)[-1].text == "seen"
    mark, changed = source.facts_since(0)
    assert changed == [uid] and source.facts_since(mark) == (mark, [])


def test_a_catalog_entry_names_a_shared_facts_file(tiled_server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    cats = tmp_path / "catalogs"
    cats.mkdir()
    uri = tiled_server.new_catalog()
    (cats / "archive.yaml").write_text(
        textwrap.dedent(
            f"""\
            version: 2
            metadata: {{}}
            user_parameters: {{}}
            aliases: {{archive: archive}}
            data:
              archive_store:
                datatype: scandeck.intake_readers:ScandeckStore
                kwargs: {{uri: "{uri}"}}
                metadata: {{}}
                user_parameters: {{}}
            entries:
              archive:
                reader: scandeck.intake_readers:ScandeckReader
                kwargs: {{data: "{{data(archive_store)}}"}}
                output_instance: scandeck.catalog:Catalog
                metadata: {{facts: shared/facts.sqlite}}
                user_parameters: {{}}
            """
        )
    )
    monkeypatch.setenv("SCANDECK_CATALOGS", str(cats))
    cat = open_entry("archive")
    try:
        assert isinstance(cat.source, FactsOverlay)
        assert cat.source.facts_path == cats / "shared" / "facts.sqlite"
    finally:
        cat.close()
