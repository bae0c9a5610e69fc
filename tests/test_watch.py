"""scandeck watch: complete files of real directories become events of runs, exactly once."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from watch_procs import (
    PlainReader,
    ThreadedWatcher,
    final_sha,
    relpath_of,
    start_writer,
    wait_for,
    watched_events,
)

import scandeck
from scandeck.cli.main import main
from scandeck.files import layout
from scandeck.files.complete import Tracker, writer_holds
from scandeck.files.ledger import Ledger, ledger_path
from scandeck.files.watch import Watcher


def plain(path: str) -> PlainReader:
    return PlainReader()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cat(tmp_path: Path):
    catalog = scandeck.open_catalog(str(tmp_path / "store"))
    yield catalog
    catalog.close()


def watcher(cat, root: Path, lines: list[str] | None = None, **kwargs) -> Watcher:
    kwargs.setdefault("reader_for", plain)
    kwargs.setdefault("settle", 0.2)
    return Watcher(cat, [root], say=(lines.append if lines is not None else None), **kwargs)


def test_once_takes_the_files_there_in_one_run_with_their_documents(cat, tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    files = {"a.dat": b"alpha", "b.dat": b"beta" * 1000, "sub/c.dat": b"gamma", "notes.txt": b"skip me"}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    (root / ".hidden.dat").write_bytes(b"temporary")
    lines: list[str] = []
    summary = watcher(
        cat, root, lines, patterns=["*.dat"], recursive=True, once=True, metadata={"sample": "Ni"}
    ).run()
    assert summary.files == 3 and len(summary.runs) == 1
    run = cat[-1]
    start = run.metadata["start"]
    assert start["plan_name"] == "watch" and start["sample"] == "Ni"
    assert start["watch"] == layout.watch_metadata(
        [str(root.resolve())], ["*.dat"], "session", start["watch"]["host"], transfer=False
    )
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.metadata["stop"]["num_events"] == {"plain": 3}
    events = watched_events(cat)
    assert sorted(e["path"] for e in events) == ["a.dat", "b.dat", "sub/c.dat"]
    for e in events:
        assert e["sha256"] == sha(files[e["path"]]) and e["size"] == len(files[e["path"]])
        assert e["version"] == 1 and json.loads(e["info"])["head"] == files[e["path"]][:3].decode()
        assert e["stream"] == "plain"
    resources = [doc for name, doc in run.documents() if name == "resource"]
    assert {r["resource_path"] for r in resources} == {"a.dat", "b.dat", "sub/c.dat"}
    for r in resources:
        assert r["spec"] == layout.SPEC and r["root"] == str(root.resolve()) and r["path_semantics"] == "posix"
        assert r["resource_kwargs"] == layout.resource_kwargs(
            "plain", sha(files[r["resource_path"]]), len(files[r["resource_path"]]), run.uid
        )
    table = run.plain.read(fill=False)
    assert sorted(table["path"].values.tolist()) == ["a.dat", "b.dat", "sub/c.dat"]
    assert any(line.startswith("ingested 3 files") and run.uid[:8] in line for line in lines)
    assert ledger_path(cat) == tmp_path / "store" / "watch.sqlite"


def test_a_second_once_takes_nothing_twice_and_a_rewrite_is_a_new_version(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"one")
    (root / "b.dat").write_bytes(b"bee")
    assert watcher(cat, root, once=True).run().files == 2
    assert watcher(cat, root, once=True).run().files == 0  # nothing new: no event, no run
    # Same bytes, new mtime: nothing; other bytes: version 2 of the same path.
    os.utime(root / "b.dat", ns=(time.time_ns(), time.time_ns() - 10**9))
    (root / "a.dat").write_bytes(b"two!")
    summary = watcher(cat, root, once=True).run()
    assert summary.files == 1
    events = watched_events(cat)
    assert [(e["path"], e["version"], e["sha256"]) for e in events if e["path"] == "a.dat"] == [
        ("a.dat", 1, sha(b"one")),
        ("a.dat", 2, sha(b"two!")),
    ]
    assert [e["path"] for e in events].count("b.dat") == 1
    assert len({e["run"] for e in events}) == 2


def test_a_rewrite_that_keeps_size_and_mtime_is_a_new_version_when_its_close_is_heard(cat, tmp_path):
    """File timestamps are coarse (a clock tick): a rewrite of the same size within one keeps the
    mtime. A close heard after the file was taken makes the watcher hash it again."""
    root = tmp_path / "data"
    root.mkdir()
    with ThreadedWatcher(watcher(cat, root, settle=600)) as tw:  # only closes complete files here
        wait_for(lambda: root.as_posix() in {Path(p).as_posix() for p in tw.watcher.tracker.watched()}, "watch")
        (root / "latest.dat").write_bytes(b"frame 1")
        wait_for(lambda: tw.watcher.summary.files >= 1, "the first version in")
        st = (root / "latest.dat").stat()

        def rewrite(data: bytes) -> None:
            """Same size and, as within one timestamp tick, the same mtime, set before the close:
            the close is the last thing the watcher hears of it."""
            with open(root / "latest.dat", "wb") as f:
                f.write(data)
                f.flush()
                os.utime(root / "latest.dat", ns=(st.st_atime_ns, st.st_mtime_ns))

        rewrite(b"frame 2")
        wait_for(lambda: tw.watcher.summary.files >= 2, "the rewrite in")
        rewrite(b"frame 2")  # the same bytes closed again: nothing new
        (root / "other.dat").write_bytes(b"x")
        wait_for(lambda: tw.watcher.summary.files >= 3, "the other file in")
    events = watched_events(cat)
    assert [(e["path"], e["version"], e["sha256"]) for e in events] == [
        ("latest.dat", 1, sha(b"frame 1")),
        ("latest.dat", 2, sha(b"frame 2")),
        ("other.dat", 1, sha(b"x")),
    ]


def test_a_slow_writer_is_never_read_half_written(cat, tmp_path):
    """Files written in pieces, held open meanwhile: each is taken when closed, whole."""
    root = tmp_path / "data"
    root.mkdir()
    n = 6
    # settle far beyond the test: only closes (IN_CLOSE_WRITE) make files complete here.
    with ThreadedWatcher(watcher(cat, root, settle=600)) as tw:
        writer = start_writer(root, n, pieces=4, delay=0.03)
        writer.communicate(timeout=60)
        assert writer.returncode == 0
        wait_for(lambda: tw.watcher.summary.files >= n, f"{n} files in")
    events = watched_events(cat)
    assert sorted(e["path"] for e in events) == [relpath_of(i, 0) for i in range(n)]
    for e in events:
        assert e["sha256"] == final_sha(int(e["path"][1:4]), 4)
        assert e["size"] == (root / e["path"]).stat().st_size


def test_scans_with_no_settle_wait_for_the_writer_to_close(cat, tmp_path):
    """No inotify, settle 0: only the lease test (a writer holds it open) keeps a half file out."""
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        f.write(b"x")
        if writer_holds(str(probe)) is not True:
            pytest.skip("file leases are not permitted here: the settle rule alone decides")
    root = tmp_path / "data"
    root.mkdir()
    n = 4
    w = watcher(cat, root, settle=0, use_inotify=False, scan_interval=0.01)
    assert not w.tracker.inotify
    with ThreadedWatcher(w) as tw:
        writer = start_writer(root, n, pieces=5, delay=0.05)
        writer.communicate(timeout=60)
        assert writer.returncode == 0
        wait_for(lambda: tw.watcher.summary.files >= n, f"{n} files in")
    events = watched_events(cat)
    assert len(events) == n
    for e in events:
        assert e["sha256"] == final_sha(int(e["path"][1:4]), 5)


@pytest.mark.parametrize("run_per", ["directory", "file"])
def test_runs_per_directory_and_per_file(cat, tmp_path, run_per):
    root = tmp_path / "data"
    for rel in ("top.dat", "x/1.dat", "x/2.dat", "y/z/3.dat"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    summary = watcher(cat, root, once=True, recursive=True, run_per=run_per).run()
    assert summary.files == 4
    parts = {}
    for run in cat:
        watch = run.metadata["start"]["watch"]
        assert watch["run_per"] == run_per and watch["roots"] == [str(root.resolve())]
        assert run.metadata["stop"]["exit_status"] == "success"
        parts[watch["part"]] = sorted(e["path"] for e in watched_events(cat) if e["run"] == run.uid)
    if run_per == "directory":
        assert parts == {".": ["top.dat"], "x": ["x/1.dat", "x/2.dat"], "y/z": ["y/z/3.dat"]}
    else:
        assert parts == {p: [p] for p in ("top.dat", "x/1.dat", "x/2.dat", "y/z/3.dat")}


def test_new_subdirectories_are_watched_when_recursive(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    # A file written before its new directory is watched was closed unheard: it settles.
    with ThreadedWatcher(watcher(cat, root, recursive=True, settle=0.3)) as tw:
        wait_for(lambda: root.as_posix() in {Path(p).as_posix() for p in tw.watcher.tracker.watched()}, "watch")
        (root / "new" / "deeper").mkdir(parents=True)
        (root / "new" / "deeper" / "f.dat").write_bytes(b"deep")
        wait_for(lambda: tw.watcher.summary.files >= 1, "the file in the new directory")
    assert [e["path"] for e in watched_events(cat)] == ["new/deeper/f.dat"]


def test_a_file_that_vanishes_before_it_is_complete_is_a_warning(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    lines: list[str] = []
    with ThreadedWatcher(watcher(cat, root, lines, settle=600)) as tw:
        with open(root / "gone.dat", "wb") as f:
            f.write(b"half")
            f.flush()
            wait_for(lambda: (str(root.resolve()), "gone.dat") in tw.watcher.tracker.pending(), "the file seen")
            (root / "gone.dat").unlink()
        (root / "kept.dat").write_bytes(b"whole")
        wait_for(lambda: tw.watcher.summary.files >= 1, "the next file")
    assert tw.summary.vanished == ["gone.dat"]
    assert any("gone.dat vanished before it was complete" in line for line in lines)
    assert [e["path"] for e in watched_events(cat)] == ["kept.dat"]


def test_a_file_moved_away_while_its_reader_looks_is_a_vanished_file_not_an_unreadable_one(cat, tmp_path):
    root, away = tmp_path / "data", tmp_path / "away"
    root.mkdir()
    away.mkdir()
    (root / "a.dat").write_bytes(b"alpha")

    class Mover(PlainReader):
        def describe(self, path: str):  # a mover takes the file once closed, after it was hashed
            os.rename(path, away / "a.dat")
            return super().describe(path)

    lines: list[str] = []
    summary = watcher(cat, root, lines, once=True, reader_for=lambda p: Mover()).run()
    assert (summary.files, summary.unreadable, summary.vanished) == (0, [], ["a.dat"])
    assert any("a.dat vanished" in line for line in lines), lines
    assert Ledger(ledger_path(cat)).all() == []  # nothing noted: taken when it is back
    os.rename(away / "a.dat", root / "a.dat")
    assert watcher(cat, root, once=True).run().files == 1


def test_a_plugin_readers_info_is_made_json_as_the_builtins_is(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"alpha")

    class Plugin(PlainReader):  # numpy values and keys of two types, as a plug-in may give
        def describe(self, path: str):
            return SimpleNamespace(data_keys={}, info={"exposure": np.float32(0.5), 1: "one", "gain": np.nan})

    summary = watcher(cat, root, once=True, reader_for=lambda p: Plugin()).run()
    assert summary.files == 1
    [event] = watched_events(cat)
    assert json.loads(event["info"]) == {"1": "one", "exposure": 0.5, "gain": "nan"}


def test_a_plugin_reader_describing_a_file_wrongly_is_reported_and_the_watcher_goes_on(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"alpha")
    (root / "b.dat").write_bytes(b"beta")

    class Wrong(PlainReader):  # "float" is no event-model dtype: the store would refuse its descriptor
        def describe(self, path: str):
            if path.endswith("b.dat"):
                return super().describe(path)
            return SimpleNamespace(data_keys={"x": {"dtype": "float", "shape": [2]}}, info={})

    lines: list[str] = []
    for _ in range(2):  # and again after a restart: no file stops the watcher for good
        summary = watcher(cat, root, lines, once=True, reader_for=lambda p: Wrong()).run()
    assert summary.unreadable == []  # reported once, by the first
    assert [e["path"] for e in watched_events(cat)] == ["b.dat"]
    assert [r.status for r in cat] == ["success"]
    [line] = [line for line in lines if "a.dat" in line]
    assert line.startswith("warning: a.dat is unreadable, skipped: its reader 'plain' described it wrongly: ")
    assert "float" in line


def test_an_unreadable_file_is_reported_once_and_retried_when_it_changes(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "bad.dat").write_bytes(b"BAD header")
    (root / "good.dat").write_bytes(b"fine")
    lines: list[str] = []
    summary = watcher(cat, root, lines, once=True).run()
    assert summary.files == 1 and summary.unreadable == ["bad.dat"]
    assert [line for line in lines if "bad.dat" in line] == [
        "warning: bad.dat is unreadable, skipped: starts with BAD (taken again if it changes)"
    ]
    rows = Ledger(ledger_path(cat)).all("unreadable")
    assert [(r.relpath, r.reason) for r in rows] == [("bad.dat", "starts with BAD")]
    lines.clear()
    assert watcher(cat, root, lines, once=True).run().unreadable == []  # unchanged: not reported again
    assert lines == []
    (root / "bad.dat").write_bytes(b"now good")
    assert watcher(cat, root, once=True).run().files == 1
    assert sorted(e["path"] for e in watched_events(cat)) == ["bad.dat", "good.dat"]


def test_the_catalogs_own_files_are_never_taken(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"a")
    cat = scandeck.open_catalog(str(root / "store"))
    try:
        summary = Watcher(cat, [root], recursive=True, once=True, reader_for=plain, settle=0.2).run()
        assert summary.files == 1
        assert [e["path"] for e in watched_events(cat)] == ["a.dat"]
    finally:
        cat.close()


def test_tracker_hears_renames_into_place(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    tracker = Tracker([str(root)], ["*.dat"], settle=600)
    assert tracker.inotify
    tracker.scan()
    (root / "x.tmp").write_bytes(b"whole")
    os.rename(root / "x.tmp", root / "x.dat")
    found: list = []
    wait_for(lambda: bool(found.extend(tracker.poll(0.05)) or found), "the rename")
    assert [c.relpath for c in found] == ["x.dat"]
    tracker.close()


@pytest.mark.parametrize("closes", [True, False])
def test_an_instrument_that_closes_between_pieces(tmp_path, closes):
    """Each close completes a file by default; with closes=False (--ignore-closes) only settling does."""
    root = tmp_path / "data"
    root.mkdir()
    tracker = Tracker([str(root)], [], settle=600, closes=closes)
    assert tracker.inotify
    tracker.scan()
    taken: list = []
    for piece in (b"first ", b"second ", b"third"):
        with open(root / "spectrum.dat", "ab") as f:  # opened, written, closed: a piece
            f.write(piece)
        taken.extend(c.stat.st_size for c in tracker.poll(0.05))
        taken.extend(c.stat.st_size for c in tracker.poll(0.05))
    if closes:
        assert taken == [6, 13, 18]  # every piece became a version
    else:
        assert taken == []  # closes said nothing; 600 s of settling have not passed
        tracker.settle = 0.0
        taken.extend(c.stat.st_size for c in tracker.poll(0.05))
        assert taken == [18]  # the whole file, once
    tracker.close()


def test_the_tracker_hears_changes_with_descriptors_above_1023(tmp_path):
    """A long-lived process (a kernel, the test suite) holds many files open: inotify's
    descriptor then lies above what select() can take, and poll() is used instead."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        root = tmp_path / "data"
        root.mkdir()
        tracker = Tracker([str(root)], [], settle=600)
        tracker.scan()
        assert tracker.inotify
        (root / "a.bin").write_bytes(b"whole")
        found: list = []
        wait_for(lambda: bool(found.extend(tracker.poll(0.05)) or found), "the close")
        assert [c.relpath for c in found] == ["a.bin"]
        tracker.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- the command ----------------------------------------------------------------------------------


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["watch", *args])
    return code, capsys.readouterr().err


def test_cli_errors_say_what_to_do(capsys, tmp_path):
    store = str(tmp_path / "store")
    code, err = run_cli(capsys, str(tmp_path / "nowhere"), "--catalog", store, "--once")
    assert code == 2 and "no directory" in err and "nowhere" in err
    (tmp_path / "a.tif").write_bytes(b"")
    code, err = run_cli(capsys, str(tmp_path), str(tmp_path / "a.tif"), "--pattern", "b.tif", "--catalog", store)
    assert code == 2 and "is a file, not a directory" in err and "quote --pattern" in err
    code, err = run_cli(capsys, str(tmp_path), "--pattern", "/data/*.tif", "--catalog", store)
    assert code == 2 and "is a path, not a glob" in err
    code, err = run_cli(capsys, str(tmp_path), "--pattern", "", "--catalog", store)
    assert code == 2 and "--pattern is empty" in err
    code, err = run_cli(capsys, str(tmp_path), "--transfer", "--catalog", store)
    assert code == 2 and "not one" in err and "redis://" in err
    code, err = run_cli(capsys, str(tmp_path), "--metadata", "novalue", "--catalog", store)
    assert code == 2 and "KEY=VALUE" in err
    code, err = run_cli(capsys, str(tmp_path), "--metadata", "plan_name=x", "--catalog", store)
    assert code == 2 and "set by the watcher" in err
    assert not (tmp_path / "store").exists()


def test_cli_metadata_values_are_json_when_they_parse():
    from scandeck.cli.watch import parse_metadata

    assert parse_metadata(["T=300", "sample=Ni", "tags=[1, 2]", "ok=true", "text=a=b", 'q="3"']) == {
        "T": 300,
        "sample": "Ni",
        "tags": [1, 2],
        "ok": True,
        "text": "a=b",
        "q": "3",
    }


def test_once_waits_for_a_file_still_being_written_and_says_so(cat, tmp_path, monkeypatch):
    import scandeck.files.watch as watch_module

    monkeypatch.setattr(watch_module, "WAITING_NOTE", 0.0)
    root = tmp_path / "data"
    root.mkdir()
    (root / "done.dat").write_bytes(b"done")
    lines: list[str] = []
    w = watcher(cat, root, lines, once=True, settle=0.05)
    with open(root / "open.dat", "wb") as f:
        f.write(b"first half ")
        f.flush()
        tw = ThreadedWatcher(w).__enter__()
        wait_for(lambda: any(line.startswith("waiting for 1 file") for line in lines), "the waiting note")
        assert "still being written: open.dat" in lines[-1]
        f.write(b"second half")
    summary = tw.wait()
    assert summary.files == 2
    [event] = [e for e in watched_events(cat) if e["path"] == "open.dat"]
    assert event["sha256"] == sha(b"first half second half")


def test_a_symlinked_file_is_taken_and_a_symlinked_directory_is_not_followed(cat, tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir()
    (outside / "deep").mkdir(parents=True)
    (outside / "target.dat").write_bytes(b"target")
    (outside / "deep" / "x.dat").write_bytes(b"x")
    (root / "link.dat").symlink_to(outside / "target.dat")
    (root / "dirlink").symlink_to(outside / "deep")
    summary = watcher(cat, root, once=True, recursive=True).run()
    assert summary.files == 1
    [event] = watched_events(cat)
    assert (event["path"], event["sha256"], event["size"]) == ("link.dat", sha(b"target"), 6)


def test_a_store_in_the_watched_directory_itself_is_not_taken_but_its_neighbours_are(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"a")
    cat = scandeck.open_catalog(str(root))  # the store's database and the ledger beside the files
    try:
        summary = Watcher(cat, [root], once=True, reader_for=plain, settle=0.2).run()
        assert summary.files == 1
        assert (root / "watch.sqlite").exists() and (root / "scandeck.sqlite").exists()
        assert [e["path"] for e in watched_events(cat)] == ["a.dat"]
    finally:
        cat.close()


def test_a_catalog_in_memory_has_its_ledger_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "home"))
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.dat").write_bytes(b"a")
    cat = scandeck.open_catalog(f"memory://watch-{os.getpid()}-{time.monotonic_ns()}")
    try:
        assert watcher(cat, root, once=True).run().files == 1
        assert not (tmp_path / "home").exists()
    finally:
        cat.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_reported_and_tried_again_by_the_next_watcher(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "locked.dat").write_bytes(b"secret")
    (root / "locked.dat").chmod(0)
    lines: list[str] = []
    assert watcher(cat, root, lines, once=True).run().unreadable == ["locked.dat"]
    assert any(line.startswith("warning: locked.dat cannot be read: Permission denied") for line in lines)
    (root / "locked.dat").chmod(0o644)
    assert watcher(cat, root, once=True).run().files == 1


def test_lines_name_hostile_file_names_escaped(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "evil\x1b]0;pwned\x07.dat").write_bytes(b"x")
    (root / "bad\u202e.dat").write_bytes(b"BAD")
    lines: list[str] = []
    watcher(cat, root, lines, once=True).run()
    assert lines and all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert any("evil\\u001b]0;pwned\\u0007.dat" in line for line in lines)
    assert any("bad\\u202e.dat is unreadable" in line for line in lines)
    assert {e["path"] for e in watched_events(cat)} == {"evil\x1b]0;pwned\x07.dat"}  # the data keeps the name


def test_a_name_that_is_not_utf8_is_reported_and_the_watcher_goes_on(cat, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    try:
        with open(os.path.join(os.fsencode(root), b"caf\xe9.dat"), "wb") as f:
            f.write(b"latin-1 name")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    (root / "ok.dat").write_bytes(b"ok")
    lines: list[str] = []
    summary = watcher(cat, root, lines, once=True).run()
    assert summary.files == 1 and len(summary.unreadable) == 1
    assert any("b'caf\\xe9.dat' is not UTF-8 text" in line for line in lines)
    assert [e["path"] for e in watched_events(cat)] == ["ok.dat"]


def test_nested_roots(cat, tmp_path):
    outer, inner = tmp_path / "data", tmp_path / "data" / "inner"
    inner.mkdir(parents=True)
    with pytest.raises(ValueError, match="is inside .* taken twice"):
        Watcher(cat, [outer, inner], recursive=True, reader_for=plain)
    # Without --recursive each root has its own files; a root given twice counts once.
    w = Watcher(cat, [outer, inner, outer], reader_for=plain, settle=600)
    assert w.roots == [str(outer.resolve()), str(inner.resolve())]
    with ThreadedWatcher(w) as tw:
        wait_for(lambda: len(tw.watcher.tracker.watched()) == 2, "both roots watched")
        (outer / "o.dat").write_bytes(b"o")
        (inner / "i.dat").write_bytes(b"i")
        wait_for(lambda: tw.watcher.summary.files >= 2, "a file of each root")
    resources = [doc for name, doc in cat[-1].documents() if name == "resource"]
    assert sorted((r["root"], r["resource_path"]) for r in resources) == [
        (str(outer.resolve()), "o.dat"),
        (str(inner.resolve()), "i.dat"),
    ]


def test_files_whose_data_keys_differ_go_to_the_readers_next_stream(cat, tmp_path):
    """Real readers: two CSVs of one layout share ``table``; another layout goes to ``table_2``."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.csv").write_text("x,y\n1,10\n2,20\n")
    (root / "b.csv").write_text("x,y\n3,30\n4,40\n")
    (root / "c.csv").write_text("energy,counts,size\n1,5,7\n2,6,8\n3,7,9\n")
    summary = Watcher(cat, [root], once=True, settle=0.2).run()
    assert summary.files == 3
    run = cat[-1]
    assert set(run) == {"table", "table_2"}
    first = run.table.read()
    assert first["path"].values.tolist() == ["a.csv", "b.csv"]
    assert first["y"].values.tolist() == [[10.0, 20.0], [30.0, 40.0]]
    second = run.table_2.read()
    assert second["path"].values.tolist() == ["c.csv"] and second["size"].values.tolist() == [
        (root / "c.csv").stat().st_size
    ]
    names = set(second.data_vars) - {"path", "size", "mtime", "sha256", "version", "info", "file"}
    assert {"energy", "counts"} <= names and len(names) == 3  # the column named size is renamed, not lost
    assert run.metadata["stop"]["num_events"] == {"table": 2, "table_2": 1}


def test_a_watcher_made_on_another_thread_leaves_sigio_alone(cat, tmp_path):
    """SIGIO (sent to a lease holder) kills by default: only the main thread may ignore it."""
    import signal
    import threading

    root = tmp_path / "data"
    root.mkdir()
    previous = signal.signal(signal.SIGIO, signal.SIG_DFL)
    try:
        made: list[Watcher] = []
        thread = threading.Thread(target=lambda: made.append(watcher(cat, root)))
        thread.start()
        thread.join()
        assert signal.getsignal(signal.SIGIO) == signal.SIG_DFL
        probe = tmp_path / "probe"
        with open(probe, "wb"):
            assert writer_holds(str(probe)) is None  # cannot tell: the settle rule decides
        made[0].tracker.close()
        watcher(cat, root).tracker.close()  # on the main thread: ignored, leases used
        assert signal.getsignal(signal.SIGIO) == signal.SIG_IGN
        with open(probe, "wb"):
            assert writer_holds(str(probe)) is True
    finally:
        signal.signal(signal.SIGIO, previous)
