"""The SCANDECK_FILE handler: a watched file's documents filled through scandeck.external.Filler.

Documents are built as files/layout.py lays them out (one resource per file
version, a datum per external key), with event-model's composers; files are
real TIFFs and tables in tmp_path. Where the bytes come from: the original
file, the local cache, a provider, else an error saying what to do.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import event_model
import numpy as np
import pytest
import tifffile
from file_samples import frames, write_csv, write_tiff

from scandeck.exceptions import ExternalFileMissing, FileMismatch, FillError, StoreError
from scandeck.external import Filler, get_handler
from scandeck.files import cache, layout, providers
from scandeck.files.handler import FileHandler, local_file


@pytest.fixture(autouse=True)
def file_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SCANDECK_FILE_CACHE in tmp_path: tests never touch the user's cache."""
    where = tmp_path / "cache"
    monkeypatch.setenv("SCANDECK_FILE_CACHE", str(where))
    return where


class DictProvider:
    """Serves files' chunks from a dict.

    A fake standing in for the Redis bus provider (files/transfer.py, another
    part of issue 17, tested over a real redis-server there): here only the
    contract of files.providers matters, what local_file does with the answer.
    """

    def __init__(self, files: dict[tuple[str, str], bytes], chunk: int = 1000) -> None:
        self.files, self.chunk, self.asked = files, chunk, 0

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterable[bytes] | None:
        self.asked += 1
        data = self.files.get((run, sha256))
        if data is None:
            return None
        return (data[i : i + self.chunk] for i in range(0, len(data), self.chunk))


@pytest.fixture
def provider() -> Iterator[DictProvider]:
    served = DictProvider({})
    providers.register(served)
    yield served
    providers.unregister(served)


class Watched:
    """One watched file's documents, as the watcher writes them (see files/layout.py)."""

    def __init__(self, root: Path, rel: str, reader: str, keys: list[str]) -> None:
        data = (root / rel).read_bytes()
        self.sha256, self.size = hashlib.sha256(data).hexdigest(), len(data)
        self.full_path = str(root / rel)
        self.bundle = event_model.compose_run(metadata={"plan_name": layout.PLAN_NAME})
        self.run = self.bundle.start_doc["uid"]
        self.resource = event_model.compose_resource(
            start=self.bundle.start_doc,
            spec=layout.SPEC,
            root=str(root),
            resource_path=rel,
            resource_kwargs=layout.resource_kwargs(reader, self.sha256, self.size, self.run),
            path_semantics="posix",
        ).resource_doc
        counter = itertools.count()
        self.datums = {
            key: event_model.compose_datum(resource=self.resource, counter=counter, datum_kwargs={"key": key})
            for key in [layout.FILE_KEY, *keys]
        }

    def filler(self) -> Filler:
        filler = Filler()
        filler("resource", self.resource)
        for datum in self.datums.values():
            filler("datum", datum)
        return filler

    def fill(self, key: str) -> np.ndarray:
        with self.filler() as filler:
            return filler.fill_datum(self.datums[key]["datum_id"])


@pytest.fixture
def tiff(tmp_path: Path) -> Watched:
    root = tmp_path / "watched"
    (root / "sub").mkdir(parents=True)
    write_tiff(root / "sub" / "a.tif", frames(2))
    return Watched(root, "sub/a.tif", "tiff", ["image"])


def test_registered_for_the_spec() -> None:
    assert get_handler(layout.SPEC) is FileHandler


def test_importing_handlers_imports_no_format_library() -> None:
    probe = "import sys, scandeck.handlers; print(*(m for m in ('tifffile', 'h5py', 'fabio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == []


def test_original_file(tiff: Watched, provider: DictProvider) -> None:
    assert str(tiff.fill(layout.FILE_KEY)) == tiff.full_path
    np.testing.assert_array_equal(tiff.fill("image"), tifffile.imread(tiff.full_path))
    assert tiff.fill("image").dtype == np.dtype("<u2")
    assert provider.asked == 0  # the original was enough: no one else asked


def test_table_keys(tmp_path: Path) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    write_csv(root / "p.csv")
    watched = Watched(root, "p.csv", "table", ["col_2theta_deg", "I"])
    want = np.loadtxt(root / "p.csv", delimiter=",", skiprows=2, usecols=(0,))
    np.testing.assert_array_equal(watched.fill("col_2theta_deg"), want)
    np.testing.assert_array_equal(watched.fill("I"), [5.0, 7.25, np.nan])  # an empty field is NaN


def test_rewritten_file_is_a_mismatch(tiff: Watched) -> None:
    write_tiff(Path(tiff.full_path), frames(2) + 1)  # same size, other bytes
    now = hashlib.sha256(Path(tiff.full_path).read_bytes()).hexdigest()
    with pytest.raises(FileMismatch) as info:
        tiff.fill("image")
    text = str(info.value)
    assert tiff.sha256 in text and now in text and tiff.full_path in text
    assert "--transfer" in text and f"scandeck files fetch {tiff.run}" in text
    Path(tiff.full_path).write_bytes(b"short")  # another size
    with pytest.raises(FileMismatch, match=f"holds 5 bytes with sha256 {hashlib.sha256(b'short').hexdigest()}"):
        tiff.fill(layout.FILE_KEY)


def test_missing_file(tiff: Watched) -> None:
    Path(tiff.full_path).unlink()
    with pytest.raises(ExternalFileMissing) as info:
        tiff.fill("image")
    err = info.value
    assert err.path == tiff.full_path and isinstance(err, FileNotFoundError)
    text = str(err)
    assert "is not on this machine" in text and "mount the watched directory" in text
    assert "scandeck watch --transfer" in text and f"scandeck files fetch {tiff.run}" in text


def test_cache_hit(tiff: Watched, file_cache: Path) -> None:
    data = Path(tiff.full_path).read_bytes()
    cache.store(tiff.sha256, tiff.size, [data], what="test")
    Path(tiff.full_path).unlink()
    got = Path(str(tiff.fill(layout.FILE_KEY)))
    assert got.parent.parent == file_cache and got.read_bytes() == data
    np.testing.assert_array_equal(tiff.fill("image"), frames(2))


def test_provider_fetches_into_the_cache(tiff: Watched, provider: DictProvider, file_cache: Path) -> None:
    data = Path(tiff.full_path).read_bytes()
    provider.files[(tiff.run, tiff.sha256)] = data
    Path(tiff.full_path).unlink()
    got = Path(str(tiff.fill(layout.FILE_KEY)))
    assert got == file_cache / tiff.sha256[:2] / tiff.sha256 and got.read_bytes() == data
    assert provider.asked == 1
    np.testing.assert_array_equal(tiff.fill("image"), frames(2))
    assert provider.asked == 1  # the second read came from the cache
    assert local_file(tiff.full_path, tiff.sha256, tiff.size, tiff.run) == got


def test_provider_with_wrong_bytes(tiff: Watched, provider: DictProvider, file_cache: Path) -> None:
    data = bytearray(Path(tiff.full_path).read_bytes())
    data[-1] ^= 0xFF
    provider.files[(tiff.run, tiff.sha256)] = bytes(data)
    Path(tiff.full_path).unlink()
    with pytest.raises(FileMismatch) as info:
        tiff.fill("image")
    assert tiff.sha256 in str(info.value) and hashlib.sha256(data).hexdigest() in str(info.value)
    assert cache.cached(tiff.sha256, tiff.size) is None
    assert [p for p in file_cache.rglob("*") if p.is_file()] == []  # no partial copy left either


class AwayProvider:
    """A provider whose server is away (a Redis bus down): it raises as RedisSource does then."""

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterable[bytes] | None:
        raise StoreError("Redis at 127.0.0.1:1/0 stayed away for 60 s")


def test_a_provider_that_fails_does_not_stop_the_others(
    tiff: Watched, provider: DictProvider, file_cache: Path
) -> None:
    data = Path(tiff.full_path).read_bytes()
    Path(tiff.full_path).unlink()
    away = AwayProvider()
    providers.register(away)
    try:
        with pytest.raises(StoreError, match="stayed away"):  # nobody else holds it: the failure is said
            tiff.fill("image")
        provider.files[(tiff.run, tiff.sha256)] = data
        np.testing.assert_array_equal(tiff.fill("image"), frames(2))  # the archive answers
    finally:
        providers.unregister(away)


def test_rewritten_original_but_a_provider_holds_the_recorded_version(
    tiff: Watched, provider: DictProvider
) -> None:
    recorded = Path(tiff.full_path).read_bytes()
    provider.files[(tiff.run, tiff.sha256)] = recorded
    write_tiff(Path(tiff.full_path), frames(2) * 2)
    np.testing.assert_array_equal(tiff.fill("image"), frames(2))  # the version the run recorded


def test_reader_not_installed_here(tmp_path: Path) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    (root / "x.spe").write_bytes(b"1234")
    watched = Watched(root, "x.spe", "spe", ["spectrum"])
    assert str(watched.fill(layout.FILE_KEY)) == str(root / "x.spe")  # the path needs no reader
    with pytest.raises(FillError, match="file reader 'spe', which is not installed here"):
        watched.fill("spectrum")


def test_handler_direct(tiff: Watched) -> None:
    handler = FileHandler(tiff.full_path, **tiff.resource["resource_kwargs"], extra="ignored")
    assert handler.local_path() == Path(tiff.full_path)
    assert handler(key="image").shape == (2, 24, 32)


def test_a_path_that_is_no_regular_file_is_not_read_as_the_original(tmp_path: Path) -> None:
    """A run naming /dev/zero (or a FIFO now at the watched path) as an empty file: the
    reader (a panel preview, `files ls`) said it is missing instead of hashing forever."""
    fifo = tmp_path / "now_a_fifo"
    os.mkfifo(fifo)
    empty = hashlib.sha256(b"").hexdigest()
    probe = (
        "import sys\n"
        "from scandeck.files.handler import local_file\n"
        "from scandeck.files.fetch import same_bytes\n"
        "from pathlib import Path\n"
        f"assert not same_bytes(Path(sys.argv[1]), {empty!r}, 0)\n"
        "try:\n"
        f"    local_file(sys.argv[1], {empty!r}, 0, 'run-1')\n"
        "except Exception as err:\n"
        "    print(type(err).__name__)\n"
    )
    env = {**os.environ, "SCANDECK_FILE_CACHE": str(tmp_path / "cache")}
    for path in ("/dev/zero", str(fifo)):
        done = subprocess.run(
            [sys.executable, "-c", probe, path], capture_output=True, text=True, env=env, timeout=60
        )
        assert (done.returncode, done.stdout.strip()) == (0, "ExternalFileMissing"), (path, done.stderr)


def test_an_original_this_user_cannot_read_gives_way_to_the_cached_copy(tmp_path: Path) -> None:
    """Watched files written 0600 by the instrument's account, read by another user through the bus:
    the original's PermissionError must not hide the copy the cache (or the bus) holds."""
    import shutil
    import tempfile

    place = Path(tempfile.mkdtemp(prefix="scandeck-perm-"))  # not under tmp_path (0700): another user looks
    try:
        place.chmod(0o755)
        original = place / "frame.raw"
        original.write_bytes(b"frame bytes" * 100)
        sha = hashlib.sha256(original.read_bytes()).hexdigest()
        original.chmod(0)
        probe = (
            "import os, sys\n"
            "from scandeck.files import cache\n"
            "from scandeck.files.handler import local_file\n"
            f"cache.store({sha!r}, 1100, [b'frame bytes' * 100], what='test')\n"
            "if os.geteuid() == 0:  # root reads any file: be another user (imports done: root's Python)\n"
            "    os.setgid(65534); os.setuid(65534)\n"
            f"print(local_file({str(original)!r}, {sha!r}, 1100, 'run-1'))\n"
        )
        env = {**os.environ, "SCANDECK_FILE_CACHE": str(place / "cache")}
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(place / "cache" / sha[:2] / sha)
    finally:
        shutil.rmtree(place)


class UnreadableArchive:
    """An archive whose kept copy cannot be opened (an older 0600 copy, another account; a stale
    NFS handle): the OSError its blocks raise, as SQLiteSource.file_chunks's do then."""

    def file_chunks(self, run: str, sha256: str, size: int) -> Iterable[bytes] | None:
        def blocks() -> Iterator[bytes]:
            raise PermissionError(13, "Permission denied", "/archive/files/ab/abcd")
            yield b""

        return blocks()


def test_a_provider_whose_copy_cannot_be_read_does_not_stop_the_others(
    tiff: Watched, provider: DictProvider
) -> None:
    provider.files[(tiff.run, tiff.sha256)] = Path(tiff.full_path).read_bytes()
    Path(tiff.full_path).unlink()
    broken = [UnreadableArchive() for _ in range(20)]  # asked in no set order: most come before the bus
    for p in broken:
        providers.register(p)
    try:
        np.testing.assert_array_equal(tiff.fill("image"), frames(2))  # the bus answers
    finally:
        for p in broken:
            providers.unregister(p)
