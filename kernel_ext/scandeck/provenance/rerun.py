"""Rerun a recorded notebook on other scans.

A record's executed notebook (``store.notebook(ID)``) is executed again once per
target scan, with papermill and the ``scandeck`` engine, with its original
parameters, overridden by the caller's, and the scan parameter set to the
target's uid. The scan parameter is ``scan_uid`` unless the notebook names another
in ``nb.metadata.scandeck.scan_parameter``. Each rerun is recorded (kind
``"rerun"``, ``parent`` the record, ``target_scan`` the uid) and writes its output
notebook to ``output_dir/<scan_id>-<uid8>.ipynb``, also when it fails. The values a
good rerun published (``scandeck.glue``) become columns of its target run in the
catalog the targets were looked up in (:func:`~.published.publish_values`).

Every target is resolved before any kernel starts: a scan that is not in the
catalog stops the whole batch with :class:`~scandeck.exceptions.RunNotFound`
naming it, and nothing is run or written.

Examples
--------
>>> results = rerun("1a2b3c", scans=["3f2a9c", "77e0b1"], workers=2)   # doctest: +SKIP
>>> [(r.scan_id, r.status, r.output_path) for r in results]          # doctest: +SKIP
[(12, 'ok', '.../reruns/peak-fit-1a2b3c4d/12-3f2a9c1e.ipynb'), ...]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import RerunSetupError  # noqa: F401 - raised by plan(); importable from here
from .record import ErrorInfo
from .rerun_plan import (  # noqa: F401 - the planning API, importable from here as before
    CATALOG_PARAMETER,
    DEFAULT_SCAN_PARAMETER,
    LOCAL_EXECUTORS,
    RerunPlan,
    Target,
    fresh_notebook,
    parameter_names,
    plan,
    record_catalog,
    resolve_targets,
    safe_name,
    scan_parameter_of,
)

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .store import ProvStore

__all__ = [
    "RerunPlan",
    "RerunResult",
    "Target",
    "execute_plan",
    "plan",
    "rerun",
    "resolve_targets",
    "summary_table",
]

log = logging.getLogger("scandeck.provenance")


@dataclass
class RerunResult:
    """How one rerun went.

    ``status`` is "ok" or "failed"; ``error`` says which cell failed and why;
    ``message`` is set when the rerun could not be executed or recorded at all
    (then ``record_id`` is None).
    """

    uid: str
    scan_id: int | None
    status: str
    seconds: float
    output_path: str | None
    record_id: str | None
    error: ErrorInfo | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RerunResult:
        error = data.get("error")
        return cls(
            uid=data["uid"],
            scan_id=data.get("scan_id"),
            status=data["status"],
            seconds=float(data.get("seconds") or 0.0),
            output_path=data.get("output_path"),
            record_id=data.get("record_id"),
            error=ErrorInfo.model_validate(error) if error else None,
            message=data.get("message", ""),
        )

    def describe_error(self) -> str:
        """``cell 3: AssertionError: ...`` for a failed rerun, "" for a good one."""
        if self.error is not None:
            where = f"cell {self.error.cell_index}" if self.error.cell_index is not None else "?"
            what = f"{self.error.ename}: {self.error.evalue}" if self.error.evalue else self.error.ename
            return f"{where}: {what}"
        return self.message


# -- running -------------------------------------------------------------------------------------------


class Progress:
    """A progress bar on stderr (tqdm when installed, else a counter line per rerun)."""

    def __init__(self, total: int, enabled: bool = True, file: Any = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.file = file or sys.stderr
        self.enabled = enabled
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass  # a counter line per rerun instead
            else:
                self._bar = tqdm(total=total, desc="rerun", unit="nb", file=self.file, dynamic_ncols=True)

    def update(self, result: RerunResult) -> None:
        self.done += 1
        self.failed += not result.ok
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(1)
        else:
            label = result.scan_id if result.scan_id is not None else result.uid[:8]
            print(
                f"rerun {self.done}/{self.total}  ({self.failed} failed)  last: {label} {result.status}",
                file=self.file,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def execute_plan(
    the_plan: RerunPlan,
    *,
    executor: str = "local",
    workers: int = 2,
    address: str | None = None,
    progress: bool = False,
    on_result: Callable[[RerunResult], None] | None = None,
    catalog: Catalog | None = None,
) -> list[RerunResult]:
    """Run the plan's tasks on an executor; results in the order of the targets.

    ``catalog``: where the targets were looked up; each good rerun's published values
    become columns of its target run there (:func:`~.published.publish_values`), as
    the results come. A value that cannot be published is logged, never fatal.
    """
    from .rerun_executors import get_executor, run_all

    runner = get_executor(executor, workers=workers, address=address)
    # Only now, with every target and the kernel checked, does anything touch the disk.
    the_plan.output_dir.mkdir(parents=True, exist_ok=True)
    bar = Progress(len(the_plan.tasks), enabled=progress)
    by_uid: dict[str, RerunResult] = {}
    try:
        for raw in run_all(runner, the_plan.tasks):
            result = RerunResult.from_dict(raw)
            by_uid[result.uid] = result
            if catalog is not None and result.ok and result.record_id:
                _publish(catalog, the_plan, result.record_id)
            bar.update(result)
            if on_result is not None:
                on_result(result)
    finally:
        bar.close()
        runner.close()
    return [by_uid[t.uid] for t in the_plan.targets if t.uid in by_uid]


def _publish(catalog: Catalog, the_plan: RerunPlan, record_id: str) -> None:
    """Publish one rerun's values (read back from the store its worker saved it to)."""
    from ..exceptions import ScandeckError
    from ..safe_text import printable
    from .published import publish_values
    from .store import open_store

    where = next((t["store"] for t in the_plan.tasks if t.get("store")), None)
    try:
        prov = open_store(where)
        try:
            publish_values(catalog, prov.get(record_id))
        finally:
            prov.close()
    except (ScandeckError, OSError) as err:
        log.warning(printable(f"scandeck: the values of rerun record {record_id[:8]} were not published: {err}"))


def rerun(
    record_id: str,
    scans: Iterable[str] = (),
    query: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    workers: int = 2,
    dask: str | None = None,
    output_dir: str | Path | None = None,
    catalog: Catalog | str | Path | None = None,
    *,
    store: ProvStore | str | Path | None = None,
    executor: str | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    tags: Iterable[str] = (),
    progress: bool = False,
) -> list[RerunResult]:
    """Rerun record ``record_id``'s notebook on each of ``scans`` and the runs matching ``query``.

    Parameters
    ----------
    record_id
        A provenance record id or unique id prefix.
    scans
        Run uids or uid prefixes.
    query
        A scandeck text query; its runs are added after ``scans``, oldest first.
    parameters
        Overrides of the record's parameters (the scan parameter is always the target's uid).
    workers
        Concurrent reruns of the local executor.
    dask
        A dask scheduler address: run on that cluster instead (executor "dask").
    output_dir
        Where the output notebooks go (default ``./reruns/<name>-<id8>/``).
    catalog
        Where the targets are looked up: a Catalog, or what ``scandeck.open_catalog``
        takes (a given path or URI is also passed to the notebook, see :func:`plan`).
        Default: the catalog the record read from, else the default store.
    store
        The provenance store (default ``<data dir>/provenance``).
    executor
        A registered executor name (default "local", or "dask" with ``dask``).

    Returns
    -------
    list of RerunResult
        One per target, in target order. Failed reruns are in the list with
        ``status == "failed"``; nothing raises for them.

    Raises
    ------
    RunNotFound
        A scan is not in the catalog (before anything runs).
    RecordNotFound
        No such record.

    Examples
    --------
    >>> res = rerun("1a2b", scans=["3f2a9c"], query='sample == "Ni"', parameters={"bins": 20})  # doctest: +SKIP
    >>> all(r.ok for r in res)                                                                # doctest: +SKIP
    True
    """
    from ..catalog import Catalog as CatalogClass
    from .store import open_store

    prov = open_store(store)
    record = prov.get(record_id)
    target_text: str | None = None
    owned: Catalog | None = None
    if isinstance(catalog, CatalogClass):
        cat = catalog
    else:
        from ..opening import open_catalog

        if catalog is not None:
            target_text = str(catalog)
            cat = owned = open_catalog(catalog)
        else:
            cat = owned = record_catalog(record) or open_catalog()
    try:
        the_plan = plan(
            record.id,
            catalog=cat,
            store=prov,
            scans=scans,
            query=query,
            parameters=parameters,
            output_dir=output_dir,
            kernel_name=kernel_name,
            catalog_target=target_text,
            timeout=timeout,
            tags=tags,
            check_kernel=dask is None and executor in (None, *LOCAL_EXECUTORS),
        )
        name = executor or ("dask" if dask else "local")
        return execute_plan(the_plan, executor=name, workers=workers, address=dask, progress=progress, catalog=cat)
    finally:
        if owned is not None:
            owned.close()


# -- text ----------------------------------------------------------------------------------------------


def summary_table(results: list[RerunResult]) -> str:
    """scan_id, uid8, status, seconds, failing cell + error, output path: one line per rerun."""
    from ..listing import render_table

    rows = []
    for r in results:
        error = r.describe_error().splitlines()[0] if r.describe_error() else ""
        if len(error) > 60:
            error = error[:57] + "..."
        rows.append(
            [
                "" if r.scan_id is None else str(r.scan_id),
                r.uid[:8],
                r.status,
                f"{r.seconds:.2f}",
                error or "-",
                r.output_path or "-",
            ]
        )
    return render_table(["scan_id", "uid", "status", "seconds", "error", "output"], rows, {0, 3})
