"""One writer and many readers in separate processes, on the embedded store and on Redis.

A real bluesky RunEngine writes in its own process; followers, fast, slow and
late, read in others. Every test runs twice: on the embedded SQLite store and
on a real redis-server (a fresh key prefix per test). A writer killed with
SIGKILL leaves a readable partial run reported as ``incomplete`` and a store
that keeps working. The Redis writer sends documents from a background thread,
so the documents it had queued but not yet sent when it was killed are lost:
the partial run holds what reached Redis, and its counts say so.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import scandeck
from scandeck.catalog import Catalog

PROCS = str(Path(__file__).with_name("procs.py"))


_started: list[subprocess.Popen] = []
_opened: list[Catalog] = []


def start(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, PROCS, *args], stdout=subprocess.PIPE, text=True)
    _started.append(proc)
    return proc


def open_catalog(store: str) -> Catalog:
    cat = scandeck.open_catalog(store)
    _opened.append(cat)
    return cat


@pytest.fixture(autouse=True)
def _end_processes():
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
    while _opened:
        _opened.pop().close()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the processes meet: an embedded store directory, or a Redis bus (its own prefix)."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
    else:
        server = request.getfixturevalue("redis_server")
        yield f"{server.url}?prefix=mp-{uuid.uuid4().hex[:12]}&archive={tmp_path / 'archive'}"


def is_sqlite(store: str) -> bool:
    return "://" not in store


def wait_for_running_run(cat, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(cat) and cat[-1].status == "running":
            return cat[-1]
        time.sleep(0.01)
    raise AssertionError("no running run appeared")


def wait_for_events(run, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while run.num_events < n:
        assert time.monotonic() < deadline, f"fewer than {n} events arrived: {run.num_events}"
        time.sleep(0.01)


def test_readers_at_any_speed_see_every_document_once(tmp_path, store):
    outs = [tmp_path / f"seen{i}.json" for i in range(3)]
    writer = start("write", store, "300", "0.005")
    assert writer.stdout.readline().strip() == "writing"
    fast = start("follow", store, str(outs[0]))
    slow = start("follow", store, str(outs[1]), "0.004")  # slower than the writer
    cat = open_catalog(store)
    run = wait_for_running_run(cat)
    counts = []
    while run.status == "running":  # visible at once, count growing while written
        counts.append(run.num_events)
        time.sleep(0.05)
    late = start("follow", store, str(outs[2]))  # arrives after the run ended
    for proc in (writer, fast, slow, late):
        assert proc.wait(60) == 0
    assert counts[0] < counts[-1] and sorted(counts) == counts
    stored = [
        [pos, name, doc.get("uid") or doc.get("datum_id")] for pos, name, doc in cat[-1].follow(positions=True)
    ]
    assert [name for _, name, _ in stored].count("event") == 300
    assert [pos for pos, _, _ in stored] == list(range(len(stored)))
    for out in outs:
        assert json.loads(out.read_text()) == stored


def test_catalog_follow_in_another_process_sees_new_runs(tmp_path, store):
    open_catalog(store)  # create it so the follower starts on an empty store
    out = tmp_path / "runs.json"
    follower = start("runs", store, str(out), "2")
    assert follower.stdout.readline().strip() == "following"
    for _ in range(2):
        assert start("write", store, "3", "0").wait(60) == 0
    assert follower.wait(60) == 0
    cat = open_catalog(store)
    assert len(cat) == 2
    assert json.loads(out.read_text()) == [cat[-2].uid, cat[-1].uid]


def test_killed_writer_leaves_a_readable_incomplete_run(store):
    writer = start("write", store, "100000", "0.002")
    assert writer.stdout.readline().strip() == "writing"
    cat = open_catalog(store)
    run = wait_for_running_run(cat)
    wait_for_events(run, 50)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    assert run.status == "incomplete"
    assert run.metadata["stop"] is None
    n = run.num_events  # what was stored: for Redis, documents still queued in the writer are gone
    ds = run.primary.read()
    assert ds.sizes["time"] == n >= 50
    followed = list(run.follow(timeout=5))  # follow ends, no stop to wait for
    assert followed[-1][0] == "event"
    assert [name for name, _ in followed].count("event") == n
    assert [doc["seq_num"] for name, doc in followed if name == "event"] == list(range(1, n + 1))
    if is_sqlite(store):
        conn = sqlite3.connect(Path(store) / "scandeck.sqlite")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    assert start("write", store, "5", "0").wait(60) == 0  # the store goes on
    assert cat[-1].status == "success" and cat[-2].status == "incomplete"
    assert cat[-1].num_events == 5 and cat[-2].num_events == n


@pytest.mark.parametrize("signame", ["SIGTERM"])
def test_terminated_writer_run_is_incomplete(store, signame):
    writer = start("write", store, "100000", "0.002")
    assert writer.stdout.readline().strip() == "writing"
    cat = open_catalog(store)
    run = wait_for_running_run(cat)
    writer.send_signal(getattr(signal, signame))
    writer.wait(10)
    assert run.status == "incomplete"
    assert run.metadata["stop"] is None
