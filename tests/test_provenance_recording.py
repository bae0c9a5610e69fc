"""Recording provenance: ``scandeck run``, ``papermill --engine scandeck`` and ``%provenance``.

Runs come from a real bluesky RunEngine (ophyd.sim) in this process, written to the
default store under ``$SCANDECK_DATA`` (a temp directory); notebooks execute in real
kernels through papermill (in subprocesses, as users run them) or through
jupyter_client (``%provenance``), and read the runs from the same store.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from kernel_harness import KernelSession

from scandeck.cli.run import parse_value
from scandeck.provenance.notebooks import (
    describe_failure,
    failure_of,
    literal_assignments,
    parameters_of,
    stamp,
)

READ_CELL = """\
import scandeck
cat = scandeck.open_catalog(catalog)
data = cat[scan_uid].primary.read()
print("points", len(data["time"]))"""


def _notebook(*sources: str, parameters: str = "scan_uid = None\ncatalog = None\nthreshold = 0.5"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# analysis"), cell]
    nb.cells += [
        nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s)
        for s in sources
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("SCANDECK_DATA", str(path))
    return path


@pytest.fixture
def scans(data_dir, RE):  # noqa: N803 - the RunEngine fixture
    """Two runs of a real RunEngine with ophyd.sim devices, in the default store."""
    from bluesky.plans import count, scan
    from ophyd.sim import det, det1, motor

    import scandeck

    cat = scandeck.open_catalog()
    RE.subscribe(cat.writer())
    (first,) = RE(scan([det], motor, -1, 1, 5))
    (second,) = RE(count([det1], num=3))
    cat.close()
    return first, second


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "SCANDECK_DATA": str(data_dir)}


def _scandeck(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _record_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("record "))
    return line.split()[1]


def _store():
    from scandeck.provenance.store import open_store

    return open_store()


# -- helpers, no kernel -----------------------------------------------------------------------


def test_literal_assignments_are_evaluated_safely_one_by_one():
    source = (
        "%matplotlib inline\n"
        "scan_uid = None  # the run\n"
        "n: int = -3\n"
        "a = b = 'x'\n"
        "lo, hi = (0.5, 2)\n"
        "xs = (1, 2)\n"
        "arr = np.arange(3)\n"
        "os.system('touch pwned')\n"
        "odd = {1, 2}\n"
    )
    assert literal_assignments(source) == {
        "scan_uid": None,
        "n": -3,
        "a": "x",
        "b": "x",
        "lo": 0.5,
        "hi": 2,
        "xs": [1, 2],
    }
    assert literal_assignments("def broken(:\n") == {}


def test_parameters_injected_and_recorded_by_papermill_override_the_defaults():
    nb = _notebook("x = 1")
    assert parameters_of(nb) == {"scan_uid": None, "catalog": None, "threshold": 0.5}
    injected = nbformat.v4.new_code_cell('# Parameters\nscan_uid = "abc"\nthreshold = 2\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    assert parameters_of(nb) == {"scan_uid": "abc", "catalog": None, "threshold": 2}
    nb.metadata["papermill"] = {"parameters": {"scan_uid": "abc", "threshold": 3, "extra": [1]}}
    assert parameters_of(nb) == {"scan_uid": "abc", "catalog": None, "threshold": 3, "extra": [1]}


def test_failure_of_follows_papermill():
    nb = _notebook("x = 1", "1/0", "y = 2")
    assert failure_of(nb) is None
    nb.cells[3].outputs = [
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    ]
    nb.cells[3].execution_count = 2
    error = failure_of(nb)
    assert (error.cell_index, error.ename, error.evalue, error.cell_source) == (
        3,
        "ZeroDivisionError",
        "division by zero",
        "1/0",
    )
    assert describe_failure(error, nb) == "cell 3 (In [2]) raised ZeroDivisionError: division by zero (in: 1/0)"
    # papermill's error markers in the output file do not move the index
    marker = nbformat.v4.new_markdown_cell("An Exception was encountered")
    marker.metadata["tags"] = ["papermill-error-cell-tag"]
    nb.cells.insert(0, marker)
    nb.cells.insert(4, nbformat.v4.new_markdown_cell("here", metadata={"tags": ["papermill-error-cell-tag"]}))
    assert failure_of(nb).cell_index == 3
    # sys.exit() is not a failure, as for papermill
    nb2 = _notebook("import sys; sys.exit()")
    nb2.cells[2].outputs = [nbformat.v4.new_output("error", ename="SystemExit", evalue="", traceback=[])]
    assert failure_of(nb2) is None


def test_stamp_puts_the_record_beside_papermill():
    from scandeck.provenance.recording import build_record

    nb = _notebook("x = 1")
    record = build_record(
        nb,
        kind="batch",
        environment={"python": "3", "platform": "p"},
        notebook_path="/x/analysis.ipynb",
        tags=["a", "a", "b"],
    )
    assert record.name == "analysis" and record.tags == ["a", "b"] and record.status == "ok"
    stamp(nb, record)
    assert nb.metadata.scandeck == record.to_metadata()
    nbformat.validate(nb)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("None", None),
        ("True", True),
        ("False", False),
        ("3", 3),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        ("[1, 'a']", [1, "a"]),
        ("{'k': 1}", {"k": 1}),
        ("'007'", "007"),
        ("abc", "abc"),
        ("3f2a9c", "3f2a9c"),
        ("1234e567", "1234e567"),
        ("e385348c-263b-42cc", "e385348c-263b-42cc"),
        ("[unclosed", "[unclosed"),
    ],
)
def test_parameter_values_are_parsed_like_papermill(text, value):
    assert parse_value(text) == value


# -- scandeck run -----------------------------------------------------------------------------


def test_scandeck_run_records_parameters_inputs_and_environment(tmp_path, data_dir, scans):
    uid, _ = scans
    src = tmp_path / "work" / "peak.ipynb"
    src.parent.mkdir()
    nbformat.write(_notebook(READ_CELL, "md:## done", "print('ok')"), src)
    proc = _scandeck("run", str(src), "-p", "scan_uid", uid, "--tag", "nightly", "--tag", "ni", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    out = src.with_name("peak.out.ipynb")
    assert f"output {out}" in proc.stdout

    record = _store().get(_record_id(proc.stdout))
    assert record.kind == "batch" and record.name == "peak" and record.status == "ok" and record.error is None
    assert record.tags == ["nightly", "ni"]
    assert record.parameters == {"scan_uid": uid, "catalog": None, "threshold": 0.5}
    assert record.notebook_path == str(src)
    assert record.duration is not None and record.duration > 0
    # inputs: what the kernel read, fetched from the kernel at the end of the run
    assert [i.uid for i in record.inputs] == [uid]
    assert record.inputs[0].scan_id == 1
    assert record.inputs[0].streams == ["primary"]
    assert {"det", "motor"} <= set(record.inputs[0].fields)
    # environment: captured in the kernel (same interpreter here)
    env = record.environment
    assert env.python == platform.python_version() and env.kernel_name == "python3"
    assert "scandeck" in env.packages and "ipykernel" in env.packages

    # the executed notebook carries the record (its own hash cannot be in it)
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.papermill.parameters == {"scan_uid": uid}
    assert "points 5" in "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert executed.metadata.scandeck == {**record.to_metadata(), "notebook_sha256": ""}
    # ... and is, byte for byte, the notebook the store keeps under record.notebook_sha256
    assert hashlib.sha256(out.read_bytes()).hexdigest() == record.notebook_sha256
    assert _store().notebook(record).metadata.scandeck == executed.metadata.scandeck


def test_scandeck_run_of_a_failing_notebook_records_the_failed_cell(tmp_path, data_dir, scans):
    uid, _ = scans
    src = tmp_path / "fails.ipynb"
    nbformat.write(_notebook(READ_CELL, "md:## then", "ratio = 1 / 0", "print('never')"), src)
    out = tmp_path / "elsewhere" / "result.ipynb"
    out.parent.mkdir()
    proc = _scandeck("run", str(src), "-p", "scan_uid", uid, "--name", "ratio", "-o", str(out), data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr
    # cells: markdown, parameters, injected parameters, read, markdown, failing
    assert (
        "scandeck run: error: cell 5 (In [4]) raised ZeroDivisionError: division by zero (in: ratio = 1 / 0)"
        in proc.stderr
    )
    assert str(out) in proc.stderr
    assert out.exists()
    record = _store().get(_record_id(proc.stdout))
    assert record.status == "failed" and record.name == "ratio"
    assert (record.error.cell_index, record.error.ename, record.error.evalue) == (
        5,
        "ZeroDivisionError",
        "division by zero",
    )
    assert [i.uid for i in record.inputs] == [uid]  # read before the failure, still recorded
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.scandeck == {**record.to_metadata(), "notebook_sha256": ""}
    assert failure_of(executed) == record.error  # papermill's marker cells do not shift it
    stored = _store().notebook(record)
    assert stored.cells[5].outputs[0].ename == "ZeroDivisionError"


def test_a_timed_out_cell_is_recorded_as_the_failure(tmp_path, data_dir):
    src = tmp_path / "slow.ipynb"
    nbformat.write(_notebook("x = 1", "import time\ntime.sleep(60)"), src)
    proc = _scandeck("run", str(src), "--timeout", "1", data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr
    assert "error: cell 3 (In [3]) raised CellTimeoutError: A cell timed out" in proc.stderr
    record = _store().get(_record_id(proc.stdout))
    assert (record.status, record.error.cell_index, record.error.ename) == ("failed", 3, "CellTimeoutError")
    assert src.with_name("slow.out.ipynb").exists()


def test_scandeck_run_catalog_option_reaches_the_notebook(tmp_path, data_dir, scans):
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd.sim import det

    import scandeck

    other = tmp_path / "other-store"
    cat = scandeck.open_catalog(other)
    engine = RunEngine({}, context_managers=[])
    engine.subscribe(cat.writer())
    (uid,) = engine(count([det], num=2))
    cat.close()
    src = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(READ_CELL), src)
    proc = _scandeck("run", str(src), "-p", "scan_uid", uid[:8], "--catalog", str(other), data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    record = _store().get(_record_id(proc.stdout))
    assert record.parameters["catalog"] == str(other)
    assert [i.uid for i in record.inputs] == [uid]


def test_scandeck_run_usage_errors_are_one_line(tmp_path, data_dir):
    proc = _scandeck("run", str(tmp_path / "missing.ipynb"), data_dir=data_dir)
    assert proc.returncode == 1
    assert proc.stderr.startswith("scandeck run: error: no notebook at ")
    src = tmp_path / "nb.ipynb"
    nbformat.write(_notebook("x = 1"), src)
    proc = _scandeck("run", str(src), "--kernel", "no-such-kernel", data_dir=data_dir)
    assert proc.returncode == 1
    assert "no Jupyter kernel named 'no-such-kernel'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (data_dir / "provenance").exists() or len(_store()) == 0  # nothing ran: no record


# -- papermill --engine scandeck --------------------------------------------------------------


def test_papermill_cli_with_the_scandeck_engine_records(tmp_path, data_dir, scans):
    uid, _ = scans
    src = tmp_path / "pm.ipynb"
    nbformat.write(_notebook(READ_CELL), src)
    out = tmp_path / "pm-out.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    proc = subprocess.run(
        [str(papermill), "--engine", "scandeck", "--no-progress-bar", str(src), str(out), "-p", "scan_uid", uid],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (record,) = _store().list()
    assert record.kind == "batch" and record.name == "pm" and record.status == "ok"
    assert record.parameters["scan_uid"] == uid
    assert [i.uid for i in record.inputs] == [uid] and record.inputs[0].streams == ["primary"]
    assert nbformat.read(out, as_version=4).metadata.scandeck["id"] == record.id


def test_engine_execute_in_process_for_reruns(tmp_path, data_dir, scans):
    """The API reruns use: Recording(kind, parent, target_scan, store) and execute()."""
    from scandeck.provenance.engine import Recording, execute

    uid, other = scans
    src = tmp_path / "r.ipynb"
    nbformat.write(_notebook(READ_CELL), src)
    recording = Recording(
        kind="rerun", parent="0" * 32, target_scan=other, tags=["rerun"], store=tmp_path / "prov"
    )
    record, nb = execute(
        src, tmp_path / "r-out.ipynb", parameters={"scan_uid": other}, recording=recording, cwd=tmp_path
    )
    assert recording.record == record and nb.metadata.scandeck["id"] == record.id
    assert (record.kind, record.parent, record.target_scan) == ("rerun", "0" * 32, other)
    assert [i.uid for i in record.inputs] == [other]
    from scandeck.provenance.store import open_store

    assert open_store(tmp_path / "prov").get(record.id) == record


# -- %provenance in a real kernel -------------------------------------------------------------


@pytest.fixture
def kernel_env(data_dir):
    return {"SCANDECK_DATA": str(data_dir)}


def _age(path: Path, seconds: float = 60) -> None:
    """Make ``path`` look saved ``seconds`` ago (before the cells the test runs)."""
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def _error_of(kernel: KernelSession, code: str) -> str:
    with pytest.raises(AssertionError) as info:
        kernel.execute(code)
    return str(info.value)


def test_provenance_magic_shows_and_saves_with_path(tmp_path, kernel_env, scans):
    uid, second = scans
    src = tmp_path / "interactive.ipynb"
    nbformat.write(_notebook(READ_CELL, parameters="scan_uid = 'x'\ncatalog = None"), src)
    _age(src)
    kernel = KernelSession(kernel_env)
    try:
        kernel.execute("%load_ext scandeck")
        kernel.execute(
            f"import scandeck\ncat = scandeck.open_catalog()\ncat[{uid!r}].primary.read()\ncat[{second!r}]"
        )
        reply = kernel.execute("%provenance")
        shown = kernel.text_of(reply["msg_id"])
        assert uid[:8] in shown and second[:8] in shown and "primary" in shown
        assert "Python " + platform.python_version() in shown and "kernel python3" in shown
        assert "--path" in shown  # a plain kernel does not know its notebook

        error = _error_of(kernel, "%provenance save")
        assert "NotebookNotFound" in error and "pass --path NOTEBOOK.ipynb" in error

        reply = kernel.execute(f"%provenance save --path {src} --name mine --tag a --tag b")
        text = kernel.text_of(reply["msg_id"])
        assert "saved before the last cell ran" in text  # the file predates the cells: said, not refused
        record_id = next(w for w in text.split() if len(w) == 32)
    finally:
        kernel.close()
    record = _store().get(record_id)
    assert (record.kind, record.name, record.tags, record.status) == ("interactive", "mine", ["a", "b"], "ok")
    assert record.notebook_path == str(src)
    assert record.parameters == {"scan_uid": "x", "catalog": None}
    assert [(i.uid, i.streams) for i in record.inputs] == [(uid, ["primary"]), (second, [])]
    assert record.environment.kernel_name == "python3" and "scandeck" in record.environment.packages
    stored = _store().notebook(record)
    assert stored.metadata.scandeck == {**record.to_metadata(), "notebook_sha256": ""}
    assert src.read_bytes() != _store().notebook_bytes(record)  # the file itself is left alone


def test_provenance_save_finds_the_notebook_of_a_jupyter_session(tmp_path, kernel_env, scans):
    uid, _ = scans
    src = tmp_path / "session.ipynb"
    nbformat.write(_notebook(READ_CELL), src)
    _age(src)
    kernel = KernelSession({**kernel_env, "JPY_SESSION_NAME": str(src)})
    try:
        kernel.execute(f"%load_ext scandeck\nimport scandeck\nscandeck.open_catalog()[{uid!r}].primary.read()")
        error = _error_of(kernel, "%provenance save")  # the file is older than the cell just run
        assert "save the notebook first" in error
        nbformat.write(_notebook(READ_CELL, "x = 2"), src)  # the user saves
        reply = kernel.execute("%provenance save")
        record_id = next(w for w in kernel.text_of(reply["msg_id"]).split() if len(w) == 32)
        shown = kernel.text_of(kernel.execute("%provenance")["msg_id"])
        assert str(src) in shown and "session" in shown
    finally:
        kernel.close()
    record = _store().get(record_id)
    assert record.name == "session" and record.notebook_path == str(src)
    assert [i.uid for i in record.inputs] == [uid]
    assert _store().notebook(record).cells[-1].source == "x = 2"


def test_relative_session_names_resolve_from_the_kernel_directory(tmp_path, monkeypatch):
    from scandeck.provenance.recording import NotebookNotFound, locate_notebook

    class Shell:
        user_ns: dict = {}

    (tmp_path / "proj" / "sub").mkdir(parents=True)
    nb = tmp_path / "proj" / "sub" / "a.ipynb"
    nb.write_text("{}")
    monkeypatch.chdir(tmp_path / "proj" / "sub")  # the server starts kernels in the notebook's directory
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/a.ipynb")  # relative to the server root, tmp_path/proj
    assert locate_notebook(Shell()) == tmp_path / "proj" / "sub" / "a.ipynb"
    monkeypatch.delenv("JPY_SESSION_NAME")
    shell = Shell()
    shell.user_ns = {"__session__": str(nb)}
    assert locate_notebook(shell) == nb
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/renamed.ipynb")
    with pytest.raises(NotebookNotFound, match="save it first"):
        locate_notebook(Shell())


def test_derived_runs_become_the_records_outputs(tmp_path):
    import scandeck
    from scandeck.derived import clear_written
    from scandeck.provenance.recording import build_record, derived_outputs

    clear_written()
    cat = scandeck.open_catalog(tmp_path / "store")
    run = scandeck.derive(cat, ["parent-uid"], {"x": [1.0, 2.0]})
    outputs = derived_outputs()
    assert outputs == [{"uid": run.uid, "catalog": cat.name}]
    from scandeck.provenance.environment import capture

    nb = __import__("nbformat").v4.new_notebook()
    record = build_record(nb, kind="batch", environment=capture(), outputs=outputs)
    assert [o.uid for o in record.outputs] == [run.uid]
    clear_written()
