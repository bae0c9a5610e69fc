"""The provenance store: round trips, lookups, links between records and runs, and
what kill -9 and concurrent writers leave behind. Also the environment capture."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from scandeck.exceptions import (
    AmbiguousRecord,
    DuplicateRecord,
    RecordNotFound,
    ScandeckError,
    StoreError,
)
from scandeck.provenance import environment
from scandeck.provenance.environment import capture, git_state
from scandeck.provenance.record import Environment, InputRef, OutputRef, ProvenanceRecord
from scandeck.provenance.store import ProvStore, open_store

ENV = Environment(python="3.11.7", platform="Linux-test", packages={"scandeck": "0.1.0"})


def record(**kwargs) -> ProvenanceRecord:
    kwargs.setdefault("name", "analysis")
    kwargs.setdefault("kind", "interactive")
    kwargs.setdefault("environment", ENV)
    return ProvenanceRecord(**kwargs)


def notebook(source: str = "x = 1") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# analysis"), nbformat.v4.new_code_cell(source)]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="done\n")]
    nb.cells[1].execution_count = 1
    return nb


@pytest.fixture
def store(tmp_path: Path):
    with ProvStore(tmp_path / "prov") as s:
        yield s


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_record_and_notebook(store):
    rec = record(
        tags=["ni"],
        parameters={"scan_uid": "abc", "n": 3},
        inputs=[InputRef(uid="u1", scan_id=4, streams=["primary"], fields=["det"])],
    )
    nb = notebook()
    saved = store.save(rec, nb)
    expected_bytes = nbformat.writes(nb).encode()
    assert saved.notebook_sha256 == hashlib.sha256(expected_bytes).hexdigest()
    assert rec.notebook_sha256 == ""  # the argument is not changed
    assert saved.model_dump(exclude={"notebook_sha256"}) == rec.model_dump(exclude={"notebook_sha256"})
    assert store.get(saved.id) == saved
    assert store.notebook(saved) == nb
    assert store.notebook(saved.id) == nb
    assert store.notebook_bytes(saved.id[:8]) == expected_bytes
    sha = saved.notebook_sha256
    path = store.directory / "notebooks" / sha[:2] / f"{sha}.ipynb"
    assert store.notebook_file(saved) == path and path.read_bytes() == expected_bytes
    assert (store.directory / "index.sqlite").exists()
    assert len(store) == 1 and saved.id in store and "nope" not in store


def test_notebook_given_as_bytes_text_or_path_is_stored_as_is(store, tmp_path):
    text = nbformat.writes(notebook("y = 2"), version=4)
    raw = text.replace("\n", "\r\n").encode()  # not what nbformat.writes would make
    file = tmp_path / "run.ipynb"
    file.write_bytes(raw)
    by_bytes = store.save(record(), raw)
    by_path = store.save(record(), file)
    by_text = store.save(record(), text)
    assert store.notebook_bytes(by_bytes) == raw
    assert by_path.notebook_sha256 == by_bytes.notebook_sha256 == hashlib.sha256(raw).hexdigest()
    assert store.notebook_bytes(by_text) == text.encode()
    assert store.notebook(by_bytes) == store.notebook(by_text)
    # Content-addressed: two records, one file.
    assert len(list((store.directory / "notebooks").rglob("*.ipynb"))) == 2
    with pytest.raises(ValueError, match="pathlib.Path"):
        store.save(record(), str(file))
    with pytest.raises(ValueError, match="cells"):
        store.save(record(), b'{"a": 1}')
    with pytest.raises(TypeError):
        store.save(record(), 42)
    assert len(store) == 3


def test_saving_again_is_a_no_op_and_a_different_record_with_that_id_is_refused(store):
    rec, nb = record(), notebook()
    first = store.save(rec, nb)
    assert store.save(rec, nb) == first
    with pytest.raises(DuplicateRecord, match="new id") as err:
        store.save(rec.model_copy(update={"name": "other"}), nb)
    with pytest.raises(DuplicateRecord):
        store.save(rec, notebook())  # new cell ids: another notebook
    assert isinstance(err.value, ValueError)
    assert len(store) == 1 and store.get(rec.id).name == "analysis"


def test_a_changed_or_missing_notebook_file_is_reported(store):
    saved = store.save(record(), notebook())
    path = store.notebook_file(saved)
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(StoreError, match="does not match its sha256"):
        store.notebook(saved)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        store.notebook_bytes(saved.id)
    # Saving the same notebook again puts a good file back.
    nb = notebook()
    saved = store.save(record(), nb)
    store.notebook_file(saved).write_bytes(b"{}")
    store.save(record(), nb)
    assert store.notebook(saved) == nb


def test_default_directory_is_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANDECK_DATA", str(tmp_path / "data"))
    store = open_store()
    assert store.directory == tmp_path / "data" / "provenance"
    assert len(store) == 0 and (tmp_path / "data" / "provenance" / "index.sqlite").exists()
    store.close()


def test_a_store_pickles_as_its_directory(store):
    saved = store.save(record(), notebook())
    again = pickle.loads(pickle.dumps(store))
    assert again.directory == store.directory and again.get(saved.id) == saved
    again.close()


def test_a_file_that_is_not_a_store_is_a_store_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="provenance"):
        len(ProvStore(tmp_path / "bad"))


# --- lookups --------------------------------------------------------------------------------


def test_lookup_by_prefix_and_ambiguity(store):
    for rid in ("abc123", "abc456", "abd000"):
        store.save(record(id=rid), notebook())
    assert store.get("abc1").id == "abc123"
    assert store.get("abd").id == "abd000"
    assert store.get("abc123").id == "abc123"
    with pytest.raises(AmbiguousRecord) as err:
        store.get("abc")
    assert err.value.matches == ["abc123", "abc456"]
    assert "abc123, abc456" in str(err.value) and "more characters" in str(err.value)
    assert isinstance(err.value, KeyError) and isinstance(err.value, ScandeckError)
    with pytest.raises(RecordNotFound, match="provenance list") as missing:
        store.get("abx")
    assert isinstance(missing.value, KeyError)
    with pytest.raises(RecordNotFound):
        store.get("")
    with pytest.raises(RecordNotFound):
        store.get("ABC123")  # ids are case-sensitive
    with pytest.raises(AmbiguousRecord):
        store.notebook("ab")


def test_list_filters_and_newest_first(store):
    t0 = 1_700_000_000.0
    a = store.save(
        record(
            id="a" * 32,
            name="fit",
            kind="batch",
            created=t0 + 1,
            tags=["ni", "fit"],
            inputs=[InputRef(uid="scan-111"), InputRef(uid="scan-222")],
        ),
        notebook(),
    )
    b = store.save(
        record(
            id="b" * 32,
            name="fit",
            kind="rerun",
            created=t0 + 3,
            tags=["ni"],
            parent=a.id,
            inputs=[InputRef(uid="scan-333")],
        ),
        notebook("z"),
    )
    c = store.save(
        record(id="c" * 32, name="plot", kind="interactive", created=t0 + 2, inputs=[InputRef(uid="scan-111")]),
        notebook(),
    )
    d = store.save(record(id="d" * 32, name="plot", created=t0 + 2), notebook())  # same time as c
    ids = lambda records: [r.id for r in records]  # noqa: E731
    assert ids(store.list()) == [b.id, d.id, c.id, a.id]  # ties: last saved first
    assert ids(store.list(limit=2)) == [b.id, d.id]
    assert ids(store.list(name="fit")) == [b.id, a.id]
    assert ids(store.list(kind="batch")) == [a.id]
    assert ids(store.list(tag="ni")) == [b.id, a.id]
    assert ids(store.list(tag="fit")) == [a.id]
    assert ids(store.list(scan="scan-111")) == [c.id, a.id]
    assert ids(store.list(scan="scan-3")) == [b.id]  # a uid prefix
    assert ids(store.list(scan="scan-")) == [b.id, c.id, a.id]
    assert ids(store.list(scan="scan-111", name="fit")) == [a.id]
    assert ids(store.list(name="nothing")) == []
    assert ids(store.list(tag="ni", kind="rerun", limit=5)) == [b.id]


def test_children_readers_writers_and_add_output(store):
    parent = store.save(
        record(
            id="p" * 32,
            created=1.0,
            inputs=[InputRef(uid="raw-1")],
            outputs=[OutputRef(uid="der-1", catalog="local")],
        ),
        notebook(),
    )
    kid1 = store.save(
        record(kind="rerun", parent=parent.id, created=2.0, target_scan="raw-2", inputs=[InputRef(uid="raw-2")]),
        notebook(),
    )
    kid2 = store.save(
        record(kind="rerun", parent=parent.id, created=3.0, inputs=[InputRef(uid="raw-1"), InputRef(uid="der-1")]),
        notebook(),
    )
    assert [r.id for r in store.children(parent.id)] == [kid2.id, kid1.id]
    assert store.children(kid1.id) == []
    assert [r.id for r in store.readers_of("raw-1")] == [kid2.id, parent.id]
    assert [r.id for r in store.readers_of("der-1")] == [kid2.id]
    assert store.readers_of("raw") == []  # exact uids only
    assert [r.id for r in store.writers_of("der-1")] == [parent.id]
    assert store.writers_of("der-2") == []

    updated = store.add_output(kid1.id[:10], OutputRef(uid="der-2"))
    assert updated.outputs == [OutputRef(uid="der-2")]
    assert store.get(kid1.id) == updated
    assert updated.notebook_sha256 == kid1.notebook_sha256
    assert [r.id for r in store.writers_of("der-2")] == [kid1.id]
    # The same output again is not repeated; its catalog is filled in once known.
    again = store.add_output(kid1.id, {"uid": "der-2", "catalog": "local"})
    assert again.outputs == [OutputRef(uid="der-2", catalog="local")]
    assert store.add_output(kid1.id, OutputRef(uid="der-2", catalog="other")).outputs == again.outputs
    assert store.add_output(kid1.id, OutputRef(uid="der-3")).outputs[-1].uid == "der-3"
    assert len(store.get(kid1.id).outputs) == 2 and len(store) == 3
    with pytest.raises(RecordNotFound):
        store.add_output("zzz", OutputRef(uid="x"))


# --- kill -9 and concurrent writers -------------------------------------------------------

WRITER = r"""
import os, random, sys, time
import nbformat
from scandeck.provenance.record import Environment, InputRef, ProvenanceRecord
from scandeck.provenance.store import ProvStore

directory, tag, count, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = ProvStore(directory)
env = Environment(python="3", platform="test")
rng = random.Random(os.getpid())
print("ready", flush=True)
i = 0
while count < 0 or i < count:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"i = {i}")
    # Large outputs widen the window in which a kill lands inside the file write.
    size = rng.randrange(1, big) if big > 1 else 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * size)]
    nb.cells = [cell]
    shared = i % 5 == 0  # the same bytes from every writer: a race on one content address
    content = nbformat.writes(nbformat.v4.new_notebook()) if shared else nb
    rec = ProvenanceRecord(name=f"{tag}-{i}", kind="batch", environment=env, tags=[tag],
                           inputs=[InputRef(uid=f"scan-{tag}-{i}")])
    store.save(rec, content)
    i += 1
    print(i, flush=True)
"""


def start_writer(directory: Path, tag: str, count: int, big: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), tag, str(count), str(big)],
        stdout=subprocess.PIPE,
        text=True,
    )


def check_store(directory: Path) -> list[ProvenanceRecord]:
    """Every record loads, its notebook exists and hashes right, SQLite is intact."""
    conn = sqlite3.connect(directory / "index.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        shas = [row[0] for row in conn.execute("SELECT notebook_sha256 FROM records")]
    finally:
        conn.close()
    with ProvStore(directory) as store:
        records = store.list()
        assert len(records) == len(store) == len(shas)
        for rec in records:
            assert store.get(rec.id) == rec
            path = store.notebook_file(rec)
            assert path.is_file() and not path.name.startswith(".")
            assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.notebook_sha256
            assert store.notebook(rec).nbformat == 4
            assert [r.id for r in store.readers_of(rec.inputs[0].uid)] == [rec.id]
    return records


def test_kill_9_at_random_moments_leaves_only_whole_records(tmp_path):
    directory = tmp_path / "prov"
    rng = random.Random(20240611)
    kills = 0
    for _ in range(8):
        proc = start_writer(directory, f"k{kills}", -1, 400_000)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.02, 0.4))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    records = check_store(directory)
    assert records, "the writers stored nothing before being killed"
    # Leftover temporary files are hidden and never records; sweep() removes them.
    leftovers = list((directory / "notebooks").rglob(".*.tmp"))
    print(f"{len(records)} records, {len(leftovers)} temp files after {kills} kills")
    with ProvStore(directory) as store:
        assert store.sweep(older_than=0) == len(leftovers)
        assert not list((directory / "notebooks").rglob(".*.tmp"))
        # The store goes on working after the kills.
        saved = store.save(record(inputs=[InputRef(uid="after")]), notebook())
        assert store.get(saved.id) == saved
    check_store(directory)


def test_three_processes_saving_at_once(tmp_path):
    directory = tmp_path / "prov"
    procs = [start_writer(directory, tag, 30, 50_000) for tag in ("a", "b", "c")]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            out = proc.stdout.read()  # not communicate(): it skips what readline() buffered
            assert proc.wait(120) == 0
            assert out.split()[-1] == "30"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
    records = check_store(directory)
    assert len(records) == 90
    with ProvStore(directory) as store:
        for tag in "abc":
            assert sorted(r.name for r in store.list(tag=tag)) == sorted(f"{tag}-{i}" for i in range(30))
    assert not list((directory / "notebooks").rglob(".*.tmp"))


# --- environment ------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.skipif(
    subprocess.run(["which", "git"], capture_output=True).returncode != 0, reason="git is not installed"
)
def test_capture_reports_the_git_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    nb = repo / "sub" / "analysis.ipynb"
    nb.write_text(nbformat.writes(notebook()))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD").strip()

    env = capture(kernel_name="python3", notebook_path=nb)
    assert (env.git_commit, env.git_dirty) == (head, False)
    assert env.kernel_name == "python3"
    nb.write_text(nbformat.writes(notebook("changed")))
    assert capture(notebook_path=nb).git_dirty is True
    git(repo, "commit", "-q", "-am", "second")
    (repo / "new.txt").write_text("untracked")
    env = capture(notebook_path=repo / "sub")  # a directory works too
    assert env.git_commit == git(repo, "rev-parse", "HEAD").strip() != head
    assert env.git_dirty is True

    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_state(plain) == (None, None)
    assert capture(notebook_path=plain / "x.ipynb").git_commit is None
    assert capture(notebook_path=tmp_path / "gone" / "x.ipynb").git_dirty is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert git_state(empty) == (None, None)  # a repository without commits


def test_capture_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    env = capture(notebook_path=tmp_path)
    assert (env.git_commit, env.git_dirty) == (None, None)


def test_capture_reports_python_platform_user_host_and_packages(monkeypatch, tmp_path):
    import platform

    monkeypatch.chdir(tmp_path)
    env = capture()
    assert env.python == platform.python_version()
    assert env.implementation == platform.python_implementation()
    assert env.platform == platform.platform()
    assert env.host and isinstance(env.user, str)
    import pydantic

    assert env.packages["pydantic"] == pydantic.VERSION
    assert "scandeck" in env.packages and "event-model" in env.packages  # normalised names
    assert list(env.packages) == sorted(env.packages)
    # Cached per process: later captures are fast and equal.
    t0 = time.perf_counter()
    again = capture()
    assert time.perf_counter() - t0 < 0.5
    assert again.packages == env.packages
    environment.clear_cache()
    assert capture().packages == env.packages
    # The record takes it as it is.
    assert ProvenanceRecord(name="n", kind="batch", environment=env).environment == env
