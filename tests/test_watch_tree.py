"""The tracker over a tree of directories: renamed ones, many of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from watch_procs import wait_for

from scandeck.files.complete import Candidate, Tracker


def heard(tracker: Tracker, what: str) -> list[Candidate]:
    """The files the tracker finds complete (settle and rescans are out of reach: a close must be heard)."""
    found: list[Candidate] = []
    wait_for(lambda: bool(found.extend(tracker.poll(0.05)) or found), what, timeout=10)
    return found


@pytest.mark.parametrize("away", ["renamed in the tree", "moved out of the tree"])
def test_a_directory_made_again_under_a_name_that_went_away_is_heard(tmp_path, away):
    # Instruments fill "incoming/" and rename it after the sample: the next "incoming/" is a new directory.
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (root / "incoming").mkdir(parents=True)
    elsewhere.mkdir()
    tracker = Tracker([str(root)], recursive=True, settle=600, scan_interval=600)
    assert tracker.inotify
    try:
        tracker.scan()
        target = root / "sample_1" if away == "renamed in the tree" else elsewhere / "sample_1"
        os.rename(root / "incoming", target)
        tracker.poll(0.05)
        tracker.scan()
        (root / "incoming").mkdir()
        tracker.scan()
        (root / "incoming" / "f.dat").write_bytes(b"next sample")
        assert [c.relpath for c in heard(tracker, "the file in the new incoming/")] == ["incoming/f.dat"]
        if away == "renamed in the tree":
            (root / "sample_1" / "g.dat").write_bytes(b"late")
            assert [c.relpath for c in heard(tracker, "the file in sample_1/")] == ["sample_1/g.dat"]
    finally:
        tracker.close()


def test_files_in_a_tree_made_quickly_are_all_found(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    tracker = Tracker([str(root)], recursive=True, settle=0.2)
    try:
        tracker.scan()
        for i in range(20):
            leaf = root / f"a{i}" / "b" / "c"
            leaf.mkdir(parents=True)
            (leaf / "f.dat").write_bytes(b"x" * i)
        found: set[str] = set()
        wait_for(lambda: bool(found.update(c.relpath for c in tracker.poll(0.05))) or len(found) == 20, "20")
        assert found == {f"a{i}/b/c/f.dat" for i in range(20)}
        assert Path(root / "a3" / "b" / "c").as_posix() in {Path(p).as_posix() for p in tracker.watched()}
    finally:
        tracker.close()


class _CountedWalks(dict):  # type: ignore[type-arg]
    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        _CountedWalks.walks += 1
        return super().__iter__()


def test_a_rescan_does_not_go_through_every_watched_directory_for_each_one(tmp_path):
    # With a folder per sample, thousands of directories: a rescan (every 5 s) stays linear.
    root = tmp_path / "data"
    for i in range(200):
        (root / f"s{i:03d}").mkdir(parents=True)
    tracker = Tracker([str(root)], recursive=True, settle=600, scan_interval=600)
    try:
        tracker.scan()
        inotify = tracker._inotify
        assert inotify is not None and len(inotify.watched()) == 201
        inotify._wds = _CountedWalks(inotify._wds)
        _CountedWalks.walks = 0
        tracker.scan()
        assert _CountedWalks.walks <= 2
    finally:
        tracker.close()


class _CountedLooks(dict):  # type: ignore[type-arg]
    looks = 0

    def items(self):  # type: ignore[no-untyped-def]
        _CountedLooks.looks += 1
        return super().items()

    def __iter__(self):  # type: ignore[no-untyped-def]
        _CountedLooks.looks += 1
        return super().__iter__()


def test_a_poll_between_rescans_looks_only_at_files_not_taken_yet(tmp_path):
    # A directory of 100,000 files taken long ago: each poll (every settle/4 s) went through them all.
    root = tmp_path / "data"
    root.mkdir()
    for i in range(50):
        (root / f"old{i:02d}.dat").write_bytes(b"old")
    tracker = Tracker([str(root)], settle=0, scan_interval=600)
    try:
        tracker.scan()
        assert len(tracker.poll(0)) == 50
        tracker._seen = _CountedLooks(tracker._seen)
        _CountedLooks.looks = 0
        assert tracker.poll(0.01) == [] and tracker.pending() == []
        assert _CountedLooks.looks == 0
        (root / "new.dat").write_bytes(b"new")
        assert [c.relpath for c in heard(tracker, "the new file")] == ["new.dat"]
        assert _CountedLooks.looks == 0
    finally:
        tracker.close()


def test_files_whose_events_the_kernel_dropped_are_found_by_the_rescan_it_causes(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    tracker = Tracker([str(root)], settle=0.2, scan_interval=600)
    try:
        tracker.scan()
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        n = limit // 3 + 100  # created, modified, closed: more events than the kernel queues
        for i in range(n):
            (root / f"f{i:05d}.dat").write_bytes(b"x")
        found: set[str] = set()
        wait_for(lambda: bool(found.update(c.relpath for c in tracker.poll(0.05))) or len(found) == n, "all")
        inotify = tracker._inotify
        assert inotify is not None and not inotify.overflowed  # it was, and the rescan cleared it
        assert found == {f"f{i:05d}.dat" for i in range(n)}
    finally:
        tracker.close()
