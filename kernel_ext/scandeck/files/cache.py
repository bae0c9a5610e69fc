"""The local cache of files fetched from other machines, named by their sha256.

``$SCANDECK_FILE_CACHE``, else ``<user cache dir>/scandeck/files``. A file gets
there only whole and verified (:func:`store` writes a temporary file beside it,
checks size and sha256, then renames), so a path :func:`cached` returns is one
a reader can trust.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..exceptions import FileMismatch
from ..safe_text import printable

__all__ = ["cache_dir", "cached", "sha256_of", "read_blocks", "store", "write_verified"]

_HASH_BLOCK = 1 << 20
_memo: dict[tuple[int, int, int, int], str] = {}
_memo_lock = threading.Lock()


def cache_dir() -> Path:
    """Where fetched files are kept."""
    env = os.environ.get("SCANDECK_FILE_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("scandeck", appauthor=False)) / "files"


def _entry(sha256: str, root: Path | None = None) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise FileMismatch(f"{printable(sha256)!r} is not a sha256 hex digest")
    return (cache_dir() if root is None else root) / sha256[:2] / sha256


def cached(sha256: str, size: int, *, root: Path | None = None) -> Path | None:
    """The cached copy of this file (under ``root`` if given, see :func:`store`), or ``None``."""
    path = _entry(sha256, root)
    try:
        return path if path.stat().st_size == int(size) else None
    except FileNotFoundError:
        return None


def store(
    sha256: str, size: int, chunks: Iterable[bytes], *, what: str, root: Path | None = None, durable: bool = False
) -> Path:
    """Write ``chunks`` into the cache as the file ``sha256``, verified; its path.

    ``root`` puts it under another directory laid out as the cache is
    (``<root>/<sha256[:2]>/<sha256>``: the keeper's archive of files). Raises
    :class:`~scandeck.exceptions.FileMismatch` naming both sizes or both
    hashes when the bytes are not those declared; nothing is kept then.
    ``durable``: its name is on disk too when this returns (see :func:`write_verified`).
    """
    return write_verified(_entry(sha256, root), sha256, size, chunks, what=what, durable=durable)


def write_verified(
    path: Path, sha256: str, size: int, chunks: Iterable[bytes], *, what: str, durable: bool = False
) -> Path:
    """Write ``chunks`` at ``path`` only if they are ``size`` bytes hashing to ``sha256``; ``path``.

    Through a temporary file beside it, its bytes flushed to disk (fsync), then
    renamed into place once verified: a reader never sees a partial or wrong
    file, not even after a power cut (a copy is trusted by its name and size);
    nothing is left on failure. ``durable`` syncs the directory too, so the
    name survives a power cut (the keeper's archive: Redis lets the file go).
    The file gets the mode any new file gets (``0666`` less the umask), as
    ``cp`` gives: a group reading the keeper's archive or a fetched directory
    reads it. :class:`~scandeck.exceptions.FileMismatch` names both sizes and hashes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if written != int(size) or got != sha256:
            raise FileMismatch(
                f"the copy of {printable(what)} holds {written} bytes with sha256 {got}, but its "
                f"documents declare {int(size)} bytes with sha256 {sha256}; it was not kept"
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:  # the name, and the <sha[:2]> folder's name (perhaps just made)
        for directory in (path.parent, path.parent.parent):
            folder = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    return path


def read_blocks(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """A file's bytes in blocks (memory bounded)."""
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK * 4):
            yield block


def _regular(st: os.stat_result, path: str | os.PathLike[str]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """A new file ``.part-*`` beside ``path``, open for writing, with the umask's mode
    (mkstemp's 0600 would stay with the file once renamed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".part-{secrets.token_hex(8)}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The sha256 of a regular file, remembered while its inode, size and mtime stay the same.

    Anything else (a FIFO, a device such as ``/dev/zero``: their size says 0 and
    reading never ends) raises :class:`OSError` without being read.
    """
    st = os.stat(path)
    _regular(st, path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _memo_lock:
        known = _memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    # O_NONBLOCK: a FIFO put there since the stat opens without waiting for a writer.
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)), "rb") as f:
        _regular(os.fstat(f.fileno()), path)
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    value = digest.hexdigest()
    with _memo_lock:
        if len(_memo) > 100_000:
            _memo.clear()
        _memo[key] = value
    return value
