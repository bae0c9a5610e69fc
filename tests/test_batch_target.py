"""Batch executions read the run their parameters name, and record exactly the runs they read.

A notebook with a live plot, a ``scandeck.live()`` pipeline, a ``%%bind`` cell and a
``%scans`` listing runs through the scandeck papermill engine on scan A while newer
scans exist (real RunEngine, real kernel). The plot shows A's rows, the live pipeline
and the bound cell read A, and the record's inputs are exactly [A]; the rerun of that
record on scan B reads B only, while C is newer still.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPORT = "report: "

CELLS = [
    "%load_ext scandeck\nimport json\nimport scandeck, scandeck.plot",
    # The plot: in batch it holds the whole run when the cell ends.
    'p = scandeck.plot.line("motor", "det")\n'
    "plot = {'uid': scandeck.plot.feed(p).uid, 'det': [float(v) for v in p.streams[0].data['det']]}",
    # live(): follows the parameters' run, not the newest and each new one.
    "lv = scandeck.live()\nrows = lv.stream().sink_to_list()\nended = lv.flush(timeout=60)\n"
    "live = {'uid': lv.uid, 'ended': ended, 'det': [r['det'] for r in rows]}",
    "%%bind\nbound = {'uid': run.uid, 'det': [float(v) for v in df['det']]}",
    "listing = %scans",  # lists every run; reads none
    f"print({REPORT!r} + json.dumps({{'plot': plot, 'live': live, 'bound': bound}}))",
]


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("scan_uid = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in CELLS)]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _report(nb: Any) -> dict[str, Any]:
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    (line,) = [x for x in text.splitlines() if x.startswith(REPORT)]
    return dict(json.loads(line[len(REPORT) :]))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, RE: Any) -> dict[str, Any]:  # noqa: N803
    """Scans A, B, C (C newest) in the default store the kernels open, and the notebook."""
    import bluesky.plans as bp
    from ophyd.sim import SynAxis, SynGauss

    import scandeck

    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    cat = scandeck.open_catalog()
    RE.subscribe(cat.writer())
    motor = SynAxis(name="motor")
    uids, dets = [], []
    for center, num in ((-0.5, 5), (0.0, 7), (0.5, 9)):
        det = SynGauss("det", motor, "motor", center=center, Imax=1, sigma=0.5)
        (uid,) = RE(bp.scan([det], motor, -1, 1, num))
        uids.append(uid)
        dets.append([float(v) for v in cat[uid].primary.read()["det"].values])
    cat.close()
    nb = tmp_path / "plot.ipynb"
    _notebook(nb)
    return {"tmp": tmp_path, "nb": nb, "uids": uids, "dets": dets}


def test_a_batch_run_and_its_rerun_read_the_parameters_run_only(world: dict[str, Any]) -> None:
    from scandeck.provenance.engine import Recording, execute
    from scandeck.provenance.rerun import rerun
    from scandeck.provenance.store import open_store

    (a, b, _), (det_a, det_b, _) = world["uids"], world["dets"]
    store = open_store(world["tmp"] / "prov")
    try:
        record, nb = execute(
            world["nb"],
            world["tmp"] / "out.ipynb",
            parameters={"scan_uid": a},
            recording=Recording(kind="batch", store=store),
        )
        assert record.status == "ok", record.error
        assert nb is not None
        seen = _report(nb)
        for part in ("plot", "live", "bound"):
            assert seen[part]["uid"] == a, part
            assert seen[part]["det"] == pytest.approx(det_a), part
        assert seen["live"]["ended"] is True
        assert [i.uid for i in record.inputs] == [a]  # not C (newest), not B (listed by %scans)

        (result,) = rerun(record.id, scans=[b], store=store, output_dir=world["tmp"] / "reruns")
        assert result.status == "ok" and result.record_id is not None, result
        assert result.output_path is not None
        redone = store.get(result.record_id)
        assert [i.uid for i in redone.inputs] == [b]  # not C, the newest
        rerun_seen = _report(nbformat.read(result.output_path, as_version=4))
        assert {rerun_seen[p]["uid"] for p in ("plot", "live", "bound")} == {b}
        assert rerun_seen["plot"]["det"] == pytest.approx(det_b)
    finally:
        store.close()


RULE = "from scandeck.provenance.batch import batch_scan, in_batch\nprint(in_batch(get_ipython()), batch_scan())"


def test_the_rule_in_a_kernel_a_terminal_and_a_script(tmp_path: Path) -> None:
    """papermill's kernel (no stdin) is batch, JupyterLab's (stdin) and a terminal are not."""
    import subprocess
    import sys

    from kernel_harness import KernelSession

    kernel = KernelSession({"SCANDECK_DATA": str(tmp_path / "data"), "SCANDECK_BIND": ""})
    try:
        kernel.execute("scan_uid = '3f2a9c'")
        assert kernel.text_of(kernel.execute(RULE, allow_stdin=False)["msg_id"]).split() == ["True", "3f2a9c"]
        assert kernel.text_of(kernel.execute(RULE, allow_stdin=True)["msg_id"]).split() == ["False", "None"]
        kernel.execute("scan_uid = None")
        assert kernel.text_of(kernel.execute(RULE, allow_stdin=False)["msg_id"]).split() == ["True", "-1"]
        kernel.execute("import os; os.environ['SCANDECK_SCAN_PARAMETER'] = 'scan'; scan = 12")
        assert kernel.text_of(kernel.execute(RULE, allow_stdin=False)["msg_id"]).split() == ["True", "12"]
        kernel.execute("scan = ['a list']")
        with pytest.raises(AssertionError, match="set it to a run's uid"):
            kernel.execute(RULE, allow_stdin=False)
        kernel.execute("os.environ['SCANDECK_BIND'] = 'live'")  # forced: JupyterLab-like
        assert kernel.text_of(kernel.execute(RULE, allow_stdin=False)["msg_id"]).split() == ["False", "None"]
    finally:
        kernel.close()
    terminal = subprocess.run(
        [str(Path(sys.executable).parent / "ipython"), "--no-banner", "-c", "scan_uid = 'ab'\n" + RULE],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SCANDECK_BIND": ""},
    )
    assert terminal.stdout.split()[-2:] == ["False", "None"], terminal.stderr


def test_a_notebook_naming_its_own_scan_parameter(world: dict[str, Any]) -> None:
    """nb.metadata.scandeck.scan_parameter reaches the kernel: ``%%bind`` reads the run it names."""
    from scandeck.provenance.engine import Recording, execute

    a, b, _ = world["uids"]
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("scan = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("%load_ext scandeck\nimport json"),
        nbformat.v4.new_code_cell(f"%%bind\nprint({REPORT!r} + json.dumps({{'bound': {{'uid': run.uid}}}}))"),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.scandeck = {"scan_parameter": "scan"}
    path = world["tmp"] / "own.ipynb"
    nbformat.write(nb, str(path))
    record, out = execute(
        path,
        world["tmp"] / "own-out.ipynb",
        parameters={"scan": a},
        recording=Recording(store=world["tmp"] / "p2"),
    )
    assert out is not None and _report(out)["bound"]["uid"] == a
    assert [i.uid for i in record.inputs] == [a]
    assert b not in {i.uid for i in record.inputs}
