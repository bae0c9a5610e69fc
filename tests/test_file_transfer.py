"""Files' bytes through the Redis bus (``scandeck watch --transfer``), to readers that cannot see them.

Real files under ``tmp_path`` are sent with :class:`scandeck.files.transfer.FileSender`
into a watched run on a real redis-server (tests/transfer_runs.py composes the
run's documents with event-model); readers are other processes
(tests/transfer_procs.py) started after the watched directory was deleted, each
with a cache of its own, so every byte they read came through Redis or the archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_server import RedisServer
from transfer_runs import WatchedRun, sha256_of, write_file

import scandeck
from scandeck.exceptions import FileMismatch, ScandeckError, StoreError
from scandeck.files import providers
from scandeck.files.transfer import sender_for
from scandeck.sources.redis_keeper import Keeper, TrimPolicy

PROCS = str(Path(__file__).with_name("transfer_procs.py"))
CHUNK = 64 * 1024


def bus_uri(server: RedisServer, tmp_path: Path, **options: str) -> str:
    query = "".join(f"&{k}={v}" for k, v in options.items())
    return f"{server.url}?prefix=xfer-{uuid.uuid4().hex[:8]}&archive={tmp_path / 'archive'}{query}"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's file cache, under tmp_path (readers get their own)."""
    cache = tmp_path / "cache-here"
    monkeypatch.setenv("SCANDECK_FILE_CACHE", str(cache))
    return cache


def run_reader(tmp_path: Path, *args: str, name: str = "reader") -> Any:
    """A reader process in its own directory, with its own cache; its JSON answer."""
    home = tmp_path / name
    home.mkdir()
    out = home / "out.json"
    env = {**os.environ, "SCANDECK_FILE_CACHE": str(home / "cache")}
    subprocess.run([sys.executable, PROCS, *args, str(out)], cwd=home, env=env, check=True, timeout=120)
    return json.loads(out.read_text())


def when(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def chunk_ids(client: redis.Redis, key: str) -> list[bytes]:
    return [eid for eid, _ in client.xrange(key)]


def send_and_die(run: WatchedRun, path: Path) -> None:
    """Send ``path`` into ``run`` and die after the first batch (the watcher killed mid-file:
    no document names the file)."""

    def die(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.sender.send(run.uid, sha256_of(path), path, path.stat().st_size, progress=die)


def test_a_reader_that_cannot_see_the_directory_reads_every_file_identical(redis_server, tmp_path):
    """Empty, one-byte, exactly-one-chunk, chunk+1 and multi-chunk files, and a rewritten one."""
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    sizes = {
        "empty.dat": 0,
        "one.dat": 1,
        "exact.bin": CHUNK,
        "over.bin": CHUNK + 1,
        "sub/big.tif": 20 * CHUNK + 7,
    }
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    expected = []
    for i, (rel, size) in enumerate(sizes.items()):
        sent = run.add(write_file(root / rel, size, seed=i))
        expected.append([rel, 1, sent["sha256"]])
    again = run.add(write_file(root / "one.dat", 3000, seed=99))  # rewritten: version 2
    expected.append(["one.dat", 2, again["sha256"]])
    run.stop()
    client = redis.Redis.from_url(redis_server.url)
    for rel, size in sizes.items():
        key = cat.source.keys.file(run.uid, sha256_of(root / rel) if rel != "one.dat" else expected[1][2])
        n = -(-size // CHUNK)
        assert chunk_ids(client, key) == [f"0-{k + 1}".encode() for k in range(n)]  # each chunk once, in order
    shutil.rmtree(root)

    rows = run_reader(tmp_path, "read", uri, run.uid)
    assert [r[:3] for r in rows] == expected
    assert all(Path(r[3]).is_relative_to(tmp_path / "reader" / "cache") for r in rows)
    late = run_reader(tmp_path, "read", uri, run.uid, name="late")  # a late reader reads from the start too
    assert [r[:3] for r in late] == expected


def test_a_reader_waits_for_a_sender_mid_way_then_reads_it_whole(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    path = write_file(root / "slow.bin", 300 * CHUNK)
    sha, size = sha256_of(path), path.stat().st_size
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    first_batch, go_on = threading.Event(), threading.Event()

    def pause(done: int, total: int) -> None:
        first_batch.set()
        go_on.wait(60)

    sending = threading.Thread(target=run.sender.send, args=(run.uid, sha, path, size), kwargs={"progress": pause})
    sending.start()
    assert first_batch.wait(60)
    client = redis.Redis.from_url(redis_server.url)

    def blocked() -> int:  # clients blocked in XREAD on the session's server (other tests' followers too)
        return sum(c.get("cmd") == "xread" for c in client.client_list())

    before = blocked()
    home = tmp_path / "waiting"
    home.mkdir()
    env = {**os.environ, "SCANDECK_FILE_CACHE": str(home / "cache")}
    reader = subprocess.Popen(
        [sys.executable, PROCS, "fetch", uri, run.uid, sha, str(size), str(home / "out.json")],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        when(lambda: blocked() > before, what="the reader to block on the next chunk")
        go_on.set()
        sending.join(60)
        assert reader.wait(60) == 0
    finally:
        go_on.set()
        reader.stdout.close()
        if reader.poll() is None:
            reader.kill()
    assert json.loads((home / "out.json").read_text())["sha256"] == sha
    run.stop()


def test_a_sender_that_stopped_mid_way_is_waited_for_only_so_long(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path, reconnect="0.5")
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    path = write_file(root / "cut.bin", 300 * CHUNK)
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    send_and_die(run, path)
    with pytest.raises(StoreError, match="stopped mid-way") as err:
        providers.fetch(run.uid, sha256_of(path), path.stat().st_size, what="cut.bin")
    assert "only 128 of its 300 chunks" in str(err.value)
    # Sent again (a restarted watcher): it goes on from chunk 128, nothing doubled.
    assert run.sender.send(run.uid, sha256_of(path), path, path.stat().st_size) == 300 - 128
    assert run.sender.send(run.uid, sha256_of(path), path, path.stat().st_size) == 0
    client = redis.Redis.from_url(redis_server.url)
    assert client.xlen(cat.source.keys.file(run.uid, sha256_of(path))) == 300
    got = providers.fetch(run.uid, sha256_of(path), path.stat().st_size, what="cut.bin")
    assert got is not None and got.read_bytes() == path.read_bytes()
    run.stop()


def test_redis_restarting_mid_transfer_loses_and_doubles_no_chunk(tmp_path, caplog):
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        uri = bus_uri(server, tmp_path)
        cat = scandeck.open_catalog(uri)
        root = tmp_path / "instrument"
        path = write_file(root / "big.bin", 80 * 256 * 1024 + 5)  # 81 chunks, 3 batches
        run = WatchedRun(cat, root, chunk_size=256 * 1024)
        restarted: list[threading.Thread] = []

        def restart_once(done: int, total: int) -> None:
            if not restarted:  # Redis goes away after the first batch and comes back 0.3 s later
                server.stop()
                restarted.append(threading.Thread(target=lambda: (time.sleep(0.3), server.start())))
                restarted[0].start()

        info = run.add(path, progress=restart_once)
        restarted[0].join(30)
        run.stop()
        assert "unreachable while sending" in caplog.text
        client = redis.Redis.from_url(server.url)
        assert chunk_ids(client, cat.source.keys.file(run.uid, info["sha256"])) == [
            f"0-{k + 1}".encode() for k in range(81)
        ]
        shutil.rmtree(root)
        rows = run_reader(tmp_path, "read", uri, run.uid)
        assert [r[:3] for r in rows] == [["big.bin", 1, info["sha256"]]]
    finally:
        server.kill()


def test_a_file_changed_while_sending_is_withdrawn_and_named_with_both_hashes(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    path = write_file(root / "growing.bin", 300 * CHUNK)
    sha, size = sha256_of(path), path.stat().st_size
    run = WatchedRun(cat, root, chunk_size=CHUNK)

    def rewrite(done: int, total: int) -> None:
        if done < total:
            with open(path, "r+b") as f:
                f.seek(200 * CHUNK)
                f.write(b"changed by the instrument")

    with pytest.raises(FileMismatch) as err:
        run.sender.send(run.uid, sha, path, size, progress=rewrite)
    assert (
        sha in str(err.value)
        and sha256_of(path) in str(err.value)
        and "changed while it was sent" in str(err.value)
    )
    client = redis.Redis.from_url(redis_server.url)
    assert not client.exists(cat.source.keys.file(run.uid, sha))
    assert not client.hexists(cat.source.keys.files(run.uid), sha)
    assert providers.fetch(run.uid, sha, size, what="growing.bin") is None
    run.stop()


def test_a_corrupted_chunk_is_refused_naming_both_hashes_and_nothing_is_cached(redis_server, tmp_path, own_cache):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    path = write_file(root / "frame.tif", 5 * CHUNK)
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    info = run.add(path)
    run.stop()
    client = redis.Redis.from_url(redis_server.url)
    key = cat.source.keys.file(run.uid, info["sha256"])
    (_, fields), *_ = client.xrange(key, min="0-3", max="0-3")
    bad = bytearray(fields[b"data"])
    bad[100] ^= 0xFF  # one bit flipped on the bus
    client.delete(key)
    for k in range(5):
        data = bytes(bad) if k == 2 else path.read_bytes()[k * CHUNK : (k + 1) * CHUNK]
        client.xadd(
            key,
            {"offset": k * CHUNK, "sha256": info["sha256"], "size": info["size"], "data": data},
            id=f"0-{k + 1}",
        )
    got = hashlib.sha256(path.read_bytes()[: 2 * CHUNK] + bytes(bad) + path.read_bytes()[3 * CHUNK :]).hexdigest()
    with pytest.raises(FileMismatch) as err:
        providers.fetch(run.uid, info["sha256"], info["size"], what="frame.tif")
    assert info["sha256"] in str(err.value) and got in str(err.value)
    assert not [p for p in own_cache.rglob("*") if p.is_file()]  # nothing kept, not even a part
    shutil.rmtree(root)
    answer = run_reader(tmp_path, "fetch", uri, run.uid, info["sha256"], str(info["size"]))
    assert answer["error"] == "FileMismatch" and got in answer["message"]


def test_the_keeper_archives_transferred_files_and_readers_get_them_after_the_trim(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    sent = [run.add(write_file(root / f"scan_{i}.bin", 3 * CHUNK + i, seed=i)) for i in range(3)]
    run.stop()
    said: list[str] = []
    keeper = Keeper(uri, policy=TrimPolicy(max_runs=0), say=said.append)
    try:
        report = keeper.run_once()
    finally:
        keeper.close()
    assert report.persisted == [run.uid] and report.trimmed == [run.uid], said
    client = redis.Redis.from_url(redis_server.url)
    assert client.keys(f"{cat.source.keys.run(run.uid)}*") == []  # documents, files hash, chunks: all gone
    for s in sent:
        kept = tmp_path / "archive" / "files" / s["sha256"][:2] / s["sha256"]
        assert sha256_of(kept) == s["sha256"]
    shutil.rmtree(root)
    rows = run_reader(tmp_path, "read", uri, run.uid)
    assert [r[:3] for r in rows] == [[s["path"], 1, s["sha256"]] for s in sent]


def test_a_tiled_archive_cannot_hold_files_so_the_run_stays_in_redis(redis_server, tiled_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    run.add(write_file(root / "a.bin", 1000))
    run.stop()
    said: list[str] = []
    keeper = Keeper(uri, archive=tiled_server.new_catalog(), policy=TrimPolicy(max_runs=0), say=said.append)
    try:
        report = keeper.run_once()
    finally:
        keeper.close()
    assert report.persisted == [] and report.trimmed == []
    assert "cannot hold files" in report.skipped[run.uid] and "embedded store" in report.skipped[run.uid]
    assert any("cannot persist run" in line and line.endswith("it stays in Redis") for line in said)
    assert scandeck.open_catalog(uri)[run.uid].status == "success"


def test_only_a_redis_bus_carries_files(tmp_path):
    store = scandeck.open_catalog(tmp_path / "store")
    with pytest.raises(ScandeckError, match="only through a Redis bus"):
        sender_for(store.source)


def test_chunks_redis_lost_are_sent_again_from_the_first_missing(redis_server, tmp_path, caplog):
    """As after a restart without the append-only file: Redis holds fewer chunks than were sent."""
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    path = write_file(root / "lost.bin", 300 * CHUNK)
    sha, size = sha256_of(path), path.stat().st_size
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    client = redis.Redis.from_url(redis_server.url)
    key = cat.source.keys.file(run.uid, sha)

    def lose_some(done: int, total: int) -> None:
        if done == 128 * CHUNK:  # after the first batch, keep only its first 100 chunks
            kept = client.xrange(key, max="0-100")
            client.delete(key)
            for eid, fields in kept:
                client.xadd(key, fields, id=eid)

    assert run.sender.send(run.uid, sha, path, size, progress=lose_some) == 300 + 28  # 100..127 twice
    assert "lost chunks 100..127" in caplog.text
    assert chunk_ids(client, key) == [f"0-{k + 1}".encode() for k in range(300)]
    got = providers.fetch(run.uid, sha, size, what="lost.bin")
    assert got is not None and got.read_bytes() == path.read_bytes()
    run.stop()


def test_the_keeper_refuses_a_damaged_file_and_drops_an_abandoned_one(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    good = run.add(write_file(root / "good.bin", 3 * CHUNK, seed=1))
    cut = write_file(root / "cut.bin", 300 * CHUNK, seed=2)
    send_and_die(run, cut)
    run.stop()
    client = redis.Redis.from_url(redis_server.url)
    key = cat.source.keys.file(run.uid, good["sha256"])
    client.xadd(key, {"offset": 0, "sha256": "", "size": 0, "data": b"x"}, id="0-9")  # damaged on the bus
    client.xtrim(key, minid="0-2")  # drop chunk 0 too: the file cannot be reassembled
    said: list[str] = []
    keeper = Keeper(uri, policy=TrimPolicy(max_runs=0), say=said.append)
    try:
        report = keeper.run_once()
        assert report.persisted == [] and "damaged" in report.skipped[run.uid]
        client.delete(key)  # the damaged file goes (as if withdrawn): the abandoned one alone is left
        client.hdel(cat.source.keys.files(run.uid), good["sha256"])
        report = keeper.run_once()
    finally:
        keeper.close()
    assert report.persisted == [run.uid] and report.trimmed == [run.uid], said
    assert client.keys(f"{cat.source.keys.run(run.uid)}*") == []
    assert not (tmp_path / "archive" / "files" / sha256_of(cut)[:2]).exists()


def test_the_keeper_makes_a_kept_file_durable_before_it_trims_the_bus(redis_server, tmp_path, monkeypatch):
    """Bytes and name on disk (fsync of the file, then of its directory) before the run leaves
    Redis: after a power cut the archive must not hold a file of zeros, or none, that Redis let go.
    (A power cut cannot be had in a test: the fsync calls are watched instead.)"""
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    sent = run.add(write_file(root / "a.bin", 3 * CHUNK))
    run.stop()
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    keeper = Keeper(uri, policy=TrimPolicy(max_runs=0))
    try:
        assert keeper.run_once().trimmed == [run.uid]
    finally:
        keeper.close()
    folder = tmp_path / "archive" / "files" / sent["sha256"][:2]
    assert any(Path(p).parent == folder and Path(p).name.startswith(".part-") for p in synced), synced
    assert str(folder) in synced, synced


def test_a_tiled_archive_takes_a_run_whose_only_transferred_file_was_abandoned(
    redis_server, tiled_server, tmp_path
):
    """A file whose sender died mid-way has no document: there is nothing to keep, so an archive
    that cannot hold files is no reason to keep the run in Redis ("it carries 0 transferred files")."""
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, chunk_size=CHUNK)
    cut = write_file(root / "cut.bin", 300 * CHUNK)
    send_and_die(run, cut)
    run.stop()
    said: list[str] = []
    keeper = Keeper(uri, archive=tiled_server.new_catalog(), policy=TrimPolicy(max_runs=0), say=said.append)
    try:
        report = keeper.run_once()
    finally:
        keeper.close()
    assert report.persisted == [run.uid] and report.trimmed == [run.uid], (report.skipped, said)
    assert redis.Redis.from_url(redis_server.url).keys(f"{cat.source.keys.run(run.uid)}*") == []


def test_a_file_taken_away_after_it_was_read_is_skipped_not_the_end_of_the_watcher(redis_server, tmp_path):
    """A mover takes each file away once the instrument closed it: one gone between its reading
    and its sending is warned of and skipped; the watcher goes on with the others."""
    from scandeck.files.readers import reader_for
    from scandeck.files.watch import Watcher

    cat = scandeck.open_catalog(bus_uri(redis_server, tmp_path))
    root = tmp_path / "instrument"
    write_file(root / "a_moved.bin", 3 * CHUNK, seed=1)
    write_file(root / "b_stays.bin", 3 * CHUNK, seed=2)

    class Mover:
        """The bytes reader, but the file is moved away once it was described."""

        def __init__(self, path: str) -> None:
            self.inner = reader_for(path)
            self.name, self.patterns = self.inner.name, self.inner.patterns

        def describe(self, path: str) -> Any:
            layout = self.inner.describe(path)
            if "moved" in path:
                os.replace(path, tmp_path / "moved.bin")
            return layout

        def read(self, path: str, key: str) -> Any:
            return self.inner.read(path, key)

    lines: list[str] = []
    watcher = Watcher(cat, [root], once=True, settle=0.1, transfer=True, say=lines.append, reader_for=Mover)
    summary = watcher.run()
    assert any("a_moved.bin" in line and "before it was sent" in line for line in lines), lines
    run = cat[summary.runs[0]]
    assert run.status == "success", run.stop
    assert [f.relpath for f in scandeck.files(run)] == ["b_stays.bin"]
    from scandeck.sources.redis_files import run_files

    assert list(run_files(cat.source, run.uid)) == [sha256_of(root / "b_stays.bin")]  # no half line left
