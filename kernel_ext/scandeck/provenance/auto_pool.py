"""Workers that stay up for a standing analysis: reruns are submitted one at a time as scans end.

``scandeck rerun`` maps a known list of tasks over a pool made for it; a standing
analysis learns its tasks one by one, for hours. :class:`StandingPool` keeps N
spawned worker processes (each with its next kernel booted ahead, as the local
executor does) or a dask client, and runs :func:`~.rerun_executors.run_one` on
each submitted task. Local workers die with the process that started them
(``PR_SET_PDEATHSIG`` on Linux), and their kernels with them (ipykernel polls its
parent), so a service killed with SIGKILL leaves no rerun running that could
record a second result after its successor has redone the scan.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..exceptions import ScandeckError, missing_dependency
from .rerun_executors import Result, Task, crashed, run_one, warm_worker

__all__ = ["StandingPool"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent(task: Task | None) -> None:
    """Pool initializer: be killed when the parent goes (Linux), then boot the first kernel."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    warm_worker(task)


class StandingPool:
    """``workers`` local processes, or the dask cluster at ``dask``; :meth:`submit` one task at a time."""

    def __init__(self, template: Task, *, workers: int = 2, dask: str | None = None) -> None:
        self.workers = max(1, int(workers))
        self.dask = dask
        self._client: Any = None
        self._pool: ProcessPoolExecutor | None = None
        if dask:
            try:
                from distributed import Client
            except ImportError as err:
                raise missing_dependency("distributed", "cluster") from err
            try:
                self._client = Client(dask, set_as_default=False, timeout="20s")
            except OSError as err:
                raise ScandeckError(f"cannot connect to the dask scheduler at {dask}: {err}") from err
        else:
            self._first = {**template, "warm": True, "uid": "", "scan_id": None}
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(self._first,),
        )

    @property
    def capacity(self) -> int:
        """How many reruns to keep in flight: the local workers, or the cluster's worker threads."""
        if self._client is not None:
            try:
                threads = sum(self._client.nthreads().values())
            except Exception:  # noqa: BLE001 - a scheduler hiccup: keep going with what was asked
                threads = 0
            return max(self.workers, threads)
        return self.workers

    def boot(self) -> None:
        """Start every local worker now (and its first kernel), not at the first scan."""
        if self._pool is not None:
            futures = [self._pool.submit(os.getpid) for _ in range(self.workers)]
            for future in futures:
                future.result()

    def submit(self, task: Task) -> Future[Result]:
        """Run ``task``; the future's result is :func:`run_one`'s dict (a crash becomes a failed one)."""
        if self._client is not None:
            key = f"scandeck-auto-{task['parent'][:8]}-{task['uid'][:8]}-{os.urandom(4).hex()}"
            remote = self._client.submit(run_one, task, key=key, pure=False)
            local: Future[Result] = Future()

            def done(f: Any) -> None:
                try:
                    local.set_result(f.result())
                except Exception as err:  # noqa: BLE001 - the worker died or the task could not run
                    local.set_result(crashed(task, err))

            remote.add_done_callback(done)
            return local
        assert self._pool is not None
        try:
            inner = self._pool.submit(run_one, {**task, "warm": True, "prestart": True})
        except BrokenProcessPool:  # a worker was killed (out of memory?): the next ones start afresh
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            inner = self._pool.submit(run_one, {**task, "warm": True, "prestart": True})
        outer: Future[Result] = Future()

        def settle(f: Future[Result]) -> None:
            try:
                outer.set_result(f.result())
            except Exception as err:  # noqa: BLE001 - BrokenProcessPool: a worker was killed
                outer.set_result(crashed(task, err))

        inner.add_done_callback(settle)
        return outer

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
