"""The Redis keeper: finished runs go to the archive, Redis is trimmed, readers never notice.

Runs come from a real bluesky RunEngine with ophyd.sim devices, or from
event-model's ``compose_run`` where a case needs chosen times or sizes. Each
test has its own key prefix on the session's real redis-server and its own
SQLite archive under ``tmp_path``; the keys are checked with redis-py directly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import xarray as xr
from event_model import compose_run

import scandeck
from scandeck.catalog import Catalog
from scandeck.cli import main
from scandeck.documents import normalize
from scandeck.sources import open_source, redis_source
from scandeck.sources.redis_keeper import Keeper, TrimPolicy
from scandeck.sources.redis_layout import Keys

Doc = tuple[str, dict[str, Any]]


@dataclass
class Bus:
    """One prefix on the session's redis-server, its archive, and what a test opened on it."""

    url: str
    prefix: str
    archive: Path
    client: redis.Redis
    said: list[str] = field(default_factory=list)
    opened: list[Any] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{self.url}?prefix={self.prefix}"

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    @property
    def archive_uri(self) -> str:
        return f"sqlite://{(self.archive / 'scandeck.sqlite').resolve()}"

    def catalog(self, *, archive: bool = True, options: str = "") -> Catalog:
        """The bus as a catalog; ``archive=False`` leaves finding the archive to the bus."""
        uri = (f"{self.uri}&archive={self.archive}" if archive else self.uri) + options
        return self.keep(Catalog(open_source(uri)))

    def archive_catalog(self) -> Catalog:
        return self.keep(Catalog(open_source(self.archive)))

    def keeper(
        self,
        *,
        max_runs: int | None = None,
        max_age: float | None = None,
        max_memory: int | None = None,
        grace: float = 60.0,
    ) -> Keeper:
        policy = TrimPolicy(max_runs=max_runs, max_age=max_age, max_memory=max_memory, grace=grace)
        return self.keep(Keeper(self.uri, archive=str(self.archive), policy=policy, say=self.said.append))

    def in_redis(self) -> list[str]:
        """Uids of the runs Redis holds, oldest first."""
        return [u.decode() for u in self.client.zrange(self.keys.runs, 0, -1)]

    def gone(self, uid: str) -> bool:
        """Every key of run ``uid`` is deleted and it left the run list and the persisted set."""
        return (
            self.client.exists(*self.keys.of_run(uid)) == 0
            and self.client.zscore(self.keys.runs, uid) is None
            and not self.client.sismember(self.keys.persisted, uid)
        )

    def persisted_flag(self, uid: str) -> bytes | None:
        """The run's ``persisted`` mark (b"1" once the archive holds it), checked against the set."""
        flag = self.client.hget(self.keys.run(uid), "persisted")
        assert (flag == b"1") == bool(self.client.sismember(self.keys.persisted, uid)), uid
        return flag

    def keep(self, thing: Any) -> Any:
        """Close ``thing`` when the test ends."""
        self.opened.append(thing)
        return thing


@pytest.fixture
def bus(redis_server: Any, tmp_path: Path) -> Iterator[Bus]:
    client = redis.Redis.from_url(redis_server.url)
    b = Bus(redis_server.url, f"keeper-{uuid.uuid4().hex[:12]}", tmp_path / "archive", client)
    yield b
    for thing in reversed(b.opened):
        thing.close()
    client.close()


@pytest.fixture(autouse=True)
def _no_catalog_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))


def record(RE: Any, cat: Catalog, plan: Any, **md: Any) -> str:
    """Run ``plan`` into ``cat`` through a writer of its own; return the run's uid."""
    writer = cat.writer()
    token = RE.subscribe(writer)
    try:
        (uid,) = RE(plan, **md)
    finally:
        RE.unsubscribe(token)
        writer.close()
    return uid


def composed(
    n: int, *, t0: float | None = None, sample: str = "Ni", points: int = 1, exit_status: str = "success"
) -> list[Doc]:
    """A run of ``n`` event pages of ``points`` points each, started at ``t0`` (now by default)."""
    t0 = time.time() if t0 is None else t0
    bundle = compose_run(time=t0, metadata={"plan_name": "count", "sample": sample, "num_points": n * points})
    desc = bundle.compose_descriptor(
        name="primary",
        time=t0,
        data_keys={
            "x": {"dtype": "number", "shape": [], "source": "sim:x"},
            "det": {"dtype": "number", "shape": [], "source": "sim:det"},
        },
    )
    docs: list[Doc] = [("start", bundle.start_doc), ("descriptor", desc.descriptor_doc)]
    rng = np.random.default_rng(n)
    for i in range(n):
        seq = list(range(i * points + 1, (i + 1) * points + 1))
        times = [t0 + 0.001 * s for s in seq]
        docs.append(
            (
                "event_page",
                desc.compose_event_page(
                    data={"x": [float(s) for s in seq], "det": rng.random(points).tolist()},
                    timestamps={"x": times, "det": times},
                    seq_num=seq,
                    time=times,
                    validate=points <= 100,
                ),
            )
        )  # jsonschema takes seconds over 20 000 points
    docs.append(("stop", bundle.compose_stop(exit_status=exit_status, time=t0 + 0.001 * (n * points + 1))))
    return docs


def write(writer: Callable[[str, dict[str, Any]], None], docs: list[Doc]) -> str:
    for name, doc in docs:
        writer(name, doc)
    return docs[0][1]["uid"]


def scan(hw: Any, n: int = 5) -> Any:
    import bluesky.plans as bp

    return bp.scan([hw.det], hw.motor, -1, 1, n)


# -- persisting ------------------------------------------------------------------------------


def test_finished_runs_reach_the_archive_with_identical_documents(bus, RE, hw):
    import bluesky.plans as bp

    cat = bus.catalog()
    uids = [
        record(RE, cat, scan(hw), sample="Ni"),
        record(RE, cat, bp.count([hw.img, hw.det], 3), sample="Cu"),
    ]  # resources and datums too
    before = {uid: list(cat[uid].documents()) for uid in uids}
    keeper = bus.keeper()
    report = keeper.run_once()
    assert (report.persisted, report.trimmed, report.skipped, report.waiting) == (uids, [], {}, False)
    archive = bus.archive_catalog()
    assert [r.uid for r in archive] == uids[::-1]
    for uid in uids:
        assert list(archive[uid].documents()) == before[uid]
        assert archive[uid].status == "success"
        assert bus.persisted_flag(uid) == b"1"
    assert bus.in_redis() == uids  # nothing to trim without limits
    assert [line.split(" (")[0] for line in bus.said] == [f"persisted run {u[:8]}" for u in uids]
    assert keeper.run_once().persisted == []  # a run is copied once
    assert len(archive) == 2


def test_an_incomplete_run_waits_for_grace_and_a_running_run_is_never_persisted(bus, RE, hw):
    cat = bus.catalog()
    live = cat.writer()  # stays open: its run is running
    running_docs = composed(4)
    running = write(live, running_docs[:4])
    cut_off = cat.writer()
    incomplete = write(cut_off, composed(3)[:3])
    cut_off.close()  # its writer is gone without a stop document
    finished = record(RE, cat, scan(hw))
    assert [cat[u].status for u in (running, incomplete, finished)] == ["running", "incomplete", "success"]

    patient = bus.keeper(grace=3600)
    assert patient.run_once().persisted == [finished]
    report = patient.run_once()
    assert (report.persisted, report.skipped) == ([], {})
    assert bus.persisted_flag(finished) == b"1"
    assert bus.persisted_flag(incomplete) is None and bus.persisted_flag(running) is None
    patient.close()  # hands the lock over

    keeper = bus.keeper(grace=0.2)
    assert keeper.run_once().persisted == []  # the incomplete run's grace starts now
    deadline = time.monotonic() + 10
    while bus.persisted_flag(incomplete) is None:
        assert time.monotonic() < deadline, "the incomplete run was not persisted after its grace"
        keeper.run_once()
        time.sleep(0.05)
    archived = bus.archive_catalog()[incomplete]
    assert archived.status == "incomplete"
    assert list(archived.documents()) == list(cat[incomplete].documents())
    assert bus.persisted_flag(running) is None  # still running, after many passes with no grace left

    write(live, running_docs[4:])
    live.close()
    assert keeper.run_once().persisted == [running]
    assert list(bus.archive_catalog()[running].documents()) == [(n, normalize(d)) for n, d in running_docs]


@pytest.mark.parametrize("trim_at_once", [False, True], ids=["persisted", "persisted-and-trimmed"])
def test_documents_a_writer_sends_after_its_run_was_persisted_are_not_lost(bus, trim_at_once):
    """A writer cut off for longer than ``grace`` comes back and finishes its run."""
    cat = bus.catalog(options="&heartbeat=600")  # its writer does not beat again during the test
    docs = composed(6)
    writer = cat.writer()
    uid = write(writer, docs[:5])
    writer.flush()
    writer_id = bus.client.hget(bus.keys.run(uid), "writer").decode()
    bus.client.delete(bus.keys.writer(writer_id))  # its heartbeat expired while it was away
    assert cat[uid].status == "incomplete"
    keeper = bus.keeper(grace=0, max_memory=1 if trim_at_once else None)
    report = keeper.run_once()
    assert report.persisted == [uid] and report.trimmed == ([uid] if trim_at_once else [])

    write(writer, docs[5:])  # back, it sends the rest and the stop document
    writer.close()
    keeper.policy = TrimPolicy(max_runs=None, max_memory=1, grace=0)  # Redis is full: trim what may go
    for _ in range(3):
        keeper.run_once()
    run = cat[uid]
    assert list(run.documents()) == [(n, normalize(d)) for n, d in docs]
    assert run.status == "success"


# -- trimming --------------------------------------------------------------------------------


def test_max_runs_trims_the_oldest_persisted_runs(bus, RE, hw):
    cat = bus.catalog()
    live = cat.writer()
    running = write(live, composed(2)[:3])  # the oldest run, still running
    uids = [record(RE, cat, scan(hw, 2)) for _ in range(4)]
    report = bus.keeper(max_runs=2).run_once()
    assert report.persisted == uids
    assert report.trimmed == uids[:3]  # five runs, two kept; the running one is not in the archive
    assert all(bus.gone(u) for u in uids[:3])
    assert bus.in_redis() == [running, uids[3]]
    assert bus.client.exists(*bus.keys.of_run(uids[3])) == 4
    assert bus.said[-1] == "trimmed 3 persisted runs from Redis (max_runs=2)"
    assert len(cat) == 5 and cat[running].status == "running"
    live.close()


def test_max_age_trims_runs_that_ended_longer_ago(bus):
    cat = bus.catalog()
    now = time.time()
    live = cat.writer()
    ancient_running = write(live, composed(1, t0=now - 3 * 3600)[:3])  # never finished, never persisted
    writer = cat.writer()
    old, recent, fresh = (write(writer, composed(2, t0=t)) for t in (now - 2 * 3600, now - 1800, now))
    writer.close()
    keeper = bus.keeper(max_age=3600)
    report = keeper.run_once()
    assert report.persisted == [old, recent, fresh]
    assert report.trimmed == [old]
    assert bus.gone(old) and bus.in_redis() == [ancient_running, recent, fresh]
    assert keeper.run_once().trimmed == []
    assert len(cat) == 4
    live.close()


def test_max_memory_trims_the_oldest_persisted_runs_until_redis_uses_less(bus):
    cat = bus.catalog()
    live = cat.writer()
    big = composed(1, points=20_000)
    running = write(live, big[:3])  # the oldest and as big as the others, but running
    writer = cat.writer()
    uids = [write(writer, composed(1, points=20_000)) for _ in range(4)]
    writer.close()
    run_bytes = sum(bus.client.memory_usage(k, samples=0) or 0 for k in bus.keys.of_run(uids[0]))
    used = int(bus.client.info("memory")["used_memory"])
    assert run_bytes > 1 << 20  # each run outweighs what connections and scripts add meanwhile

    keeper = bus.keeper(max_memory=used - run_bytes * 3 // 2)  # two runs must go
    report = keeper.run_once()
    assert report.persisted == uids
    assert report.trimmed == uids[:2]
    assert bus.in_redis() == [running, *uids[2:]]
    assert all(bus.gone(u) for u in uids[:2])

    keeper.policy = TrimPolicy(max_runs=None, max_memory=1)  # more than Redis can give back
    assert keeper.run_once().trimmed == uids[2:]
    assert bus.in_redis() == [running]  # not in the archive: stays, whatever the memory
    assert len(cat) == 5
    live.close()


# -- reading trimmed runs --------------------------------------------------------------------


@dataclass
class Trimmed:
    cat: Catalog
    uids: list[str]  # oldest first; the first two are only in the archive
    documents: dict[str, list[Doc]]
    datasets: dict[str, xr.Dataset]


@pytest.fixture
def trimmed(bus, RE, hw) -> Trimmed:
    """Four runs (scan_ids 1-4, samples Ni Cu Ni Cu); the keeper kept the newest two in Redis."""
    cat = bus.catalog()
    uids = [record(RE, cat, scan(hw, 3 + i), sample=s) for i, s in enumerate(["Ni", "Cu", "Ni", "Cu"])]
    documents = {u: list(cat[u].documents()) for u in uids}
    datasets = {u: cat[u].primary.read() for u in uids}
    report = bus.keeper(max_runs=2).run_once()
    assert report.trimmed == uids[:2] and bus.in_redis() == uids[2:]
    return Trimmed(cat, uids, documents, datasets)


def test_lookups_and_searches_span_redis_and_the_archive_once(trimmed):
    cat, uids = trimmed.cat, trimmed.uids
    assert len(cat) == 4
    assert [r.uid for r in cat] == uids[::-1]
    assert [s.uid for s in cat.summaries()] == uids[::-1]
    assert [cat[u].uid for u in uids] == uids
    assert cat[uids[0][:12]].uid == uids[0]  # a uid prefix
    assert uids[0] in cat
    assert [cat[n].uid for n in (1, 2, 3, 4)] == uids  # scan_ids
    assert [cat[-n].uid for n in (1, 2, 3, 4)] == uids[::-1]
    assert [r.uid for r in cat[-3:]] == uids[:0:-1]
    nickel = cat.search('sample == "Ni"')
    assert len(nickel) == 2 and [r.uid for r in nickel] == [uids[2], uids[0]]
    assert nickel[-2].uid == uids[0]
    older = cat.search("scan_id <= 2")  # only in the archive
    assert len(older) == 2 and [r.uid for r in older] == [uids[1], uids[0]]
    assert len(cat.search('sample == "Cu" and scan_id > 1')) == 2


def test_a_trimmed_run_reads_as_it_did_from_redis(trimmed):
    for uid in trimmed.uids[:2]:
        run = trimmed.cat[uid]
        assert run.status == "success"
        assert run.metadata == {"start": trimmed.documents[uid][0][1], "stop": trimmed.documents[uid][-1][1]}
        assert list(run.documents()) == trimmed.documents[uid]
        assert list(run.documents(start=3)) == trimmed.documents[uid][3:]
        assert list(run.follow(timeout=5)) == trimmed.documents[uid]  # ends at the stop document
        assert list(run) == ["primary"]
        assert len(run.primary) == run.num_events == trimmed.datasets[uid].sizes["time"]
        xr.testing.assert_identical(run.primary.read(), trimmed.datasets[uid])


def test_a_follower_goes_on_from_the_archive_when_its_run_is_trimmed_mid_read(bus):
    cat = bus.catalog()
    docs = composed(10)
    writer = cat.writer()
    uid = write(writer, docs[:7])  # start, descriptor, five pages: running
    writer.flush()
    follower = cat[uid].follow(positions=True, timeout=10)
    seen = [next(follower) for _ in range(7)]
    write(writer, docs[7:])
    writer.close()
    assert bus.keeper(max_memory=1).run_once().trimmed == [uid]
    assert bus.gone(uid)
    seen += list(follower)
    assert [pos for pos, _, _ in seen] == list(range(len(docs)))
    assert [(name, doc) for _, name, doc in seen] == [(n, normalize(d)) for n, d in docs]


def test_a_documents_reader_goes_on_from_the_archive_when_its_run_is_trimmed_mid_read(bus, RE, hw, monkeypatch):
    monkeypatch.setattr(redis_source, "_CHUNK", 4)  # Redis is read in chunks; stop inside the second
    cat = bus.catalog()
    uid = record(RE, cat, scan(hw, 10))
    expected = list(cat[uid].documents())
    reader = cat[uid].documents()
    first = [next(reader) for _ in range(6)]
    assert bus.keeper(max_memory=1).run_once().trimmed == [uid]
    assert first + list(reader) == expected


def test_readers_find_the_archive_the_keeper_published(bus, RE, hw):
    writing = bus.catalog(archive=False)
    uids = [record(RE, writing, scan(hw, 4)) for _ in range(2)]
    documents = list(writing[uids[0]].documents())
    assert bus.keeper(max_runs=1).run_once().trimmed == [uids[0]]
    assert bus.client.get(bus.keys.archive).decode() == bus.archive_uri
    plain = bus.keep(scandeck.open_catalog(bus.uri))  # no archive= in the URI
    assert len(plain) == 2 and [r.uid for r in plain] == uids[::-1]
    assert list(plain[uids[0]].documents()) == documents
    assert plain[uids[0]].primary.read().sizes["time"] == 4


# -- what the keeper refuses -----------------------------------------------------------------


def test_a_copy_cut_short_is_completed_with_the_same_positions(bus, RE, hw):
    """A keeper that died mid-copy left part of a run in the archive: the next one goes on."""
    cat = bus.catalog()
    uid = record(RE, cat, scan(hw, 5))
    documents = list(cat[uid].documents())
    partial = bus.archive_catalog().writer()
    write(partial, documents[:3])
    partial.close()
    assert bus.archive_catalog()[uid].status == "incomplete"

    report = bus.keeper().run_once()
    assert report.persisted == [uid] and report.skipped == {}
    archived = bus.archive_catalog()[uid]
    assert archived.status == "success"
    assert list(archived.documents()) == documents
    assert [pos for pos, _, _ in archived.follow(positions=True)] == list(range(len(documents)))


def test_a_copy_the_keeper_cannot_complete_stays_in_redis_and_the_keeper_says_why(bus, RE, hw, capsys):
    cat = bus.catalog()
    cut, newer = record(RE, cat, scan(hw, 5)), record(RE, cat, scan(hw, 2))
    documents = list(cat[cut].documents())
    other = bus.archive_catalog().writer()  # a *finished* run under the same uid, shorter
    write(other, documents[:3] + [documents[-1]])
    other.close()

    keeper = bus.keeper(max_runs=1)
    report = keeper.run_once()
    assert report.persisted == [newer]
    assert report.trimmed == [newer]  # one run too many, and the only one that may go
    assert list(report.skipped) == [cut]
    assert f"holds 4 of its {len(documents)} documents (success)" in report.skipped[cut]
    assert bus.persisted_flag(cut) is None and bus.in_redis() == [cut]
    assert [line for line in bus.said if line.startswith("cannot")] == [
        f"cannot persist run {cut}: {report.skipped[cut]}; it stays in Redis"
    ]
    assert list(cat[cut].documents()) == documents  # read from Redis: the whole run
    keeper.close()

    code = main(["keeper", bus.uri, "--once", "--max-runs", "1", "--archive", str(bus.archive)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith(f"cannot persist run {cut}: {bus.archive_uri} holds 4 of its {len(documents)}")
    assert out[0].endswith("remove that copy to retry; it stays in Redis")
    assert out[-1] == "0 persisted, 0 trimmed, 1 could not be persisted"
    assert bus.in_redis() == [cut]


@pytest.mark.parametrize("copied", [3, None], ids=["partial-copy", "whole-copy-not-yet-marked"])
def test_a_run_in_redis_and_in_the_archive_counts_once(bus, RE, hw, copied):
    """As a keeper leaves it between copying and marking ``persisted``, or with a copy cut short."""
    cat = bus.catalog()
    uids = [record(RE, cat, scan(hw, 3)) for _ in range(2)]
    copy = bus.archive_catalog().writer()
    write(copy, list(cat[uids[0]].documents())[:copied])
    copy.close()
    assert bus.persisted_flag(uids[0]) is None
    assert [r.uid for r in cat] == uids[::-1]
    assert len(cat) == 2
    assert len(cat.search("scan_id == 1")) == 1


def test_one_keeper_per_bus_the_others_wait(bus, RE, hw, capsys):
    cat = bus.catalog()
    first, second = bus.keeper(), bus.keeper()
    assert first.run_once().waiting is False
    uid = record(RE, cat, scan(hw, 2))
    report = second.run_once()
    assert report.waiting is True and report.persisted == []
    assert bus.persisted_flag(uid) is None
    assert main(["keeper", bus.uri, "--once", "--archive", str(bus.archive)]) == 0
    assert capsys.readouterr().out == "another keeper is active on this bus; nothing done\n"
    assert bus.persisted_flag(uid) is None
    first.close()  # lets go of the lock
    report = second.run_once()
    assert report.waiting is False and report.persisted == [uid]


# -- the command line ------------------------------------------------------------------------


def test_cli_keeper_once_persists_and_trims(bus, RE, hw, capsys):
    cat = bus.catalog()
    uids = [record(RE, cat, scan(hw, 3)) for _ in range(2)]
    n_docs = len(list(cat[uids[0]].documents()))
    code = main(["keeper", bus.uri, "--once", "--max-runs", "1", "--archive", str(bus.archive)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"persisted run {uids[0][:8]} (scan 1, {n_docs} documents, success) to {bus.archive_uri}",
        f"persisted run {uids[1][:8]} (scan 2, {n_docs} documents, success) to {bus.archive_uri}",
        "trimmed 1 persisted run from Redis (max_runs=1)",
        "2 persisted, 1 trimmed, 0 could not be persisted",
    ]
    assert bus.in_redis() == [uids[1]] and bus.gone(uids[0])
    assert [r.uid for r in bus.archive_catalog()] == uids[::-1]
    assert bus.client.get(bus.keys.keeper) is None  # the lock is let go on exit


@pytest.mark.parametrize(
    "argv", [["STORE"], ["--catalog", "memory://kept"], []], ids=["path", "memory-catalog", "nothing"]
)
def test_cli_keeper_needs_a_redis_bus(tmp_path, capsys, argv):
    argv = [str(tmp_path / "store") if a == "STORE" else a for a in argv]
    assert main(["keeper", *argv, "--once"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "scandeck keeper: error: the keeper needs a Redis bus",
        "  hint: give it as scandeck keeper redis://host:6379/0?prefix=P",
    ]
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-age", "soon", "'soon' is not a duration; write e.g. 90s, 15m, 12h or 7d"),
        ("--grace", "5 minutes", "'5 minutes' is not a duration; write e.g. 90s, 15m, 12h or 7d"),
        ("--max-memory", "lots", "'lots' is not a size; write e.g. 500kB, 64MB or 2GB"),
        ("--max-runs", "0", "keep at least 1 run"),
        ("--max-runs", "many", "'many' is not a whole number"),
    ],
    ids=["max-age", "grace", "max-memory", "max-runs-zero", "max-runs-word"],
)
def test_cli_keeper_rejects_bad_limits(capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        main(["keeper", "redis://127.0.0.1:1/0?prefix=never", option, value, "--once"])
    assert exit_.value.code == 2
    assert f"scandeck keeper: error: argument {option}: {message}" in capsys.readouterr().err


# -- the demo --------------------------------------------------------------------------------


def test_demo_on_redis_runs_a_keeper_that_archives_its_runs(bus, tmp_path, capsys):
    code = main(["demo", "--catalog", bus.uri, "--runs", "2", "--pace", "0", "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 0
    uids = bus.in_redis()
    assert len(uids) == 2
    assert all(bus.persisted_flag(u) == b"1" for u in uids)
    assert [line.split()[:4] for line in out.splitlines() if "keeper: persisted" in line] == [
        ["keeper:", "persisted", "run", u[:8]] for u in uids
    ]
    store = tmp_path / "data" / "store"  # the default store of SCANDECK_DATA
    assert bus.client.get(bus.keys.archive).decode() == f"sqlite://{(store / 'scandeck.sqlite').resolve()}"
    archive = bus.keep(Catalog(open_source(store)))
    cat = bus.catalog(archive=False)
    assert [r.uid for r in archive] == uids[::-1]
    for uid in uids:
        assert list(archive[uid].documents()) == list(cat[uid].documents())
        assert archive[uid].status == cat[uid].status != "running"
