"""Worker processes that run computed columns' code, each column with a time limit.

A :class:`WorkerPool` keeps up to N worker processes (each a fresh interpreter,
``python -c``, talking over a socket pair: never a fork of a threaded server, and
unlike multiprocessing's ``spawn`` they never import the caller's ``__main__``). A :class:`Task` is one run
and some of its columns; the worker opens the catalog once (it keeps it), loads the
columns file (again only when its mtime or size changed), calls each column's
function and sends back one :class:`~scandeck.runtable.model.Cell` per column:

* a value (``ok``); an exception gives an ``error`` cell, ``"ExcType: message (at
  file:line in function)"``;
* a column running past its time limit gives a ``timeout`` cell: its worker is
  killed and replaced, and the task's other columns go on in a new worker;
* a worker that dies (a segfault, ``os._exit``) gives an ``error`` cell for the
  column it was running (for every column when it died opening the catalog or
  loading the file); the others go on in a new worker.

One failing cell never stops the other columns or runs.

The worker's side is :mod:`.worker_main`. Messages (pickled, over the socket pair):
to the worker ``("describe", columns_file)`` and ``("task", Task, default_timeout)``;
back ``("columns", [ColumnInfo fields])`` or ``("error", text)`` for a describe, and for
a task ``("begin", name, timeout, code_hash, final)`` before each column,
``("cell", name, Cell.to_dict())`` or ``("gone", name)`` after it, ``("done",)`` at the end.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ..exceptions import ColumnsFileError
from ..safe_text import printable
from .columns import DEFAULT_TIMEOUT
from .model import Cell

__all__ = ["ColumnInfo", "Task", "WorkerPool", "error_text"]

log = logging.getLogger(__name__)

#: Longest error text a cell keeps.
MAX_ERROR = 1000


@dataclass(frozen=True)
class Task:
    """Compute ``columns`` (``(name, code_hash)`` as the asker knows them) of run ``uid``.

    ``target`` is what the worker passes to ``scandeck.open_catalog`` (a store URI or a
    catalog name); ``final`` is whether the run had ended when the task was made (the
    cells the pool makes itself, for a timeout or a dead worker, carry it).
    """

    target: str
    uid: str
    columns: tuple[tuple[str, str], ...]
    columns_file: str | None
    final: bool = True


@dataclass(frozen=True)
class ColumnInfo:
    """What a loaded column is, without its function (a worker's answer to :meth:`WorkerPool.describe`)."""

    name: str
    title: str
    units: str | None
    code_hash: str
    builtin: bool
    timeout: float | None
    summary_only: bool


def error_text(err: BaseException) -> str:
    """``"ExcType: message (at file:line in function)"``: the last frame of the traceback only.

    A lone surrogate in the message (``KeyError`` of an undecodable file name) is written
    as its escape: every store keeps the text.
    """
    text = f"{type(err).__name__}: {err}".encode("utf-8", "backslashreplace").decode("utf-8")
    frames = traceback.extract_tb(err.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


# -- the pool -------------------------------------------------------------------------------------


@dataclass
class _Busy:
    task: Task
    left: list[tuple[str, str]]
    deadline: float
    current: tuple[str, str, float, bool] | None = None  # name, code_hash, timeout, final
    setup: bool = True


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    busy: _Busy | None = field(default=None)


Results = dict[str, dict[str, Cell]]


class WorkerPool:
    """Up to ``workers`` worker processes computing columns; :meth:`compute` is thread-safe (one at a time).

    Parameters
    ----------
    workers
        How many processes compute at once.
    default_timeout
        Seconds a column may take when it names no ``timeout=``; also the limit for a
        worker to open the catalog and load the columns file.

    Examples
    --------
    >>> pool = WorkerPool(2)                                                  # doctest: +SKIP
    >>> pool.compute([Task(cat.source.uri, uid, (("cen", h),), None)])        # doctest: +SKIP
    {'3f2a...': {'cen': Cell(value=0.02, ...)}}
    >>> pool.close()                                                          # doctest: +SKIP
    """

    def __init__(self, workers: int = 2, *, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = workers
        self.default_timeout = default_timeout
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        #: Workers replaced so far (killed at a time limit, or found dead).
        self.replaced = 0

    # -- workers --------------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        fd = child.fileno()
        # By name, not an import: the worker's side opens catalogs, which this module must not import.
        code = f"from scandeck.runtable.worker_main import serve; serve({fd})"
        try:
            # Its own process group: stopping it at a time limit also stops what its column started.
            process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=(fd,), stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            child.close()
        worker = _Worker(process, Connection(parent.detach()))
        self._workers.append(worker)
        return worker

    def _kill(self, worker: _Worker) -> int | None:
        """End ``worker`` and the processes its columns started (its process group), forget it; its
        exit code."""
        if worker.process.returncode is None:  # not reaped: its pid, the group's id, is still its own
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except OSError:  # pragma: no cover - the group is gone already
                pass
        try:
            code = worker.process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL does not end
            code = None
        worker.conn.close()
        if worker in self._workers:
            self._workers.remove(worker)
        return code

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.process.pid for w in self._workers]

    # -- describing a columns file --------------------------------------------------------------

    def describe(self, columns_file: str | Path | None) -> list[ColumnInfo]:
        """The columns (built-ins and the file's) as a worker loads them: no user code runs here.

        Raises
        ------
        ColumnsFileError
            The file does not load, or loading it killed the worker or ran past the time limit.
        """
        with self._lock:
            self._check_open()
            worker = self._send(("describe", None if columns_file is None else str(columns_file)))
            if not worker.conn.poll(self.default_timeout):
                self._kill(worker)
                self.replaced += 1
                raise ColumnsFileError(
                    f"loading the columns file {columns_file} took longer than {self.default_timeout:g} s; "
                    "its top level should only define functions"
                )
            try:
                answer = worker.conn.recv()
            except (EOFError, OSError):
                code = self._kill(worker)
                self.replaced += 1
                raise ColumnsFileError(
                    f"loading the columns file {columns_file} ended its worker process (exit code {code})"
                ) from None
        if answer[0] == "error":
            raise ColumnsFileError(answer[1])
        return [ColumnInfo(**d) for d in answer[1]]

    # -- computing ------------------------------------------------------------------------------

    def compute(
        self,
        tasks: Iterable[Task],
        *,
        on_cells: Callable[[str, dict[str, Cell]], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Results:
        """Compute every task's columns; the cells per run uid.

        ``on_cells(uid, cells)`` is called (on this thread) as each task's cells are
        ready, so a caller stores them without waiting for the rest. ``stop`` set:
        the workers still busy are killed and what is done is returned.
        """
        with self._lock:
            self._check_open()
            try:
                return self._compute(deque(tasks), on_cells, stop)
            except BaseException:
                # (on_cells raised, or KeyboardInterrupt): no worker is left mid-task for the next call
                for worker in [w for w in self._workers if w.busy]:
                    self._kill(worker)
                raise

    def _idle(self) -> _Worker | None:
        for worker in self._workers:
            if worker.busy is None:
                return worker
        return None

    def _send(self, message: tuple[Any, ...]) -> _Worker:
        """Send ``message`` to an idle worker (a new one if none, or if the idle one died meanwhile)."""
        for _ in range(2):
            worker = self._idle() or self._spawn()
            try:
                worker.conn.send(message)
                return worker
            except OSError:  # it died while idle (killed from outside): replace it
                self._kill(worker)
                self.replaced += 1
        worker = self._spawn()
        worker.conn.send(message)
        return worker

    def _compute(
        self,
        pending: deque[Task],
        on_cells: Callable[[str, dict[str, Cell]], None] | None,
        stop: threading.Event | None,
    ) -> Results:
        results: Results = {}
        done: dict[Task, dict[str, Cell]] = {}

        def finish(task: Task) -> None:
            cells = done.pop(task, {})
            if cells:
                results.setdefault(task.uid, {}).update(cells)
                if on_cells is not None:
                    on_cells(task.uid, cells)

        while pending or any(w.busy for w in self._workers):
            if stop is not None and stop.is_set():
                for worker in [w for w in self._workers if w.busy]:
                    self._kill(worker)
                return results
            while pending and (self._idle() or len(self._workers) < self.size):
                task = pending.popleft()
                worker = self._send(("task", task, self.default_timeout))
                worker.busy = _Busy(task, list(task.columns), time.monotonic() + self.default_timeout)
            busy = [w for w in self._workers if w.busy]
            now = time.monotonic()
            soonest = min(w.busy.deadline for w in busy if w.busy)
            ready = wait([w.conn for w in busy], timeout=min(max(soonest - now, 0.0), 0.25))
            for worker in busy:
                if worker.conn in ready:
                    self._read(worker, done, pending, finish)
            now = time.monotonic()
            for worker in [w for w in self._workers if w.busy and w.busy.deadline <= now]:
                self._expire(worker, done, pending, finish)
        return results

    def _read(
        self,
        worker: _Worker,
        done: dict[Task, dict[str, Cell]],
        pending: deque[Task],
        finish: Callable[[Task], None],
    ) -> None:
        busy = worker.busy
        assert busy is not None
        while True:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._died(worker, done, pending, finish)
                return
            kind = message[0]
            if kind == "begin":
                _, name, timeout, code_hash, final = message
                busy.current = (name, code_hash, float(timeout), final)
                busy.deadline = time.monotonic() + float(timeout)
                busy.setup = False
            elif kind in ("cell", "gone"):
                name = message[1]
                busy.left = [c for c in busy.left if c[0] != name]
                busy.current = None
                busy.setup = False
                if kind == "cell":
                    done.setdefault(busy.task, {})[name] = Cell.from_dict(message[2])
            elif kind == "done":
                worker.busy = None
                finish(busy.task)
                return

    def _died(
        self,
        worker: _Worker,
        done: dict[Task, dict[str, Cell]],
        pending: deque[Task],
        finish: Callable[[Task], None],
    ) -> None:
        busy = worker.busy
        assert busy is not None
        code = self._kill(worker)
        self.replaced += 1
        log.warning("scandeck: a column worker died (exit code %s) on run %s", code, printable(busy.task.uid))
        what = f"the worker process died (exit code {code})"
        if busy.setup:
            self._fail(busy, done, f"{what} opening the catalog or loading the columns file", "error")
        elif busy.current is not None:
            name, code_hash, _, final = busy.current
            done.setdefault(busy.task, {})[name] = Cell(None, code_hash, "error", what, time.time(), final)
            busy.left = [c for c in busy.left if c[0] != name]
        self._requeue(busy, pending)
        finish(busy.task)

    def _expire(
        self,
        worker: _Worker,
        done: dict[Task, dict[str, Cell]],
        pending: deque[Task],
        finish: Callable[[Task], None],
    ) -> None:
        busy = worker.busy
        assert busy is not None
        self._kill(worker)
        self.replaced += 1
        if busy.setup:
            self._fail(
                busy,
                done,
                f"opening the catalog and loading the columns file took longer than {self.default_timeout:g} s",
                "timeout",
            )
        elif busy.current is not None:
            name, code_hash, timeout, final = busy.current
            text = f"took longer than {timeout:g} s; its worker process was stopped"
            done.setdefault(busy.task, {})[name] = Cell(None, code_hash, "timeout", text, time.time(), final)
            busy.left = [c for c in busy.left if c[0] != name]
        self._requeue(busy, pending)
        finish(busy.task)

    @staticmethod
    def _fail(busy: _Busy, done: dict[Task, dict[str, Cell]], text: str, status: str) -> None:
        cells = done.setdefault(busy.task, {})
        for name, code_hash in busy.left:
            cells[name] = Cell(None, code_hash, status, text, time.time(), busy.task.final)
        busy.left = []

    @staticmethod
    def _requeue(busy: _Busy, pending: deque[Task]) -> None:
        if busy.left:  # the task's other columns go on in a new worker
            pending.appendleft(replace(busy.task, columns=tuple(busy.left)))

    # -- closing --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the worker pool is closed")

    def close(self) -> None:
        """End every worker (each by its own process group); idempotent."""
        self._closed = True
        for worker in list(self._workers):
            try:
                worker.conn.close()  # the worker's recv ends: it exits on its own
                worker.process.wait(1)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill(worker)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
