"""%%bind in a real kernel, fed by a real producer process writing to the store.

The kernel is driven through jupyter_client like a front end that takes input
(allow_stdin=True, as JupyterLab); bound-cell outputs are read from the Output
widget's state updates on IOPub.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kernel_harness import KernelSession, output_text

PROCS = str(Path(__file__).with_name("procs.py"))


def produce(store, *args) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, PROCS, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() in ("writing", "")
    return proc


def finish(proc: subprocess.Popen) -> None:
    assert proc.wait(60) == 0
    proc.stdout.close()


def last_text(kernel: KernelSession) -> str:
    updates = kernel.widget_outputs()
    return output_text(updates[-1][2]) if updates else ""


def test_outputs_arrive_while_live_coalesced_and_final(kernel, store):
    kernel.execute('%%bind --every 0.1\nprint("rows", len(df), "status", run.status)')
    proc = produce(store, "write", str(store), "150", "0.01")
    assert kernel.wait_for(lambda: "rows 150 status success" in last_text(kernel), 60)
    finish(proc)
    updates = kernel.widget_outputs()
    texts = [output_text(u[2]) for u in updates]
    live = [t for t in texts if "status running" in t]
    assert len(live) >= 2, texts  # updates while the run was being written
    counts = [int(t.split()[1]) for t in texts if t.startswith("rows")]
    assert counts == sorted(counts)
    assert len(updates) < 150 / 2  # coalesced: far fewer executions than events
    assert texts[-1].strip() == "rows 150 status success"  # the state after stop is shown


def test_kernel_answers_while_10k_events_per_second_stream_in(kernel, store):
    kernel.execute("%%bind\nn = len(df)")
    proc = produce(store, "stream", str(store), "10000", "3")
    answers = []
    while proc.poll() is None:
        reply = kernel.execute("print(40 + 2)", timeout=30)
        answers.append(kernel.text_of(reply["msg_id"]))
        time.sleep(0.02)
    finish(proc)
    assert answers and set(answers) == {"42\n"}
    assert kernel.wait_for(
        lambda: kernel.execute("print(n)", timeout=30)["outputs"][0]["content"]["text"] == "30000\n", 30
    )


def test_failing_bound_cell_keeps_binding_and_others_alive(kernel, store):
    kernel.execute('%%bind\nraise ValueError(f"boom at {len(df)}")')
    kernel.execute('%%bind\nprint("ok", len(df))')
    for _ in range(2):
        finish(produce(store, "write", str(store), "5", "0"))
    assert kernel.wait_for(lambda: any("ok 5" in output_text(u[2]) for u in kernel.widget_outputs()))

    def errors():
        return [o for _, _, outs in kernel.widget_outputs() for o in outs if o["output_type"] == "error"]

    assert kernel.wait_for(lambda: any("boom at 5" in e["evalue"] for e in errors()))
    assert errors()[-1]["ename"] == "ValueError"
    assert any("boom" in line for line in errors()[-1]["traceback"])
    assert kernel.wait_for(  # the final state of the second run shows as the last error
        lambda: "ValueError: boom at 5" in kernel.text_of(kernel.execute("%bindings")["msg_id"])
    )
    assert kernel.execute("1 + 1")["status"] == "ok"  # the kernel lives on


def test_bound_outputs_never_land_in_the_running_cell(kernel, store):
    kernel.execute('%%bind --every 0\nprint("bound", len(df))')
    proc = produce(store, "write", str(store), "100", "0.01")
    replies = []
    while proc.poll() is None:
        replies.append(kernel.execute("import time; time.sleep(0.05); print('mine')"))
    finish(proc)
    for reply in replies:
        assert {m["msg_type"] for m in reply["outputs"]} == {"stream"}
        # ipykernel may flush one print in several stream messages
        assert "".join(m["content"]["text"] for m in reply["outputs"]) == "mine\n"


def test_bindings_list_and_unbind(kernel, store):
    kernel.execute("%%bind --on run\nprint('finished', len(df))")
    finish(produce(store, "write", str(store), "3", "0"))
    assert kernel.wait_for(lambda: "finished 3" in last_text(kernel))
    listing = kernel.text_of(kernel.execute("%bindings")["msg_id"])
    assert "on run" in listing
    kernel.execute("%unbind --all")
    assert "no bindings" in kernel.text_of(kernel.execute("%bindings")["msg_id"])
    with pytest.raises(AssertionError, match="no binding"):
        kernel.execute("%unbind 99")


def test_rerunning_a_bound_cell_replaces_its_binding(kernel, store):
    for _ in range(2):
        kernel.execute("%%bind\nprint(len(df))", cell_id="cell-1")
    kernel.execute("%%bind\nprint(len(df))", cell_id="cell-2")
    listing = kernel.text_of(kernel.execute("%bindings")["msg_id"])
    assert listing.count("<tr>") == 1 + 2  # header row and one binding per cell


def test_batch_path_runs_once_on_the_run_named_by_scan_uid(tmp_path, store):
    import nbformat
    import papermill

    import scandeck

    for n in (4, 6):
        finish(produce(store, "write", str(store), str(n), "0"))
    cat = scandeck.open_catalog(store)
    older = cat[-2]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_code_cell("scan_uid = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(f"%load_ext scandeck\n%catalog {store}"),
        nbformat.v4.new_code_cell("%%bind\nprint(run.uid, len(df), event['seq_num'])"),
    ]
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    t0 = time.monotonic()
    papermill.execute_notebook(
        str(src), str(out), parameters={"scan_uid": older.uid}, kernel_name="python3", progress_bar=False
    )
    assert time.monotonic() - t0 < 120  # it completes: no live binding holds it open
    text = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"]
    assert text.split() == [older.uid, "4", "4"]
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
    text = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"]
    assert text.split() == [cat[-1].uid, "6", "6"]


def test_bind_one_run_by_scan_or_uid_with_new_rows_and_progress(kernel, store):
    import scandeck

    for n in (7, 9):
        finish(produce(store, "write", str(store), str(n), "0"))
    first = scandeck.open_catalog(store)[-2]
    kernel.execute("seen = []")
    kernel.execute('%%bind --scan 1 --every 0\nseen.append(len(new))\nprint("scan1", len(df), sum(seen))')
    kernel.execute(f'%%bind --uid {first.uid[:8]}\nprint("uid", run.uid, event["seq_num"])')
    # Each producer process starts its RunEngine at scan_id 1: --scan takes the newest.
    assert kernel.wait_for(lambda: any("scan1 9 9" in output_text(u[2]) for u in kernel.widget_outputs()))
    assert kernel.wait_for(lambda: any(f"uid {first.uid} 7" in output_text(u[2]) for u in kernel.widget_outputs()))

    def progress_maxima():
        return sorted(
            m["content"]["data"]["state"]["max"]
            for m in list(kernel.messages)
            if m["msg_type"] == "comm_open"  # (widgets' comms; scandeck's own has no state)
            and m["content"]["data"].get("state", {}).get("_model_name") == "IntProgressModel"
        )

    # The progress bar follows the outputs in the same update: wait for both bars.
    assert kernel.wait_for(lambda: progress_maxima() == [7, 9]), progress_maxima()


def test_scans_lists_runs_as_html(kernel, store):
    for n in (2, 3):
        finish(produce(store, "write", str(store), str(n), "0"))
    html = kernel.text_of(kernel.execute("%scans -n 1")["msg_id"])
    assert "<table" in html and "1 of 2 runs" in html and "scan_id" in html
    html = kernel.text_of(kernel.execute('%scans sample == "Ni"')["msg_id"])
    assert html.count("sd-success") >= 2
    typo = kernel.text_of(kernel.execute('%scans smaple == "Ni"')["msg_id"])
    assert "no run has the field smaple (did you mean sample?)" in typo
    with pytest.raises(AssertionError, match="QuerySyntaxError"):
        kernel.execute('%scans sample = "Ni"')


def test_kernel_shuts_down_cleanly_with_live_bindings(tmp_path, store):
    session = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    proc = None
    try:
        session.execute(f"%load_ext scandeck\n%catalog {store}")
        session.execute("%%bind\nprint(len(df))")
        session.execute("%%bind --on run\nprint(len(df))")
        session.execute(
            f"import scandeck\npipe = scandeck.live(catalog=scandeck.open_catalog({str(store)!r}))"
            ".stream().sink(lambda row: None)"
        )
        proc = produce(store, "write", str(store), "100000", "0.001")  # still running at shutdown
        assert session.wait_for(lambda: len(session.widget_outputs()) > 1)
    finally:
        kernel_process = session.km.provisioner.process
        session.close()  # shutdown_request; a thread that hangs the exit gets the kernel killed
        if proc is not None:
            proc.kill()
            proc.wait(10)
            proc.stdout.close()
    assert not session.km.is_alive()
    assert kernel_process.wait(10) == 0  # it exited by itself: not killed (-9) after a timeout
