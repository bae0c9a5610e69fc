"""A finished store on a read-only file system (an archive, a snapshot) opens read-only.

The read-only file system is real: a read-only bind mount of the store's directory
(``mount --bind`` then ``mount -o remount,bind,ro``). Tests run as root here, and
root ignores permission bits, so ``chmod`` alone would prove nothing; where mounting
is not allowed, a non-root user gets a ``chmod a-w`` copy instead, and root skips
those tests. ``?mode=ro`` (read-only by request, on a writable directory) needs no
mount and always runs.

Runs come from a real bluesky RunEngine with ophyd.sim devices.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scandeck
from scandeck.catalog import Catalog
from scandeck.exceptions import ReadOnlyStore, StoreError
from scandeck.sources import open_source


def record(cat: Catalog, **md: Any) -> list[str]:
    """Two runs from a real RunEngine into ``cat``; the writer is closed after them."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det, motor

    RE = RunEngine({}, context_managers=[])  # noqa: N806
    writer = cat.writer()
    RE.subscribe(writer)
    uids = [
        RE(bp.count([det], num=3), sample="Ni", **md)[0],
        RE(bp.scan([det], motor, -1, 1, 5), sample="Cu", **md)[0],
    ]
    writer.close()
    return uids


@pytest.fixture
def finished(tmp_path: Path) -> dict[str, Any]:
    """A store with two finished runs, every connection to it closed."""
    path = tmp_path / "src" / "store"
    cat = scandeck.open_catalog(path)
    uids = record(cat)
    cat.close()
    return {"path": path, "uids": uids}


def _mount_read_only(source: Path, target: Path) -> bool:
    target.mkdir(parents=True)
    try:
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
    if ro.returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        return False
    return True


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Any]:
    """``read_only(directory)``: the same directory, on a read-only file system."""
    mounts: list[Path] = []
    chmodded: list[Path] = []

    def make(directory: Path) -> Path:
        target = tmp_path / f"ro{len(mounts) + len(chmodded)}"
        if _mount_read_only(directory, target):
            mounts.append(target)
            return target
        target.rmdir()
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits and this process cannot mount read-only")
        for p in [directory, *directory.iterdir()]:
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        chmodded.append(directory)
        return directory

    yield make
    for target in mounts:
        # Lazy: a connection the test leaked must not keep tmp_path from being removed.
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
    for directory in chmodded:
        for p in [directory, *directory.iterdir()]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def scandeck_cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env["SCANDECK_DATA"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


# -- a read-only file system ------------------------------------------------------------------


def test_store_on_read_only_mount_reads_and_searches(finished: dict[str, Any], read_only: Any) -> None:
    ro = read_only(finished["path"])
    with pytest.raises(OSError):
        (ro / "probe").touch()  # really read-only, for root too
    cat = scandeck.open_catalog(ro)
    try:
        assert len(cat) == 2
        assert [run.uid for run in cat] == finished["uids"][::-1]
        cu = cat.search('sample == "Cu"')
        assert [run.uid for run in cu] == [finished["uids"][1]]
        table = cat[finished["uids"][1]].primary.read()
        assert table["det"].shape == (5,)
        assert cat[-1].status == "success"
    finally:
        cat.close()
    assert sorted(p.name for p in ro.iterdir()) == ["scandeck.sqlite"]


def test_writer_on_read_only_mount_says_which_directory(finished: dict[str, Any], read_only: Any) -> None:
    ro = read_only(finished["path"])
    cat = scandeck.open_catalog(ro)
    try:
        with pytest.raises(ReadOnlyStore) as info:
            cat.writer()
        message = str(info.value)
        assert isinstance(info.value, StoreError) and isinstance(info.value, PermissionError)
        assert "\n" not in message
        assert "read-only" in message and str(ro) in message
        assert len(cat) == 2  # reading goes on after the refusal
    finally:
        cat.close()


def test_read_only_mount_of_a_store_still_open_sees_its_wal(tmp_path: Path, read_only: Any) -> None:
    """A snapshot taken while a writer had the store open keeps runs only in the -wal file.

    Opening that with ``immutable=1`` would ignore the -wal file and lose them, so
    only a store with no -wal and no -shm file is opened immutable.
    """
    path = tmp_path / "src" / "store"
    cat = scandeck.open_catalog(path)
    uids = record(cat)  # cat's own connection stays open: the -wal file is kept
    try:
        assert (path / "scandeck.sqlite-wal").stat().st_size > 0
        ro_cat = scandeck.open_catalog(read_only(path))
        try:
            assert sorted(run.uid for run in ro_cat) == sorted(uids)
            assert ro_cat[uids[0]].primary.read()["det"].shape == (3,)
        finally:
            ro_cat.close()
    finally:
        cat.close()


def test_read_only_mount_with_a_stale_shm_file_opens(tmp_path: Path, read_only: Any) -> None:
    """A copy holding a -shm file from an earlier moment but no -wal (a backup made
    file by file): SQLite's mode=ro cannot rebuild the -shm there; every run is in
    the main file, so it opens immutable."""
    path = tmp_path / "src" / "store"
    cat = scandeck.open_catalog(path)
    uids = record(cat)
    shm = (path / "scandeck.sqlite-shm").read_bytes()
    cat.close()
    assert not (path / "scandeck.sqlite-wal").exists()
    (path / "scandeck.sqlite-shm").write_bytes(shm)
    ro_cat = scandeck.open_catalog(read_only(path))
    try:
        assert sorted(run.uid for run in ro_cat) == sorted(uids)
    finally:
        ro_cat.close()


def test_missing_store_on_read_only_mount_is_one_line(tmp_path: Path, read_only: Any) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    ro = read_only(empty)
    with pytest.raises(StoreError) as info:
        len(scandeck.open_catalog(ro / "store"))
    assert "\n" not in str(info.value) and str(ro) in str(info.value)
    assert "not writable" in str(info.value)


def test_cli_ls_show_export_on_read_only_mount(finished: dict[str, Any], read_only: Any, tmp_path: Path) -> None:
    ro = str(read_only(finished["path"]))
    data = tmp_path / "data"
    listed = scandeck_cli("ls", "--catalog", ro, data=data)
    assert listed.returncode == 0, listed.stderr
    assert all(uid[:8] in listed.stdout for uid in finished["uids"])
    shown = scandeck_cli("show", finished["uids"][1][:8], "--catalog", ro, data=data)
    assert shown.returncode == 0, shown.stderr
    assert finished["uids"][1] in shown.stdout
    out = tmp_path / "exported"
    exported = scandeck_cli("export", "-1", "-o", str(out), "--catalog", ro, data=data)
    assert exported.returncode == 0, exported.stderr
    assert (out / f"{finished['uids'][1]}.jsonl").exists()

    # Writing into it: one line, no traceback.
    ingest = scandeck_cli("ingest", str(out / f"{finished['uids'][1]}.jsonl"), "--catalog", ro, data=data)
    assert ingest.returncode == 1
    assert "Traceback" not in ingest.stderr
    assert "read-only" in ingest.stderr.splitlines()[0]


# -- read-only by request: ?mode=ro -----------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "sqlite-uri", "sqlite-file"])
def test_mode_ro_reads_refuses_writes_and_sees_new_runs(finished: dict[str, Any], form: str) -> None:
    """``?mode=ro`` on a writable directory: a reader that can never write.

    A writer elsewhere may still be adding runs, so the reader must see them
    (``immutable=1`` would not): SQLite's ``mode=ro`` is used, never ``immutable``.
    """
    path = finished["path"]
    target = {
        "path": f"{path}?mode=ro",
        "sqlite-uri": f"sqlite://{path}?mode=ro",
        "sqlite-file": f"{path / 'scandeck.sqlite'}?mode=ro",
    }[form]
    reader = scandeck.open_catalog(target)
    try:
        assert len(reader) == 2
        with pytest.raises(ReadOnlyStore, match="mode=ro"):
            reader.writer()
        writable = scandeck.open_catalog(path)
        try:
            [new, _] = record(writable, purpose="later")
        finally:
            writable.close()
        assert len(reader) == 4
        assert reader[new].primary.read()["det"].shape == (3,)
        assert "mode=ro" in reader.source.uri
    finally:
        reader.close()


def test_mode_ro_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    with pytest.raises(StoreError, match="mode=ro") as info:
        len(scandeck.open_catalog(f"{missing}?mode=ro"))
    assert "\n" not in str(info.value)
    assert not missing.exists()


def test_unknown_sqlite_option_is_refused(finished: dict[str, Any]) -> None:
    with pytest.raises(StoreError, match="mode=ro"):
        open_source(f"{finished['path']}?mode=banana")


def test_cli_ls_and_ingest_with_mode_ro(finished: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    target = f"{finished['path']}?mode=ro"
    listed = scandeck_cli("ls", "--catalog", target, data=data)
    assert listed.returncode == 0, listed.stderr
    assert all(uid[:8] in listed.stdout for uid in finished["uids"])
    out = tmp_path / "exported"
    exported = scandeck_cli("export", "1", "-o", str(out), "--catalog", target, data=data)
    assert exported.returncode == 0, exported.stderr
    copy = tmp_path / "copy.jsonl"
    shutil.copy(out / f"{finished['uids'][0]}.jsonl", copy)
    ingest = scandeck_cli("ingest", str(copy), "--catalog", target, data=data)
    assert ingest.returncode == 1 and "Traceback" not in ingest.stderr
    assert "mode=ro" in ingest.stderr.splitlines()[0]
