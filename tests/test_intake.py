"""Intake integration: the datatype and reader, the shipped catalog file, named catalogs.

Every test points ``SCANDECK_DATA`` and ``SCANDECK_CATALOGS`` at temporary
directories, so the default store and the catalog search path are the test's own
and the only shipped file seen is ``catalogs/scandeck.yaml``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import intake
import pytest
from event_model import compose_run

import scandeck
from scandeck import config
from scandeck.catalog import Catalog
from scandeck.catalog_files import list_entries, open_entry
from scandeck.exceptions import ScandeckError, UnknownName
from scandeck.intake_readers import CATALOG_TYPE, ScandeckReader, ScandeckStore
from scandeck.sources import open_source

Opener = Callable[[Catalog], Catalog]


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty data directory and an empty user catalog directory, in the environment."""
    data, cats = tmp_path / "data", tmp_path / "catalogs"
    cats.mkdir()
    monkeypatch.setenv("SCANDECK_DATA", str(data))
    monkeypatch.setenv("SCANDECK_CATALOGS", str(cats))
    return {"data": data, "catalogs": cats}


@pytest.fixture
def opened() -> Iterator[Opener]:
    """Registers catalogs to close at teardown (an open sqlite connection left to
    the garbage collector is a ResourceWarning, an error here)."""
    catalogs: list[Catalog] = []

    def keep(cat: Catalog) -> Catalog:
        catalogs.append(cat)
        return cat

    yield keep
    for cat in catalogs:
        cat.close()


def shipped() -> Path:
    """scandeck's own catalog file, wherever this install keeps it."""
    return config.catalog_dirs()[-1] / "scandeck.yaml"


def write_run(cat: Catalog, **metadata: object) -> str:
    """Store a finished one-event run through ``cat.writer()``; return its uid."""
    bundle = compose_run(metadata={"plan_name": "count", **metadata})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={"det": {"dtype": "number", "shape": [], "source": "sim:det"}},
    )
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    writer("event", desc.compose_event(data={"det": 1.5}, timestamps={"det": 0.0}, seq_num=1))
    writer("stop", bundle.compose_stop())
    return bundle.start_doc["uid"]


def uids(cat: Catalog) -> set[str]:
    return {run.uid for run in cat}


def store_catalog_yaml(name: str, uri: str, description: str = "") -> str:
    """A user catalog file with one scandeck entry, written the way users write them."""
    return textwrap.dedent(
        f"""\
        version: 2
        metadata: {{}}
        user_parameters: {{}}
        data:
          {name}_store:
            datatype: scandeck.intake_readers:ScandeckStore
            kwargs: {{uri: "{uri}"}}
            metadata: {{}}
            user_parameters: {{}}
        entries:
          {name}:
            reader: scandeck.intake_readers:ScandeckReader
            kwargs: {{data: "{{data({name}_store)}}"}}
            output_instance: scandeck.catalog:Catalog
            metadata: {{description: "{description}"}}
            user_parameters: {{}}
        aliases:
          {name}: {name}
        """
    )


# -- the shipped catalog file ----------------------------------------------------------------


def test_shipped_local_entry_opens_the_default_store(dirs, opened: Opener) -> None:
    default = opened(scandeck.open_catalog())
    written = {write_run(default, sample="Ni"), write_run(default, sample="Cu")}

    via_intake = opened(intake.from_yaml_file(str(shipped()))["local"].read())

    assert isinstance(via_intake, Catalog)
    assert via_intake.source.uri.startswith(f"sqlite://{(dirs['data'] / 'store').resolve()}")
    assert uids(via_intake) == written
    assert via_intake[-1].primary.read()["det"].values.tolist() == [1.5]


def test_shipped_catalog_is_a_complete_intake_2_catalog(dirs) -> None:
    cat = intake.from_yaml_file(str(shipped()))
    assert cat.version == 2
    assert list(cat) == ["local", "redis"]  # examples stay commented
    reader = cat["local"]
    assert isinstance(reader, ScandeckReader)
    assert reader.output_instance == CATALOG_TYPE
    assert reader.data == ScandeckStore(None)
    assert cat["redis"].data == ScandeckStore("redis://localhost:6379/0?prefix=scandeck")


def test_a_user_catalog_file_points_redis_at_the_facility_bus(dirs, redis_server) -> None:
    """The shipped "redis" entry names localhost; a facility's file of its own wins."""
    user_dir = dirs["catalogs"]
    text = (
        shipped()
        .read_text()
        .replace(
            "redis://localhost:6379/0?prefix=scandeck",
            f"{redis_server.url}?prefix=facility-{uuid.uuid4().hex[:6]}",
        )
    )
    (user_dir / "facility.yaml").write_text(text)
    cat = scandeck.open_catalog("redis")
    try:
        assert cat.source.uri.startswith(redis_server.url) and "prefix=facility-" in cat.source.uri
        assert len(cat) == 0
        write_run(cat, scan_id=7)
        assert cat[7].status == "success"
    finally:
        cat.close()


def test_open_catalog_by_name_and_default_see_the_same_runs(dirs, opened: Opener) -> None:
    default = opened(scandeck.open_catalog())
    written = {write_run(default, scan_id=1), write_run(default, scan_id=2)}

    named = opened(scandeck.open_catalog("local"))
    assert named.name == default.name == default.source.uri  # one store, one name
    assert uids(named) == uids(opened(scandeck.open_catalog())) == written
    # A run written through one handle is seen by the other.
    later = write_run(named, scan_id=3)
    assert later in default
    assert list_entries()["local"].path == shipped()


# -- user catalog files ----------------------------------------------------------------------


def test_user_catalog_entry_opens_a_store_at_a_path(dirs, tmp_path: Path, opened: Opener) -> None:
    store = tmp_path / "beamtime" / "store"
    written = write_run(opened(Catalog(open_source(store))), proposal="p-17")
    user_file = dirs["catalogs"] / "beamtimes.yaml"
    user_file.write_text(store_catalog_yaml("beamtime", str(store), "June beamtime"))

    entry = list_entries()["beamtime"]
    assert (entry.path, entry.description) == (user_file, "June beamtime")

    by_name = opened(scandeck.open_catalog("beamtime"))
    via_intake = opened(intake.from_yaml_file(str(user_file))["beamtime"].read())
    assert by_name.name == by_name.source.uri == opened(scandeck.open_catalog(store)).name
    assert uids(by_name) == uids(via_intake) == {written}
    assert by_name.source.uri == via_intake.source.uri
    assert uids(opened(scandeck.open_catalog())) == set()  # not the default store


def test_store_next_to_the_catalog_file_via_catalog_dir(dirs, opened: Opener) -> None:
    # Intake expands {CATALOG_DIR} to a file:// URL; the datatype takes it as a path.
    written = write_run(opened(Catalog(open_source(dirs["catalogs"] / "store"))))
    (dirs["catalogs"] / "here.yaml").write_text(store_catalog_yaml("here", "{CATALOG_DIR}/store"))

    assert uids(opened(scandeck.open_catalog("here"))) == {written}


def test_catalog_written_by_intake_is_listed(dirs, opened: Opener) -> None:
    # Intake names an entry by its key and writes no alias for it.
    cat = intake.entry.Catalog()
    cat["scratch"] = ScandeckReader(ScandeckStore("memory://test-intake-scratch"))
    cat.to_yaml_file(str(dirs["catalogs"] / "written.yaml"))

    assert "scratch" in list_entries()
    assert opened(open_entry("scratch")).source.uri == "memory://test-intake-scratch"


def test_first_definition_of_a_name_wins(dirs, tmp_path: Path, opened: Opener) -> None:
    store = tmp_path / "elsewhere"
    written = write_run(opened(Catalog(open_source(store))))
    (dirs["catalogs"] / "mine.yaml").write_text(store_catalog_yaml("local", str(store)))

    assert list_entries()["local"].path == dirs["catalogs"] / "mine.yaml"
    assert uids(opened(scandeck.open_catalog("local"))) == {written}


def test_other_yaml_files_are_passed_over(dirs, caplog: pytest.LogCaptureFixture) -> None:
    (dirs["catalogs"] / "settings.yaml").write_text("theme: dark\n")
    (dirs["catalogs"] / "v1.yml").write_text("sources: {}\n")
    (dirs["catalogs"] / "notes.txt").write_text("version: 2\n")
    with caplog.at_level(logging.WARNING, logger="scandeck.catalog_files"):
        assert list(list_entries()) == ["local", "redis"]
    assert caplog.records == []


# -- errors ----------------------------------------------------------------------------------


def test_unknown_name_lists_what_exists_and_how_to_add_one(dirs, tmp_path: Path) -> None:
    (dirs["catalogs"] / "beamtimes.yaml").write_text(store_catalog_yaml("beamtime", str(tmp_path / "store")))
    with pytest.raises(UnknownName) as info:
        scandeck.open_catalog("nosuchname")
    message = str(info.value)
    assert isinstance(info.value, KeyError)
    for expected in (
        "'nosuchname'",
        "local",
        "beamtime",
        str(dirs["catalogs"]),
        str(shipped().parent),
        "SCANDECK_CATALOGS",
    ):
        assert expected in message


def test_malformed_file_is_skipped_logged_and_named(dirs, caplog: pytest.LogCaptureFixture) -> None:
    broken = dirs["catalogs"] / "broken.yaml"
    broken.write_text("version: 2\nentries: [unclosed\n")
    incomplete = dirs["catalogs"] / "incomplete.yaml"
    incomplete.write_text("version: 2\nentries: {}\n")

    with caplog.at_level(logging.WARNING, logger="scandeck.catalog_files"):
        assert list(list_entries()) == ["local", "redis"]  # the others still work
    assert {r.getMessage().split(":")[0] for r in caplog.records} == {
        f"skipping catalog file {broken}",
        f"skipping catalog file {incomplete}",
    }
    with pytest.raises(UnknownName) as info:
        open_entry("beamtime")
    assert "not valid YAML" in str(info.value)
    assert "missing or not a mapping: data, aliases, user_parameters, metadata" in str(info.value)


def test_broken_entry_names_its_file(dirs) -> None:
    text = store_catalog_yaml("broken", "/nowhere").replace("{data(broken_store)}", "{data(typo)}")
    (dirs["catalogs"] / "broken.yaml").write_text(text)

    with pytest.raises(ScandeckError, match=r"'broken' in .*broken\.yaml could not be opened"):
        open_entry("broken")


# -- the datatype and reader -----------------------------------------------------------------


def test_entry_point_import_registers_the_reader_without_loading_the_catalog() -> None:
    # A fresh interpreter: only `import intake`, which imports scandeck.intake_readers
    # through the intake.imports entry point.
    code = textwrap.dedent(
        """
        import sys
        import intake
        from intake.readers.readers import BaseReader
        from intake.readers.utils import subclasses
        module = sys.modules["scandeck.intake_readers"]
        assert module.ScandeckReader in subclasses(BaseReader)
        assert "scandeck.catalog" not in sys.modules, "import should stay light"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "failed" not in done.stderr  # intake logs entry-point import failures


def test_intake_recommends_the_reader_for_the_datatype() -> None:
    store = ScandeckStore("memory://test-intake-recommend")
    assert intake.readers.readers.recommend(store)["importable"] == [ScandeckReader]
    assert store.possible_outputs == {ScandeckReader: CATALOG_TYPE}
    reader = store.to_reader(outtype=CATALOG_TYPE)
    assert isinstance(reader, ScandeckReader)
    assert reader.read().source.uri == "memory://test-intake-recommend"


@pytest.mark.parametrize("uri", [None, ""])
def test_no_uri_is_the_default_store(dirs, opened: Opener, uri: str | None) -> None:
    written = write_run(opened(scandeck.open_catalog()))
    cat = opened(ScandeckReader(ScandeckStore(uri)).read())
    assert (cat.name, uids(cat)) == (opened(scandeck.open_catalog()).name, {written})
    assert uids(opened(ScandeckReader().read())) == {written}


def test_store_locations() -> None:
    assert ScandeckStore("file:///data/a%20b/store").location() == "/data/a b/store"
    assert ScandeckStore("sqlite:///data/x.sqlite").location() == "sqlite:///data/x.sqlite"
    assert ScandeckStore("~/store").location() == "~/store"  # open_source expands ~


def test_store_round_trips_through_a_catalog_entry() -> None:
    store = ScandeckStore("memory://test-intake-entry", metadata={"description": "scratch"})
    cat = intake.entry.Catalog()
    cat["scratch"] = store
    assert cat["scratch"] == store
    assert cat["scratch"].metadata == {"description": "scratch"}


def test_scandeck_catalog_env_chooses_the_default(tmp_path, monkeypatch):
    import scandeck

    chosen = tmp_path / "chosen-store"
    writer = scandeck.open_catalog(chosen).writer()
    bundle = compose_run()
    writer("start", bundle.start_doc)
    writer("stop", bundle.compose_stop())
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SCANDECK_CATALOG", str(chosen))
    assert scandeck.open_catalog()[-1].uid == bundle.start_doc["uid"]
    monkeypatch.delenv("SCANDECK_CATALOG")
    assert len(scandeck.open_catalog()) == 0
