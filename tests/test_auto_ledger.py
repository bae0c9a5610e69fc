"""The standing analyses' ledger and service, without kernels: lease races, late results, takeovers.

Ledger cases use two :class:`Ledger` objects on one file (two services). Service cases run
:class:`AutoService` in this process on an embedded store a real RunEngine writes into, with
the rerun pool replaced by one whose reruns end when the test says so (a rerun that takes
longer than the lease), and the lease shortened.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

import scandeck
from scandeck.provenance import auto as auto_module
from scandeck.provenance import auto_pool
from scandeck.provenance.auto import AutoService
from scandeck.provenance.standing import Ledger

LEASE = 0.6  # seconds, for the service cases (the real one is 15 s)


def _define(ledger: Ledger, catalog: str = "", seq: int = 0, status: str = "success", query: str = ""):
    standing, created = ledger.define("0" * 32, name="fit", query=query, catalog=catalog, status=status, seq=seq)
    assert created
    return standing


# -- the ledger ----------------------------------------------------------------------------------


def test_a_late_result_of_a_holder_that_lost_the_lease_does_not_overwrite_its_successors(tmp_path):
    one, two = Ledger(tmp_path), Ledger(tmp_path)
    sid = _define(one).id
    one.advance(sid, ended=[("run-a", 1)])
    assert one.acquire(sid, "one", ttl=0.05) is None
    assert [r.uid for r in one.claim(sid, "one", 2)] == ["run-a"]
    time.sleep(0.1)  # one's lease runs out while its rerun goes on
    assert two.acquire(sid, "two", ttl=60) is None
    assert two.reclaim(sid, lambda uid: None) == (0, 1)  # no record yet: pending again
    assert [r.uid for r in two.claim(sid, "two", 2)] == ["run-a"]
    two.finish(sid, "run-a", ok=True, record_id="rec-two", owner="two")
    one.finish(sid, "run-a", ok=False, record_id="rec-one", message="killed", owner="one")  # late
    (row,) = two.runs(sid)
    assert (row.state, row.record_id) == ("done", "rec-two")


def test_a_late_result_settles_a_run_requeued_but_not_yet_claimed_again(tmp_path):
    one, two = Ledger(tmp_path), Ledger(tmp_path)
    sid = _define(one).id
    one.advance(sid, ended=[("run-a", 1)])
    assert one.acquire(sid, "one", ttl=0.05) is None
    one.claim(sid, "one", 1)
    time.sleep(0.1)
    assert two.acquire(sid, "two", ttl=60) is None
    two.reclaim(sid, lambda uid: None)
    one.finish(sid, "run-a", ok=True, record_id="rec-one", owner="one")  # its rerun ends now
    assert two.claim(sid, "two", 2) == []  # done: not rerun a second time
    (row,) = two.runs(sid)
    assert (row.state, row.record_id) == ("done", "rec-one")


def test_claims_of_two_ledgers_racing_in_threads_never_share_a_run(tmp_path):
    one, two = Ledger(tmp_path), Ledger(tmp_path)
    sid = _define(one).id
    one.advance(sid, ended=[(f"run-{i:03}", i) for i in range(200)])
    claimed: dict[str, list[str]] = {"one": [], "two": []}

    def work(ledger: Ledger, owner: str) -> None:
        while True:
            ledger.acquire(sid, owner, ttl=0.005)  # short leases: the two take turns holding it
            rows = ledger.claim(sid, owner, 3)
            if not rows and not ledger.runs(sid, ["pending"]):
                return
            for row in rows:
                claimed[owner].append(row.uid)
                ledger.finish(sid, row.uid, ok=True, record_id=f"{owner}-{row.uid}", owner=owner)

    threads = [threading.Thread(target=work, args=(led, name)) for led, name in ((one, "one"), (two, "two"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = claimed["one"] + claimed["two"]
    assert sorted(every) == [f"run-{i:03}" for i in range(200)]
    assert one.counts(sid)["done"] == 200


# -- the service, in this process ----------------------------------------------------------------


class SlowPool:
    """The standing pool's interface; each rerun ends when the test sets its event (or at once)."""

    calls: list[str]
    hold: threading.Event

    def __init__(self, template, *, workers: int = 2, dask=None) -> None:
        self.capacity = workers

    def submit(self, task) -> Future:
        SlowPool.calls.append(task["uid"])
        future: Future = Future()

        def finish() -> None:
            SlowPool.hold.wait(120)
            future.set_result({"uid": task["uid"], "status": "ok", "record_id": None, "seconds": 0.0})

        threading.Thread(target=finish, daemon=True).start()
        return future

    def close(self) -> None:
        pass


@pytest.fixture
def status() -> str:
    """The exit status of the analysis of :func:`bench` (a test parametrizes it)."""
    return "success"


@pytest.fixture
def query() -> str:
    """The query of the analysis of :func:`bench` (a test parametrizes it)."""
    return ""


@pytest.fixture
def bench(tmp_path, monkeypatch, RE, hw, status, query):
    """An embedded store a RunEngine writes into, a standing analysis on it, services to start."""
    from bluesky.plans import count

    monkeypatch.setattr(auto_module, "LEASE_SECONDS", LEASE)
    monkeypatch.setattr(auto_module, "IDLE_WAIT", 0.05)
    monkeypatch.setattr(auto_pool, "StandingPool", SlowPool)
    SlowPool.calls = []
    SlowPool.hold = threading.Event()
    fake_plan = SimpleNamespace(output_dir=tmp_path / "out", template={}, task_for=lambda t: {"uid": t.uid})
    monkeypatch.setattr(AutoService, "_plan", lambda self, catalog: fake_plan)
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    prov = tmp_path / "prov"
    ledger = Ledger(prov)
    standing = _define(ledger, catalog=str(store), seq=cat.source.latest_seq(), status=status, query=query)
    services: list[AutoService] = []
    lines: list[str] = []

    def service(name: str) -> AutoService:
        svc = AutoService(standing.id, store=prov, say=lambda line: lines.append(f"{name}: {line}"))
        services.append(svc)
        svc.start()
        return svc

    def scan(**md) -> str:
        (uid,) = RE(count([hw.det], num=2), **md)
        return uid

    yield SimpleNamespace(
        cat=cat, ledger=ledger, sid=standing.id, service=service, scan=scan, lines=lines, RE=RE, hw=hw
    )
    SlowPool.hold.set()
    for svc in services:
        svc.close(30)
    cat.close()


def _until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_standby_does_not_rerun_what_a_stopping_holder_still_runs(bench):
    """Stopped while a rerun runs longer than the lease, the holder keeps the lease until it is noted."""
    one = bench.service("one")
    _until(lambda: one.holding, "the first service never held the lease")
    two = bench.service("two")
    _until(lambda: any("two: standby" in ln for ln in bench.lines), f"no standby: {bench.lines}")
    uid = bench.scan()
    _until(lambda: SlowPool.calls == [uid], f"never rerun: {bench.lines}")
    one.stop()  # the rerun goes on for several leases while the first service waits for it
    deadline = time.monotonic() + 5 * LEASE
    while time.monotonic() < deadline and len(SlowPool.calls) == 1:
        time.sleep(0.02)
    SlowPool.hold.set()
    one.join(30)
    _until(lambda: two.holding, f"the standby never took over: {bench.lines}")
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 1, f"not noted: {bench.lines}")
    assert SlowPool.calls == [uid], bench.lines
    assert one.failed is None and two.failed is None


def test_a_rerun_longer_than_the_lease_keeps_the_lease(bench):
    one = bench.service("one")
    _until(lambda: one.holding, "the first service never held the lease")
    uid = bench.scan()
    _until(lambda: SlowPool.calls == [uid], f"never rerun: {bench.lines}")
    two = bench.service("two")
    deadline = time.monotonic() + 5 * LEASE
    while time.monotonic() < deadline:
        assert not two.holding, bench.lines
        time.sleep(0.02)
    SlowPool.hold.set()
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 1, f"not noted: {bench.lines}")
    assert SlowPool.calls == [uid]


@pytest.mark.parametrize("status", ["success", "any"])
def test_a_run_left_incomplete_then_completed_is_rerun_when_it_ends(bench):
    """``incomplete`` is no end: a writer that went away may be taken over (the Redis keeper's
    archive does, a Redis writer whose heartbeat lapsed comes back); the run is rerun at its stop."""
    from bluesky import RunEngine
    from bluesky.plans import count

    SlowPool.hold.set()
    docs: list = []
    RunEngine({}, context_managers=[])(count([bench.hw.det], num=3), lambda name, doc: docs.append((name, doc)))
    (start,) = [d for n, d in docs if n == "start"]
    (stop,) = [d for n, d in docs if n == "stop"]
    first = bench.cat.writer()
    for name, doc in docs[:-1]:
        first(name, doc)
    first.close()  # went away without its stop document
    assert bench.cat.source.get(start["uid"]).status == "incomplete"
    bench.service("one")
    seq = bench.cat.source.get(start["uid"]).seq
    _until(lambda: bench.ledger.place(bench.sid) >= seq, f"the service never looked: {bench.lines}")
    assert [r.state for r in bench.ledger.runs(bench.sid)] == ["open"]  # watched, neither dropped nor rerun
    second = bench.cat.source.writer()
    second.resume(start["uid"])
    second("stop", stop)
    second.close()
    assert bench.cat.source.get(start["uid"]).status == "success"
    _until(lambda: start["uid"] in SlowPool.calls, f"never rerun: {bench.lines}", timeout=10 * LEASE)
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 1, f"not noted: {bench.lines}")
    assert SlowPool.calls == [start["uid"]]


@pytest.mark.parametrize("query", ['sample == "Ni" and tags contains "good"'])
def test_a_run_whose_facts_match_only_after_its_end_is_rerun_then(bench):
    """A query on facts (tags, computed columns) is asked again when a run's facts change after its
    end: a person tags a run good, the column service computes its final cells after the stop."""
    from scandeck.runtable.annotate import annotate

    SlowPool.hold.set()
    bench.service("one")
    tagged, other, cu = bench.scan(sample="Ni"), bench.scan(sample="Ni"), bench.scan(sample="Cu")
    _until(lambda: bench.ledger.place(bench.sid) >= bench.cat.source.get(cu).seq, "never looked")
    assert SlowPool.calls == []  # nothing matches yet
    annotate(bench.cat.source, tagged, tags=["good"])
    annotate(bench.cat.source, cu, tags=["good"])
    _until(lambda: tagged in SlowPool.calls, f"never rerun: {bench.lines}", timeout=10 * LEASE)
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 1, f"not noted: {bench.lines}")
    annotate(bench.cat.source, tagged, comment="tagged again")  # its facts change again: not rerun twice
    annotate(bench.cat.source, other, tags=["good"])
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 2, f"not noted: {bench.lines}")
    assert SlowPool.calls == [tagged, other]


def test_list_and_show_print_nothing_of_a_run_raw(tmp_path, capsys):
    from scandeck.cli import main
    from scandeck.safe_text import UNSAFE

    ledger = Ledger(tmp_path)
    hostile = "\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\n"
    standing, _ = ledger.define(
        "1" * 32, name=f"fit{hostile}", query=f'sample == "{hostile}"', catalog=f"/data/{hostile}", seq=0
    )
    ledger.advance(standing.id, ended=[(f"uid{hostile}", None), ("uid-2", 7)])
    assert ledger.acquire(standing.id, f"host{hostile}:1:aa", ttl=60) is None
    for row in ledger.claim(standing.id, f"host{hostile}:1:aa", 2):
        ledger.finish(standing.id, row.uid, ok=False, record_id=f"rec{hostile}", message=f"boom {hostile}")
    for args in (["--list"], ["--show", standing.id[:6]], ["--list", "--json"], ["--show", standing.id, "--json"]):
        assert main(["auto", *args, "--store", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "pwned" in out  # shown, escaped
        assert "boom" in out or args == ["--list"]  # --list shows no message
        assert not UNSAFE.search(out.replace("\n", "")), (args, out)
    assert main(["auto", "--show", f"nope{hostile}", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and not UNSAFE.search(err.replace("\n", "")), err


def test_a_holder_that_loses_the_lease_notes_its_rerun_claims_nothing_more_and_takes_it_again(bench):
    one = bench.service("one")
    _until(lambda: one.holding, "the service never held the lease")
    first = bench.scan()
    _until(lambda: SlowPool.calls == [first], f"never rerun: {bench.lines}")
    bench.ledger.release(bench.sid, one.owner)  # another service takes the lease (the ledger was away)
    assert bench.ledger.acquire(bench.sid, "elsewhere:1:aa", ttl=4 * LEASE) is None
    _until(lambda: any("lost the lease" in ln for ln in bench.lines), f"never noticed: {bench.lines}")
    second = bench.scan()  # the other holder's to rerun, not this one's
    SlowPool.hold.set()
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 1, f"the rerun in flight not noted: {bench.lines}")
    assert SlowPool.calls == [first]
    _until(lambda: one.holding, f"never took the lease again: {bench.lines}")  # the other one went
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 2, f"not noted: {bench.lines}")
    assert SlowPool.calls == [first, second]


def test_a_run_whose_rerun_record_exists_is_settled_from_it_not_rerun(bench, tmp_path):
    """A predecessor's rerun recorded after its run was put back to pending (it lost the lease, its
    successor requeued the run, then the record landed): the record is noted, the scan not rerun."""
    import nbformat

    from scandeck.provenance.auto import auto_tag
    from scandeck.provenance.environment import capture
    from scandeck.provenance.recording import build_record, save_stamped
    from scandeck.provenance.store import open_store

    SlowPool.hold.set()
    recorded, other = bench.scan(), bench.scan()
    bench.ledger.advance(bench.sid, ended=[(recorded, 1), (other, 2)])
    nb = nbformat.v4.new_notebook()
    prov = open_store(tmp_path / "prov")
    rec = build_record(
        nb,
        kind="rerun",
        environment=capture(),
        name="fit",
        parent="0" * 32,
        target_scan=recorded,
        inputs=[{"uid": recorded, "catalog": "x"}],
        tags=["auto", auto_tag(bench.sid)],
    )
    saved = save_stamped(prov, rec, nb)
    prov.close()
    bench.service("one")
    _until(lambda: bench.ledger.counts(bench.sid)["done"] == 2, f"not noted: {bench.lines}")
    assert SlowPool.calls == [other]
    (row,) = [r for r in bench.ledger.runs(bench.sid) if r.uid == recorded]
    assert row.record_id == saved.id
