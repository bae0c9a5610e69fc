"""Where reruns execute: the executor registry and the function that runs one rerun.

:func:`run_one` executes one prepared rerun (a plain dict, see
:func:`scandeck.provenance.rerun.plan`) with papermill and the ``scandeck``
engine, which records it; it returns a small dict and never raises for a failing
notebook. It is a module-level function of a light module, so it pickles by
reference for process pools and dask.

Executors run many of them. ``register_executor(name, factory)`` adds one;
``factory(workers=N, address=ADDRESS)`` returns an object with
``map(fn, tasks)`` -> iterator of results in completion order, and ``close()``.
Executors also come from the ``scandeck.rerun_executors`` entry point group.
Built in:

- ``local``: a pool of N worker processes (``spawn``: no fork of a process
  holding threads and SQLite connections), each running papermill in turn;
- ``dask``: ``distributed.Client(address).map(...)`` on a running cluster, whose
  workers must have scandeck installed and see the same files (the provenance
  store, the output directory, the catalog).
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ..exceptions import ScandeckError, missing_dependency
from ..registry import Registry

__all__ = [
    "RerunExecutor",
    "available_executors",
    "get_executor",
    "register_executor",
    "run_one",
]

Task = dict[str, Any]
Result = dict[str, Any]


# -- one rerun ----------------------------------------------------------------------------------


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Set variables for the kernels started inside, and put the old values back after."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class WarmKernels:
    """The kernels of one worker process: the next one started before it is needed, and the
    used ones shut down without waiting for them to exit.

    Every notebook still gets a *fresh* kernel process, started exactly as nbclient
    would start it for papermill (same kernel spec, arguments, environment and
    working directory; ``--HistoryManager.hist_file=:memory:`` as nbclient adds),
    and shut down with a shutdown request as jupyter_client does. What changes is
    only when: the next kernel boots while the current notebook runs, and a used
    kernel exits while the next notebook runs. The kernel's boot (~0.5-1 s) and
    its graceful exit (~0.5-1 s) thus leave the critical path of a batch.
    """

    #: Seconds a retired kernel gets to exit on its own before it is killed.
    EXIT_WAIT = 5.0

    def __init__(self) -> None:
        self.ready: dict[tuple[Any, ...], Any] = {}
        self.dying: list[tuple[Any, float]] = []

    @staticmethod
    def key(task: Task) -> tuple[Any, ...]:
        env = tuple(sorted((task.get("env") or {}).items()))
        return (
            task.get("kernel_name"),
            task.get("cwd") or os.getcwd(),
            env,
            tuple(task.get("extra_arguments") or ()),
            task.get("transport", "tcp"),
        )

    def start(self, task: Task) -> Any:
        """Launch a kernel for ``task`` (returns once the process is started, not ready)."""
        from jupyter_core.utils import run_sync

        options: dict[str, Any] = {"kernel_name": task["kernel_name"]}
        if task.get("transport") == "ipc":
            options.update(transport="ipc", ip=_ipc_prefix())
        km = _manager_class()(**options)
        km.scandeck_clients = []
        extra = list(task.get("extra_arguments") or [])
        if km.ipykernel:  # nbclient's default ipython_hist_file, as it passes it
            extra.append("--HistoryManager.hist_file=:memory:")
        env = {**os.environ, **(task.get("env") or {})}
        run_sync(km.start_kernel)(extra_arguments=extra, env=env, cwd=task.get("cwd") or os.getcwd())
        return km

    def take(self, task: Task) -> Any:
        """A started kernel for ``task``: the one made ready for it, else a new one."""
        from jupyter_core.utils import run_sync

        self.reap()
        km = self.ready.pop(self.key(task), None)
        for other in self.ready.values():  # made for other settings: of no use now
            self.retire(other)
        self.ready.clear()
        if km is not None and run_sync(km.is_alive)():
            return km
        if km is not None:
            self.retire(km)
        return self.start(task)

    def prepare(self, task: Task) -> None:
        """Start the kernel the next task like ``task`` will take."""
        key = self.key(task)
        if key not in self.ready:
            self.ready[key] = self.start(task)

    def retire(self, km: Any) -> None:
        """Close ``km``'s clients and ask its kernel to shut down; reap it later."""
        from jupyter_core.utils import run_sync

        for kc in getattr(km, "scandeck_clients", []):
            try:
                kc.stop_channels()
            except Exception:  # noqa: BLE001, S110 - a client already closed
                pass
        try:
            if run_sync(km.is_alive)():
                run_sync(km.request_shutdown)()
        except Exception:  # noqa: BLE001 - a kernel that is gone: reap() cleans up
            pass
        self.dying.append((km, time.monotonic() + self.EXIT_WAIT))

    def reap(self, wait: bool = False) -> None:
        """Clean up after retired kernels that exited; kill those past their time (or all, ``wait``)."""
        from jupyter_core.utils import run_sync

        keep = []
        for km, deadline in self.dying:
            try:
                alive = run_sync(km.is_alive)()
                if alive and (wait or time.monotonic() > deadline):
                    run_sync(km.finish_shutdown)(waittime=max(0.0, deadline - time.monotonic()) + 0.5)
                    alive = False
                if alive:
                    keep.append((km, deadline))
                    continue
                if km.has_kernel and km.provisioner is not None:
                    run_sync(km.provisioner.wait)()
                run_sync(km.cleanup_resources)()
            except Exception:  # noqa: BLE001, S112 - nothing more to do for that one
                continue
        self.dying = keep

    def close(self) -> None:
        """Shut down every kernel (at the worker's exit): asked to, then killed if it does not."""
        for km in self.ready.values():
            self.retire(km)  # a killed kernel prints asyncio's complaints into the worker's output
        self.ready.clear()
        self.reap(wait=True)


_warm: WarmKernels | None = None
_manager: Any = None


def _manager_class() -> Any:
    """jupyter_client's AsyncKernelManager, remembering the clients nbclient makes from it
    (a kernel manager passed to nbclient is not cleaned up by it: we close them)."""
    global _manager
    if _manager is None:
        from jupyter_client.manager import AsyncKernelManager

        class TrackingKernelManager(AsyncKernelManager):
            scandeck_clients: list[Any]  # set by whoever starts the kernel, before any client()

            def client(self, **kwargs: Any) -> Any:
                kc = super().client(**kwargs)
                self.scandeck_clients.append(kc)
                return kc

        _manager = TrackingKernelManager
    return _manager


def _warm_kernels() -> WarmKernels:
    global _warm
    if _warm is None:
        import atexit

        _warm = WarmKernels()
        atexit.register(_warm.close)
    return _warm


def _ipc_prefix() -> str:
    return os.path.join(tempfile.gettempdir(), f"scandeck-kernel-{uuid.uuid4().hex[:12]}")


def warm_worker(task: Task | None) -> None:
    """Process-pool initializer: start the first kernel while the worker imports papermill."""
    if task is not None and task.get("warm") and task.get("kernel_name"):
        try:
            _warm_kernels().prepare(task)
        except Exception:  # noqa: BLE001 - run_one starts one the usual way
            pass
    import papermill  # noqa: F401 - imported here, in parallel with the kernel's boot

    from . import engine  # noqa: F401


def run_one(task: Task) -> Result:
    """Execute one rerun; return ``{"uid", "scan_id", "status", "seconds", "output_path",
    "record_id", "error", "message"}``.

    ``task`` holds the notebook (JSON text, outputs cleared), the parameters, the
    output path, the provenance store directory and the record's name, parent and
    target scan. The engine records the execution (kind "rerun") and writes the
    output notebook, also when a cell fails; a failure papermill raises before any
    kernel starts (a missing kernel) gives ``status == "failed"``, ``record_id``
    None and the reason in ``message``.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .engine import ENGINE_NAME, Recording, register

    started = time.perf_counter()
    register()
    recording = Recording(
        kind="rerun",
        name=task["name"],
        tags=list(task.get("tags", [])),
        parent=task["parent"],
        target_scan=task["uid"],
        store=task["store"],
    )
    nb = nbformat.reads(task["notebook"], as_version=4)
    message = ""
    kwargs: dict[str, Any] = {}
    if task.get("extra_arguments"):
        kwargs["extra_arguments"] = list(task["extra_arguments"])
    if task.get("timeout"):
        kwargs["execution_timeout"] = task["timeout"]
    if task.get("transport") == "ipc":
        # Kernels started at once in several processes race for "free" TCP ports (ZMQError:
        # address already in use); unix sockets under a unique prefix cannot collide.
        from traitlets.config import Config

        kwargs["config"] = Config({"KernelManager": {"transport": "ipc", "ip": _ipc_prefix()}})
    warm = _warm_kernels() if task.get("warm") and task.get("kernel_name") else None
    km = None
    try:
        if warm is not None:
            km = kwargs["km"] = warm.take(task)
            if task.get("prestart"):
                warm.prepare(task)
        with _environment(task.get("env", {})):
            papermill.execute_notebook(
                nb,
                task["output_path"],
                parameters=task["parameters"],
                engine_name=ENGINE_NAME,
                kernel_name=task.get("kernel_name"),
                cwd=task.get("cwd"),
                progress_bar=False,
                **{ENGINE_NAME: recording},
                **kwargs,
            )
    except PapermillExecutionError:
        pass  # recorded as failed by the engine, output notebook written
    except Exception as err:  # noqa: BLE001 - one rerun's trouble must not stop the batch
        message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    finally:
        if warm is not None and km is not None:
            warm.retire(km)
    record = recording.record
    error = record.error if record is not None else None
    if record is None and not message:
        message = recording.kernel_report_error or "the execution was not recorded"
    return {
        "uid": task["uid"],
        "scan_id": task.get("scan_id"),
        "status": record.status if record is not None and not message else "failed",
        "seconds": round(time.perf_counter() - started, 3),
        "output_path": task["output_path"] if os.path.exists(task["output_path"]) else None,
        "record_id": record.id if record is not None else None,
        "error": error.model_dump() if error is not None else None,
        "message": message,
    }


def crashed(task: Task, err: BaseException) -> Result:
    """The result of a task whose worker died or raised outside :func:`run_one`'s guard."""
    return {
        "uid": task["uid"],
        "scan_id": task.get("scan_id"),
        "status": "failed",
        "seconds": 0.0,
        "output_path": task["output_path"] if os.path.exists(task["output_path"]) else None,
        "record_id": None,
        "error": None,
        "message": f"worker failed: {type(err).__name__}: {err}".splitlines()[0][:300],
    }


# -- executors ----------------------------------------------------------------------------------


class RerunExecutor(Protocol):
    """Runs ``fn`` on each task somewhere; yields the results as they complete."""

    def map(self, fn: Callable[[Task], Result], tasks: list[Task]) -> Iterator[Result]: ...

    def close(self) -> None: ...


ExecutorFactory = Callable[..., RerunExecutor]


class LocalExecutor:
    """A pool of ``workers`` processes on this machine (``concurrent.futures``, spawn)."""

    def __init__(self, workers: int = 2, address: str | None = None, warm: bool = True) -> None:
        if address:
            raise ScandeckError("the local executor takes no address; use --dask ADDRESS for a cluster")
        self.workers = max(1, int(workers))
        self.warm = warm
        self._pool: Any = None

    def map(self, fn: Callable[[Task], Result], tasks: list[Task]) -> Iterator[Result]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if not tasks:
            return
        workers = min(self.workers, len(tasks))
        # Each worker keeps its next kernel booting while a notebook runs, except for the
        # last tasks (a worker does not know which task is its last, so roughly).
        tasks = [{**task, "warm": self.warm, "prestart": i < len(tasks) - workers} for i, task in enumerate(tasks)]
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=warm_worker,
            initargs=(tasks[0],),
        )
        futures = {self._pool.submit(fn, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # noqa: BLE001 - BrokenProcessPool: a worker was killed
                yield crashed(futures[future], err)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor:
    """``distributed.Client(address)``: each rerun is one task on the cluster's workers.

    The cluster decides the concurrency (its workers and threads); ``workers`` is
    not used. A worker running several reruns at once in threads is fine, except
    that papermill changes the process's working directory while a notebook with
    a ``cwd`` runs: give such clusters one thread per worker.
    """

    def __init__(self, workers: int = 2, address: str | None = None) -> None:
        if not address:
            raise ScandeckError("the dask executor needs the scheduler address (--dask tcp://host:8786)")
        self.address = address
        self._client: Any = None

    def map(self, fn: Callable[[Task], Result], tasks: list[Task]) -> Iterator[Result]:
        try:
            from distributed import Client, as_completed
        except ImportError as err:
            raise missing_dependency("distributed", "cluster") from err
        if not tasks:
            return
        try:
            self._client = Client(self.address, set_as_default=False, timeout="20s")
        except OSError as err:
            raise ScandeckError(f"cannot connect to the dask scheduler at {self.address}: {err}") from err
        keys = [f"scandeck-rerun-{t['parent'][:8]}-{t['uid'][:8]}-{os.urandom(4).hex()}" for t in tasks]
        futures = self._client.map(fn, tasks, key=keys, pure=False)
        by_key = dict(zip(keys, tasks, strict=True))
        for future in as_completed(futures, loop=self._client.loop):  # not set as the default client
            try:
                yield future.result()
            except Exception as err:  # noqa: BLE001 - a worker died or the task could not run
                yield crashed(by_key[future.key], err)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


#: Rerun executor factories by name (entry-point group ``scandeck.rerun_executors``).
EXECUTORS: Registry[ExecutorFactory] = Registry("rerun executor", "scandeck.rerun_executors")


def register_executor(name: str, factory: ExecutorFactory, *, overwrite: bool = False) -> None:
    """Make an executor available by ``name`` (``scandeck rerun --executor NAME``).

    ``factory(workers=N, address=A)`` returns a :class:`RerunExecutor`.

    Examples
    --------
    >>> register_executor("my-cluster", MyExecutor)  # doctest: +SKIP
    """
    EXECUTORS.register(name, factory, overwrite=overwrite)


def available_executors() -> list[str]:
    """Names of the registered executors, and of those entry points offer."""
    return EXECUTORS.available()


def get_executor(name: str, *, workers: int = 2, address: str | None = None) -> RerunExecutor:
    """A new executor of the kind ``name``; unknown names raise :class:`UnknownName`."""
    return EXECUTORS.get(name)(workers=workers, address=address)


def run_all(executor: RerunExecutor, tasks: Iterable[Task]) -> Iterator[Result]:
    """The results of :func:`run_one` over ``tasks`` on ``executor``, as they complete."""
    yield from executor.map(run_one, list(tasks))


register_executor("local", LocalExecutor)
# The same pool without kernels booted ahead: no idle kernel ever waits (memory-tight machines).
register_executor("local-cold", functools.partial(LocalExecutor, warm=False))
register_executor("dask", DaskExecutor)
