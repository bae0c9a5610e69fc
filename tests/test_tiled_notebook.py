"""A notebook and ``scandeck rerun`` on runs that only a real Tiled server holds (issue 13).

The kernel and the rerun's kernels get the API key from ``$TILED_API_KEY`` (as a
facility's JupyterHub gives it to a user's server) and open the catalog by a URI
without it, so no key is written into a notebook or a provenance record.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from pathlib import Path

import nbformat
import pytest
from kernel_harness import KernelSession, output_text

from scandeck.cli import main
from scandeck.provenance.store import open_store


def _uri_without_key(uri: str) -> str:
    return uri.split("?", 1)[0]


@pytest.fixture
def tiled_kernel(tmp_path: Path, tiled_server):
    """A real kernel with scandeck loaded on a fresh Tiled catalog, the key in its environment."""
    uri = tiled_server.new_catalog()
    session = KernelSession({"SCANDECK_DATA": str(tmp_path / "data"), "TILED_API_KEY": tiled_server.api_key})
    session.execute(f"%load_ext scandeck\n%catalog {_uri_without_key(uri)}")
    yield session, uri
    session.close()


def test_bound_cell_and_scans_follow_a_run_written_to_tiled(tiled_kernel, RE):
    import bluesky.plans as bp
    from ophyd.sim import det, motor

    import scandeck

    kernel, uri = tiled_kernel
    kernel.execute('%%bind --every 0.1\nprint("rows", len(df), "status", run.status)')
    cat = scandeck.open_catalog(uri)
    RE.subscribe(cat.writer())  # TiledWriter, one event per write: live readers see each event
    go = threading.Event()

    def slow_scan():
        def pause(msg):
            time.sleep(0.1)

        RE.msg_hook = pause
        go.wait(10)
        RE(bp.scan([det], motor, -1, 1, 12), sample="Ni")

    writer = threading.Thread(target=slow_scan)
    writer.start()
    go.set()
    try:

        def texts():
            return [output_text(u[2]) for u in kernel.widget_outputs()]

        assert kernel.wait_for(lambda: any("rows 12 status success" in t for t in texts()), 90), texts()
    finally:
        writer.join(60)
    seen = texts()
    assert any("status running" in t for t in seen), seen  # updates while Tiled received the run
    counts = [int(t.split()[1]) for t in seen if t.startswith("rows")]
    assert counts == sorted(counts)
    reply = kernel.execute("%scans -n 5", timeout=60)
    assert cat[-1].uid[:8] in kernel.text_of(reply["msg_id"])
    cat.close()


NOTEBOOK_CELLS = (
    "scan_uid = None\ncatalog = None",
    "import scandeck\ncat = scandeck.open_catalog(catalog)\nds = cat[scan_uid].primary.read()",
    'print(f"events {len(ds.time)} max {float(ds.det.max()):.4f}")',
)


def test_record_and_rerun_on_runs_only_tiled_holds(tmp_path, tiled_server, RE, monkeypatch):
    import bluesky.plans as bp
    from ophyd.sim import SynAxis, SynGauss

    import scandeck

    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TILED_API_KEY", tiled_server.api_key)
    uri = _uri_without_key(tiled_server.new_catalog())
    cat = scandeck.open_catalog(uri)
    RE.subscribe(cat.writer())
    motor = SynAxis(name="motor")
    scans = []
    for center, num in ((-0.5, 5), (0.3, 8)):
        det = SynGauss("det", motor, "motor", center=center, Imax=1, sigma=0.5)
        (uid,) = RE(bp.scan([det], motor, -1, 1, num))
        ds = cat[uid].primary.read()
        scans.append({"uid": uid, "expected": f"events {num} max {float(ds.det.max()):.4f}"})
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "max.ipynb"
    nbformat.write(nb, str(path))
    args = ["run", str(path), "-p", "scan_uid", scans[0]["uid"], "-p", "catalog", uri, "--name", "max"]
    assert main(args) == 0
    prov = open_store(tmp_path / "data" / "provenance")
    (record,) = prov.list()
    assert [i.uid for i in record.inputs] == [scans[0]["uid"]]
    assert tiled_server.api_key not in json.dumps(record.to_metadata(), default=str)  # no key in the record
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["rerun", record.id, "--scan", scans[1]["uid"], "--catalog", uri, "--output-dir", str(tmp_path / "re")]
        )
    assert code == 0, out.getvalue()
    (child,) = [c for c in prov.children(record.id) if c.target_scan == scans[1]["uid"]]
    assert child.status == "ok" and [i.uid for i in child.inputs] == [scans[1]["uid"]]
    (result,) = (tmp_path / "re").glob("*.ipynb")
    printed = "".join(
        "".join(o.get("text", "")) for o in nbformat.read(str(result), as_version=4).cells[-1].outputs
    ).strip()
    assert printed == scans[1]["expected"]
    prov.close()
    cat.close()
