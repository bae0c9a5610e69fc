"""Review of ``Stream.to_run`` (live derived runs): the cases that lost or mislabelled data.

Each test writes a parent run with event-model's ``compose_run`` into an embedded
store under tmp_path (or follows one), builds a pipeline ending in ``to_run`` and
reads the derived run back; documents are checked with event-model's schemas.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from event_model import DocumentNames, compose_run, schema_validators

import scandeck.livestream
from scandeck.derived_live import node as to_run_node
from scandeck.exceptions import PipelineError
from scandeck.livestream import Live


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


def write_parent(cat, values, *, streams=None, stop=True):
    """A parent run: ``values`` (key ``x``) in primary, and ``streams`` {name: values} more."""
    writer = cat.writer()
    bundle = compose_run(metadata={"plan_name": "parent"})
    writer("start", bundle.start_doc)
    for name, items in {"primary": values, **(streams or {})}.items():
        keys = {"x": {"dtype": "number", "shape": [], "source": "t"}}
        desc = bundle.compose_descriptor(name=name, data_keys=keys)
        writer("descriptor", desc.descriptor_doc)
        for i, v in enumerate(items, 1):
            writer("event", desc.compose_event(data={"x": v}, timestamps={"x": 0.0}, seq_num=i))
    if stop:
        writer("stop", bundle.compose_stop(exit_status="success"))
        writer.close()
    return bundle.start_doc["uid"], writer, bundle


def documents(cat, uid):
    docs = list(cat[uid].documents())
    for name, doc in docs:
        schema_validators[DocumentNames(name)].validate(doc)
    return docs


def descriptor_of(cat, uid):
    return next(doc for name, doc in documents(cat, uid) if name == "descriptor")


# -- the store refusing a document: the node must know the run failed ------------------------


def test_a_store_refusing_a_page_fails_the_node_too(sqlite_cat, lives, monkeypatch, capsys):
    """The writer thread's error ends the node: exit_status fail, later values dropped, not queued."""
    from scandeck.exceptions import StoreError

    real = sqlite_cat.writer

    def refusing_writer():
        inner = real()

        def write(name, doc):
            if name == "event_page":
                raise StoreError("the store refused the page (disk full)")
            inner(name, doc)

        write.close = inner.close
        return write

    monkeypatch.setattr(sqlite_cat, "writer", refusing_writer)
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0])
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: r["x"]).to_run(sqlite_cat)
    assert out.wait(60)
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert stop["exit_status"] == "fail" and "disk full" in stop["reason"]
    assert stop["num_events"] == {"primary": 0}  # what the store holds, not what was composed
    assert out.exit_status == "fail" and "disk full" in out.reason
    assert out._writer._queue.qsize() == 0
    assert out not in to_run_node._open
    out.update({"uid": uid, "x": 4.0})  # a late value is dropped, not queued for no one
    assert out._writer._queue.qsize() == 0 and out.dropped >= 1
    assert "disk full" in capsys.readouterr().err


# -- the end of another stream of the parent must not end the derived run -------------------


@pytest.mark.parametrize("other", ["baseline", "primary filled"])
def test_the_end_of_another_stream_of_the_parent_does_not_end_the_run(sqlite_cat, lives, monkeypatch, other):
    """Each stream (and each fill of one) has its own following thread: here primary's is held
    back until the other stream of the same Live has reported the parent's end."""
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0, 4.0, 5.0], streams={"baseline": [7.0]})
    held = threading.Event()
    take = scandeck.livestream._Feed.take

    def held_take(feed, *, follower=True):
        if follower and feed.name == "primary" and feed.fill is False:
            assert held.wait(60)
        take(feed, follower=follower)

    monkeypatch.setattr(scandeck.livestream._Feed, "take", held_take)
    live = lives(uid, catalog=sqlite_cat)
    if other == "baseline":
        live.stream("baseline").sink(lambda row: None)
    else:
        live.stream("primary", fill=True).sink(lambda row: None)
    out = live.stream("primary").map(lambda r: r["x"]).to_run(sqlite_cat)
    live.watch(lambda event, detail: held.set() if event == "end" else None)  # after to_run's watcher
    assert out.wait(60)
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert (stop["exit_status"], out.events, out.dropped) == ("success", 5, 0)
    assert sqlite_cat[out.uid].primary.read()["value"].values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


# -- the process exits while the parent still runs -----------------------------------------

EXITING = """
import sys
import scandeck
from event_model import compose_run
from scandeck.livestream import Live

cat = scandeck.open_catalog(sys.argv[1])
live = Live(sys.argv[2], catalog=cat)
out = live.stream().map(lambda r: r["x"]).to_run(cat)
print(out.uid, flush=True)
"""


def test_a_derived_run_gets_its_stop_when_the_process_exits(sqlite_cat, tmp_path):
    """Leaving Python (a script's end, a kernel shut down) aborts the open derived runs: stop written."""
    uid, writer, bundle = write_parent(sqlite_cat, [1.0, 2.0], stop=False)
    try:
        done = subprocess.run(
            [sys.executable, "-c", EXITING, str(tmp_path / "store"), uid],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        writer("stop", bundle.compose_stop())
        writer.close()
    assert done.returncode == 0, done.stderr
    derived = done.stdout.split()[0]
    stop = sqlite_cat[derived].metadata["stop"]
    assert stop is not None, done.stderr
    assert stop["exit_status"] == "abort"
    assert stop["reason"] == "the process exited before the parent run ended"
    assert "could not be written" not in done.stderr


# -- values: the descriptor says what is stored; what the store would refuse is refused here ---


@pytest.mark.parametrize(
    ("first", "later", "dtype_numpy"),
    [
        (np.array([1.5], dtype=np.float32), np.array([1 / 3]), "<f8"),
        (np.array([1, 2], dtype=np.int32), np.array([2**40, 1]), "<i8"),
        (np.array([1], dtype=np.uint8), np.array([300]), "<i8"),
        (np.float32(0.5), 1 / 3, "<f8"),
        ((np.int64(1), np.int64(2)), [3, 2**40], "<i8"),
        ([np.bool_(True)], np.array([False]), "|b1"),
    ],
)
def test_the_descriptor_holds_every_value_written(sqlite_cat, lives, first, later, dtype_numpy):
    uid, _, _ = write_parent(sqlite_cat, [0.0, 1.0, 2.0])
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: first if r["x"] == 0 else later).to_run(sqlite_cat)
    assert out.wait(60) and out.exit_status == "success"
    key = descriptor_of(sqlite_cat, out.uid)["data_keys"]["value"]
    assert key["dtype_numpy"] == dtype_numpy
    stored = np.asarray(sqlite_cat[out.uid].primary.read()["value"].values)
    expected = [np.asarray(first).tolist(), np.asarray(later).tolist(), np.asarray(later).tolist()]
    assert stored.tolist() == expected
    # What the descriptor says holds them: a reader that builds arrays from it loses nothing.
    assert np.asarray(expected, dtype=np.dtype(dtype_numpy)).tolist() == expected


@pytest.mark.parametrize(
    ("good", "bad", "message"),
    [
        (1, 2**70, "data key 'value': 1180591620717411303424 is outside the 64-bit integers a run holds"),
        (1, np.uint64(2**63), "data key 'value': 9223372036854775808 is outside the 64-bit integers a run holds"),
        (
            np.array([1, 2], dtype=np.uint64),
            np.array([1, 2**63], dtype=np.uint64),
            "data key 'value': 9223372036854775808 is outside the 64-bit integers a run holds",
        ),
        ("ok", "ok \ud800", "data key 'value': a string with a lone surrogate"),
        ({"a": "x"}, {"a": "\udcff"}, "data key 'a': a string with a lone surrogate"),
    ],
)
def test_values_the_store_would_refuse_fail_the_run_at_that_value(sqlite_cat, lives, good, bad, message):
    """One bad value fails the run with a clear error at that value, and the earlier values stay."""
    uid, _, _ = write_parent(sqlite_cat, [0.0, 1.0, 2.0])
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: good if r["x"] == 0 else bad).to_run(sqlite_cat)
    assert out.wait(60)
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert stop["exit_status"] == out.exit_status == "fail"
    assert stop["reason"].startswith("DerivedValueError: " + message), stop["reason"]
    assert out.events == 1 and stop["num_events"] == {"primary": 1}
    documents(sqlite_cat, out.uid)


@pytest.mark.parametrize("key", ["a.b", "a/b", "\ud800"])
def test_dict_keys_that_cannot_be_data_keys_fail_the_run_clearly(sqlite_cat, lives, key):
    uid, _, _ = write_parent(sqlite_cat, [0.0, 1.0])
    live = lives(uid, catalog=sqlite_cat)
    out = live.stream().map(lambda r: {key: r["x"]}).to_run(sqlite_cat)
    assert out.wait(60)
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert stop["exit_status"] == out.exit_status == "fail"
    assert stop["reason"].startswith("DerivedValueError: dict keys become data keys"), stop["reason"]
    assert "no '.' or '/'" in stop["reason"]
    documents(sqlite_cat, out.uid)


def test_a_key_that_cannot_name_a_data_key_is_refused_at_once(sqlite_cat, lives):
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    live = lives(uid, catalog=sqlite_cat)
    with pytest.raises(PipelineError, match=r"to_run's key names a data key: .* not 'peak\.cen'"):
        live.stream().map(lambda r: r["x"]).to_run(sqlite_cat, key="peak.cen")
    assert len(sqlite_cat) == 1  # nothing written


# -- nodes that emit on their own clock: their last values came after the run had ended ----


@pytest.mark.parametrize(
    ("build", "node"),
    [
        (lambda s: s.timed_window(0.05).map(len), "timed_window"),
        (lambda s: s.map(lambda r: r["x"]).delay(0.01), "delay"),
        (lambda s: s.buffer(5).map(lambda r: r["x"]), "buffer"),
        (lambda s: s.rate_limit(0.001).map(lambda r: r["x"]), "rate_limit"),
        (lambda s: s.map(lambda r: r["x"]).latest(), "latest"),
        (lambda s: s.map(lambda r: r["x"]).partition(3, timeout=1.0).map(sum), "partition"),
    ],
)
def test_nodes_that_emit_on_their_own_clock_are_refused(sqlite_cat, lives, build, node):
    """Their values come from streamz's event loop, after the rows that fed them: the derived
    run ended (success) before them, and they were dropped."""
    uid, _, _ = write_parent(sqlite_cat, [float(i) for i in range(20)])
    live = lives(uid, catalog=sqlite_cat)
    with pytest.raises(PipelineError, match=rf"to_run cannot follow {node}: it emits on its own clock"):
        build(live.stream()).to_run(sqlite_cat, key="n")
    assert len(sqlite_cat) == 1  # nothing written


def test_partition_and_sliding_window_without_a_clock_are_written_in_full(sqlite_cat, lives):
    uid, _, _ = write_parent(sqlite_cat, [float(i) for i in range(10)])
    live = lives(uid, catalog=sqlite_cat)
    x = live.stream().map(lambda r: r["x"])
    # Two to_run on one Live: once the first is attached the Live may emit (outside a kernel, on
    # its own thread), and the second would be refused for the rows gone by: build both paused.
    with live.paused():
        parts = x.partition(3).map(sum).to_run(sqlite_cat, key="s")
        windows = x.sliding_window(3, return_partial=False).to_run(sqlite_cat, key="w")
    assert parts.wait(60) and windows.wait(60)
    assert sqlite_cat[parts.uid].primary.read()["s"].values.tolist() == [3.0, 12.0, 21.0]  # 9 stays partial
    got = sqlite_cat[windows.uid].primary.read()["w"].values.tolist()
    assert got == [[float(i), float(i + 1), float(i + 2)] for i in range(8)]
    assert descriptor_of(sqlite_cat, windows.uid)["data_keys"]["w"]["shape"] == [3]


# -- the pipeline description tells apart functions that compute different things ----------


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def __repr__(self):
        return f"Scaler({self.factor})"

    def apply(self, row):
        return row["x"] * self.factor


def _functions_of(cat, out):
    out.stop("abort", "only the description is wanted")
    nodes = cat[out.uid].metadata["start"]["pipeline"]["nodes"]
    return [n["function"] for n in nodes if "function" in n]


def test_closures_defaults_and_bound_methods_are_described(sqlite_cat, lives):
    """Same source, other captured values: the description must differ (it named only the source)."""
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    closures = [lambda r, k=k: r["x"] * k for k in (2, 3)]

    def scaled(factor):
        def scale(r):
            return r["x"] * factor

        return scale

    def countdown(n):  # refers to itself through its closure
        return 0 if n <= 0 else countdown(n - 1)

    def functions(f):
        out = lives(uid, catalog=sqlite_cat).stream().map(f).to_run(sqlite_cat, key="v")
        return _functions_of(sqlite_cat, out)

    a, b = (functions(f) for f in closures)
    assert a[0]["sha256"] == b[0]["sha256"] and a != b
    assert (a[0]["defaults"], b[0]["defaults"]) == ([2], [3])
    c, d = (functions(scaled(f)) for f in (0.5, 4.0))
    assert (c[0]["closure"], d[0]["closure"]) == ({"factor": 0.5}, {"factor": 4.0})
    (m,) = functions(Scaler(7).apply)
    assert m["qualname"] == "Scaler.apply" and m["self"] == {"repr": "Scaler(7)"}
    (r,) = functions(lambda row: countdown(3))
    assert r["closure"]["countdown"]["function"]["qualname"].endswith("countdown")


class Hostile:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def test_arguments_and_closures_that_are_awkward_in_a_start_document(sqlite_cat, lives):
    """A URI's password, an int beyond int64, a lone surrogate, a repr that raises: the
    description keeps what it can and the start document is stored."""
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    where = "redis://:hunter2@beamline:6379/0"
    hostile = Hostile()

    def uses(r, big=2**70, odd="x\ud800"):
        return (where, hostile, big, odd) and r["x"]

    live = lives(uid, catalog=sqlite_cat)
    out = (
        live.stream().map(uses).map(lambda v, uri: v, "tiled+http://h:8000/raw?api_key=s3cret").to_run(sqlite_cat)
    )
    first, second = _functions_of(sqlite_cat, out)
    start = json.dumps(sqlite_cat[out.uid].metadata["start"])
    assert "hunter2" not in start and "s3cret" not in start
    assert first["closure"]["where"] == "redis://beamline:6379/0"
    assert first["closure"]["hostile"] == {"repr": "<Hostile object: its repr failed>"}
    assert first["defaults"] == [{"repr": "1180591620717411303424"}, {"repr": "'x\\ud800'"}]
    nodes = sqlite_cat[out.uid].metadata["start"]["pipeline"]["nodes"]
    assert nodes[2]["args"] == ["tiled+http://h:8000/raw"]


def test_a_page_stream_straight_into_to_run_is_refused(sqlite_cat, lives):
    """A page holds however many rows arrived together: as one event its columns changed shape
    from page to page, and the run failed or not by chance."""
    uid, _, _ = write_parent(sqlite_cat, [0.0, 1.0])
    live = lives(uid, catalog=sqlite_cat)
    with pytest.raises(PipelineError, match=r"a page of live.stream\(pages=True\) holds however many rows"):
        live.stream(pages=True).to_run(sqlite_cat)
    out = live.stream(pages=True).map(lambda page: len(page["x"])).to_run(sqlite_cat, key="rows")
    assert out.wait(60) and out.exit_status == "success"
    assert sum(sqlite_cat[out.uid].primary.read()["rows"].values.tolist()) == 2


CELL = '''
class Normalise:
    def __init__(self, by):
        self.by = by

    def __repr__(self):
        return f"Normalise({self.by})"

    def __call__(self, row):
        return row["x"] / self.by

label = f("""a note
on two lines""", lambda row: row["x"])
'''


def test_functions_of_a_notebook_cell_are_described(sqlite_cat, lives):
    """Code compiled as IPython compiles a cell (its source in linecache, module __main__): a
    callable object's class has no findable source but its __call__ has; a lambda whose line
    starts inside a string made inspect.getsource raise (to_run failed)."""
    import hashlib
    import linecache

    filename = "/tmp/ipykernel_0/cell-review.py"
    linecache.cache[filename] = (len(CELL), None, CELL.splitlines(True), filename)
    ns = {"__name__": "__main__", "f": lambda note, fn: fn}
    exec(compile(CELL, filename, "exec"), ns)
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    out = lives(uid, catalog=sqlite_cat).stream().map(ns["Normalise"](2.0)).map(ns["label"]).to_run(sqlite_cat)
    call, lam = _functions_of(sqlite_cat, out)
    source = "".join(CELL.splitlines(True)[8:10])
    assert call["qualname"] == "Normalise" and call["self"] == {"repr": "Normalise(2.0)"}
    assert call["sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert lam["qualname"] == "<lambda>" and lam["sha256"] is None


def test_two_lives_of_one_parent_both_end_before_the_run(sqlite_cat, lives):
    """zip of two scandeck.live of the same run: the first one's end ended the derived run while
    the other's rows were still to be emitted (zip held the first one's values)."""
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0])
    first, second = lives(uid, catalog=sqlite_cat), lives(uid, catalog=sqlite_cat)
    a = first.stream().map(lambda r: r["x"])
    b = second.stream().map(lambda r: 10 * r["x"])
    out = a.zip(b).map(sum).to_run(sqlite_cat, key="s")
    assert out.wait(60)
    assert first.flush(60) and second.flush(60)  # every row emitted: none comes after this
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert (stop["exit_status"], out.events, out.dropped) == ("success", 3, 0)
    assert sqlite_cat[out.uid].primary.read()["s"].values.tolist() == [11.0, 22.0, 33.0]
    assert sqlite_cat[out.uid].metadata["start"]["parent_uids"] == [uid]


def test_a_function_whose_file_was_edited_since_import_has_no_source_hash(
    sqlite_cat, lives, tmp_path, monkeypatch
):
    """inspect.getsource reads the file as it is now: its hash described code that never ran."""
    import importlib
    import inspect

    module = tmp_path / "review_edited_mod.py"
    module.write_text("def halve(row):\n    return row['x'] / 2\n\n\ndef same(row):\n    return row['x']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("review_edited_mod")
    module.write_text(
        "def halve(row):\n    return row['x'] / 3  # edited\n\n\ndef same(row):\n    return row['x']\n"
    )
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    out = lives(uid, catalog=sqlite_cat).stream().map(mod.halve).map(mod.same).to_run(sqlite_cat)
    halve, same = _functions_of(sqlite_cat, out)
    assert halve["sha256"] is None and halve["source"] == "edited since imported"
    assert same["sha256"] == hashlib.sha256(inspect.getsource(mod.same).encode()).hexdigest()


class Plain:
    def __call__(self, row):
        return row["x"]


def test_objects_without_a_repr_are_described_without_their_address(sqlite_cat, lives):
    uid, _, _ = write_parent(sqlite_cat, [0.0])
    out = lives(uid, catalog=sqlite_cat).stream().map(Plain()).map(lambda v, o: v, Plain()).to_run(sqlite_cat)
    call, _ = _functions_of(sqlite_cat, out)
    assert call["self"] == {"repr": f"<{__name__}.Plain object>"}
    nodes = sqlite_cat[out.uid].metadata["start"]["pipeline"]["nodes"]
    assert nodes[2]["args"][0]["function"]["self"] == call["self"]  # an argument: the same
    assert "0x" not in json.dumps(nodes)


def test_a_branch_that_raises_before_to_run_fails_the_run(sqlite_cat, lives, monkeypatch, capsys):
    """streamz hands a value to each downstream in turn and stops at the first that raises: a
    failing sink attached before to_run took every value from it, and the run said success."""
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0])
    held = threading.Event()
    take = scandeck.livestream._Feed.take

    def held_take(feed, *, follower=True):
        if follower:
            assert held.wait(60)  # no row before the whole pipeline is built
        take(feed, follower=follower)

    monkeypatch.setattr(scandeck.livestream._Feed, "take", held_take)

    def broken(value):
        raise RuntimeError("not this pipeline")

    live = lives(uid, catalog=sqlite_cat)
    x = live.stream().map(lambda r: r["x"])
    x.sink(broken)
    out = x.to_run(sqlite_cat)
    held.set()
    assert out.wait(60)
    stop = sqlite_cat[out.uid].metadata["stop"]
    assert (stop["exit_status"], out.events) == ("fail", 0)
    assert stop["reason"] == (
        "a value did not reach to_run: sink(broken), on a branch beside it, raised RuntimeError: not this "
        "pipeline; streamz hands a value to each branch in turn and stops at an error, so attach to_run "
        "before the other branches or keep them from raising"
    )
    assert "not this pipeline" in capsys.readouterr().err


def test_rows_arriving_while_to_run_is_built_reach_it(sqlite_cat, lives, monkeypatch):
    """With a sink beside it the pipeline already ended in sinks: the Live emitted the rows and
    the parent's end while to_run was being built, and the derived run never ended."""
    uid, _, _ = write_parent(sqlite_cat, [1.0, 2.0, 3.0])
    held = threading.Event()
    take = scandeck.livestream._Feed.take

    def held_take(feed, *, follower=True):
        if follower:
            assert held.wait(60)
        take(feed, follower=follower)

    monkeypatch.setattr(scandeck.livestream._Feed, "take", held_take)
    live = lives(uid, catalog=sqlite_cat)
    x = live.stream().map(lambda r: r["x"])
    seen = x.sink_to_list()
    feed = next(iter(live._feeds.values()))
    real_describe = to_run_node.describe

    def describe_while_rows_arrive(*args, **kwargs):
        held.set()
        assert feed.ended.wait(60)  # every row and the end are queued in the Live now
        return real_describe(*args, **kwargs)

    monkeypatch.setattr(to_run_node, "describe", describe_while_rows_arrive)
    out = x.to_run(sqlite_cat)
    assert out.wait(60)
    assert (sqlite_cat[out.uid].metadata["stop"]["exit_status"], out.events, seen) == (
        "success",
        3,
        [1.0, 2.0, 3.0],
    )
