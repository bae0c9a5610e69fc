"""Is the process that writes a run still alive?

A writer records its host, pid and the pid's start time. A reader on the same
host tells a dead writer (or a recycled pid) from a live one; a reader on
another host cannot, and reports such a run as ``running`` until it stops.
"""

from __future__ import annotations

import os
import socket

HOST = socket.gethostname()


def process_token(pid: int) -> str:
    """A string that changes when ``pid`` is reused by another process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    # Field 22 (starttime) counts from after the parenthesised command name.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[19].decode()


def writer_alive(host: str | None, pid: int | None, token: str | None) -> bool:
    """False only when the writer surely is gone (same host, pid dead or reused)."""
    if host != HOST or pid is None:
        return True
    # About 10 us: cheap enough to ask on every status read, so no cache to go stale.
    return _pid_alive(pid) and (not token or process_token(pid) in ("", token))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"
    except OSError:
        return True


def identity() -> tuple[str, int, str]:
    """``(host, pid, token)`` of this process, for a writer to record."""
    pid = os.getpid()
    return HOST, pid, process_token(pid)
