"""Code on whole files: ``scandeck.files(run)`` and ``Live.files()`` over real watched runs.

Runs are written by the real watcher (:class:`scandeck.files.watch.Watcher`) from real
files; a writer process (tests/file_writer.py) adds files slowly, each in pieces, while
the test follows the run and checks every file it is handed is whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from file_writer import content, name
from source_uris import SOURCES

import scandeck
from scandeck.exceptions import ExternalFileMissing, NotWatchedRun
from scandeck.files.follow import FileEntry
from scandeck.files.watch import Watcher

WRITER = str(Path(__file__).parent / "file_writer.py")


def watch_once(cat, root: Path, **kwargs) -> str:
    """Run the watcher over what ``root`` holds now; the uid of its (newest) run."""
    Watcher(cat, [root], once=True, settle=0.1, say=lambda line: None, **kwargs).run()
    return cat[-1].uid


def make_files(root: Path, names: dict[str, bytes]) -> None:
    for rel, data in names.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_the_stored_files_of_a_watched_run(sqlite_cat, tmp_path):
    root = tmp_path / "instrument"
    table = b"x,y\n1,2\n3,4\n5,6\n"
    make_files(root, {"a.bin": b"\x00\x01" * 500, "b.csv": table})
    uid = watch_once(sqlite_cat, root)

    got = sorted(scandeck.files(sqlite_cat[uid]), key=lambda f: f.relpath)
    assert [f.relpath for f in got] == ["a.bin", "b.csv"]
    for f in got:
        assert isinstance(f, FileEntry)
        assert Path(f) == root / f.relpath  # the original, still there: no copy
        assert str(f) == str(root / f.relpath)
        with open(f, "rb") as opened:  # a path-like
            assert opened.read() == (root / f.relpath).read_bytes()
        assert f.sha256 == hashlib.sha256((root / f.relpath).read_bytes()).hexdigest()
        assert f.size == (root / f.relpath).stat().st_size
        assert f.version == 1
        assert f.uid == uid
        assert isinstance(f.info, dict)
    csv = got[1]
    assert csv.reader == "table" and csv.stream == "table"
    assert list(csv.read("y")) == [2, 4, 6]
    assert "b.csv" in repr(csv)
    # A uid (prefix) and a catalog resolve as scandeck.live's targets do.
    assert [f.relpath for f in scandeck.files(uid[:8], catalog=sqlite_cat)] == [f.relpath for f in got]
    assert {f.relpath for f in scandeck.files(sqlite_cat)} == {"a.bin", "b.csv"}


def test_a_rewritten_file_is_a_new_version(sqlite_cat, tmp_path):
    root = tmp_path / "instrument"
    make_files(root, {"a.bin": b"first"})
    watch_once(sqlite_cat, root)
    make_files(root, {"a.bin": b"second, longer"})
    watch_once(sqlite_cat, root)
    run = sqlite_cat[-1]
    (latest,) = scandeck.files(run)
    assert latest.version == 2 and Path(latest).read_bytes() == b"second, longer"


def test_a_run_that_was_not_watched_is_refused(sqlite_cat, RE, hw):
    import bluesky.plans as bp

    RE.subscribe(sqlite_cat.writer())
    (uid,) = RE(bp.count([hw.det], 2))
    with pytest.raises(NotWatchedRun, match="not a watched run.*scandeck watch") as err:
        scandeck.files(sqlite_cat[uid])
    assert err.value.uid == uid and err.value.plan_name == "count"
    with pytest.raises(NotWatchedRun, match="not a watched run"):
        scandeck.live(sqlite_cat[uid]).files()


def test_follow_yields_each_file_whole_as_a_writer_adds_them(tmp_path):
    """A writer process writes files in pieces; the watcher takes each once closed; the
    follower is handed each one, whole, in order, and ends at the run's stop. The writer
    starts a file only once the follower was handed the one before (lockstep): each
    file reached the follower while the run went on."""
    store, root = tmp_path / "store", tmp_path / "instrument"
    root.mkdir()
    cat = scandeck.open_catalog(store)
    n, pieces = 4, 3
    after = cat.source.latest_seq()
    stop = threading.Event()
    watcher = Watcher(cat, [root], settle=0.3, say=lambda line: None)
    watching = threading.Thread(target=watcher.run, args=(stop,))
    watching.start()
    writer = subprocess.Popen(
        [sys.executable, WRITER, str(root), str(n), str(pieces), "0.05", "--lockstep"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert writer.stdin is not None
    try:
        run = next(cat.follow(timeout=60, after=after))
        seen = []
        for f in scandeck.files(run).follow(timeout=60):
            # Each file handed on is whole: its bytes now are those the writer ended it with.
            assert Path(f).read_bytes() == content(len(seen), pieces)
            assert hashlib.sha256(Path(f).read_bytes()).hexdigest() == f.sha256
            seen.append(f.relpath)
            if len(seen) == n:
                stop.set()  # the watcher stops its run: follow() ends
            else:
                writer.stdin.write("next\n")  # only now does the next file begin
                writer.stdin.flush()
        assert seen == [name(i) for i in range(n)]
        assert run.status == "success"
    finally:
        stop.set()
        writer.stdin.close()
        writer.wait(60)
        watching.join(60)
    assert writer.returncode == 0


@pytest.mark.parametrize("source", ["sqlite", "redis"])
def test_live_files_follows_every_new_watched_run(source, request, tmp_path):
    """A Live of a catalog hands on the files of each new watched run, side by side."""
    cat = scandeck.open_catalog(SOURCES[source](request, tmp_path))
    request.addfinalizer(cat.close)
    root = tmp_path / "instrument"
    make_files(root, {"one/a.bin": b"a" * 10, "one/b.bin": b"b" * 20, "two/c.bin": b"c" * 30})
    with scandeck.live(cat) as live:
        seen = live.files().sink_to_list()
        assert live.files() is live.files()
        watch_once(cat, root, recursive=True, run_per="directory")
        runs = {r.uid for r in cat if r.start.get("plan_name") == "watch"}
        assert len(runs) == 2
        deadline = threading.Event()
        for _ in range(600):
            if len(seen) >= 3:
                break
            deadline.wait(0.1)
        assert sorted(f.relpath for f in seen) == ["one/a.bin", "one/b.bin", "two/c.bin"]
        assert {f.uid for f in seen} == runs
        assert all(Path(f).read_bytes() == (root / f.relpath).read_bytes() for f in seen)
        assert live.failures == 0


def test_live_files_of_one_run_flushes(sqlite_cat, tmp_path):
    root = tmp_path / "instrument"
    make_files(root, {"a.bin": b"a", "b.bin": b"bb"})
    uid = watch_once(sqlite_cat, root)
    with scandeck.live(sqlite_cat[uid]) as live:
        seen = live.files().sink_to_list()
        assert live.flush(60)
        assert sorted(f.relpath for f in seen) == ["a.bin", "b.bin"]


def test_a_file_gone_before_it_is_read(sqlite_cat, tmp_path, capsys):
    """follow() raises, saying where the file was; Live.files() counts a failure and goes on."""
    root = tmp_path / "instrument"
    make_files(root, {"a.bin": b"a", "b.bin": b"bb"})
    uid = watch_once(sqlite_cat, root)
    (root / "a.bin").unlink()
    with pytest.raises(ExternalFileMissing, match="a.bin"):
        list(scandeck.files(sqlite_cat[uid]).follow())
    with scandeck.live(sqlite_cat[uid]) as live:
        seen = live.files().sink_to_list()
        assert live.flush(60)
        assert [f.relpath for f in seen] == ["b.bin"]
        assert live.failures == 1 and isinstance(live.last_error, ExternalFileMissing)
    assert "making 'a.bin' local failed" in capsys.readouterr().err


def test_live_files_in_a_kernel(kernel, store, tmp_path):
    """In a real kernel: files are emitted on the kernel's own thread; a bound cell of the
    run's stream counts its events."""
    root = tmp_path / "instrument"
    make_files(root, {f"f{i}.bin": bytes([i]) * (100 + i) for i in range(3)})
    cat = scandeck.open_catalog(store)
    uid = watch_once(cat, root)
    kernel.execute(
        "import scandeck, threading\n"
        "from scandeck.files.cache import sha256_of\n"
        "seen = []\n"
        f"live = scandeck.live({uid!r}, catalog=scandeck.open_catalog({str(store)!r}))\n"
        "live.files().sink(lambda f: seen.append("
        "(threading.current_thread() is threading.main_thread(), f.relpath, sha256_of(f) == f.sha256)))"
    )

    def count() -> str:
        return kernel.text_of(kernel.execute("print(len(seen), all(a and c for a, _, c in seen))")["msg_id"])

    assert kernel.wait_for(lambda: count().strip() == "3 True", 60), count()
    reply = kernel.execute("print(sorted(r for _, r, _ in seen))")
    assert kernel.text_of(reply["msg_id"]).strip() == "['f0.bin', 'f1.bin', 'f2.bin']"

    from kernel_harness import output_text

    kernel.execute(f'%%bind --uid {uid} --stream bytes\nprint("files", len(df))')

    def bound() -> str:
        updates = kernel.widget_outputs()
        return output_text(updates[-1][2]) if updates else ""

    assert kernel.wait_for(lambda: "files 3" in bound(), 60), bound()


READER = """
import hashlib, json, sys
import scandeck
cat = scandeck.open_catalog(sys.argv[1])
got = [(f.relpath, hashlib.sha256(open(f, "rb").read()).hexdigest(), f.sha256, str(f))
       for f in scandeck.files(sys.argv[2], catalog=cat).follow(timeout=60)]
print(json.dumps(got))
"""


def test_a_transferred_run_is_read_where_its_directory_is_not(redis_server, tmp_path):
    """Watched with --transfer on a Redis bus: a reader process on a machine without the
    directory (gone here) and with an empty cache is handed every file, verified."""
    uri = f"{redis_server.url}?prefix=follow-{uuid.uuid4().hex[:12]}"
    root = tmp_path / "instrument"
    originals = {name(i): content(i, 3) for i in range(3)}
    make_files(root, originals)
    cat = scandeck.open_catalog(uri)
    try:
        uid = watch_once(cat, root, transfer=True, chunk_size=50_000)  # several chunks per file
    finally:
        cat.close()
    shutil.rmtree(root)
    cache = tmp_path / "cache"
    env = {**os.environ, "SCANDECK_FILE_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", READER, uri, uid], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert [g[0] for g in got] == sorted(originals)
    for relpath, digest, declared, path in got:
        assert digest == declared == hashlib.sha256(originals[relpath]).hexdigest()
        assert Path(path).is_relative_to(cache)  # fetched from the bus into the reader's cache
