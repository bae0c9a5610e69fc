"""The keeper into Tiled: a Redis bus's finished runs archived through TiledWriter, Redis trimmed.

A real RunEngine with ophyd.sim devices writes into a prefix of the session's
real redis-server; ``scandeck keeper`` copies into a fresh container of the
session's real Tiled server (``tiled_server.new_catalog()``); the runs are then
read back through ``scandeck.open_catalog`` of the Tiled URI and compared with
what the bus held. A copy cut short (a keeper killed mid-run) is left in Tiled
as that keeper leaves it: the start, the descriptor and some events, no stop.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

import scandeck
from scandeck.catalog import Catalog
from scandeck.cli import main
from scandeck.sources import open_source
from scandeck.sources.redis_keeper import Keeper, TrimPolicy
from scandeck.sources.redis_layout import Keys
from scandeck.uris import redact


class Bus:
    """A fresh prefix on the session's redis-server and a fresh Tiled container, closed at the end."""

    def __init__(self, redis_url: str, tiled_uri: str) -> None:
        self.url = redis_url
        self.prefix = f"tkeeper-{uuid.uuid4().hex[:12]}"
        self.tiled = tiled_uri
        self.client = redis.Redis.from_url(redis_url)
        self.keys = Keys(self.prefix)
        self.said: list[str] = []
        self.opened: list[Any] = []

    @property
    def uri(self) -> str:
        return f"{self.url}?prefix={self.prefix}"

    def keep(self, thing: Any) -> Any:
        self.opened.append(thing)
        return thing

    def catalog(self) -> Catalog:
        return self.keep(Catalog(open_source(self.uri)))

    def archive(self) -> Catalog:
        return self.keep(scandeck.open_catalog(self.tiled))

    def tiled_writer(self) -> Any:
        """A writer straight into the Tiled container (as a keeper's copy writes)."""
        return self.keep(open_source(self.tiled)).writer()

    def keeper(self, max_runs: int | None = None) -> Keeper:
        policy = TrimPolicy(max_runs=max_runs, grace=60.0)
        return self.keep(Keeper(self.uri, archive=self.tiled, policy=policy, say=self.said.append))

    def in_redis(self) -> list[str]:
        return [u.decode() for u in self.client.zrange(self.keys.runs, 0, -1)]

    def persisted(self, uid: str) -> bool:
        return bool(self.client.sismember(self.keys.persisted, uid))

    def close(self) -> None:
        for thing in reversed(self.opened):
            thing.close()
        self.client.close()


@pytest.fixture
def bus(redis_server: Any, tiled_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Bus]:
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    monkeypatch.delenv("TILED_API_KEY", raising=False)
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    b = Bus(redis_server.url, tiled_server.new_catalog())
    yield b
    b.close()


def record(RE: Any, cat: Catalog, plan: Any, **md: Any) -> str:
    writer = cat.writer()
    token = RE.subscribe(writer)
    try:
        (uid,) = RE(plan, **md)
    finally:
        RE.unsubscribe(token)
        writer.close()
    return uid


def snapshot(run: Any) -> dict[str, Any]:
    """What must survive the trip: start, stop, and each stream's columns as numpy arrays."""
    streams = {}
    for name in run:
        data = run[name].read()
        streams[name] = {key: np.asarray(data[key].values) for key in data.data_vars}
    return {"start": dict(run.start), "stop": dict(run.stop), "streams": streams}


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["start"] == want["start"]
    assert got["stop"] == want["stop"]
    assert sorted(got["streams"]) == sorted(want["streams"])
    for name, columns in want["streams"].items():
        assert sorted(got["streams"][name]) == sorted(columns), name
        for key, values in columns.items():
            np.testing.assert_array_equal(got["streams"][name][key], values, err_msg=f"{name}.{key}")


def test_finished_runs_reach_tiled_and_read_back_equal_then_redis_is_trimmed(bus, RE, hw, monkeypatch):
    import bluesky.plans as bp

    cat = bus.catalog()
    uids = [
        record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 5), sample="Ni"),
        record(RE, cat, bp.count([hw.direct_img, hw.det], 3), sample="Cu"),
        record(RE, cat, bp.scan([hw.det], hw.motor, 0, 1, 2), sample="Fe"),
    ]
    before = {uid: snapshot(cat[uid]) for uid in uids}

    report = bus.keeper(max_runs=1).run_once()
    assert (report.persisted, report.skipped, report.waiting) == (uids, {}, False)
    assert report.trimmed == uids[:2]  # three runs, one kept in Redis
    assert bus.in_redis() == uids[2:]
    shown = redact(bus.tiled)
    assert "api_key" not in shown
    assert [line.split(" (")[0] for line in bus.said[:3]] == [f"persisted run {u[:8]}" for u in uids]
    assert all(line.endswith(f") to {shown}") for line in bus.said[:3])

    archive = bus.archive()
    assert [run.uid for run in archive] == uids[::-1]
    for uid in uids:
        assert archive[uid].status == "success"
        assert_same(snapshot(archive[uid]), before[uid])

    # Readers of the bus find the trimmed runs in Tiled, with their own key: the bus publishes none.
    assert bus.client.get(bus.keys.archive).decode() == shown
    monkeypatch.setenv("TILED_API_KEY", bus.tiled.rpartition("api_key=")[2])
    reader = bus.catalog()
    assert len(reader) == 3
    assert_same(snapshot(reader[uids[0]]), before[uids[0]])


@pytest.mark.parametrize("closed", [False, True], ids=["keeper-killed", "writer-closed"])
def test_a_copy_cut_short_in_tiled_stays_in_redis_and_the_keeper_says_why(bus, RE, hw, capsys, closed):
    """TiledWriter cannot add to a run Tiled holds: the run is named, kept in Redis, the others go on."""
    import bluesky.plans as bp

    cat = bus.catalog()
    cut = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 5))
    newer = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 2))
    whole = snapshot(cat[cut])
    documents = list(cat[cut].documents())
    assert [name for name, _ in documents[:4]] == ["start", "descriptor", "event", "event"]
    # What a keeper killed after the second event leaves (one write per event, no stop).
    copy = bus.tiled_writer()
    for name, doc in documents[:4]:
        copy(name, doc)
    if closed:
        copy.close()  # a writer that went away cleanly marks the run incomplete

    keeper = bus.keeper(max_runs=1)
    report = keeper.run_once()
    assert report.persisted == [newer]
    assert report.trimmed == [newer]  # one run too many, and the only one that may go
    assert list(report.skipped) == [cut]
    why = report.skipped[cut]
    status = "incomplete" if closed else "running"
    assert why.startswith(f"{redact(bus.tiled)} holds a partial copy of it (no stop document; {status})")
    assert "cannot add to a run the archive already holds" in why and "delete that copy" in why
    assert [line for line in bus.said if line.startswith("cannot")] == [
        f"cannot persist run {cut}: {why}; it stays in Redis"
    ]
    assert bus.in_redis() == [cut] and not bus.persisted(cut)
    assert keeper.run_once().skipped == {cut: why}  # every pass, said once
    assert len([line for line in bus.said if line.startswith("cannot")]) == 1
    assert_same(snapshot(cat[cut]), whole)  # the bus still serves the whole run
    keeper.close()

    if not closed:  # the command line says the same (once is enough)
        code = main(["keeper", bus.uri, "--once", "--max-runs", "1", "--archive", bus.tiled])
        out = capsys.readouterr().out
        assert code == 1
        assert f"cannot persist run {cut}: {redact(bus.tiled)} holds a partial copy" in out
        assert "api_key" not in out
        assert out.splitlines()[-1] == "0 persisted, 0 trimmed, 1 could not be persisted"

    # The advice works: without the partial copy, the keeper copies the run again.
    root = bus.keep(open_source(bus.tiled))
    root.container.delete_contents(cut, recursive=True, external_only=False)
    report = bus.keeper(max_runs=1).run_once()
    assert (report.persisted, report.trimmed, report.skipped) == ([cut], [], {})
    assert bus.persisted(cut)
    assert_same(snapshot(bus.archive()[cut]), whole)


def test_a_whole_copy_not_yet_marked_is_marked_without_copying_again(bus, RE, hw):
    """As a keeper killed between its copy and the persisted mark leaves it."""
    import bluesky.plans as bp

    cat = bus.catalog()
    uid = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 3))
    copy = bus.tiled_writer()
    for name, doc in cat[uid].documents():
        copy(name, doc)
    copy.close()
    report = bus.keeper().run_once()
    assert (report.persisted, report.skipped) == ([uid], {})  # a second TiledWriter copy would fail
    assert bus.persisted(uid)
    assert len(bus.archive()) == 1


def test_a_run_whose_tiled_copy_lacks_events_is_never_trimmed(bus, RE, hw):
    """Stop and streams present, rows missing: the event counts per stream tell."""
    import bluesky.plans as bp

    cat = bus.catalog()
    uid = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 4))
    newer = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 2))
    documents = list(cat[uid].documents())
    copy = bus.tiled_writer()
    for name, doc in documents[:3] + documents[-1:]:  # start, descriptor, one event, stop
        copy(name, doc)
    copy.close()
    report = bus.keeper(max_runs=1).run_once()
    assert report.persisted == [newer] and list(report.skipped) == [uid]
    descriptor = documents[1][1]["uid"]
    assert f"(1 of the 4 events of descriptor {descriptor}; success)" in report.skipped[uid]
    assert bus.in_redis() == [uid] and not bus.persisted(uid)


def test_an_incomplete_run_reaches_tiled_incomplete_with_its_events(bus):
    """A run whose writer went away without a stop: archived after its grace, marked incomplete there."""
    from event_model import compose_run

    bundle = compose_run(metadata={"plan_name": "count", "sample": "Ni"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"det": {"dtype": "number", "shape": [], "source": "sim:det"}}
    )
    cat = bus.catalog()
    writer = cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for i in range(1, 4):
        writer("event", desc.compose_event(data={"det": 0.5 * i}, timestamps={"det": 1.0 * i}, seq_num=i))
    writer.close()  # no stop document: the run is incomplete
    uid = bundle.start_doc["uid"]
    assert cat[uid].status == "incomplete"

    keeper = bus.keep(Keeper(bus.uri, archive=bus.tiled, policy=TrimPolicy(max_runs=None, grace=0.0)))
    report = keeper.run_once()
    assert (report.persisted, report.skipped) == ([uid], {})
    archived = bus.archive()[uid]
    assert archived.status == "incomplete" and archived.stop is None
    assert archived.start == cat[uid].start
    np.testing.assert_array_equal(archived.primary.read()["det"].values, [0.5, 1.0, 1.5])
