"""``scandeck provenance ls|show|open|lineage``, the rerun planning and the executor registry.

No kernel here: records are built with the recording helpers and saved to a
provenance store under tmp_path; runs come from a real RunEngine. Reruns with real
kernels are in test_rerun.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from scandeck.cli import main
from scandeck.exceptions import RunNotFound, UnknownName
from scandeck.provenance.environment import capture
from scandeck.provenance.lineage import lineage, render
from scandeck.provenance.record import ErrorInfo
from scandeck.provenance.recording import build_record, save_stamped
from scandeck.provenance.rerun import (
    RerunResult,
    RerunSetupError,
    execute_plan,
    fresh_notebook,
    plan,
    resolve_targets,
    scan_parameter_of,
    summary_table,
)
from scandeck.provenance.rerun_executors import available_executors, get_executor, register_executor
from scandeck.provenance.store import open_store


def _notebook(scan_parameter: str | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None\nbins = 10", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "print('hello')", outputs=[nbformat.v4.new_output("stream", text="hello\n")], execution_count=1
        ),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if scan_parameter:
        nb.metadata["scandeck"] = {"scan_parameter": scan_parameter}
    return nb


@pytest.fixture
def world(tmp_path, RE, monkeypatch):  # noqa: N803 - the RunEngine fixture
    """A store with 3 runs (RunEngine), a provenance store with a record, two reruns, one failed."""
    import bluesky.plans as bp
    from ophyd.sim import det, motor

    import scandeck

    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    uids = []
    for sample in ("Ni", "Cu", "Ni"):
        uids += RE(bp.scan([det], motor, -1, 1, 5), sample=sample)
    prov = open_store(tmp_path / "prov")
    env = capture(kernel_name="python3")
    inputs = [
        {"uid": uids[0], "scan_id": 1, "catalog": cat.name, "streams": ["primary"], "fields": ["det", "motor"]}
    ]
    nb = _notebook()
    original = save_stamped(
        prov,
        build_record(
            nb,
            kind="batch",
            environment=env,
            name="peak",
            inputs=inputs,
            tags=["nightly"],
            notebook_path=tmp_path / "peak.ipynb",
            duration=1.5,
        ),
        nb,
    )
    reruns = []
    failure = ErrorInfo(cell_index=3, cell_source="assert x", ename="AssertionError", evalue="seven")
    for uid, error in ((uids[1], None), (uids[2], failure)):
        rec = build_record(
            _notebook(),
            kind="rerun",
            environment=env,
            name="peak",
            parent=original.id,
            target_scan=uid,
            inputs=[{"uid": uid, "catalog": cat.name}],
            error=error,
        )
        reruns.append(save_stamped(prov, rec, _notebook()))
    yield {
        "cat": cat,
        "store": store,
        "prov": prov,
        "uids": uids,
        "original": original,
        "reruns": reruns,
        "tmp": tmp_path,
    }
    cat.close()
    prov.close()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- ls -----------------------------------------------------------------------------------------


def test_ls_lists_records_newest_first_with_their_columns(world, capsys):
    code, out, _ = _run(capsys, "provenance", "ls", "--store", str(world["prov"].directory))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "kind", "status", "created", "inputs", "parent"]
    failed, ok, original = world["reruns"][1], world["reruns"][0], world["original"]
    assert [line.split()[0] for line in lines[1:]] == [failed.id[:8], ok.id[:8], original.id[:8]]
    assert lines[1].split()[2:4] == ["rerun", "failed"]
    assert lines[1].split()[-1] == original.id[:8] and lines[3].split()[-1] == "-"
    assert lines[3].split()[-2] == "1"  # one input


def test_ls_filters(world, capsys):
    prov = str(world["prov"].directory)
    uids = world["uids"]
    _, out, _ = _run(capsys, "provenance", "ls", "--store", prov, "--scan", uids[0][:6])
    assert [line.split()[0] for line in out.splitlines()[1:]] == [world["original"].id[:8]]
    _, out, _ = _run(capsys, "provenance", "ls", "--store", prov, "--kind", "rerun", "-n", "1")
    assert out.splitlines()[-1] == "1 of 2 records (-n N shows more, -n 0 all)"
    _, out, _ = _run(capsys, "provenance", "ls", "--store", prov, "--tag", "nightly", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [world["original"].id]
    # records that read any Cu run: the rerun on the second scan
    _, out, _ = _run(
        capsys, "provenance", "ls", "--store", prov, "--catalog", str(world["store"]), "--query", 'sample == "Cu"'
    )
    assert [line.split()[0] for line in out.splitlines()[1:]] == [world["reruns"][0].id[:8]]
    _, out, _ = _run(capsys, "provenance", "ls", "--store", prov, "--name", "nothing")
    assert out.startswith("no matching provenance records")


# -- show ---------------------------------------------------------------------------------------


def test_show_prints_parameters_inputs_environment_reruns(world, capsys):
    original = world["original"]
    code, out, _ = _run(capsys, "provenance", "show", original.id[:6], "--store", str(world["prov"].directory))
    assert code == 0
    assert out.splitlines()[0] == f"record {original.id}"
    section = out.split("\nparameters\n")[1].split("\n\n")[0]
    assert "scan_uid  None" in section and "bins" in section and "10" in section
    inputs = out.split("\ninputs\n")[1].split("\n\n")[0]
    assert world["uids"][0][:8] in inputs and "primary" in inputs and "det, motor" in inputs
    env = out.split("\nenvironment\n")[1].split("\n\n")[0]
    assert "python 3." in env and "scandeck 0." in env and "numpy" in env and "papermill" in env
    assert "nightly" in out and "1.5 s" in out
    reruns = out.split("\nreruns (2)\n")[1]
    assert world["reruns"][0].id[:8] in reruns and world["reruns"][1].id[:8] in reruns
    assert "cell 3: AssertionError: seven" in reruns


def test_show_a_failed_rerun_names_its_parent_and_the_failing_cell(world, capsys):
    failed = world["reruns"][1]
    _, out, _ = _run(capsys, "provenance", "show", failed.id, "--store", str(world["prov"].directory))
    assert f"target scan  {world['uids'][2]}" in out
    assert out.split("\nparent\n")[1].split()[0] == world["original"].id[:8]
    error = out.split("\nerror\n")[1]
    assert "cell 3 raised AssertionError: seven" in error and "| assert x" in error
    _, out, _ = _run(capsys, "provenance", "show", failed.id, "--store", str(world["prov"].directory), "--json")
    assert json.loads(out)["error"]["cell_index"] == 3


def test_show_unknown_record_is_one_line_with_a_hint(world, capsys):
    code, out, err = _run(capsys, "provenance", "show", "zzzz", "--store", str(world["prov"].directory))
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith("scandeck provenance: error: no provenance record")
    assert "hint: 'scandeck provenance ls'" in err


# -- open ---------------------------------------------------------------------------------------


def test_open_writes_the_executed_notebook(world, capsys, monkeypatch):
    original, prov = world["original"], str(world["prov"].directory)
    monkeypatch.chdir(world["tmp"])
    code, out, _ = _run(capsys, "provenance", "open", original.id[:8], "--store", prov)
    path = world["tmp"] / f"peak-{original.id[:8]}.ipynb"
    assert code == 0 and out.strip() == str(Path(path.name))
    assert path.read_bytes() == world["prov"].notebook_bytes(original)
    assert nbformat.reads(path.read_text(), as_version=4).metadata.scandeck.id == original.id

    code, _, err = _run(capsys, "provenance", "open", original.id[:8], "--store", prov)
    assert code == 1 and "exists" in err and "--overwrite" in err
    assert _run(capsys, "provenance", "open", original.id[:8], "--store", prov, "--overwrite")[0] == 0
    (world["tmp"] / "out").mkdir()
    code, out, _ = _run(capsys, "provenance", "open", original.id[:8], str(world["tmp"] / "out"), "--store", prov)
    assert Path(out.strip()) == world["tmp"] / "out" / path.name and Path(out.strip()).exists()


# -- lineage ------------------------------------------------------------------------------------


def test_lineage_of_a_scan_lists_readers_reruns_and_derived_runs(world, capsys):
    import scandeck

    derive = getattr(scandeck, "derive", None)
    if derive is None:
        pytest.skip("scandeck.derive is not there yet: no derived run to follow")
    cat, prov, original = world["cat"], world["prov"], world["original"]
    first = world["uids"][0]
    derived = derive(cat, first, {"x": [1.0, 2.0], "y": [3.0, 4.0]}, record_id=original.id)
    prov.add_output(original.id, {"uid": derived.uid, "catalog": cat.name})

    tree = lineage(first[:6], store=prov, catalog=cat)
    assert tree.id == first and tree.run is not None
    assert [n.id for n in tree.find("read by")] == [original.id]
    assert [n.id for n in tree.find("wrote")] == [derived.uid]
    assert {n.id for n in tree.find("rerun")} == {r.id for r in world["reruns"]}
    text = render(tree)
    assert text.splitlines()[0].startswith(f"run {first[:8]}  scan_id 1  scan  success")
    assert f"read by  record {original.id[:8]}  peak  batch  ok" in text
    assert f"wrote  run {derived.uid[:8]}  derived  success" in text
    assert f"rerun  record {world['reruns'][1].id[:8]}" in text and "[cell 3: AssertionError]" in text

    # up from the derived run: its parent scan and the record that wrote it
    up = lineage(derived.uid, store=prov, catalog=cat)
    assert [n.id for n in up.find("derived from")] == [first]
    assert [n.id for n in up.find("written by")] == [original.id]

    code, out, _ = _run(
        capsys,
        "provenance",
        "lineage",
        first[:8],
        "--store",
        str(prov.directory),
        "--catalog",
        str(world["store"]),
    )
    assert code == 0 and out.strip() == text
    _, out, _ = _run(
        capsys,
        "provenance",
        "lineage",
        first[:8],
        "--store",
        str(prov.directory),
        "--catalog",
        str(world["store"]),
        "--json",
    )
    data = json.loads(out)
    assert data["id"] == first and data["children"][0]["relation"] == "read by"


def test_lineage_of_a_rerun_target_shows_the_rerun_and_its_parent(world):
    target = world["uids"][2]
    tree = lineage(target, store=world["prov"], catalog=world["cat"])
    (node,) = tree.find("read by")
    assert node.id == world["reruns"][1].id
    assert f"rerun of {world['original'].id[:8]}" in render(tree) and "(this run)" in render(tree)


def test_lineage_of_an_unknown_run(world, capsys):
    with pytest.raises(RunNotFound, match="no run with uid or uid prefix 'ffffffff'"):
        lineage("ffffffff", store=world["prov"], catalog=world["cat"])
    code, _, err = _run(
        capsys,
        "provenance",
        "lineage",
        "ffffffff",
        "--store",
        str(world["prov"].directory),
        "--catalog",
        str(world["store"]),
    )
    assert code == 1 and "hint:" in err


# -- rerun planning (no kernel) ------------------------------------------------------------------


def test_targets_are_resolved_together_and_every_missing_one_is_named(world):
    cat, uids = world["cat"], world["uids"]
    targets = resolve_targets(cat, [uids[1][:6], uids[0]], 'sample == "Ni"')
    assert [t.uid for t in targets] == [uids[1], uids[0], uids[2]]  # scans, then the query's, no repeats
    assert [t.scan_id for t in targets] == [2, 1, 3]
    assert targets[0].file_name == f"2-{uids[1][:8]}.ipynb"
    with pytest.raises(RunNotFound) as info:
        resolve_targets(cat, [uids[0], "nope1", "nope2"])
    assert "'nope1', 'nope2'" in str(info.value) and "nothing was run" in str(info.value)
    with pytest.raises(RerunSetupError, match="matches the query"):
        resolve_targets(cat, [], 'sample == "Fe"')
    with pytest.raises(RerunSetupError, match="no scans"):
        resolve_targets(cat, [], None)


def test_plan_sets_the_scan_parameter_and_keeps_the_recorded_ones(world, tmp_path):
    original = world["original"]
    the_plan = plan(
        original.id,
        catalog=world["cat"],
        store=world["prov"],
        scans=[world["uids"][1]],
        parameters={"bins": 20},
        output_dir=tmp_path / "o",
    )
    (task,) = the_plan.tasks
    assert task["parameters"] == {"scan_uid": world["uids"][1], "bins": 20}
    assert task["output_path"] == str(tmp_path / "o" / f"2-{world['uids'][1][:8]}.ipynb")
    assert task["parent"] == original.id and task["uid"] == world["uids"][1]
    assert not (tmp_path / "o").exists()  # planning writes nothing
    nb = nbformat.reads(task["notebook"], as_version=4)
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None  # no stale outputs
    assert "scandeck" not in nb.metadata  # the old stamp is gone


def test_the_scan_parameter_can_be_named_in_the_notebook_metadata(world, tmp_path):
    nb = _notebook(scan_parameter="bins")
    assert scan_parameter_of(nb) == "bins"
    rec = save_stamped(world["prov"], build_record(nb, kind="batch", environment=capture(), name="x"), nb)
    stored = world["prov"].notebook(rec)
    assert stored.metadata.scandeck.scan_parameter == "bins"  # the stamp keeps it
    assert fresh_notebook(stored).metadata.scandeck == {"scan_parameter": "bins"}
    the_plan = plan(rec.id, catalog=world["cat"], store=world["prov"], scans=[world["uids"][0]])
    assert the_plan.tasks[0]["parameters"]["bins"] == world["uids"][0]
    assert the_plan.output_dir == Path.cwd() / "reruns" / f"x-{rec.id[:8]}"


def test_a_notebook_without_the_scan_parameter_cannot_be_rerun(world):
    nb = _notebook()
    nb.cells[0].source = "bins = 10"
    rec = save_stamped(world["prov"], build_record(nb, kind="batch", environment=capture(), name="x"), nb)
    with pytest.raises(RerunSetupError, match="no parameter 'scan_uid'"):
        plan(rec.id, catalog=world["cat"], store=world["prov"], scans=[world["uids"][0]])


def test_rerun_usage_errors_exit_2_and_run_nothing(world, capsys, tmp_path):
    prov, out_dir = str(world["prov"].directory), tmp_path / "never"
    base = [
        "rerun",
        world["original"].id[:8],
        "--store",
        prov,
        "--catalog",
        str(world["store"]),
        "--output-dir",
        str(out_dir),
    ]
    code, _, err = _run(capsys, *base)
    assert code == 2 and "no scans to rerun on" in err
    code, _, err = _run(capsys, *base, "--scan", world["uids"][0][:8], "--scan", "deadbeef")
    assert code == 2 and "'deadbeef' not in" in err
    code, _, err = _run(capsys, "rerun", "0000", "--store", prov, "--scan", world["uids"][0])
    assert code == 2 and "no provenance record" in err
    code, _, err = _run(capsys, *base, "--scan", world["uids"][0], "--kernel", "no-such-kernel")
    assert code == 2 and "no Jupyter kernel named 'no-such-kernel'" in err
    code, _, err = _run(capsys, *base, "--scan", world["uids"][0], "--executor", "nope")
    assert code == 2 and "no rerun executor named 'nope'" in err and "available: dask" in err
    assert not out_dir.exists()
    assert len(world["prov"].children(world["original"].id)) == 2
    code, _, err = _run(capsys, "provenance")
    assert code == 2 and "which provenance command" in err


# -- executors ----------------------------------------------------------------------------------


class _Fake:
    """An executor that runs nothing: each task 'fails' on odd scan_ids, in reverse order."""

    def __init__(self, workers: int = 2, address: str | None = None) -> None:
        self.closed = False

    def map(self, fn, tasks):
        for task in reversed(tasks):
            bad = task["scan_id"] % 2 == 1
            yield {
                "uid": task["uid"],
                "scan_id": task["scan_id"],
                "status": "failed" if bad else "ok",
                "seconds": 0.25,
                "output_path": task["output_path"],
                "record_id": None,
                "error": {"cell_index": 2, "ename": "ValueError", "evalue": "odd"} if bad else None,
                "message": "",
            }

    def close(self) -> None:
        self.closed = True


def test_executor_registry(world, tmp_path):
    assert {"local", "local-cold", "dask"} <= set(available_executors())
    with pytest.raises(UnknownName, match="no rerun executor named 'nope'; available: .*dask.*local"):
        get_executor("nope")
    register_executor("fake", _Fake)
    the_plan = plan(
        world["original"].id,
        catalog=world["cat"],
        store=world["prov"],
        scans=world["uids"],
        output_dir=tmp_path / "fake",
    )
    seen: list[RerunResult] = []
    results = execute_plan(the_plan, executor="fake", on_result=seen.append)
    assert [r.uid for r in results] == world["uids"]  # target order, whatever the completion order
    assert [r.uid for r in seen] == world["uids"][::-1]
    assert [r.status for r in results] == ["failed", "ok", "failed"]
    assert results[0].describe_error() == "cell 2: ValueError: odd"
    table = summary_table(results).splitlines()
    assert table[0].split() == ["scan_id", "uid", "status", "seconds", "error", "output"]
    assert table[1].split()[:6] == ["1", world["uids"][0][:8], "failed", "0.25", "cell", "2:"]
    assert table[2].split()[2:5] == ["ok", "0.25", "-"]


def test_progress_without_tqdm_is_a_counter_line(world, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    register_executor("fake", _Fake)
    the_plan = plan(
        world["original"].id,
        catalog=world["cat"],
        store=world["prov"],
        scans=world["uids"][:2],
        output_dir=tmp_path / "fake",
    )
    execute_plan(the_plan, executor="fake", progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("rerun 1/2  (0 failed)  last: 2 ok")
    assert err[1].startswith("rerun 2/2  (1 failed)  last: 1 failed")


def test_the_python_api_resolves_plans_and_runs_on_an_executor(world, tmp_path):
    from scandeck.provenance.rerun import rerun

    register_executor("fake", _Fake)
    results = rerun(
        world["original"].id[:6],
        scans=[world["uids"][1][:8]],
        query='sample == "Cu"',
        parameters={"bins": 3},
        output_dir=tmp_path / "api",
        catalog=world["store"],
        store=world["prov"].directory,
        executor="fake",
    )
    assert [(r.uid, r.status) for r in results] == [(world["uids"][1], "ok")]  # the query adds no repeat
    assert results[0].output_path == str(tmp_path / "api" / f"2-{world['uids'][1][:8]}.ipynb")
    assert (tmp_path / "api").is_dir()
    with pytest.raises(RunNotFound, match="'nope' not in"):
        rerun(
            world["original"].id,
            scans=["nope"],
            catalog=world["store"],
            store=world["prov"].directory,
            output_dir=tmp_path / "never",
            executor="fake",
        )
    assert not (tmp_path / "never").exists()


# -- show: an altered notebook file ----------------------------------------------------------


def test_show_warns_when_the_stored_notebook_was_altered(world, capsys):
    prov, original = world["prov"], world["original"]
    base = ["--store", str(prov.directory)]
    code, out, err = _run(capsys, "provenance", "show", original.id[:8], *base)
    assert code == 0 and err == ""  # intact: no warning

    path = prov.notebook_file(original)
    path.write_bytes(path.read_bytes().replace(b"hello", b"HELLO"))
    for extra in ([], ["--json"]):
        code, out, err = _run(capsys, "provenance", "show", original.id[:8], *base, *extra)
        assert code == 0
        assert original.id in out  # the record is still shown
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("scandeck provenance show: warning: ")
        assert str(path) in lines[0] and "sha256" in lines[0] and "changed" in lines[0]
    # open refuses the same file with the same words
    code, _, err = _run(capsys, "provenance", "open", original.id[:8], str(world["tmp"] / "o.ipynb"), *base)
    assert code == 1 and str(path) in err and "sha256" in err


def test_show_warns_when_the_stored_notebook_is_missing(world, capsys):
    prov, original = world["prov"], world["original"]
    prov.notebook_file(original).unlink()
    code, out, err = _run(capsys, "provenance", "show", original.id[:8], "--store", str(prov.directory))
    assert code == 0 and original.id in out
    assert err.startswith("scandeck provenance show: warning: ") and "missing" in err


def test_show_escapes_what_a_notebook_carried(world, capsys):
    """A record's name, parameters and failing cell are a notebook's text: shown, never obeyed."""
    env = capture(kernel_name="python3")
    hostile = "\x1b]0;pwned\x07\x1b[2J"
    failure = ErrorInfo(
        cell_index=1, cell_source=f"raise ValueError('{hostile}')", ename="ValueError", evalue=hostile
    )
    nb = _notebook()
    rec = save_stamped(
        world["prov"], build_record(nb, kind="batch", environment=env, name=f"peak{hostile}", error=failure), nb
    )
    code, out, _ = _run(capsys, "provenance", "show", rec.id, "--store", str(world["prov"].directory))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "peak\\u001b]0;pwned\\u0007\\u001b[2J" in out
    code, out, _ = _run(capsys, "provenance", "lineage", rec.id, "--store", str(world["prov"].directory))
    assert "\x1b" not in out
