"""``scandeck.glue``: values a notebook publishes, kept in its provenance record, and shown as
columns of the run a rerun was pointed at.

The reruns are real: three scans by a real RunEngine in an embedded store, a notebook that
glues the peak position it finds, recorded with ``scandeck run`` and rerun with ``scandeck
rerun`` (papermill, real kernels). The record is named ``peak-fit``: its columns are
``peak-fit.cen``, searched as ``columns.peak-fit.cen``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
from gauss_scans import gauss_scans

import scandeck
from scandeck.cli import main
from scandeck.exceptions import InvalidGlue, UnsupportedGlueType
from scandeck.provenance.context import current
from scandeck.provenance.glue import RESERVED
from scandeck.provenance.published import publish_values, published_key
from scandeck.provenance.record import ProvenanceRecord
from scandeck.provenance.store import open_store
from scandeck.query.values import KEYWORDS
from scandeck.runtable.model import PUBLISHED_MARK
from scandeck.runtable.rows import published_columns, resolve_columns
from scandeck.runtable.service import ColumnService
from scandeck.server.cells import offered_columns

CENTERS = (-0.5, 0.5, 0.25)  # on the grid of a 9-point scan from -1 to 1: the peak is exactly there
SAMPLES = ("Cu", "Ni", "Fe")

GLUE_CELL = """\
import scandeck
cat = scandeck.open_catalog(catalog)
run = cat[scan_uid]
ds = run.primary.read()
scandeck.glue("cen", float(ds.motor[int(ds.det.values.argmax())]))
scandeck.glue("points", len(ds.time))
scandeck.glue("sample", run.metadata["start"]["sample"])
scandeck.glue("profile", ds.det.values[:3])
scandeck.glue("points", ds.time.size)  # glued again: the last value counts
"""


@pytest.fixture
def clean_context():
    """This process's provenance context, emptied before and after (glue writes into it)."""
    current().clear()
    yield current()
    current().clear()


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("cen", float("nan"), InvalidGlue, "only finite numbers"),
        ("cen", np.float64("inf"), InvalidGlue, "only finite numbers"),
        ("cen", [1.0, float("nan")], InvalidGlue, "item 1 of the list is nan"),
        ("cen", list(range(1001)), InvalidGlue, "at most 1000 items, not 1001"),
        ("cen", "x" * 70_000, InvalidGlue, "at most 65536 can be glued"),
        ("cen", 2**70, InvalidGlue, "integer of 71 bits"),
        ("cen", "lone \ud800", InvalidGlue, "not valid Unicode"),
        ("cen", object(), UnsupportedGlueType, "of type object: glue takes numbers, strings"),
        ("cen", {"a": 1}, UnsupportedGlueType, "a dict cannot be glued"),
        ("cen", [[1, 2]], UnsupportedGlueType, "item 0 of the list is of type list"),
        ("cen", np.zeros((2, 2)), UnsupportedGlueType, "array of 2 dimensions"),
        ("1cen", 1, InvalidGlue, "a name is an identifier of at most 64 characters"),
        ("peak.cen", 1, InvalidGlue, "a name is an identifier"),
        ("and", 1, InvalidGlue, "not a query word"),
        ("x" * 65, 1, InvalidGlue, "at most 64 characters"),
        ("", 1, InvalidGlue, "a name is an identifier"),
        (3, 1, UnsupportedGlueType, "name is a string such as 'cen', not int"),
    ],
)
def test_hostile_names_and_values_are_refused_with_what_is_allowed(clean_context, name, value, error, message):
    with pytest.raises(error, match=message):
        scandeck.glue(name, value)
    assert isinstance(error("x"), ValueError)  # both are ValueErrors; the wrong types also TypeErrors
    assert clean_context.values() == {}  # nothing half-kept


def test_numbers_strings_lists_and_numpy_are_kept_as_json_and_the_last_value_wins(clean_context):
    scandeck.glue("cen", np.float64(0.5))
    scandeck.glue("n", np.int64(7))
    scandeck.glue("ok", np.bool_(True))
    scandeck.glue("xs", np.arange(3))
    scandeck.glue("label", "Ni ✓ \x1b[2J")
    scandeck.glue("nothing", None)
    scandeck.glue("cen", 0.75)
    values = clean_context.values()
    assert values == {"cen": 0.75, "n": 7, "ok": True, "xs": [0, 1, 2], "label": "Ni ✓ \x1b[2J", "nothing": None}
    assert list(values) == ["cen", "n", "ok", "xs", "label", "nothing"]  # in the order first glued
    assert [type(values[k]) for k in ("n", "ok", "xs")] == [int, bool, list]
    json.dumps(values, allow_nan=False)


def test_a_value_name_is_never_a_query_word():
    assert KEYWORDS <= RESERVED


def test_interactive_records_and_the_kernel_report_carry_the_values(tmp_path, clean_context):
    from scandeck.provenance.recording import kernel_report, preview, record_interactive

    class Shell:
        user_ns: dict = {}

    nb = tmp_path / "peak fit.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    scandeck.glue("cen", 0.25)
    scandeck.glue("label", "good")
    assert json.loads(kernel_report())["values"] == {"cen": 0.25, "label": "good"}
    shown = preview(Shell(), path=nb)  # %provenance: what would be recorded
    assert "values      cen=0.25, label='good'" in repr(shown) and "label=&#x27;good&#x27;" in shown._repr_html_()
    store = open_store(tmp_path / "prov")
    try:
        record, _ = record_interactive(Shell(), path=nb, store=store)
        assert record.values == {"cen": 0.25, "label": "good"} == store.get(record.id).values
        assert store.notebook(record).metadata.scandeck["values"] == record.values
    finally:
        store.close()


def test_records_from_before_values_still_load():
    old = {
        "schema_version": 1,
        "id": "a" * 32,
        "name": "old",
        "kind": "batch",
        "created": 1.0,
        "environment": {"python": "3.11.7", "platform": "Linux"},
    }
    assert ProvenanceRecord.model_validate(old).values == {}


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(GLUE_CELL),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three scans, the notebook recorded with ``scandeck run`` on the first, rerun on the other two."""
    tmp = tmp_path_factory.mktemp("glue")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(tmp / "data"))
        store = tmp / "store"
        cat = scandeck.open_catalog(store)
        uids = gauss_scans(cat, CENTERS, [9] * len(CENTERS), sample=SAMPLES)
        nb = tmp / "peak-fit.ipynb"
        _notebook(nb)
        code, _ = _cli("run", str(nb), "-p", "scan_uid", uids[0], "-p", "catalog", str(store))
        assert code == 0
        prov = open_store(tmp / "data" / "provenance")
        (record,) = prov.list()
        code, _ = _cli(
            "rerun", record.id, "--scan", uids[1], "--scan", uids[2], "--catalog", str(store),
            "--output-dir", str(tmp / "reruns"), "--workers", "2", "--no-progress",
        )  # fmt: skip
        assert code == 0
        yield {"tmp": tmp, "store": store, "cat": cat, "uids": uids, "record": record, "prov": prov}
        cat.close()
        prov.close()


def test_scandeck_run_records_the_glued_values(world):
    record = world["record"]
    assert record.name == "peak-fit" and record.kind == "batch"
    assert record.values["cen"] == CENTERS[0] and record.values["points"] == 9 and record.values["sample"] == "Cu"
    assert len(record.values["profile"]) == 3 and list(record.values) == ["cen", "points", "sample", "profile"]
    assert not world["cat"].source.cells([world["uids"][0]])  # a batch record has no target: nothing published


def test_each_rerun_record_has_its_values_and_they_are_columns_of_its_target(world):
    cat, prov, record, uids = world["cat"], world["prov"], world["record"], world["uids"]
    children = {c.target_scan: c for c in prov.children(record.id)}
    for uid, center, sample in zip(uids[1:], CENTERS[1:], SAMPLES[1:], strict=True):
        child = children[uid]
        assert child.kind == "rerun" and child.status == "ok"
        assert (child.values["cen"], child.values["sample"]) == (center, sample)
        cells = cat[uid].cells
        assert (
            cells["peak-fit.cen"].value == center and cells["peak-fit.cen"].code_hash == PUBLISHED_MARK + child.id
        )
        assert cells["peak-fit.profile"].value == child.values["profile"]
    df = cat.table(columns=["scan_id", "peak-fit.cen", "columns.peak-fit.sample"])
    assert list(df.columns) == ["scan_id", "peak-fit.cen", "peak-fit.sample"]
    assert df.loc[uids[1], "peak-fit.cen"] == 0.5 and df.loc[uids[2], "peak-fit.sample"] == "Fe"
    assert math.isnan(df.loc[uids[0], "peak-fit.cen"])
    states = df.attrs["states"]
    assert states.loc[uids[1], "peak-fit.cen"] == "ok" and states.loc[uids[0], "peak-fit.cen"] == "missing"


def test_a_search_on_a_published_value_finds_its_run(world):
    cat, uids = world["cat"], world["uids"]
    assert published_key("peak-fit.cen") == "columns.peak-fit.cen"
    assert list(cat.search("columns.peak-fit.cen > 0.4").keys()) == [uids[1]]
    assert list(cat.search('columns.peak-fit.sample == "Fe"').keys()) == [uids[2]]
    assert set(cat.search("columns.peak-fit.points == 9").keys()) == set(uids[1:])
    first = cat[uids[2]].cells["peak-fit.profile"].value[2]  # (its [0] is the other run's [1])
    assert list(cat.search(f"columns.peak-fit.profile contains {first!r}").keys()) == [uids[2]]


@pytest.mark.parametrize(
    "record", ["peak.fit v1.2", 'it\'s "x"', "a`b\\c", "and", "1st", "tab\there", "line\nbreak", "rtl\u202egnp"]
)
def test_the_search_key_of_a_published_value_reads_back_whatever_the_record_name(record):
    """A record's name is any text (``--name``, a file stem): its published key still parses, to it."""
    from scandeck.query import parse
    from scandeck.safe_text import UNSAFE

    key = published_key(f"{record}.cen")
    assert not UNSAFE.search(key), key  # shown as is in the panel and the command line
    assert parse(f"{key} == 1").matches({}, None, {"columns": {record: {"cen": 1}}})
    assert not parse(f"{key} == 1").matches({}, None, {"columns": {record: {"cen": 2}}})


def test_the_column_picker_and_every_table_offer_the_published_columns(world):
    cat = world["cat"]
    names = ["peak-fit.cen", "peak-fit.points", "peak-fit.profile", "peak-fit.sample"]
    assert published_columns(cat.source) == names
    offered = [c["name"] for c in offered_columns(cat)["columns"] if c["kind"] == "published"]
    assert offered == names
    refs = resolve_columns(cat, "peak-fit.cen,columns.peak-fit.points")
    assert [(r.name, r.kind) for r in refs] == [("peak-fit.cen", "published"), ("peak-fit.points", "published")]
    code, out = _cli("ls", "--catalog", str(world["store"]), "--columns", "scan_id,peak-fit.cen")
    assert code == 0 and "peak-fit.cen" in out and "0.5" in out


def test_provenance_show_lists_the_values_escaped(world):
    prov, record, uids = world["prov"], world["record"], world["uids"]
    child = next(c for c in prov.children(record.id) if c.target_scan == uids[1])
    code, out = _cli("provenance", "show", child.id, "--store", str(prov.directory))
    assert code == 0
    section = out.split("values (published with scandeck.glue)")[1].split("\n\n")[0]
    assert "cen" in section and "0.5" in section and "'Ni'" in section
    assert "columns.peak-fit.cen" in section
    code, out = _cli("provenance", "show", child.id, "--store", str(prov.directory), "--json")
    assert json.loads(out)["values"]["cen"] == 0.5


def test_the_column_service_neither_deletes_nor_recomputes_published_values(world):
    cat, uids = world["cat"], world["uids"]
    before = cat.source.cells(uids)
    (Path(world["store"]) / "columns.py").write_text(
        "import scandeck\n\n\n@scandeck.column('npts')\n"
        "def npts(run):\n    return run.metadata['start'].get('num_points')\n"
    )
    service = ColumnService(cat, workers=1)
    try:
        service.run_once()
    finally:
        service.close()
        (Path(world["store"]) / "columns.py").unlink()
    after = cat.source.cells(uids)
    for uid in uids[1:]:
        published = {n: c for n, c in after[uid].items() if "." in n}
        assert published == {n: c for n, c in before[uid].items() if "." in n} and len(published) == 4
        assert after[uid]["npts"].value == 9  # the service did run


def test_a_newer_rerun_replaces_the_values_and_an_older_one_does_not(world):
    cat, prov, record, uids = world["cat"], world["prov"], world["record"], world["uids"]
    from scandeck.provenance.rerun import rerun

    first = next(c for c in prov.children(record.id) if c.target_scan == uids[1])
    (result,) = rerun(
        record.id, scans=[uids[1]], catalog=cat, store=prov, output_dir=world["tmp"] / "again", workers=1
    )
    assert result.ok
    newer = prov.get(result.record_id)
    assert cat[uids[1]].cells["peak-fit.cen"].code_hash == PUBLISHED_MARK + newer.id
    assert publish_values(cat, first) == []  # the older record's values lose
    assert cat[uids[1]].cells["peak-fit.cen"].code_hash == PUBLISHED_MARK + newer.id
    # A newer record that no longer publishes a name takes its value away (None: no value).
    fewer = newer.model_copy(update={"id": "f" * 32, "created": newer.created + 1, "values": {"cen": 0.4}})
    assert publish_values(cat, fewer) == ["peak-fit.cen", "peak-fit.points", "peak-fit.profile", "peak-fit.sample"]
    cells = cat[uids[1]].cells
    assert cells["peak-fit.cen"].value == 0.4 and cells["peak-fit.points"].value is None
    assert uids[1] not in cat.search("columns.peak-fit.points == 9")
    failed = fewer.model_copy(update={"id": "e" * 32, "created": fewer.created + 1, "status": "failed"})
    assert publish_values(cat, failed) == []  # a failed rerun leaves the last good values
