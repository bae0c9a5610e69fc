"""A bound cell: follow a run, re-run the cell's code as data arrives, show it in place.

The follower thread only collects rows and pokes a coalescer; the cell itself
always runs on the kernel's main loop, between user requests, with the newest
state: ``run``, ``df`` (all rows so far, or the newest N with ``--window N``), ``new``
(rows since its last run) and ``event`` (the newest row) bound in the notebook
namespace. The rows come from the run's shared follower (:mod:`scandeck.pipeline.hub`)
and are kept by the binding as numpy columns (:class:`~scandeck.pipeline.columns.KeptColumns`). Its outputs replace
the previous ones in the binding's own output area (an ipywidgets ``Output``
whose ``outputs`` are set in one update, so they never leak into the cell
that happens to be running).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog, Run
from ..pipeline.columns import KeptColumns
from ..pipeline.follower import DATA, RUN_START, RUN_STOP, Follower, FollowState
from ..pipeline.hub import subscribe
from ..pipeline.loop import Coalescer, KernelLoop
from .cellexec import run_cell_collecting

_ids = itertools.count(1)


@dataclass(frozen=True)
class BindOptions:
    """What ``%%bind`` was asked: the target run, stream, trigger and pace."""

    uid: str | None = None
    stream: str = "primary"
    on: str = "event"  # or "run": once per finished run
    every: float = 0.2
    fill: bool | tuple[str, ...] = ()  # external array keys read into df (True: all)
    window: int | None = None  # keep only the newest this many rows in df

    def describe(self) -> str:
        target = f"run {self.uid[:8]}" if self.uid else "the newest run"
        return (
            f"{target} · {self.stream} · on {self.on}"
            + (f" · every {self.every:g}s" if self.on == "event" else "")
            + (f" · window {self.window}" if self.window else "")
        )


def bind_names(shell: Any, catalog: Catalog, state: FollowState, kept: KeptColumns, consumed: int) -> None:
    """Set ``run``, ``df``, ``new`` and ``event`` in the notebook namespace.

    ``df`` holds the rows ``kept`` (the run's, or its newest with a window), ``new``
    those of them from row ``consumed`` on, ``event`` the newest.
    """
    from ..provenance.context import note

    table = state.table
    if state.uid:
        note(
            state.uid,
            scan_id=(state.start or {}).get("scan_id"),
            catalog=catalog.name,
            stream=table.stream,
            fields=list(table.keys),
        )
    shell.user_ns["run"] = Run(catalog.source, catalog.source.get(state.uid)) if state.uid else None
    columns = ["time", *table.keys] if table.timed else list(table.keys)
    shell.user_ns["df"] = kept.frame(keys=columns, empty_dtype=table.empty_dtype)
    shell.user_ns["new"] = kept.frame(consumed, keys=columns, empty_dtype=table.empty_dtype)
    shell.user_ns["event"] = kept.row()


class Binding:
    """One ``%%bind`` cell, live."""

    def __init__(
        self,
        shell: Any,
        loop: KernelLoop,
        catalog: Catalog,
        code: str,
        options: BindOptions,
        view: Any,
        cell_id: str | None = None,
    ) -> None:
        self.id = next(_ids)
        self.cell_id = cell_id
        self.shell = shell
        self.catalog = catalog
        self.code = code
        self.options = options
        self.view = view
        self.executions = 0
        self.failures = 0
        self.last_error: str | None = None
        self.events_seen = 0
        self.runs_seen = 0
        self.created = time.time()
        self._consumed = 0
        self._shown_uid: str | None = None
        self._lock = threading.Lock()
        self._finished_pending = False
        self.coalescer = Coalescer(loop, self._execute, options.every)
        self.ui = Coalescer(loop, self._refresh_ui, 0.2)  # status and progress between cell runs
        #: The rows this binding keeps for ``df``: its own copy, taken from the shared follower.
        self.kept = KeptColumns(options.window)
        self._kept_uid: str | None = None
        self.reader = subscribe(
            catalog.source,
            options.uid,
            listener=self._on_follow,
            stream=options.stream,
            fill=options.fill,
            name=f"scandeck-bind-{self.id}",
        )
        self.active = False

    @property
    def follower(self) -> Follower:
        """The run's follower, shared with the other consumers of the run."""
        return self.reader.follower

    def start(self) -> None:
        self.active = True
        self.view.status(self.status_text())
        self.reader.start()
        self._take()  # what the shared follower read before this binding joined
        self.coalescer.poke()

    def stop(self) -> None:
        """End the binding: it stops taking rows, its output stays as last shown.

        The run's follower goes on for its other consumers (and stops with the last).
        """
        self.active = False
        self.coalescer.close()
        self.ui.close()
        self.reader.close()
        self.view.status(self.status_text() + " · unbound")

    def _take(self) -> None:
        """Move the rows the shared follower holds for this binding into its own columns."""
        with self._lock:
            while (got := self.reader.take()) is not None:
                state, cols = got
                if state.uid != self._kept_uid:  # a new run: df starts again
                    self._kept_uid, self.kept = state.uid, KeptColumns(self.options.window)
                self.kept.extend(cols)

    @property
    def target(self) -> str:
        uid = self.follower.state.uid
        return uid[:8] if uid else ("newest run" if self.options.uid is None else self.options.uid[:8])

    def status_text(self) -> str:
        state = self.follower.state
        scan = state.start.get("scan_id") if state.start else None
        run = f"scan {scan} ({state.uid[:8]})" if state.uid else "waiting for a run"
        runs = "1 run" if self.executions == 1 else f"{self.executions} runs"
        text = f"bind #{self.id} · {run} · {state.status} · {state.num_events} events · {runs} of the cell"
        if self.failures:
            text += f" · {self.failures} failed"
        return text

    # -- follower thread -------------------------------------------------------------------

    def _on_follow(self, kind: str, state: FollowState) -> None:
        self._take()
        if kind == RUN_START:
            with self._lock:
                self.runs_seen += 1
        if self.options.on == "run":
            if kind == RUN_STOP:
                with self._lock:
                    self._finished_pending = True
                self.coalescer.poke(now=True)
            else:
                self.ui.poke()
            return
        if kind in (DATA, RUN_START, RUN_STOP, "error"):
            self.coalescer.poke(now=kind in (RUN_STOP, "error"))

    # -- kernel loop -----------------------------------------------------------------------

    def _execute(self) -> None:
        try:
            self._execute_latest()
        except Exception as err:  # noqa: BLE001 - ours, not the cell's: show it, keep the kernel
            self.failures += 1
            self.last_error = f"scandeck: {type(err).__name__}: {err}"
            self.view.status(f"{self.status_text()} · {self.last_error}")

    def _execute_latest(self) -> None:
        state = self.follower.state
        if self.follower.error is not None:
            self.view.status(f"bind #{self.id} stopped: {self.follower.error!r}")
            return
        if state.uid is None:
            self.view.status(self.status_text())
            return
        if self.options.on == "run":
            with self._lock:
                if not self._finished_pending:
                    return
                self._finished_pending = False
        if not state.table.described and not state.finished:
            # The empty start of a run: bluesky sends a stream's descriptor with its first
            # event, so until then df would have no columns and a cell that summarises
            # them (df.describe()) would fail. The cell waits; the status says for what.
            self.view.status(f"{self.status_text()} · waiting for the first {state.table.stream} event")
            self.view.progress(state)
            return
        self._take()
        if state.uid != self._shown_uid:
            self._shown_uid, self._consumed = state.uid, 0
        with self._lock:
            kept = self.kept if self._kept_uid == state.uid else KeptColumns(self.options.window)
        rows = kept.total
        bind_names(self.shell, self.catalog, state, kept, self._consumed)
        outputs, error = run_cell_collecting(self.shell, self.code)
        outputs = fill_warnings(state.table) + outputs
        self.events_seen += rows - self._consumed
        self._consumed = rows
        self.executions += 1
        if error is not None:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
        self.view.show(outputs)
        self._refresh_ui()

    def _refresh_ui(self) -> None:
        self.view.progress(self.follower.state)
        self.view.status(self.status_text())

    def summary(self) -> dict[str, Any]:
        """A row for ``%bindings``."""
        return {
            "id": self.id,
            "target": self.target,
            "follows": self.options.describe(),
            "events": self.events_seen,
            "executions": self.executions,
            "failures": self.failures,
            "last error": self.last_error or "",
            "active": self.active,
        }


def fill_warnings(table: Any) -> list[dict[str, Any]]:
    """A stderr output naming the external data the table could not read (taken from it)."""
    from ..safe_text import printable

    errors = table.take_errors()
    if not errors:
        return []
    lines = [f"scandeck: could not read external data ({len(errors)} values are None): "]
    lines += [f"  {type(err).__name__}: {printable(str(err))}" for err in errors[:3]]
    if len(errors) > 3:
        lines.append(f"  ... and {len(errors) - 3} more")
    return [{"output_type": "stream", "name": "stderr", "text": "\n".join(lines) + "\n"}]


def run_once(
    shell: Any,
    catalog: Catalog,
    run: Run,
    code: str,
    stream: str,
    fill: bool | tuple[str, ...] = (),
    window: int | None = None,
) -> None:
    """The batch path (papermill, nbclient): bind the finished run's data, run the cell once.

    Outputs go to the cell as usual; an exception propagates so the notebook
    reports the failing cell.
    """
    from ..pipeline.table import LiveTable
    from .cellexec import execute

    table = LiveTable(stream, fill=fill)
    kept = KeptColumns(window)
    for name, doc in run.documents():
        if table.add(name, doc) and table.held >= 10_000:  # kept as numpy, not as lists of values
            kept.extend(table.columns(table.base))
            table.drop(len(table))
    kept.extend(table.columns(table.base))
    table.close()
    for output in fill_warnings(table):
        import sys

        sys.stderr.write(output["text"])
    state = FollowState(uid=run.uid, table=table, start=run.start, stop=run.stop, status=run.status)
    bind_names(shell, catalog, state, kept, 0)
    result = execute(shell, code)
    if result is not None:
        from IPython.display import display

        display(result)
