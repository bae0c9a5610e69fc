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

    def __init__(
        self, env: dict[str, str] | None = None, *, log: str | None = None, startup_timeout: float = 60
    ) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")  # loopback TCP, as a local JupyterLab
        self._log = open(log, "ab") if log else None  # noqa: SIM115 - closed in close()
        extra = {"stdout": self._log, "stderr": self._log} if self._log else {}
        self.km.start_kernel(env={**os.environ, **(env or {})}, **extra)
        _kernels.append(self)
        self.own: set[str] = set()  # msg_ids of our own requests
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
            self.own.add(msg_id)
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
            raise RuntimeError(f"kernel error in {code[:60]!r}: {content.get('ename')}: {content.get('evalue')}")
        content["elapsed"] = elapsed
        content["stdout"] = "".join(
            m["content"]["text"] for m in own if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )
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
            if self._log is not None:
                self._log.close()
            if self in _kernels:
                _kernels.remove(self)


_kernels: list[Kernel] = []


def close_kernels() -> None:
    """Shut down every kernel still running."""
    for kernel in list(_kernels):
        try:
            kernel.close()
        except Exception:  # noqa: BLE001 - teardown goes on with the others
            pass


# ---------------------------------------------------------------------------- child processes

_children: list[Child] = []


class Child:
    """A helper process speaking a line protocol: commands on stdin, ``@@ <json>`` lines back.

    Other stdout lines (a library's chatter) are ignored; stderr is inherited.
    Every child is killed by :func:`kill_children` (by its pid), which the
    benchmark calls on exit, on error and on SIGTERM.
    """

    def __init__(self, role: str, argv: list[str]) -> None:
        import subprocess
        import sys

        self.role = role
        self.proc = subprocess.Popen(
            [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        _children.append(self)
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, name=f"bench-{role}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                self._lines.put(json.loads(line[3:]))
        self._lines.put(None)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def get(self, timeout: float = 60) -> dict[str, Any]:
        """The next message; raises if the child ended or said nothing for ``timeout`` s."""
        try:
            msg = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.role}: nothing within {timeout:g} s") from None
        if msg is None:
            self._lines.put(None)
            raise RuntimeError(f"{self.role} (pid {self.proc.pid}) ended with code {self.proc.wait()}")
        return msg

    def poll(self) -> dict[str, Any] | None:
        """The next message if one is there, else None."""
        try:
            msg = self._lines.get_nowait()
        except queue.Empty:
            return None
        if msg is None:
            self._lines.put(None)
            raise RuntimeError(f"{self.role} (pid {self.proc.pid}) ended with code {self.proc.wait()}")
        return msg

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        if self in _children:
            _children.remove(self)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except Exception:  # noqa: BLE001 - nothing more to do at teardown
                pass
        if self in _children:
            _children.remove(self)


def emit(payload: dict[str, Any]) -> None:
    """In a child: send one protocol message to the benchmark."""
    print("@@ " + json.dumps(payload), flush=True)


def kill_children() -> None:
    """Kill every child still running (each by its own pid)."""
    for child in list(_children):
        child.kill()


def cleanup() -> None:
    """Every kernel and child process this benchmark started: gone."""
    close_kernels()
    kill_children()
