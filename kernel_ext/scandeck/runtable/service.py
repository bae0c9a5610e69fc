"""The column service: computes every computed column of every run, without being asked.

:class:`ColumnService` follows a catalog's store (its change token, ``runs_since``)
and keeps its cells current:

* a run that ends gets every column computed (final cells);
* a running run gets them at most every ``interval`` seconds (cells marked not final);
* cells computed by other code (the column was edited) or missing are recomputed in
  the background, newest runs first, a batch at a time (``RunFacts.needing``);
* the cells of a column removed from the columns file are deleted (never a notebook's
  published values, :func:`~.model.is_published`: they have no code, and no column defines them).

Columns' code runs in worker processes (:mod:`.workers`); here run only the
summary-only built-ins (``duration``, ``events``, ``status``), which read the index
row. The service runs in a thread of the Jupyter server (:mod:`scandeck.server.column_service`)
or of ``scandeck columns serve``; :func:`compute_now` is for readers that find
cells missing ("otherwise when first read").
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import ColumnsFileError, ReadOnlyStore, RunNotFound, ScandeckError
from ..query import Query
from ..safe_text import printable
from .annotate import facts_of
from .columns import BUILTINS, column_value, columns_file, columns_for, file_stamp
from .model import Cell, is_published
from .workers import ColumnInfo, Task, WorkerPool, error_text

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunFacts, RunSummary, Source

__all__ = ["ColumnService", "Counts", "compute_now", "summary_cells", "worker_target"]

log = logging.getLogger(__name__)

#: Runs per batch of background recomputation (new and ended runs go first between batches).
BATCH = 20
#: Longest wait for a change before looking again (a columns file edit wakes nothing).
LOOK_EVERY = 1.0
#: Least time between two looks: a store written at 1 kHz is looked at 20 times a second.
GATHER = 0.05
#: How often the service asks the store for missing cells even when nothing told it to.
SWEEP_EVERY = 60.0
#: Newest runs whose stored cells tell which columns existed when the service started.
SEEN_RUNS = 200


@dataclass
class Counts:
    """What a pass computed: runs, cells, and cells that failed (error or timeout)."""

    runs: int = 0
    cells: int = 0
    failed: int = 0

    def add(self, cells: Mapping[str, Cell]) -> None:
        self.cells += len(cells)
        self.failed += sum(1 for c in cells.values() if c.status != "ok")

    def __str__(self) -> str:
        return f"{self.runs} runs, {self.cells} cells, {self.failed} failed"


def worker_target(catalog: Catalog) -> str:
    """What a worker process passes to ``scandeck.open_catalog`` to open ``catalog``'s store.

    Raises
    ------
    ScandeckError
        A ``memory://`` store, which lives in one process only.
    """
    uri = catalog.source.uri
    if uri.startswith("memory://"):
        raise ScandeckError(
            f"the store {uri} lives in this process only: worker processes cannot read its runs; "
            "computed columns need a store other processes open (a directory, .sqlite file, Redis or Tiled)"
        )
    return uri


def summary_cells(catalog: Catalog, summary: RunSummary, names: Iterable[str]) -> dict[str, Cell]:
    """The summary-only built-in columns among ``names``, computed here from the index row."""
    run = catalog.run_of(summary)
    final = summary.status != "running"
    out = {}
    for name in names:
        spec = BUILTINS.get(name)
        if spec is None or not spec.summary_only:
            continue
        try:
            out[name] = Cell(column_value(spec.func(run)), spec.code_hash, "ok", None, time.time(), final)
        except Exception as err:  # noqa: BLE001 - stored as the cell, as a user column's error
            out[name] = Cell(None, spec.code_hash, "error", error_text(err), time.time(), final)
    return out


class ColumnService:
    """Compute ``catalog``'s columns for every run, in the background.

    Parameters
    ----------
    catalog
        A catalog whose store keeps facts (:class:`~scandeck.sources.protocol.RunFacts`).
    workers
        Worker processes computing at once.
    interval
        Least seconds between two computations of a running run's columns.
    timeout
        Seconds a column may take when it names no ``timeout=`` (default 30).
    say
        Called with a line per batch (``scandeck columns serve`` prints them).

    Raises
    ------
    FactsNotSupported
        The store cannot keep computed cells (named in the message).

    Examples
    --------
    >>> service = ColumnService(cat, workers=2)      # doctest: +SKIP
    >>> service.start(); ...; service.close()        # doctest: +SKIP
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        workers: int = 2,
        interval: float = 3.0,
        timeout: float | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.facts: RunFacts = facts_of(catalog.source)
        self.target = worker_target(catalog)
        self.interval = interval
        self.pool = WorkerPool(workers, **({} if timeout is None else {"default_timeout": timeout}))
        self.say = say or (lambda line: log.info("scandeck columns: %s", line))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamp: object = None
        self._file: Path | None = None
        self.columns: dict[str, ColumnInfo] = {}
        #: The columns file's load error, while it does not load (its columns then wait).
        self.file_error: str | None = None
        self._known: set[str] | None = None
        self._seq: int | None = None
        self._running: dict[str, tuple[float, int]] = {}  # uid -> (when computed, events then)
        self._dirty = True
        self._swept = 0.0
        #: Totals since the service started.
        self.totals = Counts()
        #: Why :meth:`serve` gave up (a read-only store), else None.
        self.failed: ScandeckError | None = None

    # -- columns --------------------------------------------------------------------------------

    def refresh_columns(self) -> bool:
        """Load the columns again if the file changed (in a worker); True when they changed."""
        path = columns_file(self.catalog)
        try:
            stamp: object = (path, file_stamp(path)) if path is not None else None
        except OSError:
            stamp = (path, None)
        if stamp == self._stamp and self.columns:
            return False
        self._stamp, self._file = stamp, path
        try:
            infos = self.pool.describe(path) if path is not None else None
        except ColumnsFileError as err:
            if self.file_error != str(err):
                self.say(printable(f"the columns file does not load: {err}; its columns wait until it does"))
            self.file_error = str(err)
            infos = None
            loaded = False
        else:
            self.file_error = None
            loaded = True
        if infos is None:
            infos = [_builtin_info(name) for name in BUILTINS]
        before = self.columns
        self.columns = {i.name: i for i in infos}
        if loaded:
            self._forget_removed()
        changed = {(i.name, i.code_hash) for i in before.values()} != {
            (i.name, i.code_hash) for i in self.columns.values()
        }
        if changed:
            self._dirty = True
            self.say(f"{len(self.columns)} columns: {', '.join(self.columns)}")
        return changed

    def _forget_removed(self) -> None:
        """Delete the cells of columns no longer defined (known from cells of the newest runs at first)."""
        if self._known is None:
            uids = [s.uid for s in self.catalog.source.search(Query.all(), limit=SEEN_RUNS)]
            self._known = {
                name for cells in self.facts.cells(uids).values() for name in cells if not is_published(name)
            }
        for name in sorted(self._known - set(self.columns)):
            n = self.facts.delete_cells(name)
            self.say(printable(f"column {name} is no longer defined: deleted its {n} cells"))
        self._known = set(self.columns)

    # -- computing ------------------------------------------------------------------------------

    def _tasks(self, wanted: Mapping[str, Collection[str]], finals: Mapping[str, bool]) -> list[Task]:
        # A file that does not load is not passed: the built-ins are computed without it.
        file = None if self._file is None or self.file_error is not None else str(self._file)
        tasks = []
        for uid, names in wanted.items():
            cols = tuple(
                (n, self.columns[n].code_hash)
                for n in names
                if n in self.columns and not self.columns[n].summary_only
            )
            if cols:
                tasks.append(Task(self.target, uid, cols, file, finals.get(uid, True)))
        return tasks

    def compute(self, wanted: Mapping[str, Collection[str]]) -> Counts:
        """Compute, store and count ``{uid: column names}`` (summary-only ones here, the rest in workers)."""
        counts = Counts()
        finals: dict[str, bool] = {}
        source = self.catalog.source
        for uid, names in wanted.items():
            try:
                summary = source.get(uid)
            except RunNotFound:
                continue
            finals[uid] = summary.status != "running"
            counts.runs += 1
            here = summary_cells(self.catalog, summary, [n for n in names if n in self.columns])
            if here:
                self.facts.put_cells(uid, here)
                counts.add(here)

        def store(uid: str, cells: dict[str, Cell]) -> None:
            try:
                self.facts.put_cells(uid, cells)
            except RunNotFound:  # removed (trimmed from a bus) while its columns were computed
                return
            counts.add(cells)

        self.pool.compute(self._tasks(wanted, finals), on_cells=store, stop=self._stop)
        _merge(self.totals, counts)
        return counts

    def backlog(self, limit: int = BATCH) -> dict[str, list[str]]:
        """Up to ``limit`` runs with missing, stale or not-final cells, newest first: ``{uid: names}``."""
        wanted: dict[str, list[str]] = {}
        for info in self.columns.values():
            for uid in self.facts.needing(info.name, info.code_hash, limit=limit):
                wanted.setdefault(uid, []).append(info.name)
        if len(wanted) <= limit:
            return wanted
        # Newest first across columns: each column's list is, so order by the store's index rows.
        order = {s.uid: (s.time, s.seq) for s in map(self._summary, wanted) if s is not None}
        keep = sorted(order, key=order.__getitem__, reverse=True)[:limit]
        return {uid: wanted[uid] for uid in keep}

    def _summary(self, uid: str) -> RunSummary | None:
        try:
            return self.catalog.source.get(uid)
        except RunNotFound:
            return None

    def run_once(self) -> Counts:
        """Compute every missing, stale or not-final cell of the ended runs now, and the running
        runs' cells once; the counts. For tests and ``scandeck columns recompute``."""
        self.refresh_columns()
        total = Counts()
        while not self._stop.is_set():
            wanted = self.backlog()
            if not wanted:
                break
            _merge(total, self.compute(wanted))
        running = [
            s.uid for s in self.catalog.source.search(Query.all(), limit=SEEN_RUNS) if s.status == "running"
        ]
        if running:
            _merge(total, self.compute({uid: list(self.columns) for uid in running}))
        return total

    def recompute(
        self, names: Collection[str] | None = None, *, progress: Callable[[int, int, Counts], None] | None = None
    ) -> Counts:
        """Compute ``names`` (all columns when None) for every run of the catalog now, stale or not.

        ``progress(done, total, counts)`` is called after each batch.

        Raises
        ------
        ColumnsFileError
            The columns file does not load, or ``names`` has a column it does not define.
        """
        self.refresh_columns()
        if self.file_error is not None:
            raise ColumnsFileError(self.file_error)
        wanted = list(self.columns) if not names else list(names)
        unknown = [n for n in wanted if n not in self.columns]
        if unknown:
            raise ColumnsFileError(
                printable(f"no column {', '.join(unknown)}; the columns are: {', '.join(self.columns)}")
            )
        total = len(self.catalog)
        counts = Counts()
        done = 0
        batch: list[str] = []
        for run in self.catalog:
            batch.append(run.uid)
            if len(batch) == BATCH * 5:
                _merge(counts, self.compute(dict.fromkeys(batch, wanted)))
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(done, total, counts)
            if self._stop.is_set():
                return counts
        if batch:
            _merge(counts, self.compute(dict.fromkeys(batch, wanted)))
            done += len(batch)
            if progress is not None:
                progress(done, total, counts)
        return counts

    # -- following the store --------------------------------------------------------------------

    def serve(self) -> None:
        """Keep the cells current until :meth:`stop` (blocking; :meth:`start` runs it in a thread), or
        until the store refuses a cell as read-only (:attr:`failed` says so)."""
        source = self.catalog.source
        while not self._stop.is_set():
            try:
                self._serve(source)
            except ReadOnlyStore as err:  # it stays so while open: every cell computed would be lost
                self.failed = err
                self.say(printable(f"error: {err}; the column service stops"))
                return
            except Exception as err:  # noqa: BLE001 - a store hiccup must not end the service
                log.exception("scandeck: the column service of %s failed; trying again", self.catalog.name)
                self.say(printable(f"error: {type(err).__name__}: {err}; trying again"))
                self._stop.wait(1.0)

    def _serve(self, source: Source) -> None:
        if self._seq is None:
            self._seq = source.latest_seq()  # runs arriving from now on are seen by runs_since
            for s in source.search(Query.all(), limit=SEEN_RUNS):
                if s.status == "running":
                    self._running[s.uid] = (0.0, -1)
        last = 0.0
        while not self._stop.is_set():
            # Looks at most every GATHER seconds; a change after a quiet spell is looked at at once.
            pause = last + GATHER - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                return
            last = time.monotonic()
            token = source.change_token()
            self.refresh_columns()
            did = self._look(source)
            if self._dirty or time.monotonic() - self._swept > SWEEP_EVERY:
                wanted = self.backlog()
                if wanted:
                    self._report("stale or missing", self.compute(wanted))
                    did = True
                else:
                    self._dirty = False
                    self._swept = time.monotonic()
            if did:
                continue
            wait = LOOK_EVERY
            if self._running:
                wait = min(wait, self.interval)
            source.wait(token, wait)

    def _look(self, source: Source) -> bool:
        """Compute the runs that ended, and the running ones that are due; whether anything was done."""
        assert self._seq is not None
        ended: list[str] = []
        for s in source.runs_since(self._seq):
            self._seq = s.seq
            if s.status == "running":
                # First computed an interval after it started: a short run gets only its final cells.
                self._running[s.uid] = (time.monotonic(), 0)
            else:
                ended.append(s.uid)
        now = time.monotonic()
        due: list[str] = []
        for uid, (at, events) in list(self._running.items()):
            row = self._summary(uid)
            if row is None:
                del self._running[uid]
            elif row.status != "running":
                del self._running[uid]
                ended.append(uid)
            elif row.num_events != events and now - at >= self.interval:
                due.append(uid)
                self._running[uid] = (now, row.num_events)
        names = list(self.columns)
        if ended:
            self._report("ended", self.compute(dict.fromkeys(ended, names)))
            self._dirty = True  # their cells are in; look for any others missing
        if due:
            self._report("running", self.compute(dict.fromkeys(due, names)))
        return bool(ended or due)

    def _report(self, what: str, counts: Counts) -> None:
        if counts.runs:
            failed = f", {counts.failed} failed" if counts.failed else ""
            self.say(f"{what}: {counts.runs} runs, {counts.cells} cells{failed}")

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a daemon thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve, name=f"scandeck-columns-{self.catalog.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Ask the service to end: the computation under way is abandoned (its workers killed)."""
        self._stop.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop, wait for the thread, end the workers; idempotent."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.pool.close()


def _merge(total: Counts, part: Counts) -> None:
    total.runs += part.runs
    total.cells += part.cells
    total.failed += part.failed


def _builtin_info(name: str) -> ColumnInfo:
    s = BUILTINS[name]
    return ColumnInfo(s.name, s.title, s.units, s.code_hash, True, s.timeout, s.summary_only)


# -- readers that find cells missing --------------------------------------------------------------

_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def _shared_pool() -> WorkerPool:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WorkerPool(2)
            atexit.register(_shared.close)
        return _shared


def compute_now(catalog: Catalog, uids: Collection[str], names: Collection[str]) -> dict[str, dict[str, Cell]]:
    """Compute columns ``names`` of runs ``uids`` now, store them (a writable store with facts) and
    return them.

    For a reader that found cells missing where no service computed them. Summary-only
    built-ins are computed here, the others in worker processes (a pool kept for this
    process). Unknown names are passed over (the caller checked them).

    Raises
    ------
    ColumnsFileError
        The catalog's columns file does not load.
    """
    from ..sources.protocol import RunFacts

    specs = columns_for(catalog)
    wanted = [n for n in names if n in specs]
    source = catalog.source
    out: dict[str, dict[str, Cell]] = {}
    summaries: dict[str, RunSummary] = {}
    for uid in uids:
        try:
            summaries[uid] = source.get(uid)
        except RunNotFound:
            continue
        out[uid] = summary_cells(catalog, summaries[uid], wanted)
    in_workers = [n for n in wanted if not specs[n].summary_only]
    if in_workers and summaries:
        cols = tuple((n, specs[n].code_hash) for n in in_workers)
        path = columns_file(catalog)
        try:
            target = worker_target(catalog)
        except ScandeckError as err:
            for uid, s in summaries.items():
                final = s.status != "running"
                out[uid].update({n: Cell(None, h, "error", str(err), time.time(), final) for n, h in cols})
        else:
            tasks = [
                Task(target, uid, cols, None if path is None else str(path), s.status != "running")
                for uid, s in summaries.items()
            ]
            for uid, cells in _shared_pool().compute(tasks).items():
                out[uid].update(cells)
    if isinstance(source, RunFacts):
        try:
            for uid, cells in out.items():
                if cells:
                    source.put_cells(uid, cells)
        except ReadOnlyStore:
            pass  # a read-only store (an archive): the reader gets the cells, none is stored
    return out
