"""Derived runs: written from a real RunEngine scan, found by their parents, read back equal."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import scandeck
from scandeck.catalog import Run
from scandeck.exceptions import AmbiguousUID
from scandeck.provenance.context import current


@pytest.fixture(autouse=True)
def fresh_context():
    from scandeck.derived import clear_written

    current().clear()
    clear_written()
    yield
    current().clear()
    clear_written()


@pytest.fixture
def scanned(RE, sqlite_cat):  # noqa: N803
    """A sqlite catalog holding one bp.scan of ophyd.sim's det against motor."""
    import bluesky.plans as bp
    from ophyd.sim import det, motor

    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.scan([det], motor, -1, 1, 7), sample="Ni")
    current().clear()
    return sqlite_cat, uid


def normalized(parent: Run) -> pd.DataFrame:
    df = parent.primary.to_pandas()
    return pd.DataFrame({"motor": df["motor"].to_numpy(), "det_norm": (df["det"] / df["det"].max()).to_numpy()})


def test_derive_from_a_real_scan(scanned):
    cat, parent_uid = scanned
    parent = cat[parent_uid]
    table = normalized(parent)
    current().clear()  # reading the parent noted it; derive must note it by itself

    run = scandeck.derive(
        cat,
        [parent],
        table,
        units={"det_norm": "a.u."},
        metadata={"sample": "Ni", "purpose": "normalize"},
        record_id="rec-1",
    )
    noted = current().inputs()  # before this test reads the new run (reading notes it)

    assert isinstance(run, Run) and run.status == "success"
    start = run.start
    assert start["parent_uids"] == [parent_uid]
    assert start["plan_name"] == "derived" and start["provenance_record"] == "rec-1"
    assert start["sample"] == "Ni" and start["purpose"] == "normalize"
    # Found by its parent with scandeck's queries, and by metadata.
    found = cat.search(f'parent_uids contains "{parent_uid}"')
    assert [r.uid for r in found] == [run.uid]
    assert len(cat.search('plan_name == "derived" and provenance_record == "rec-1"')) == 1
    assert len(cat.search('parent_uids contains "nobody"')) == 0
    # Reads back equal.
    back = run.primary.to_pandas()
    assert list(back.index) == list(range(1, 8))
    pd.testing.assert_frame_equal(back[["motor", "det_norm"]].reset_index(drop=True), table)
    assert run.primary.data_keys["det_norm"]["units"] == "a.u."
    assert run.primary.data_keys["motor"]["dtype"] == "number"
    ds = run.primary.read()
    np.testing.assert_allclose(ds["det_norm"].to_numpy(), table["det_norm"].to_numpy())
    assert ds["det_norm"].attrs["units"] == "a.u."
    # The parent is an input of this process; the derived run is an output, not an input.
    assert [i["uid"] for i in noted] == [parent_uid]
    assert noted[0]["scan_id"] == parent.scan_id and noted[0]["catalog"]
    assert scandeck.derived.written() == [{"uid": run.uid, "catalog": cat.name}]


def test_parents_as_uids_and_prefixes_and_many(scanned):
    cat, first = scanned
    run = scandeck.derive(cat, first[:8], {"x": [1.0, 2.0]})
    assert run.start["parent_uids"] == [first]
    from scandeck.provenance.context import peek_pending_record_id

    assert run.start["provenance_record"] == peek_pending_record_id()  # the next record's id
    second = scandeck.derive(cat, [first, run, "elsewhere-uid", first], {"x": [3.0]})
    assert second.start["parent_uids"] == [first, run.uid, "elsewhere-uid"]
    assert [i["uid"] for i in current().inputs()] == [first, run.uid, "elsewhere-uid"]
    assert {r.uid for r in cat.search(f'parent_uids contains "{first}"')} == {run.uid, second.uid}
    assert [r.uid for r in cat.search(f'parent_uids contains "{run.uid}"')] == [second.uid]


def test_ambiguous_parent_prefix(scanned):
    cat, first = scanned
    runs = [scandeck.derive(cat, first, {"x": [float(i)]}) for i in range(20)]
    uids = [first] + [r.uid for r in runs]
    shared = next(u[0] for u in uids if sum(v[0] == u[0] for v in uids) > 1)
    with pytest.raises(AmbiguousUID):
        scandeck.derive(cat, shared, {"x": [1.0]})


def test_column_types_read_back(cat):
    data = {
        "i": [1, 2, 3],
        "f": [0.5, float("nan"), 2.5],
        "b": [True, False, True],
        "s": ["a", "b", "c"],
        "img": [np.full((2, 3), k, dtype=float) for k in range(3)],
    }
    run = scandeck.derive(cat, ["p"], data, stream="fit")
    assert list(run) == ["fit"]
    keys = run.fit.data_keys
    assert {k: keys[k]["dtype"] for k in data} == {
        "i": "integer",
        "f": "number",
        "b": "boolean",
        "s": "string",
        "img": "array",
    }
    assert keys["img"]["shape"] == [2, 3] and keys["i"]["shape"] == []
    ds = run.fit.read()
    assert ds["i"].to_numpy().tolist() == [1, 2, 3] and ds["i"].dtype == np.int64
    np.testing.assert_array_equal(ds["f"].to_numpy(), np.array(data["f"]))
    assert ds["b"].to_numpy().tolist() == [True, False, True]
    assert list(ds["s"].to_numpy()) == ["a", "b", "c"]
    assert ds["img"].shape == (3, 2, 3)
    np.testing.assert_array_equal(ds["img"].to_numpy(), np.stack(data["img"]))


def test_empty_table(cat):
    run = scandeck.derive(cat, ["p"], pd.DataFrame({"x": pd.Series([], dtype=float)}))
    assert len(run.primary) == 0 and run.status == "success"


def test_bad_input_stores_nothing(cat):
    before = len(cat)
    with pytest.raises(ValueError, match="different lengths"):
        scandeck.derive(cat, ["p"], {"x": [1.0, 2.0], "y": [1.0]})
    with pytest.raises(ValueError, match="units"):
        scandeck.derive(cat, ["p"], {"x": [1.0]}, units={"y": "mm"})
    with pytest.raises(ValueError, match="rename"):
        scandeck.derive(cat, ["p"], {"time": [1.0]})
    with pytest.raises(ValueError, match="pass parents"):
        scandeck.derive(cat, ["p"], {"x": [1.0]}, metadata={"parent_uids": ["q"]})
    with pytest.raises(ValueError, match="no columns"):
        scandeck.derive(cat, ["p"], {})
    with pytest.raises(TypeError, match="cannot store"):
        scandeck.derive(cat, ["p"], {"x": [1.0, "a"]})
    with pytest.raises(TypeError, match="Runs or uid strings"):
        scandeck.derive(cat, [3], {"x": [1.0]})
    assert len(cat) == before
    assert current().inputs() == [] and scandeck.derived.written() == []


def test_derive_by_catalog_path(tmp_path):
    from scandeck.derived import derive

    store = tmp_path / "store"
    run = derive(store, ["p"], {"x": [1.0]})
    assert run.uid in scandeck.open_catalog(store)
    again = scandeck.derive(str(store), ["p"], {"x": [2.0]})
    assert len(scandeck.open_catalog(store).search('parent_uids contains "p"')) == 2
    assert again.uid != run.uid


def test_importing_scandeck_does_not_import_derive():
    probe = "import sys, scandeck; print('scandeck.derived' in sys.modules, callable(scandeck.derive))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
