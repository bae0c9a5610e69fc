"""Review of ``Stream.to_run`` (live derived runs): the cases that lost or mislabelled data.

Each test writes a parent run with event-model's ``compose_run`` into an embedded
store under tmp_path (or follows one), builds a pipeline ending in ``to_run`` and
reads the derived run back; documents are checked with event-model's schemas.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from event_model import DocumentNames, compose_run, schema_validators

import scandeck.livestream
from scandeck.derived_live import node as to_run_node
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
