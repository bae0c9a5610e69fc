"""``scandeck run`` / ``rerun`` on notebooks without kernelspec metadata.

``nbformat.v4.new_notebook()``, jupytext and scripts write notebooks with no
``metadata.kernelspec`` and no ``language_info``. They run in the Python kernel
(the ``python3`` kernelspec, language python) unless ``--kernel`` / ``--language``
say otherwise; a kernel that does not exist is one error line listing those that do.

Real kernels through papermill in subprocesses, as users run them; runs from a real
bluesky RunEngine in the default store under ``$SCANDECK_DATA``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from scandeck.provenance.store import open_store

READ_CELL = """\
import scandeck
cat = scandeck.open_catalog()
print("points", len(cat[scan_uid].primary.read()["time"]), "threshold", threshold)"""


def bare_notebook(*sources: str) -> nbformat.NotebookNode:
    """A notebook as ``nbformat.v4.new_notebook()`` makes it: no kernelspec, no language."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("scan_uid = None\nthreshold = 0.5")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    assert "kernelspec" not in nb.metadata and "language_info" not in nb.metadata
    return nb


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("SCANDECK_DATA", str(path))
    return path


@pytest.fixture
def scans(data_dir: Path, RE) -> list[str]:  # noqa: N803 - the RunEngine fixture
    from bluesky.plans import count, scan
    from ophyd.sim import det, motor

    import scandeck

    cat = scandeck.open_catalog()
    RE.subscribe(cat.writer())
    uids = [*RE(scan([det], motor, -1, 1, 5)), *RE(count([det], num=3))]
    cat.close()
    return uids


def scandeck(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCANDECK_DATA": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args], env=env, capture_output=True, text=True, timeout=240
    )


def record_id(stdout: str) -> str:
    match = re.search(r"^record ([0-9a-f]+) ", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def printed(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.parametrize(
    "options",
    [[], ["--kernel", "python3"], ["--language", "python"]],
    ids=["default", "kernel-only", "language-only"],
)
def test_run_a_notebook_without_kernelspec(
    tmp_path: Path, data_dir: Path, scans: list[str], options: list[str]
) -> None:
    src = tmp_path / "bare.ipynb"
    nbformat.write(bare_notebook(READ_CELL), src)
    proc = scandeck(
        "run", str(src), "-p", "scan_uid", scans[0], "-p", "threshold", "0.75", *options, data_dir=data_dir
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "points 5 threshold 0.75" in printed(tmp_path / "bare.out.ipynb")
    store = open_store(data_dir / "provenance")
    try:
        record = store.get(record_id(proc.stdout))
        assert record.status == "ok"
        assert record.environment.kernel_name == "python3"
        assert [i.uid for i in record.inputs] == [scans[0]]
    finally:
        store.close()


def test_rerun_of_a_notebook_without_kernelspec(tmp_path: Path, data_dir: Path, scans: list[str]) -> None:
    src = tmp_path / "bare.ipynb"
    nbformat.write(bare_notebook(READ_CELL), src)
    first = scandeck("run", str(src), "-p", "scan_uid", scans[0], data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    again = scandeck(
        "rerun",
        record_id(first.stdout),
        "--scan",
        scans[1],
        "--output-dir",
        str(tmp_path / "reruns"),
        "--no-progress",
        data_dir=data_dir,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    [out] = (tmp_path / "reruns").glob("*.ipynb")
    assert "points 3 threshold 0.5" in printed(out)


@pytest.mark.parametrize(
    "options", [["--kernel", "no-such-kernel"], ["--language", "cobol"]], ids=["kernel", "language"]
)
def test_a_kernel_that_does_not_exist_is_one_line_listing_the_kernels(
    tmp_path: Path, data_dir: Path, options: list[str]
) -> None:
    src = tmp_path / "bare.ipynb"
    nbformat.write(bare_notebook("x = 1"), src)
    proc = scandeck("run", str(src), *options, data_dir=data_dir)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(error) == 1, proc.stderr
    assert error[0].startswith("scandeck run: error: ")
    assert options[1] in error[0] and "python3" in error[0]  # what was asked, what there is
    assert not (tmp_path / "bare.out.ipynb").exists()


def test_a_notebook_in_another_language_without_kernelspec_needs_a_kernel(tmp_path: Path, data_dir: Path) -> None:
    nb = bare_notebook("x <- 1")
    nb.metadata["language_info"] = {"name": "cobol"}
    src = tmp_path / "other.ipynb"
    nbformat.write(nb, src)
    proc = scandeck("run", str(src), data_dir=data_dir)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cobol" in proc.stderr and "--kernel" in proc.stderr
