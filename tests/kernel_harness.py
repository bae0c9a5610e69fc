"""A real IPython kernel for tests, driven through jupyter_client like a front end.

Every IOPub message is recorded by a reader thread, so tests can look at what
arrived between requests (widget updates from bound cells) as well as at the
replies to their own requests.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from jupyter_client.manager import KernelManager


class KernelSession:
    """Start a kernel, execute code, and keep every IOPub message in ``self.messages``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env={**os.environ, **env})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._idle: dict[str, threading.Event] = {}
        self._idle_seen: set[str] = set()  # idle can arrive before execute() registers its event
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            self._read_until_stopped()
        finally:
            # jupyter_client made an asyncio loop for this thread: close it with the thread.
            from jupyter_core.utils import ensure_event_loop

            ensure_event_loop().close()

    def _read_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            msg["received"] = time.monotonic()
            with self._lock:
                self.messages.append(msg)
                parent = msg.get("parent_header", {}).get("msg_id")
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    self._idle_seen.add(parent)
                    if parent in self._idle:
                        self._idle[parent].set()

    def execute(
        self, code: str, *, allow_stdin: bool = True, timeout: float = 60, cell_id: str | None = None
    ) -> dict[str, Any]:
        """Run ``code``; return its reply content plus its own outputs under ``outputs``.

        ``cell_id`` is sent in the request metadata as JupyterLab does (``cellId``).
        """
        done = threading.Event()
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        with self._lock:
            self._idle[msg_id] = done
            if msg_id in self._idle_seen:
                done.set()
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        if not done.wait(timeout):
            raise TimeoutError(f"no idle status for {code[:40]!r}")
        content = dict(reply["content"])
        content["msg_id"] = msg_id
        content["outputs"] = self.outputs_of(msg_id)
        if content["status"] == "error":
            raise AssertionError("\n".join(content.get("traceback", [])))
        return content

    def outputs_of(self, msg_id: str) -> list[dict[str, Any]]:
        kinds = ("stream", "display_data", "execute_result", "error", "update_display_data")
        with self._lock:
            return [
                m for m in self.messages if m["msg_type"] in kinds and m["parent_header"].get("msg_id") == msg_id
            ]

    def text_of(self, msg_id: str) -> str:
        parts = []
        for m in self.outputs_of(msg_id):
            c = m["content"]
            data = c.get("data", {})
            parts.append(c.get("text") or data.get("text/html") or data.get("text/plain", ""))
        return "".join(parts)

    def widget_outputs(self) -> list[tuple[float, str, tuple]]:
        """Every ``outputs`` state update of Output widgets: (time, comm_id, outputs)."""
        with self._lock:
            found = []
            for m in self.messages:
                if m["msg_type"] != "comm_msg":
                    continue
                data = m["content"]["data"]
                if not isinstance(data, dict):  # Bokeh/Panel comms carry other payloads
                    continue
                state = data.get("state", {})
                if data.get("method") == "update" and "outputs" in state:
                    found.append((m["received"], m["content"]["comm_id"], tuple(state["outputs"])))
        return found

    def wait_for(self, predicate: Any, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._reader.join(2)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def output_text(outputs: tuple) -> str:
    """The text of nbformat outputs (stream text, text/plain, error names)."""
    parts = []
    for o in outputs:
        if o["output_type"] == "stream":
            parts.append(o["text"])
        elif o["output_type"] == "error":
            parts.append(f"{o['ename']}: {o['evalue']}\n")
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)
