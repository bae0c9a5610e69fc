"""Rerunning a notebook whose pipeline writes a live derived run (``to_run``), with real kernels.

``scandeck run`` records the notebook on one scan; ``scandeck rerun`` rebuilds the
derived run for another scan: in a batch kernel the pipeline runs over the stored run
to its end when the cell that built it ends, so the next cell sees the run complete and
the record lists it as its output. ``scandeck provenance lineage`` walks scan ->
record -> derived run, the derived run's line naming its pipeline.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import nbformat
import pytest
from gauss_scans import gauss_scans

from scandeck.cli import main
from scandeck.provenance.store import open_store

CENTERS = (-0.5, 0.5)
POINTS = (7, 9)

PIPELINE = """\
import scandeck
cat = scandeck.open_catalog(catalog)


def doubled(row):
    return row["det"] * 2


live = scandeck.live(cat[scan_uid])
out = live.stream().map(doubled).scan(lambda acc, x: acc + x, start=0.0).to_run(cat, metadata={"purpose": "total"})
"""


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\ncatalog = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(PIPELINE),
        nbformat.v4.new_code_cell("print(out.exit_status, out.events, out.done)"),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _printed(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "".join("".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", [])).strip()


def _totals(cat, uid: str) -> list[float]:
    acc, out = 0.0, []
    for det in cat[uid].primary.read()["det"].values:
        acc += float(det) * 2
        out.append(acc)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import scandeck

    tmp = tmp_path_factory.mktemp("to-run-rerun")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCANDECK_DATA", str(tmp / "data"))
        store = tmp / "store"
        cat = scandeck.open_catalog(store)
        scans = gauss_scans(cat, CENTERS, POINTS)
        nb = tmp / "totals.ipynb"
        _notebook(nb)
        out = tmp / "first.ipynb"
        code = main(
            [
                "run",
                str(nb),
                "-p",
                "scan_uid",
                scans[0],
                "-p",
                "catalog",
                str(store),
                "--name",
                "totals",
                "-o",
                str(out),
            ]
        )
        assert code == 0
        prov = open_store(tmp / "data" / "provenance")
        (record,) = prov.list()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(
                [
                    "rerun",
                    record.id,
                    "--scan",
                    scans[1],
                    "--catalog",
                    str(store),
                    "--output-dir",
                    str(tmp / "reruns"),
                    "--no-progress",
                ]
            )
        assert code == 0
        (rerun,) = prov.children(record.id)
        yield {
            "tmp": tmp,
            "store": store,
            "cat": cat,
            "scans": scans,
            "record": record,
            "rerun": rerun,
            "prov": prov,
        }
        cat.close()
        prov.close()


def test_the_recorded_notebook_wrote_a_complete_derived_run(world):
    cat, record = world["cat"], world["record"]
    assert record.status == "ok"
    (output,) = record.outputs
    derived = cat[output.uid]
    assert derived.metadata["start"]["parent_uids"] == [world["scans"][0]]
    assert derived.metadata["start"]["provenance_record"] == record.id
    assert derived.metadata["stop"]["exit_status"] == "success"
    assert derived.primary.read()["value"].values.tolist() == pytest.approx(_totals(cat, world["scans"][0]))
    assert [i.uid for i in record.inputs] == [world["scans"][0]]  # the derived run is no input
    # The cell after the pipeline's saw the derived run complete (ended with the cell that built it).
    assert _printed(world["tmp"] / "first.ipynb") == f"success {POINTS[0]} True"


def test_the_rerun_rebuilt_the_derived_run_for_its_scan(world):
    cat, rerun, scan = world["cat"], world["rerun"], world["scans"][1]
    assert rerun.status == "ok" and rerun.target_scan == scan
    (output,) = rerun.outputs
    derived = cat[output.uid]
    start = derived.metadata["start"]
    assert start["parent_uids"] == [scan] and start["provenance_record"] == rerun.id
    assert derived.metadata["stop"]["exit_status"] == "success"
    assert derived.primary.read()["value"].values.tolist() == pytest.approx(_totals(cat, scan))
    nodes = start["pipeline"]["nodes"]
    assert [n["type"] for n in nodes] == ["live", "map", "accumulate", "to_run"]
    assert nodes[1]["function"]["qualname"] == "doubled" and nodes[1]["function"]["sha256"]
    original = cat[world["record"].outputs[0].uid].metadata["start"]["pipeline"]["nodes"]
    assert [n.get("function") for n in nodes] == [n.get("function") for n in original]  # same code, same hashes


def test_lineage_walks_scan_record_derived_run(world, capsys):
    cat, rerun, scan = world["cat"], world["rerun"], world["scans"][1]
    derived = rerun.outputs[0].uid
    code = main(
        [
            "provenance",
            "lineage",
            scan[:8],
            "--catalog",
            str(world["store"]),
            "--store",
            str(world["prov"].directory),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"read by  record {rerun.id[:8]}" in text
    assert (
        f"wrote  run {derived[:8]}  derived  success  pipeline live(primary of {scan[:8]}) -> map(doubled) "
        "-> accumulate(<lambda>) -> to_run(primary)"
    ) in text
    assert cat[derived].metadata["start"]["parent_uids"] == [scan]
