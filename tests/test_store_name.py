"""One store has one name: reprs, ``%catalog``, ``%scans`` and provenance records agree.

The embedded default store is opened every way a user or a rerun opens it (nothing
given, the catalog-file entry ``local``, its directory, its ``sqlite://`` URI,
``$SCANDECK_CATALOG``); runs are read through a catalog lookup, a stream read and a
live pipeline; the name is the same everywhere, and the record of a real kernel that
read through two of those ways names the store once, as its ``%catalog`` shows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import scandeck
from scandeck.config import default_store
from scandeck.provenance.context import current


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, RE: Any) -> list[str]:  # noqa: N803
    from bluesky.plans import count
    from ophyd.sim import det

    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    cat = scandeck.open_catalog()
    RE.subscribe(cat.writer())
    uids = [*RE(count([det], num=3)), *RE(count([det], num=2))]
    cat.close()
    return uids


def test_every_way_of_opening_the_default_store_gives_one_name(
    stored: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = default_store()
    opened = [
        scandeck.open_catalog(),
        scandeck.open_catalog("local"),
        scandeck.open_catalog(path),
        scandeck.open_catalog(str(path / "scandeck.sqlite")),
        scandeck.open_catalog(f"sqlite://{path}"),
    ]
    monkeypatch.setenv("SCANDECK_CATALOG", str(path))  # how scandeck run/rerun point kernels at it
    opened.append(scandeck.open_catalog())
    try:
        names = {cat.name for cat in opened}
        assert names == {opened[0].source.uri}, names
        assert len({repr(cat) for cat in opened}) == 1
        assert {cat.search("scan_id > 0").name for cat in opened} == names

        current().clear()
        first, second = opened[1], opened[2]
        first[stored[0]].primary.read()  # a lookup by the entry name, then a stream read
        second[-1].primary.to_pandas()  # the path
        with scandeck.live(opened[3][stored[0]]) as live:  # a live pipeline on the file path
            rows = live.stream().sink_to_list()
            assert live.flush(timeout=30)
        assert len(rows) == 3
        assert {i["catalog"] for i in current().inputs()} == names
    finally:
        current().clear()
        for cat in opened:
            cat.close()


def test_a_kernel_record_names_the_store_as_catalog_shows_it(stored: list[str], tmp_path: Path) -> None:
    """``%catalog`` and the record of a notebook that read through the default and a path agree."""
    import nbformat
    from kernel_harness import KernelSession

    notebook = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(notebook))
    kernel = KernelSession({"SCANDECK_DATA": str(tmp_path / "data"), "SCANDECK_CATALOG": ""})
    try:
        kernel.execute("%load_ext scandeck")
        shown = kernel.text_of(kernel.execute("%catalog")["msg_id"])
        code = (
            "import scandeck, json\n"
            f"scandeck.open_catalog({str(default_store())!r})[{stored[0]!r}].primary.read()\n"
            f"scandeck.open_catalog()[{stored[1]!r}].primary.read()\n"
            "from scandeck.provenance.context import current\n"
            "print(json.dumps([i['catalog'] for i in current().inputs()]))"
        )
        (names,) = [json.loads(line) for line in kernel.text_of(kernel.execute(code)["msg_id"]).splitlines()]
        kernel.execute(f"%provenance save --path {notebook}")
    finally:
        kernel.close()
    from scandeck.provenance.store import open_store

    store = open_store()
    try:
        (record,) = store.list()
    finally:
        store.close()
    default = scandeck.open_catalog()
    uri = default.source.uri
    default.close()
    assert names == [uri, uri]
    assert [i.catalog for i in record.inputs] == [uri, uri]
    assert f"Catalog {uri}" in shown  # the %catalog repr names it the same way
