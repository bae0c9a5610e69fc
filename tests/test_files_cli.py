"""``scandeck files ls|fetch``: a watched run's files written out verified, on a machine without the directory.

Runs are watched by the real ``scandeck watch --once --transfer`` (a subprocess)
or composed by tests/transfer_runs.py; the watched directory is deleted before
``scandeck files`` runs, so every byte written came through the Redis bus or the
keeper's archive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path, PurePosixPath

import pytest
from event_model import compose_run
from redis_server import RedisServer
from transfer_runs import WatchedRun, sha256_of, write_file

import scandeck
from scandeck.cli import main
from scandeck.exceptions import ScandeckError
from scandeck.files.fetch import place
from scandeck.files.follow import PendingFile


def bus_uri(server: RedisServer, tmp_path: Path) -> str:
    return f"{server.url}?prefix=fcli-{uuid.uuid4().hex[:8]}&archive={tmp_path / 'archive'}"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache-here"
    monkeypatch.setenv("SCANDECK_FILE_CACHE", str(cache))
    return cache


def scandeck_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCANDECK_FILE_CACHE": str(cwd / "cache")}
    cwd.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "scandeck.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_watch_transfer_then_fetch_on_a_machine_without_the_directory(redis_server, tmp_path):
    uri = bus_uri(redis_server, tmp_path)
    root = tmp_path / "instrument"
    originals = {
        "frames/f_0001.raw": write_file(root / "frames" / "f_0001.raw", 700_000, seed=1).read_bytes(),
        "frames/f_0002.raw": write_file(root / "frames" / "f_0002.raw", 1_300_001, seed=2).read_bytes(),
        "log.txt": b"temperature 295 K\n",
    }
    (root / "log.txt").write_bytes(originals["log.txt"])
    watched = scandeck_cli(
        "watch", str(root), "--recursive", "--once", "--transfer", "--catalog", uri, cwd=tmp_path / "watcher"
    )
    assert watched.returncode == 0, watched.stderr
    uid = scandeck.open_catalog(uri)[-1].uid
    shutil.rmtree(root)

    elsewhere = tmp_path / "elsewhere"
    listed = scandeck_cli("files", "ls", uid, "--json", "--catalog", uri, cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["relpath"] for r in rows) == sorted(originals)
    assert all(r["where"] == ["bus"] for r in rows)

    fetched = scandeck_cli("files", "fetch", uid, "--to", "out", "--catalog", uri, cwd=elsewhere)
    assert fetched.returncode == 0, fetched.stderr
    assert "3 written, 0 already there, 0 failed" in fetched.stderr
    for rel, data in originals.items():
        assert (elsewhere / "out" / rel).read_bytes() == data
    again = scandeck_cli("files", "fetch", uid, "--to", "out", "--catalog", uri, cwd=elsewhere)
    assert "0 written, 3 already there" in again.stderr
    listed = scandeck_cli("files", "ls", uid, "--catalog", uri, cwd=elsewhere)
    assert "bus, " not in listed.stdout and "cache, bus" in listed.stdout  # fetched into this machine's cache


def test_fetch_names_older_versions_and_guards_what_is_there(redis_server, tmp_path, capsys):
    uri = bus_uri(redis_server, tmp_path)
    cat = scandeck.open_catalog(uri)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root)
    v1 = run.add(write_file(root / "scan" / "img.tif", 5000, seed=1))
    v2 = run.add(write_file(root / "scan" / "img.tif", 6000, seed=2))
    other = run.add(write_file(root / "README", 10, seed=3))
    run.stop()
    shutil.rmtree(root)
    out = tmp_path / "out"

    assert main(["files", "fetch", run.uid, "--to", str(out), "--catalog", uri]) == 0
    assert sha256_of(out / "scan" / "img.tif") == v2["sha256"]
    assert sha256_of(out / "scan" / "img.v1.tif") == v1["sha256"]
    assert sha256_of(out / "README") == other["sha256"]
    err = capsys.readouterr().err
    assert "[1/3] scan/img.v1.tif (5000 bytes): fetching" in err

    (out / "README").write_bytes(b"edited here")
    assert main(["files", "fetch", run.uid, "--to", str(out), "--catalog", uri]) == 1
    err = capsys.readouterr().err
    assert "exists with other bytes" in err and "--overwrite" in err
    assert (out / "README").read_bytes() == b"edited here"
    assert main(["files", "fetch", run.uid, "--to", str(out), "--catalog", uri, "--overwrite"]) == 0
    assert sha256_of(out / "README") == other["sha256"]

    latest = tmp_path / "latest"
    assert main(["files", "fetch", run.uid, "--to", str(latest), "--catalog", uri, "--latest"]) == 0
    assert sorted(p.relative_to(latest).as_posix() for p in latest.rglob("*") if p.is_file()) == [
        "README",
        "scan/img.tif",
    ]

    assert main(["files", "ls", run.uid, "--catalog", uri]) == 0
    table = capsys.readouterr().out
    assert "scan/img.tif" in table and v1["sha256"][:12] in table and "bus" in table


def test_a_file_nowhere_to_be_had_fails_clearly(tmp_path, capsys):
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, transfer=False)
    run.add(write_file(root / "a.bin", 100))
    run.stop()
    shutil.rmtree(root)
    assert main(["files", "ls", run.uid, "--catalog", str(store)]) == 0
    assert "nowhere" in capsys.readouterr().out
    assert main(["files", "fetch", run.uid, "--to", str(tmp_path / "out"), "--catalog", str(store)]) == 1
    err = capsys.readouterr().err
    assert "a.bin (100 bytes): not written" in err and "could not be fetched" in err


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "/etc/passwd", "a/../../b", ""])
def test_paths_that_leave_the_target_directory_are_refused(tmp_path, hostile):
    fields = {"relpath": hostile, "version": 1, "sha256": "0" * 64, "size": 1}
    with pytest.raises(ScandeckError, match="outside the target directory"):
        place([PendingFile(origin="/x", run="r", fields=fields)], tmp_path)


def test_older_version_names_that_clash_with_a_file_are_refused(tmp_path):
    def pending(rel: str, version: int, sha: str) -> PendingFile:
        fields = {"relpath": rel, "version": version, "sha256": sha, "size": 1}
        return PendingFile(origin="/x", run="r", fields=fields)

    files = [pending("a.tif", 1, "1" * 64), pending("a.tif", 2, "2" * 64), pending("a.v1.tif", 1, "3" * 64)]
    with pytest.raises(ScandeckError, match="--latest"):
        place(files, tmp_path)
    placed = place(files, tmp_path, latest_only=True)
    assert [PurePosixPath(p.name).as_posix() for p in placed] == ["a.tif", "a.v1.tif"]


def test_a_session_run_over_two_directories_fetches_each_directory_s_files(tmp_path, capsys):
    """Two detectors' directories, each with a scan_1.raw: neither is taken for an older version
    of the other, nor dropped by --latest (both are version 1 of their own path)."""
    store = tmp_path / "store"
    det1, det2 = tmp_path / "det1", tmp_path / "det2"
    write_file(det1 / "scan_1.raw", 100, seed=1)
    det2.mkdir()
    assert main(["watch", str(det1), str(det2), "--once", "--catalog", str(store)]) == 0
    write_file(det1 / "scan_1.raw", 300, seed=3)  # rewritten: det1's is version 2 in the next run
    write_file(det2 / "scan_1.raw", 200, seed=2)  # version 1 of det2's own path
    write_file(det2 / "scan_2.raw", 400, seed=4)
    assert main(["watch", str(det1), str(det2), "--once", "--catalog", str(store)]) == 0
    expected = {
        "det1/scan_1.raw": sha256_of(det1 / "scan_1.raw"),
        "det2/scan_1.raw": sha256_of(det2 / "scan_1.raw"),
        "det2/scan_2.raw": sha256_of(det2 / "scan_2.raw"),
    }
    capsys.readouterr()
    for flag in ([], ["--latest"]):
        out = tmp_path / f"out{len(flag)}"
        assert main(["files", "fetch", "-1", "--to", str(out), "--catalog", str(store), *flag]) == 0
        got = {p.relative_to(out).as_posix(): sha256_of(p) for p in out.rglob("*") if p.is_file()}
        assert got == expected, flag


def test_the_default_directory_is_not_taken_from_a_hostile_run_uid(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    root = tmp_path / "instrument"
    run = WatchedRun(cat, root, transfer=False)
    # A run written by hand into a shared catalog: nothing checks what its uid looks like.
    meta = {k: v for k, v in run.bundle.start_doc.items() if k not in ("uid", "time")}
    run.bundle = compose_run(uid="../../zz", metadata=meta)
    run.writer("start", run.bundle.start_doc)
    run.desc = run.bundle.compose_descriptor(name="bytes", data_keys=run.desc.descriptor_doc["data_keys"])
    run.writer("descriptor", run.desc.descriptor_doc)
    run.uid = "../../zz"
    run.add(write_file(root / "a.bin", 10))
    run.stop()
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    assert main(["files", "fetch", "../../zz", "--catalog", str(store)]) == 2
    assert "--to" in capsys.readouterr().err
    assert not (tmp_path / "zz").exists()


def test_copies_fetched_cached_and_archived_get_the_modes_of_any_new_file(redis_server, tmp_path, own_cache):
    """The umask decides (0644 under 022), as for cp: not 0600, which locks out the group that
    reads the keeper's archive, or shares a fetched directory."""
    from scandeck.sources.redis_keeper import Keeper, TrimPolicy

    umask = os.umask(0o022)
    try:
        uri = bus_uri(redis_server, tmp_path)
        root = tmp_path / "instrument"
        run = WatchedRun(scandeck.open_catalog(uri), root)
        sent = run.add(write_file(root / "a.bin", 5000))
        run.stop()
        shutil.rmtree(root)
        out = tmp_path / "out"
        assert main(["files", "fetch", run.uid, "--to", str(out), "--catalog", uri]) == 0
        keeper = Keeper(uri, policy=TrimPolicy(max_runs=0))
        try:
            assert keeper.run_once().trimmed == [run.uid]
        finally:
            keeper.close()
        sha = sent["sha256"]
        copies = [out / "a.bin", own_cache / sha[:2] / sha, tmp_path / "archive" / "files" / sha[:2] / sha]
        assert {str(p): oct(p.stat().st_mode & 0o777) for p in copies} == dict.fromkeys(map(str, copies), "0o644")
    finally:
        os.umask(umask)
