"""A real IPython kernel for the benchmarks, driven through jupyter_client like a front end.

A reader thread keeps every IOPub message with the wall time it arrived, so a
benchmark can count what a bound cell sent during a window (widget updates are
``comm_msg``s outside any request) as well as time its own requests.

Kept apart from ``tests/`` on purpose: the benchmarks must not move when a test
helper changes.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from typing import Any


class Kernel:
    """Start a kernel; :meth:`execute` runs code as a front end that takes input would.

    ``allow_stdin=True`` is what JupyterLab sends; scandeck's ``%%bind`` only
    goes live for such a front end (papermill and nbclient send False).
    """

    def __init__(self, env: dict[str, str] | None = None, *, startup_timeout: float = 60) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env={**os.environ, **(env or {})})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.messages: list[tuple[float, dict[str, Any]]] = []  # (time.time() on arrival, msg)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle: dict[str, threading.Event] = {}
        self._idle_seen: set[str] = set()  # an idle can arrive before execute() registers
        try:
            self.kc.wait_for_ready(timeout=startup_timeout)
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read, name="bench-iopub", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        proc = getattr(provisioner, "process", None)
        return getattr(proc, "pid", None)

    # -- IOPub -----------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    msg = self.kc.get_iopub_msg(timeout=0.05)
                except queue.Empty:
                    continue
                now = time.time()
                with self._lock:
                    self.messages.append((now, msg))
                    if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        parent = msg.get("parent_header", {}).get("msg_id")
                        self._idle_seen.add(parent)
                        event = self._idle.get(parent)
                        if event is not None:
                            event.set()
        finally:
            # jupyter_client made an asyncio loop for this thread: close it with the thread.
            try:
                from jupyter_core.utils import ensure_event_loop

                ensure_event_loop().close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass

    def iopub_between(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """IOPub messages that arrived in the wall-time window ``[t0, t1]``."""
        with self._lock:
            return [m for t, m in self.messages if t0 <= t <= t1]

    # -- requests --------------------------------------------------------------------------

    def execute(self, code: str, *, timeout: float = 60) -> dict[str, Any]:
        """Run ``code``; return the reply content, its ``stdout`` and the round-trip ``elapsed``.

        ``elapsed`` runs from sending the request to its idle status (reply and
        every output received), measured with ``time.perf_counter``.
        """
        done = threading.Event()
        t0 = time.perf_counter()
        msg_id = self.kc.execute(code, allow_stdin=True)
        with self._lock:
            self._idle[msg_id] = done
            if msg_id in self._idle_seen:
                done.set()
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        if not done.wait(timeout):
            raise TimeoutError(f"no idle status for {code[:40]!r}")
        elapsed = time.perf_counter() - t0
        with self._lock:
            del self._idle[msg_id]
            self._idle_seen.discard(msg_id)
            own = [m for _, m in self.messages if m.get("parent_header", {}).get("msg_id") == msg_id]
        content = dict(reply["content"])
        if content["status"] == "error":
            raise RuntimeError(f"kernel error in {code[:60]!r}: {content.get('ename')}: "
                               f"{content.get('evalue')}")
        content["elapsed"] = elapsed
        content["stdout"] = "".join(m["content"]["text"] for m in own
                                    if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        return content

    def value(self, expression: str, *, timeout: float = 60) -> Any:
        """The JSON value of ``expression`` evaluated in the kernel."""
        out = self.execute(f"import json as _j; print(_j.dumps({expression}))", timeout=timeout)["stdout"]
        return json.loads(out.strip().splitlines()[-1])

    def close(self) -> None:
        """Stop the reader, the channels and the kernel (forcefully: a benchmark must not hang)."""
        self._stop.set()
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(2)
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
