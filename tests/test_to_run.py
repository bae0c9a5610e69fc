"""Live derived runs: ``scandeck.live(run).stream().map(f).scan(g).to_run(cat)``.

The multi-process test has a real RunEngine producer in one process, the pipeline in
this one and a follower of the derived run in a third; the others use runs written by a
RunEngine (or event-model's ``compose_run``) into an embedded store under tmp_path.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from event_model import compose_run
from source_uris import SOURCES

import scandeck
import scandeck.derived
import scandeck.provenance.context
from scandeck.exceptions import DerivedValueError, PipelineError
from scandeck.livestream import Live

PROCS = str(Path(__file__).with_name("derived_live_procs.py"))


def doubled(row):
    return row["det"] * 2 + row["seq_num"]


def total(acc, x, *, weight=1.0):
    return acc + weight * x


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(" + "x" * 500 + ")"


@pytest.fixture
def lives():
    made = []

    def make(target, **kwargs):
        item = Live(target, **kwargs)
        made.append(item)
        return item

    yield make
    for item in made:
        item.stop()


@pytest.fixture
def scanned(sqlite_cat, RE):
    """A 12-point scan of ophyd.sim's motor and det, stored by a real RunEngine."""
    import bluesky.plans as bp
    from ophyd.sim import det, motor

    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.scan([det], motor, -1, 1, 12), sample="Ni")
    return sqlite_cat[uid]


def expected_totals(run) -> list[float]:
    ds = run.primary.read()
    acc, out = 0.0, []
    for det, seq in zip(ds["det"].values, ds["seq_num"].values, strict=True):
        acc = total(acc, doubled({"det": float(det), "seq_num": int(seq)}), weight=0.5)
        out.append(acc)
    return out


def wait_for(predicate, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def stop_of(cat, uid):
    return cat[uid].metadata["stop"]


def test_derived_run_from_a_stored_scan(scanned, sqlite_cat, lives):
    live = lives(scanned, catalog=sqlite_cat)
    out = (
        live.stream("primary")
        .map(doubled)
        .scan(total, start=0.0, weight=0.5)
        .to_run(sqlite_cat, stream="totals", metadata={"purpose": "running total"})
    )
    assert out.wait(60)
    run = sqlite_cat[out.uid]
    start = run.metadata["start"]
    assert start["parent_uids"] == [scanned.uid]
    assert start["plan_name"] == "derived" and start["purpose"] == "running total"
    assert start["provenance_record"] == scandeck.provenance.context.pending_record_id()
    assert run.metadata["stop"]["exit_status"] == "success"
    got = run["totals"].read()["total"].values.tolist()  # a number: the key is the last function's name
    assert got == pytest.approx(expected_totals(scanned))
    assert {"uid": out.uid, "catalog": sqlite_cat.name} in scandeck.derived.written()
    assert str(out) == repr(out) == f"<to_run {out.uid[:8]} of 1 parent run(s): success, 12 events>"


def test_pipeline_description(scanned, sqlite_cat, lives):
    thing = Opaque()
    live = lives(scanned, catalog=sqlite_cat)
    out = (
        live.stream()
        .map(doubled)
        .filter(lambda v: v > -100)
        .map(np.multiply, 2.0)
        .scan(total, start=0.0, weight=thing)
        .to_run(sqlite_cat, key="y")
    )
    out.stop("abort", "only the description is wanted")
    pipeline = sqlite_cat[out.uid].metadata["start"]["pipeline"]
    assert pipeline["format"] == "scandeck.pipeline/1"
    nodes = pipeline["nodes"]
    assert [n["type"] for n in nodes] == ["live", "map", "filter", "map", "accumulate", "to_run"]
    assert [n["upstreams"] for n in nodes] == [[], [0], [1], [2], [3], [4]]
    assert nodes[0]["run"] == scanned.uid and nodes[0]["stream"] == "primary"
    for node, fn in ((nodes[1], doubled), (nodes[4], total)):
        assert node["function"]["qualname"] == fn.__qualname__
        assert node["function"]["module"] == __name__
        assert node["function"]["sha256"] == hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    assert nodes[2]["predicate"]["qualname"].endswith("<lambda>")
    assert nodes[3]["function"] == {"qualname": "multiply", "module": "numpy", "sha256": None}
    assert nodes[3]["args"] == [2.0]
    assert nodes[4]["start"] == 0.0
    assert (
        nodes[4]["kwargs"]["weight"]["repr"].startswith("Opaque(xxx")
        and len(nodes[4]["kwargs"]["weight"]["repr"]) < 210
    )
    assert nodes[5] == {
        "id": 5,
        "upstreams": [4],
        "stream": "primary",
        "key": "y",
        "catalog": sqlite_cat.name,
        "type": "to_run",
    }
    assert pipeline["summary"] == (
        f"live(primary of {scanned.uid[:8]}) -> map(doubled) -> filter(<lambda>) -> map(multiply) "
        "-> accumulate(total) -> to_run(primary)"
    )
    env = pipeline["environment"]
    assert env["python"] == sys.version.split()[0]
    assert {"scandeck", "streamz", "numpy", "event-model"} <= set(env["packages"])
    assert stop_of(sqlite_cat, out.uid)["reason"] == "only the description is wanted"


def test_a_failing_map_function_ends_the_run_with_fail(scanned, sqlite_cat, lives, capsys):
    def picky(row):
        if row["seq_num"] == 5:
            raise ValueError("no fifth row")
        return row["det"]

    live = lives(scanned, catalog=sqlite_cat)
    source = live.stream()
    out = source.map(picky).to_run(sqlite_cat)
    assert out.wait(60)
    stop = stop_of(sqlite_cat, out.uid)
    assert stop["exit_status"] == "fail"
    assert stop["reason"] == "map(picky) raised ValueError: no fifth row"
    assert sqlite_cat[out.uid].primary.read()["picky"].values.tolist() == (
        scanned.primary.read()["det"].values[:4].tolist()
    )
    assert wait_for(lambda: out.dropped == 7)  # rows 6-12 went through map, not written
    assert live.failures == 1 and "no fifth row" in capsys.readouterr().err


def test_a_failing_branch_elsewhere_does_not_fail_the_run(scanned, sqlite_cat, lives, capsys):
    def broken(row):
        raise RuntimeError("not this pipeline")

    live = lives(scanned, catalog=sqlite_cat)
    source = live.stream()
    out = source.map(lambda r: r["det"]).to_run(sqlite_cat)
    source.sink(broken)
    assert out.wait(60)
    assert stop_of(sqlite_cat, out.uid)["exit_status"] == "success"
    assert out.events == 12 and wait_for(lambda: live.failures == 12)
    assert "not this pipeline" in capsys.readouterr().err


def write_parent(cat, values, *, exit_status="success", reason="", stop=True):
    """A parent run of ``values`` (key ``x``) written with compose_run; returns its uid and writer."""
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "parent"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "t"}}
    )
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for i, v in enumerate(values, 1):
        writer("event", desc.compose_event(data={"x": v}, timestamps={"x": 0.0}, seq_num=i))
    if stop:
        writer("stop", bundle.compose_stop(exit_status=exit_status, reason=reason))
        writer.close()
    return bundle.start_doc["uid"], writer, bundle


def test_an_aborted_parent_gives_an_aborted_run(sqlite_cat, lives):
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0], exit_status="abort", reason="beam lost")
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: r["x"] + 1).to_run(sqlite_cat)
    assert out.wait(60)
    stop = stop_of(sqlite_cat, out.uid)
    assert stop["exit_status"] == "abort"
    assert stop["reason"] == f"parent run {uid[:8]} ended with abort: beam lost"
    assert sqlite_cat[out.uid].primary.read()["value"].values.tolist() == [2.0, 3.0, 4.0]


def test_stopping_the_live_aborts_the_run(sqlite_cat, lives):
    uid, writer, bundle = write_parent(sqlite_cat, [1.0, 2.0], stop=False)
    try:
        live = lives(uid, catalog=sqlite_cat)
        out = live.stream().map(lambda r: r["x"]).to_run(sqlite_cat)
        live.stop()
        assert out.done
        stop = stop_of(sqlite_cat, out.uid)
        assert stop["exit_status"] == "abort"
        assert "scandeck.live was stopped" in stop["reason"]
        assert out.exit_status == "abort"
    finally:
        writer("stop", bundle.compose_stop())
        writer.close()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0, "three"], "data key 'value' changed type at value 3: float at first, now str"),
        ([1, 2, 2.5], "data key 'value' changed type at value 3: int at first, now float"),
        ([{"a": 1.0}, {"a": 2.0, "b": 1.0}], "value 2 has other keys than the first: new b"),
        ([{"a": 1.0, "b": None}], "data key 'b': a value of type NoneType cannot be stored in a run"),
        (
            [np.zeros(3), np.zeros(4)],
            "data key 'value' changed type at value 2: array float64 (3,) at first, now array float64 (4,)",
        ),
        ([{"a": {"nested": 1}}], "data key 'a': a value of type dict cannot be stored in a run"),
    ],
)
def test_bad_values_end_the_run_with_a_clear_error(sqlite_cat, lives, values, message):
    uid, _, _ = write_parent(sqlite_cat, [float(i) for i in range(len(values))])
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: values[int(r["x"])]).to_run(sqlite_cat)
    assert out.wait(60)
    stop = stop_of(sqlite_cat, out.uid)
    assert stop["exit_status"] == "fail"
    assert stop["reason"].startswith("DerivedValueError: " + message)
    assert wait_for(lambda: live.failures == 1)  # the Live counts (and shows) it after the run ended
    assert isinstance(live.last_error, DerivedValueError) and message in str(live.last_error)


def test_numbers_dicts_and_arrays_become_data_keys(sqlite_cat, lives):
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0])
    live = lives(uid, catalog=sqlite_cat)
    out = (
        live.stream()
        .map(
            lambda r: {
                "x": r["x"],
                "n": int(r["x"]),
                "ok": r["x"] > 1,
                "name": f"p{r['x']:.0f}",
                "vec": np.full(2, r["x"]),
            }
        )
        .to_run(sqlite_cat)
    )
    assert out.wait(60)
    run = sqlite_cat[out.uid]
    desc = next(d for n, d in run.documents() if n == "descriptor")
    keys = desc["data_keys"]
    assert {k: (v["dtype"], v["shape"]) for k, v in keys.items()} == {
        "x": ("number", []),
        "n": ("integer", []),
        "ok": ("boolean", []),
        "name": ("string", []),
        "vec": ("array", [2]),
    }
    ds = run.primary.read()
    assert ds["vec"].values.tolist() == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    assert ds["n"].values.tolist() == [1, 2, 3] and ds["ok"].values.tolist() == [False, True, True]


def test_pipelines_that_cannot_end_in_to_run(sqlite_cat, lives, scanned):
    from streamz import Stream

    with pytest.raises(PipelineError, match=r"start the pipeline at scandeck.live"):
        Stream().map(float).to_run(sqlite_cat)
    with pytest.raises(PipelineError, match=r"follows each new run"):
        lives(None, catalog=sqlite_cat).stream().to_run(sqlite_cat)
    with pytest.raises(PipelineError, match=r"metadata\['parent_uids'\] is set by to_run"):
        lives(scanned, catalog=sqlite_cat).stream().to_run(sqlite_cat, metadata={"parent_uids": ["x"]})
    assert len(sqlite_cat) == 1  # nothing written


@pytest.mark.parametrize("where", ["sqlite", "redis"])
def test_a_follower_in_another_process_sees_the_derived_run_live(request, tmp_path, lives, where):
    """Producer (RunEngine) and follower in their own processes, the pipeline here."""
    uri = SOURCES[where](request, tmp_path)
    cat = scandeck.open_catalog(uri)
    gate = tmp_path / "gate"
    n = 8
    producer = subprocess.Popen(
        [sys.executable, PROCS, "produce", uri, str(gate), str(n)], stdout=subprocess.PIPE, text=True
    )
    follower = None
    try:
        line = producer.stdout.readline().split()
        assert line[0] == "started", line
        parent = line[1]
        live = lives(parent, catalog=cat)
        out = live.stream().map(doubled).scan(total, start=0.0, weight=0.5).to_run(cat)
        follower = subprocess.Popen(
            [sys.executable, PROCS, "follow", uri, out.uid, str(tmp_path / "seen.json"), str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # The producer holds after n points until the gate exists: the follower must see
        # n derived events while the parent (and so the derived run) is still running.
        assert follower.stdout.readline().split()[0] == "saw"
        assert not gate.exists() and cat[parent].metadata.get("stop") is None
        gate.touch()
        assert producer.wait(120) == 0 and follower.wait(120) == 0
    finally:
        for proc in (producer, follower):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
    assert out.wait(60)
    seen = json.loads((tmp_path / "seen.json").read_text())
    names = [name for name, _ in seen]
    assert names[0] == "start" and names[1] == "descriptor" and names[-1] == "stop"
    assert seen[0][1]["pipeline"]["summary"].startswith(f"live(primary of {parent[:8]}) -> map(doubled)")
    assert seen[-1][1]["exit_status"] == "success"
    values = []
    for name, doc in seen[2:-1]:
        values += doc["data"]["total"] if name == "event_page" else [doc["data"]["total"]]
    assert values == pytest.approx(expected_totals(cat[parent]))
    assert len(values) == 2 * n
    cat.close()


def test_in_a_kernel_the_derived_run_grows_while_the_parent_runs(tmp_path):
    """A real kernel as JupyterLab drives it: rows are emitted on its loop between requests."""
    from kernel_harness import KernelSession

    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    gate = tmp_path / "gate"
    n = 6
    kernel = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    producer = subprocess.Popen(
        [sys.executable, PROCS, "produce", str(store), str(gate), str(n)], stdout=subprocess.PIPE, text=True
    )
    try:
        parent = producer.stdout.readline().split()[1]
        kernel.execute(
            "import scandeck\n"
            f"cat = scandeck.open_catalog({str(store)!r})\n"
            f"live = scandeck.live({parent!r}, catalog=cat)\n"
            "out = live.stream().map(lambda r: r['det']).to_run(cat, key='det')"
        )

        def ask(code: str) -> str:
            return kernel.text_of(kernel.execute(code, timeout=30)["msg_id"]).strip()

        assert wait_for(lambda: ask("print(out.events)") == str(n))
        assert ask("print(out.exit_status)") == "None" and cat[parent].metadata.get("stop") is None
        gate.touch()
        assert producer.wait(120) == 0
        assert wait_for(lambda: ask("print(out.done, out.exit_status, out.events)") == f"True success {2 * n}")
        derived = ask("print(out.uid)")
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
        producer.stdout.close()
        kernel.close()
    assert cat[derived].primary.read()["det"].values.tolist() == cat[parent].primary.read()["det"].values.tolist()
    cat.close()
