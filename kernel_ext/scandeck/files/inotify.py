"""Linux inotify through libc (ctypes): which files of a directory changed, and how.

:class:`Inotify` watches directories (not their subdirectories: the caller adds
them) and reads ``(directory, name, mask)`` changes. :meth:`Inotify.available`
says whether this system has it; elsewhere the watcher rescans instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys

__all__ = [
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_ISDIR",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "WATCH_MASK",
    "Inotify",
]

# inotify(7) masks.
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)
_EVENT = struct.Struct("iIII")


class Inotify:
    """Linux inotify through libc (ctypes): :meth:`add` a directory, :meth:`read` its changes.

    :meth:`available` says whether this system has it; a failed :meth:`add` (no such
    directory, too many watches) returns ``None`` and the caller's rescans cover it.
    """

    def __init__(self) -> None:
        libc = _libc()
        if libc is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this system")
        self._libc = libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        # poll, not select: select cannot take a descriptor above 1023 (a long-lived kernel's)
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._paths: dict[int, str] = {}  # watch descriptor -> directory
        self._wds: dict[str, int] = {}
        #: Set when the kernel's queue overflowed (events were lost): rescan everything.
        self.overflowed = False

    @staticmethod
    def available() -> bool:
        """Whether inotify can be used here (Linux with a libc that has it)."""
        return _libc() is not None

    def add(self, directory: str) -> int | None:
        """Watch ``directory`` (not its subdirectories); its watch descriptor, or ``None`` on failure."""
        if directory in self._wds:
            return self._wds[directory]
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), WATCH_MASK)
        if wd < 0:
            return None
        former = self._paths.get(wd)
        if former is not None and former != directory:
            self._wds.pop(former, None)  # the directory was renamed: its old name is free for a new one
        self._paths[wd] = directory
        self._wds[directory] = wd
        return int(wd)

    def watched(self) -> set[str]:
        return set(self._wds)

    def read(self, timeout: float) -> list[tuple[str, str, int]]:
        """``(directory, name, mask)`` of the changes heard within ``timeout`` seconds."""
        try:
            ready = self._poller.poll(max(0.0, timeout) * 1000)
        except InterruptedError:
            return []
        if not ready:
            return []
        out: list[tuple[str, str, int]] = []
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset + _EVENT.size <= len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
                raw = buf[offset + _EVENT.size : offset + _EVENT.size + length]
                offset += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self.overflowed = True
                    continue
                directory = self._paths.get(wd)
                if directory is None:
                    continue
                if mask & IN_IGNORED:  # the directory went away (or was unwatched)
                    self._paths.pop(wd, None)
                    self._wds.pop(directory, None)
                    continue
                if mask & IN_MOVE_SELF:
                    # Moved (renamed, or out of the tree): its changes would be told under its old
                    # name, where a new directory may be made. Unwatched; a rescan watches it under
                    # its new name if it is still in the tree (the files a scan finds settle).
                    self._forget(wd)
                    continue
                out.append((directory, os.fsdecode(raw.rstrip(b"\0")), mask))
            if len(buf) < (1 << 16) - 4096:
                break
        return out

    def _forget(self, wd: int) -> None:
        directory = self._paths.pop(wd, None)
        if directory is not None and self._wds.get(directory) == wd:
            del self._wds[directory]
        self._libc.inotify_rm_watch(self.fd, wd)  # its IN_IGNORED then names no directory

    def close(self) -> None:
        if self.fd >= 0:
            self._poller.unregister(self.fd)
            os.close(self.fd)
            self.fd = -1


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        lib: ctypes.CDLL | None = None
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                lib.inotify_init1.argtypes = [ctypes.c_int]
                lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
                lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            except (OSError, AttributeError):
                lib = None
        _LIBC.append(lib)
    return _LIBC[0]
