"""How a catalog is named: one rule (scandeck.opening.catalog_name) for every caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from scandeck.opening import ENV_CATALOG, catalog_name, chosen_catalog, open_catalog


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (None, "default"),
        ("", "default"),
        (Path("store"), "path"),
        ("./store", "path"),
        ("./store?mode=ro", "path"),
        ("data\\store", "path"),
        ("runs.sqlite", "path"),
        ("runs.db?mode=ro", "path"),
        ("sqlite:///data/store", "path"),
        ("memory://scratch", "uri"),
        ("redis://bus:6379/0?prefix=28id", "uri"),
        ("beamtime-2024", "name"),
        ("store", "name"),  # a catalog-file entry, else ./store (open_catalog decides which)
    ],
)
def test_every_kind_of_name(target, kind):
    assert catalog_name(target).kind == kind


def test_portable_text_makes_paths_absolute_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert catalog_name("./store?mode=ro").portable() == f"{tmp_path}/store?mode=ro"
    assert catalog_name("runs.sqlite").portable() == str(tmp_path / "runs.sqlite")
    for text in ("sqlite://rel/store", "memory://x", "beamtime-2024"):
        assert catalog_name(text).portable() == text


def test_the_environment_chooses_when_nothing_is_given(monkeypatch):
    monkeypatch.setenv(ENV_CATALOG, "memory://from-env")
    assert chosen_catalog(None) == catalog_name("memory://from-env")
    assert chosen_catalog("memory://given").text == "memory://given"
    cat = open_catalog()
    try:
        assert cat.source.uri == "memory://from-env"
    finally:
        cat.close()


def test_a_name_falls_back_to_a_store_directory_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_catalog("./here").close()  # creates the store
    assert catalog_name("here").store_path == Path("here")
    cat = open_catalog("here")  # no catalog file defines "here": the directory
    try:
        assert Path(cat.source.uri.removeprefix("sqlite://")).resolve().parent == (tmp_path / "here").resolve()
    finally:
        cat.close()
