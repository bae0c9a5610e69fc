"""Run callbacks on the kernel's own event loop, between user requests.

ipykernel runs each cell on its main event loop; a callback posted there runs
when the loop is free, so never in the middle of a synchronous cell. A cell
with top-level ``await`` frees the loop while it waits, so callbacks that find
a cell running are held back until ``post_run_cell``. Outside a kernel (a
script, a plain IPython terminal) a private loop thread stands in.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any


class KernelLoop:
    """Posts callables from any thread onto the kernel's main loop.

    Parameters
    ----------
    shell
        The IPython shell (``get_ipython()``); ``None`` starts a private loop thread.
    """

    def __init__(self, shell: Any | None = None) -> None:
        self.shell = shell
        kernel = getattr(shell, "kernel", None)
        self._loop: Any = getattr(kernel, "io_loop", None)
        self._cell_running = False
        self._held: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        if self._loop is None:
            self._loop = _private_loop()
        if shell is not None and hasattr(shell, "events"):
            shell.events.register("pre_run_cell", self._pre_run_cell)
            shell.events.register("post_run_cell", self._post_run_cell)

    @property
    def in_kernel(self) -> bool:
        return getattr(self.shell, "kernel", None) is not None

    def close(self) -> None:
        if self.shell is not None and hasattr(self.shell, "events"):
            for name, fn in (("pre_run_cell", self._pre_run_cell), ("post_run_cell", self._post_run_cell)):
                try:
                    self.shell.events.unregister(name, fn)
                except ValueError:
                    pass

    def _pre_run_cell(self, info: Any = None) -> None:
        self._cell_running = True

    def _post_run_cell(self, result: Any = None) -> None:
        self._cell_running = False
        with self._lock:
            held, self._held = self._held, []
        for fn in held:
            self.call_soon(fn)

    def _guarded(self, fn: Callable[[], None]) -> None:
        if self._cell_running:
            with self._lock:
                self._held.append(fn)
            return
        fn()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop as soon as no cell runs (thread-safe)."""
        self._loop.add_callback(self._guarded, fn)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop after ``delay`` seconds and when no cell runs (thread-safe)."""
        if delay <= 0:
            self.call_soon(fn)
        else:
            self._loop.add_callback(lambda: self._loop.call_later(delay, self._guarded, fn))


class Coalescer:
    """Call ``fn`` on the loop at most every ``interval`` seconds; the latest state wins.

    :meth:`poke` (from any thread) says "there is something new". Pokes while a
    call is pending merge into it; ``fn`` reads the current state when it runs,
    so the last state is always the one shown. The interval counts from the end
    of the previous call and stretches to that call's own duration, so a slow
    ``fn`` never takes more than about half of the kernel's time.
    """

    def __init__(self, loop: KernelLoop, fn: Callable[[], None], interval: float) -> None:
        self.loop = loop
        self.fn = fn
        self.interval = max(0.0, interval)
        self._lock = threading.Lock()
        self._pending = False
        self._last = float("-inf")  # when the previous call ended
        self._took = 0.0  # how long it took
        self.closed = False

    def poke(self, *, now: bool = False) -> None:
        with self._lock:
            if self._pending or self.closed:
                return
            self._pending = True
            delay = 0.0 if now else self._last + max(self.interval, self._took) - time.monotonic()
        self.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        with self._lock:
            self._pending = False
            if self.closed:
                return
        began = time.monotonic()
        try:
            self.fn()
        finally:
            self._last = time.monotonic()
            self._took = self._last - began

    def close(self) -> None:
        with self._lock:
            self.closed = True


class _ThreadLoop:
    """A tornado-like ``add_callback``/``call_later`` on a private asyncio thread."""

    def __init__(self) -> None:
        self.aio = asyncio.new_event_loop()
        thread = threading.Thread(target=self.aio.run_forever, name="scandeck-loop", daemon=True)
        thread.start()

    def add_callback(self, fn: Callable[..., Any], *args: Any) -> None:
        self.aio.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self.aio.call_later(delay, fn, *args)


_private: _ThreadLoop | None = None


def _private_loop() -> _ThreadLoop:
    global _private
    if _private is None:
        _private = _ThreadLoop()
    return _private
