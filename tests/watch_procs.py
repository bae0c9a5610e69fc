"""An instrument that writes files slowly, for the watcher's tests, and what they share.

``python tests/watch_procs.py write DIR N PIECES DELAY [SUBDIRS]`` writes ``N`` files
``f000.raw``... (in ``SUBDIRS`` subdirectories ``d0``, ``d1``... round-robin when given), each
in ``PIECES`` pieces with ``DELAY`` seconds between them, holding the file open
throughout as vendor software does; prints ``wrote RELPATH SHA256`` after each close.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent


def content(i: int, piece: int, pieces: int) -> bytes:
    """Piece ``piece`` of file ``i``: distinct bytes, so a partial read hashes differently."""
    return (f"file {i} piece {piece}/{pieces} ".encode() * 200)[: 997 + i + piece]


def final_sha(i: int, pieces: int) -> str:
    return hashlib.sha256(b"".join(content(i, p, pieces) for p in range(pieces))).hexdigest()


def relpath_of(i: int, subdirs: int) -> str:
    return f"d{i % subdirs}/f{i:03d}.raw" if subdirs else f"f{i:03d}.raw"


def write(directory: str, n: int, pieces: int, delay: float, subdirs: int = 0) -> None:
    root = Path(directory)
    for i in range(n):
        rel = relpath_of(i, subdirs)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for p in range(pieces):
                f.write(content(i, p, pieces))
                f.flush()
                time.sleep(delay)
        print("wrote", rel, final_sha(i, pieces), flush=True)


def start_writer(directory: Path, n: int, pieces: int, delay: float, subdirs: int = 0) -> subprocess.Popen[str]:
    """The writer program as a subprocess."""
    args = [sys.executable, str(HERE / "watch_procs.py"), "write", str(directory), str(n), str(pieces), str(delay)]
    return subprocess.Popen([*args, str(subdirs)], stdout=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` (a hang guard, not a threshold)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def watched_events(cat: Any) -> list[dict[str, Any]]:
    """Every watched event of the catalog (oldest run first): its data, run uid and stream name."""
    out = []
    for run in reversed(list(cat)):
        if run.metadata["start"].get("plan_name") != "watch":
            continue
        streams = {d["uid"]: d["name"] for d in run.descriptors}
        for name, doc in run.documents():
            if name == "event":
                out.append({**doc["data"], "run": run.uid, "stream": streams[doc["descriptor"]]})
    return out


class PlainReader:
    """A format reader for the tests: any file, no data keys; refuses files that start with ``BAD``."""

    name = "plain"
    patterns = ("*.dat",)

    def describe(self, path: str) -> Any:
        from scandeck.exceptions import UnreadableFile

        with open(path, "rb") as f:
            head = f.read(3)
        if head == b"BAD":
            raise UnreadableFile(f"{path}: starts with BAD", path, self.name)
        return SimpleNamespace(data_keys={}, info={"head": head.decode("latin-1")})

    def read(self, path: str, key: str) -> Any:
        raise KeyError(key)


class ThreadedWatcher:
    """A :class:`~scandeck.files.watch.Watcher` running on a thread until :meth:`stop`."""

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.summary: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.watcher.run(self.stopping)
        except BaseException as err:  # noqa: BLE001 - raised in the test by stop()
            self.error = err

    def __enter__(self) -> ThreadedWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> Any:
        """The summary once the watcher ends by itself (``once``)."""
        wait_for(lambda: not self.thread.is_alive(), "the watcher to end")
        return self.stop()

    def stop(self) -> Any:
        self.stopping.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        if self.error is not None:
            raise self.error
        return self.summary


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "write":
        directory, n, pieces, delay, *more = rest
        write(directory, int(n), int(pieces), float(delay), int(more[0]) if more else 0)
    else:
        raise SystemExit(f"unknown command {json.dumps(command)}")
    os._exit(0)
