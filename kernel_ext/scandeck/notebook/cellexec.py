"""Run a cell's code in the user namespace and collect what it shows.

A bound cell re-runs outside any request, so its outputs cannot simply go to
IOPub (they would land in whatever cell the front end thinks is running).
Instead, everything the code prints, displays, returns or raises is collected,
in order, as nbformat output dicts; the binding then puts them in its own
output area in one update.
"""

from __future__ import annotations

import ast
import io
import sys
from typing import Any


def cell_id(shell: Any) -> str | None:
    """The front end's id of the executing cell (JupyterLab sends it in the request's metadata), if any."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    metadata = kernel.get_parent().get("metadata") or {}
    return metadata.get("cellId") or metadata.get("cell_id")


class _Collector:
    """Receives stdout/stderr text and display calls, in order."""

    def __init__(self) -> None:
        self.outputs: list[dict[str, Any]] = []

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self.outputs.append({"output_type": "display_data", "data": data, "metadata": metadata or {}})

    def clear(self) -> None:
        self.outputs.clear()


class _StreamTo(io.TextIOBase):
    def __init__(self, collector: _Collector, name: str) -> None:
        self._collector = collector
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._collector.stream(self.name, text)
        return len(text)


class _DisplayTo:
    """Stands in for the shell's display publisher while a bound cell runs."""

    def __init__(self, collector: _Collector, real: Any) -> None:
        self._collector = collector
        self._real = real
        self.is_publishing = False

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: Any = None,
        update: bool = False,
        **_: Any,
    ) -> None:
        if update:  # display_id updates address outputs elsewhere: let them through
            self._real.publish(data, metadata, transient=transient, update=update)
            return
        self._collector.display(data, metadata)

    def clear_output(self, wait: bool = False) -> None:
        self._collector.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def run_cell_collecting(shell: Any, code: str) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Execute ``code`` like a cell (last expression displayed) and collect its outputs.

    Returns the outputs and the exception the code raised, if any (its
    traceback is already among the outputs, formatted as IPython does).
    """
    collector = _Collector()
    saved = sys.stdout, sys.stderr, shell.display_pub
    sys.stdout, sys.stderr = _StreamTo(collector, "stdout"), _StreamTo(collector, "stderr")
    shell.display_pub = _DisplayTo(collector, saved[2])
    error: BaseException | None = None
    try:
        result = execute(shell, code)
        if result is not None:
            data, metadata = shell.display_formatter.format(result)
            collector.display(data, metadata)
    except Exception as err:  # noqa: BLE001 - shown in the cell's output, counted by the binding
        error = err
        collector.outputs.append(error_output(shell, err))
    finally:
        sys.stdout, sys.stderr, shell.display_pub = saved
    return collector.outputs, error


def execute(shell: Any, code: str) -> Any:
    """Run ``code`` in the user namespace; return the value of a final expression.

    IPython syntax (magics, ``!``) is transformed first; a trailing ``;``
    suppresses the value, as in a notebook.
    """
    source = shell.transform_cell(code)
    filename = shell.compile.cache(source)
    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    namespace = shell.user_ns
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - the user's own cell
    if last is None:
        return None
    return eval(compile(last, filename, "eval"), namespace)  # noqa: S307 - the user's own cell


def error_output(shell: Any, err: BaseException) -> dict[str, Any]:
    """An nbformat ``error`` output for ``err``, with IPython's coloured traceback."""
    tb = err.__traceback__
    # Drop the frames of this module: the user wants their cell's lines.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    lines = shell.InteractiveTB.structured_traceback(type(err), err, tb)
    return {
        "output_type": "error",
        "ename": type(err).__name__,
        "evalue": str(err),
        "traceback": lines,
    }
