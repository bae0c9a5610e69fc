"""``scandeck rerun`` with real kernels on runs stored by a real RunEngine.

One notebook is recorded with ``scandeck run`` on the first of four scans; the
scans differ in their number of points (5, 7, 9, 11) and in where their peak is,
and the notebook prints both. It fails on purpose on the 7-point scan
(``assert len(ds.time) != 7``). The batches are module-scoped: each runs once and
several tests look at what it produced.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import nbformat
import pytest

from scandeck.cli import main
from scandeck.provenance.store import open_store

CENTERS = (-0.5, 0.0, 0.5, 0.25)
POINTS = (5, 7, 9, 11)
SAMPLES = ("Cu", "Ni", "Ni", "Cu")


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import scandeck\ncat = scandeck.open_catalog(catalog)\nds = cat[scan_uid].primary.read()"
        ),
        nbformat.v4.new_code_cell('assert len(ds.time) != 7, "seven events"'),
        nbformat.v4.new_code_cell(
            'peak = float(ds.motor[int(ds.det.values.argmax())])\nprint(f"events {len(ds.time)} peak {peak:.3f}")'
        ),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def printed(path: str | Path) -> str:
    """The stdout of the notebook's last code cell."""
    nb = json.loads(Path(path).read_text())
    return "".join(
        "".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", []) if o.get("name") == "stdout"
    ).strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Four scans (RunEngine), the notebook, and its record made with ``scandeck run``."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import SynAxis, SynGauss

    import scandeck

    tmp = tmp_path_factory.mktemp("rerun")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(tmp / "data"))
        store = tmp / "store"
        cat = scandeck.open_catalog(store)
        RE = RunEngine({}, context_managers=[])  # noqa: N806
        RE.subscribe(cat.writer())
        motor = SynAxis(name="motor")
        scans = []
        for center, num, sample in zip(CENTERS, POINTS, SAMPLES, strict=True):
            det = SynGauss("det", motor, "motor", center=center, Imax=1, sigma=0.5)
            (uid,) = RE(bp.scan([det], motor, -1, 1, num), sample=sample)
            ds = cat[uid].primary.read()
            expected = f"events {num} peak {float(ds.motor[int(ds.det.values.argmax())]):.3f}"
            scans.append({"uid": uid, "scan_id": cat[uid].scan_id, "expected": expected})
        nb = tmp / "peak.ipynb"
        _notebook(nb)
        assert (
            main(
                ["run", str(nb), "-p", "scan_uid", scans[0]["uid"], "-p", "catalog", str(store), "--name", "peak"]
            )
            == 0
        )
        prov = open_store(tmp / "data" / "provenance")
        (record,) = prov.list()
        yield {"tmp": tmp, "store": store, "cat": cat, "scans": scans, "record": record, "prov": prov}
        cat.close()
        prov.close()


def _out(world, name: str, scan: dict) -> Path:
    return world["tmp"] / name / f"{scan['scan_id']}-{scan['uid'][:8]}.ipynb"


@pytest.fixture(scope="module")
def three(world):
    """``scandeck rerun ID --scan a --scan b --scan c --workers 2`` (uid prefixes): exit code, stdout, stderr."""
    a, _, c, d = world["scans"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "rerun",
                world["record"].id[:8],
                "--scan",
                a["uid"][:8],
                "--scan",
                c["uid"][:10],
                "--scan",
                d["uid"],
                "--workers",
                "2",
                "--catalog",
                str(world["store"]),
                "--output-dir",
                str(world["tmp"] / "three"),
            ]
        )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def by_query(world, three):
    """``scandeck rerun ID --query 'sample == "Ni"'``: the 7-point scan fails, the 9-point one not."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "rerun",
                world["record"].id,
                "--query",
                'sample == "Ni"',
                "--catalog",
                str(world["store"]),
                "--store",
                str(world["prov"].directory),
                "--output-dir",
                str(world["tmp"] / "query"),
                "--no-progress",
            ]
        )
    return code, out.getvalue()


def test_the_original_record(world):
    record = world["record"]
    assert record.kind == "batch" and record.status == "ok"
    assert [i.uid for i in record.inputs] == [world["scans"][0]["uid"]]
    assert record.parameters["scan_uid"] == world["scans"][0]["uid"]


def test_rerun_on_three_scans_records_each_with_its_own_result(world, three):
    assert three[0] == 0
    record, prov = world["record"], world["prov"]
    targets = [world["scans"][i] for i in (0, 2, 3)]
    children = [c for c in prov.children(record.id) if c.target_scan in {t["uid"] for t in targets}]
    assert len(children) == 3
    for child in children:
        assert child.kind == "rerun" and child.parent == record.id and child.status == "ok"
        assert [i.uid for i in child.inputs] == [child.target_scan]  # the kernel read the target
        assert child.parameters["scan_uid"] == child.target_scan
        assert child.parameters["catalog"] == str(world["store"])
    lines = []
    for scan in targets:
        out = _out(world, "three", scan)
        assert printed(out) == scan["expected"]
        lines.append(printed(out))
        stamp = nbformat.read(str(out), as_version=4).metadata.scandeck
        assert stamp.target_scan == scan["uid"] and stamp.parent == record.id
    assert len(set(lines)) == 3  # the data of each scan, not the original's


def test_rerun_by_query_keeps_going_past_a_failure(world, by_query):
    code, out = by_query
    assert code == 1
    _, seven, nine, _ = world["scans"]
    table = {line.split()[1]: line for line in out.splitlines()[1:3]}
    assert set(table) == {seven["uid"][:8], nine["uid"][:8]}  # the query's runs, and only those
    row = table[seven["uid"][:8]]
    assert "failed" in row and "cell 3: AssertionError: seven events" in row
    assert "1 of 2 reruns ok, 1 failed" in out
    assert printed(_out(world, "query", nine)) == nine["expected"]
    failed_nb = _out(world, "query", seven)
    assert failed_nb.exists()  # a failed rerun still writes its notebook, with the traceback
    nb = nbformat.read(str(failed_nb), as_version=4)
    assert any(o.get("ename") == "AssertionError" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    (failed,) = [c for c in world["prov"].children(world["record"].id) if c.target_scan == seven["uid"]]
    assert failed.status == "failed" and nb.metadata.scandeck.status == "failed"
    # cells: parameters, injected parameters, read, assert
    assert failed.error.cell_index == 3 and failed.error.ename == "AssertionError"
    assert failed.error.evalue == "seven events" and "assert len(ds.time) != 7" in failed.error.cell_source


def test_rerun_summary_table_and_progress(world, three):
    _, out, err = three
    lines = out.splitlines()
    assert lines[0].split() == ["scan_id", "uid", "status", "seconds", "error", "output"]
    rows = {line.split()[1]: line.split() for line in lines[1:4]}
    for i in (0, 2, 3):
        scan = world["scans"][i]
        row = rows[scan["uid"][:8]]
        assert row[0] == str(scan["scan_id"]) and row[2] == "ok" and float(row[3]) > 0
        assert row[4] == "-" and row[5] == str(_out(world, "three", scan))
    assert "3 of 3 reruns ok" in lines[4]
    assert "rerunning" in err and "3/3" in err  # the progress bar (tqdm)


def test_a_missing_scan_stops_everything_before_any_kernel(world, capsys):
    before = len(world["prov"])
    out_dir = world["tmp"] / "missing"
    code = main(
        [
            "rerun",
            world["record"].id,
            "--scan",
            world["scans"][0]["uid"],
            "--scan",
            "feedface",
            "--catalog",
            str(world["store"]),
            "--output-dir",
            str(out_dir),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert "scan 'feedface' not in" in err and "nothing was run" in err
    assert not out_dir.exists() and len(world["prov"]) == before


def test_dask_cluster_gives_the_same_results(world, three):
    distributed = pytest.importorskip("distributed")
    nine, eleven = world["scans"][2:]
    before = {c.id for c in world["prov"].children(world["record"].id)}
    out = io.StringIO()
    with warnings.catch_warnings():
        # distributed's LocalCluster may warn about its dashboard port or its own
        # deprecated internals; none of that is about reruns.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="distributed")
        warnings.filterwarnings("ignore", category=UserWarning, module="distributed")
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            contextlib.redirect_stdout(out),
        ):
            code = main(
                [
                    "rerun",
                    world["record"].id,
                    "--scan",
                    nine["uid"],
                    "--scan",
                    eleven["uid"],
                    "--dask",
                    cluster.scheduler_address,
                    "--catalog",
                    str(world["store"]),
                    "--output-dir",
                    str(world["tmp"] / "dask"),
                    "--no-progress",
                ]
            )
    assert code == 0, out.getvalue()
    for scan in (nine, eleven):
        assert printed(_out(world, "dask", scan)) == printed(_out(world, "three", scan)) == scan["expected"]
    new = [c for c in world["prov"].children(world["record"].id) if c.id not in before]
    assert sorted(r.target_scan for r in new) == sorted([nine["uid"], eleven["uid"]])
    assert all(r.status == "ok" and r.kind == "rerun" and r.inputs[0].uid == r.target_scan for r in new)


def test_lineage_of_the_scan(world, three):
    from scandeck.provenance.lineage import lineage, render

    first = world["scans"][0]["uid"]
    record, prov, cat = world["record"], world["prov"], world["cat"]
    tree = lineage(first, store=prov, catalog=cat)
    assert [n.id for n in tree.find("read by")] == [record.id]
    reruns = {n.id for n in tree.find("rerun")}
    assert {c.id for c in prov.children(record.id)} == reruns and len(reruns) >= 3
    try:
        from scandeck.derived import derive
    except ImportError:
        pytest.skip("scandeck.derive is not available: the derived-run part of lineage is not tested")
    derived = derive(cat, first, {"peak": [0.5]}, record_id=record.id)
    prov.add_output(record.id, {"uid": derived.uid, "catalog": cat.name})
    tree = lineage(first, store=prov, catalog=cat)
    assert [n.id for n in tree.find("wrote")] == [derived.uid]
    assert f"wrote  run {derived.uid[:8]}  derived  success" in render(tree)
