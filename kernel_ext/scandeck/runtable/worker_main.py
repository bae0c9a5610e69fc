"""A column worker process's side: read tasks, open the catalog, call the columns, send cells.

Started by :class:`scandeck.runtable.workers.WorkerPool` as ``python -c "...serve(fd)"``
with one end of a socket pair; the messages are documented there.
"""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ColumnsFileError
from .columns import BUILTINS, column_value, with_builtins
from .model import Cell
from .workers import Task, error_text

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["serve"]


def serve(fd: int) -> None:
    """A worker process's main: serve tasks on the socket ``fd`` until it closes."""
    _worker_main(Connection(fd))


def _worker_main(conn: Connection) -> None:
    """A worker's loop: tasks in, messages out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which stops us
    catalogs: dict[str, Catalog] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "describe":
            try:
                specs = with_builtins(Path(message[1]) if message[1] else None)
                conn.send(("columns", [_info(s) for s in specs.values()]))
            except ColumnsFileError as err:
                conn.send(("error", str(err)))
        elif kind == "task":
            _run_task(conn, catalogs, message[1], message[2])


def _info(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "units": spec.units,
        "code_hash": spec.code_hash,
        "builtin": spec.builtin,
        "timeout": spec.timeout,
        "summary_only": spec.summary_only,
    }


def _run_task(conn: Connection, catalogs: dict[str, Catalog], task: Task, default_timeout: float) -> None:
    from ..opening import open_catalog

    def fail_all(text: str) -> None:
        for name, known in task.columns:
            conn.send(("cell", name, Cell(None, known, "error", text, time.time(), task.final).to_dict()))
        conn.send(("done",))

    try:
        cat = catalogs.get(task.target)
        if cat is None:
            cat = catalogs[task.target] = open_catalog(task.target)
        summary = cat.source.get(task.uid)
    except Exception as err:  # noqa: BLE001 - every cell of the task says why, then the next task
        fail_all(error_text(err))
        return
    try:
        specs = with_builtins(Path(task.columns_file) if task.columns_file else None)
    except ColumnsFileError:
        # Broken since the service loaded it: the built-ins never depend on it, and the file's
        # columns wait (no cell, "gone") until it loads again, as the service makes them wait.
        specs = dict(BUILTINS)
    run = cat.run_of(summary)
    final = summary.status != "running"
    for name, _known in task.columns:
        spec = specs.get(name)
        if spec is None:  # removed from the file since the task was made
            conn.send(("gone", name))
            continue
        conn.send(("begin", name, spec.timeout or default_timeout, spec.code_hash, final))
        try:
            value = spec.func(run)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the column's own failure, stored as its cell
            cell = Cell(None, spec.code_hash, "error", error_text(err), time.time(), final)
        else:
            try:
                cell = Cell(column_value(value), spec.code_hash, "ok", None, time.time(), final)
            except TypeError as err:  # what came back, not where our check raised
                cell = Cell(None, spec.code_hash, "error", f"TypeError: {err}", time.time(), final)
        conn.send(("cell", name, cell.to_dict()))
    conn.send(("done",))
