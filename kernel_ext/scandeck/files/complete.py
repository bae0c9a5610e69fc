"""When a file in a watched directory is complete: written, closed, and no longer changing.

A file is *complete* when no process holds it open for writing and one of:

* a close after writing (``IN_CLOSE_WRITE``) or a rename into place (``IN_MOVED_TO``) was seen;
* its size and mtime stayed the same for ``settle`` seconds of watching (files found by a
  scan, network shares where inotify says nothing);
* nobody holds it open for writing (a lease test said so) and its mtime is ``settle``
  seconds old (files already there when watching starts).

"Nobody holds it open for writing" is asked of the kernel with a read lease
(``fcntl(F_SETLEASE, F_RDLCK)`` fails with ``EAGAIN`` while a writer has the file
open; the lease is given back at once). Where leases are not permitted (another
user's file, NFS, not Linux) the settle rule alone decides. Changes are heard through
Linux inotify (:mod:`.inotify`) and periodic rescans (``os.scandir``) catch what
inotify misses, with scans only where inotify is not there.

:func:`read_whole` hashes a file and checks after reading that it did not change meanwhile.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import signal
import stat as stat_mod
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .inotify import (
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    Inotify,
)

__all__ = ["Candidate", "Tracker", "enable_leases", "matches", "read_whole", "same_version", "writer_holds"]

_HASH_BLOCK = 1 << 20
_F_SETLEASE = 1024
_F_RDLCK = 0
_F_UNLCK = 2


# -- "no writer holds it open" ----------------------------------------------------------------------

#: Leases (and SIGIO) are Linux's.
_LINUX = sys.platform.startswith("linux") and hasattr(signal, "SIGIO")


def enable_leases() -> bool:
    """Make lease tests safe in this process; whether they will be used.

    A writer opening a file while we hold the lease sends us ``SIGIO`` (whose default
    kills): it is ignored here, which only the main thread can arrange. From another
    thread, leases are used only if ``SIGIO`` is already handled or ignored.
    """
    if not _LINUX:
        return False
    if signal.getsignal(signal.SIGIO) == signal.SIG_DFL:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGIO, signal.SIG_IGN)
        else:
            return False  # writer_holds says "cannot tell" while SIGIO would kill
    return True


def writer_holds(path: str) -> bool | None:
    """Whether a process holds ``path`` open for writing: True, False, or None (cannot tell).

    None where leases are not permitted (another user's file, a file system without
    them, not Linux) or not enabled (:func:`enable_leases`): the settle rule decides then.
    """
    if not _LINUX or signal.getsignal(signal.SIGIO) == signal.SIG_DFL:
        return None
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, _F_SETLEASE, _F_RDLCK)
    except OSError as err:
        return True if err.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        try:
            fcntl.fcntl(fd, _F_SETLEASE, _F_UNLCK)
        except OSError:
            pass
        return False
    finally:
        os.close(fd)


# -- reading a whole file ------------------------------------------------------------------------


def same_version(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats are of the same file, unchanged (inode, size, mtime)."""
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


def read_whole(path: str, expected: os.stat_result) -> str | None:
    """The sha256 of ``path`` read whole, or ``None`` when it changed before or while it was read.

    Raises ``OSError`` when it cannot be read at all (gone, no permission).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        if not same_version(before, expected):
            return None
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
        after = os.fstat(f.fileno())
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return None
    if not (same_version(after, expected) and same_version(now, expected)):
        return None
    return digest.hexdigest()


# -- which files ------------------------------------------------------------------------------


def matches(relpath: str, patterns: Iterable[str]) -> bool:
    """Whether ``relpath`` (posix) matches one of ``patterns``, case-insensitively.

    A pattern with ``/`` is matched against the whole relative path, others against the
    file name. No patterns: every file. Hidden files and directories (a name starting
    with ``.``: editors' and copiers' temporary files) never match.
    """
    parts = relpath.split("/")
    if any(part.startswith(".") for part in parts):
        return False
    pats = list(patterns)
    if not pats:
        return True
    name = parts[-1].lower()
    low = relpath.lower()
    return any(fnmatch.fnmatchcase(low if "/" in p else name, p.lower()) for p in pats)


@dataclass
class Candidate:
    """A complete file: its watched root (absolute), path relative to it (posix), stat."""

    root: str
    relpath: str
    stat: os.stat_result
    #: A close after writing was heard: its bytes may be new even with the size and mtime
    #: of a version already taken (timestamps are coarse: a rewrite within one tick keeps them).
    closed: bool = False

    @property
    def path(self) -> str:
        return os.path.join(self.root, *self.relpath.split("/"))


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time since which size and mtime are unchanged
    closed: bool = False  # a close-after-write or rename into place was heard since
    emitted: tuple[int, int] | None = None  # (size, mtime_ns) last handed out as complete


@dataclass
class Tracker:
    """Finds the complete files of ``roots``: call :meth:`poll` in a loop.

    Parameters
    ----------
    roots
        Absolute directories.
    patterns
        Globs (see :func:`matches`).
    recursive
        Whether subdirectories (and new ones) are watched too.
    settle
        Seconds a file's size and mtime must stay the same to count as complete.
    closes
        Whether a close after writing (or a rename into place) completes a file. False
        for instruments that close and reopen a file between pieces: then only the
        settle rules do.
    skip
        ``skip(path)``: paths never to consider (the catalog's own files).
    use_inotify
        False: rescans only (what happens anyway where inotify is missing).
    scan_interval
        Seconds between full rescans (default: 5 with inotify, else ``max(1, settle / 2)``).
    """

    roots: list[str]
    patterns: list[str] = field(default_factory=list)
    recursive: bool = False
    settle: float = 2.0
    closes: bool = True
    skip: Callable[[str], bool] = lambda path: False
    use_inotify: bool = True
    scan_interval: float | None = None
    #: ``(root, relpath)`` of files that vanished before they were complete, since the last poll.
    vanished: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seen: dict[tuple[str, str], _Seen] = {}
        # Keys of _seen not handed out as they are now: what a poll looks at (with _dirty),
        # never every file seen (a directory of 100,000 files taken long ago).
        self._open: set[tuple[str, str]] = set()
        self._inotify: Inotify | None = None  # opened by start()
        self._started = False
        self.use_inotify = self.use_inotify and Inotify.available()
        self._next_scan = 0.0
        self._dirty: set[tuple[str, str]] = set()  # heard of since the last look

    def start(self) -> None:
        """Open inotify (if used); :meth:`scan` starts the tracker when it was not."""
        if self._started:
            return
        self._started = True
        if self.use_inotify:
            try:
                self._inotify = Inotify()
            except OSError:  # too many inotify instances: rescans only
                self.use_inotify = False
        if self.scan_interval is None:
            self.scan_interval = 5.0 if self._inotify is not None else max(1.0, self.settle / 2)

    @property
    def inotify(self) -> bool:
        """Whether changes are heard through inotify (else rescans only)."""
        return self.use_inotify

    def close(self) -> None:
        """Close inotify; idempotent."""
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    def watched(self) -> set[str]:
        """The directories inotify watches (none without inotify)."""
        return self._inotify.watched() if self._inotify is not None else set()

    def pending(self) -> list[tuple[str, str]]:
        """Files seen that are not complete yet (or changed since they were handed out)."""
        return list(self._open)

    def forget(self, root: str, relpath: str) -> None:
        """Hand this file out again when it is next complete (its reading failed: it changed)."""
        seen = self._seen.get((root, relpath))
        if seen is not None:
            seen.emitted = None
            self._open.add((root, relpath))

    # -- looking ---------------------------------------------------------------------------------

    def scan(self) -> None:
        """Look at every file under the roots now (and watch new directories)."""
        self.start()
        now = time.monotonic()
        present: set[tuple[str, str]] = set()
        for root in self.roots:
            self._watch_dir(root)
            for relpath, st in self._walk(root, ""):
                present.add((root, relpath))
                self._note(root, relpath, st, now)
        for key in [k for k in self._seen if k not in present]:
            self._gone(key)
        self._next_scan = now + (self.scan_interval or 1.0)

    def _walk(self, root: str, rel: str) -> Iterable[tuple[str, os.stat_result]]:
        directory = os.path.join(root, *rel.split("/")) if rel else root
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        for entry in entries:
            relpath = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if self.recursive and not self.skip(entry.path):
                        self._watch_dir(entry.path)
                        yield from self._walk(root, relpath)
                    continue
                if not entry.is_file() or self.skip(entry.path) or not matches(relpath, self.patterns):
                    continue
                yield relpath, entry.stat()
            except OSError:
                continue

    def _watch_dir(self, directory: str) -> None:
        if self._inotify is not None:
            self._inotify.add(directory)  # at once when watched (watched() copies them all: per directory, O(n²))

    def _note(self, root: str, relpath: str, st: os.stat_result, now: float) -> None:
        if not stat_mod.S_ISREG(st.st_mode):
            return
        key = (root, relpath)
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(st.st_size, st.st_mtime_ns, now)
            self._open.add(key)
        elif (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
            seen.size, seen.mtime_ns, seen.since, seen.closed = st.st_size, st.st_mtime_ns, now, False
            if seen.emitted != (seen.size, seen.mtime_ns):
                self._open.add(key)
            else:
                self._open.discard(key)  # back as it was handed out (a scan saw it between)

    def _gone(self, key: tuple[str, str]) -> None:
        seen = self._seen.pop(key, None)
        self._open.discard(key)
        if seen is not None and seen.emitted != (seen.size, seen.mtime_ns):
            self.vanished.append(key)

    def _hear(self, timeout: float) -> None:
        assert self._inotify is not None
        for directory, name, mask in self._inotify.read(timeout):
            full = os.path.join(directory, name)
            if name.startswith(".") or self.skip(full):
                continue
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO) and self.recursive:
                    self._next_scan = 0.0  # a new subdirectory: watch it and look at what it already holds
                continue
            root_rel = self._relative(full)
            if root_rel is None:
                continue
            root, relpath = root_rel
            if not matches(relpath, self.patterns):
                continue
            key = (root, relpath)
            if mask & (IN_DELETE | IN_MOVED_FROM):
                self._gone(key)
                continue
            closed = bool(mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
            if closed or key not in self._seen:  # a new file is followed from its creation on
                try:
                    st = os.stat(full)
                except OSError:
                    self._gone(key)
                    continue
                self._note(root, relpath, st, time.monotonic())
                seen = self._seen.get(key)
                if seen is not None and closed:
                    seen.closed = True
                    if self.closes:
                        seen.emitted = None  # written again: a candidate whatever size and mtime say
            self._dirty.add(key)
        if self._inotify.overflowed:
            self._inotify.overflowed = False
            self._next_scan = 0.0

    def _relative(self, full: str) -> tuple[str, str] | None:
        for root in sorted(self.roots, key=len, reverse=True):  # the innermost root a file is in
            prefix = root.rstrip(os.sep) + os.sep
            if full.startswith(prefix):
                rel = full[len(prefix) :]
                if not self.recursive and os.sep in rel:
                    return None
                return root, Path(rel).as_posix()
        return None

    def poll(self, timeout: float) -> list[Candidate]:
        """The files complete now (each version handed out once), waiting up to ``timeout``
        seconds for changes when there is nothing else to do."""
        now = time.monotonic()
        if now >= self._next_scan:
            self.scan()
        elif self._inotify is not None:
            self._hear(min(timeout, max(0.0, self._next_scan - now)))
        else:
            time.sleep(min(timeout, max(0.0, self._next_scan - now)))
        return self._complete()

    def _complete(self) -> list[Candidate]:
        now = time.monotonic()
        wall = time.time()
        out: list[Candidate] = []
        for key in self._open | self._dirty:
            if key not in self._seen:
                continue
            root, relpath = key
            path = os.path.join(root, *relpath.split("/"))
            try:
                st = os.stat(path)
            except OSError:
                self._gone(key)
                continue
            self._note(root, relpath, st, now)
            seen = self._seen[key]
            if seen.emitted == (seen.size, seen.mtime_ns):
                self._open.discard(key)
                continue
            stable = now - seen.since >= self.settle
            closed = seen.closed and self.closes
            if not (closed or stable or wall - st.st_mtime >= self.settle):
                continue
            holds = writer_holds(path)
            if holds:
                seen.closed = False
                continue
            if closed or stable or holds is False:
                seen.emitted = (seen.size, seen.mtime_ns)
                seen.closed = False
                self._open.discard(key)
                out.append(Candidate(root, relpath, st, closed=closed))
        self._dirty.clear()
        out.sort(key=lambda c: (c.stat.st_mtime_ns, c.relpath))
        return out
