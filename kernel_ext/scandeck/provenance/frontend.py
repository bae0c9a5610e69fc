"""Asking the notebook's front end to save the notebook, over comms to ``scandeck.frontend``.

``%provenance save`` records the notebook *file*; a file saved before the last
cell ran does not hold what the user sees. In JupyterLab with scandeck's lab
extension the front end saves it on request, as the panel's button does. The
lab extension registers the comm target :data:`TARGET` on every notebook's kernel:

1. ``%load_ext scandeck`` opens a comm to it (a probe); the front end answers
   ``{"ready": true}``, read by the kernel once that cell has finished. A front
   end without the extension closes the comm instead.
2. ``%provenance save`` on a file older than the last cell opens a new comm whose
   open message asks ``{"request": "save"}`` (a new comm, so that a page loaded
   since step 1 gets it too); the front end saves the notebook. The kernel is
   busy running that cell and cannot read answers (shell messages wait until
   the cell ends), so it watches the notebook file, for at most
   :data:`SAVE_WAIT` seconds (:data:`UNANSWERED_WAIT` while the probe is
   unanswered), then records it, or says to save it as before.

Without a front end that takes input (papermill, plain IPython) nothing is sent
and nothing waits; a front end that closed the probe is not asked. Module level:
stdlib only (``%load_ext scandeck`` imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["SAVE_WAIT", "TARGET", "FrontEnd"]

#: The comm target the lab extension registers (labextension/src/saveComm.ts).
TARGET = "scandeck.frontend"
#: Seconds ``%provenance save`` waits for the front end to save the notebook.
SAVE_WAIT = 15.0
#: Seconds it waits when the front end has not answered the comm yet (``%load_ext`` in the same cell).
UNANSWERED_WAIT = 3.0
#: How often the notebook file is looked at meanwhile.
POLL = 0.05


class FrontEnd:
    """What this kernel knows of its front end (one per shell, see :meth:`of`)."""

    def __init__(self) -> None:
        self.probe: Any = None  # the comm opened at %load_ext; None when closed or never opened
        self.ready = False  # the front end answered the probe: it saves when asked
        self.requests = 0

    @classmethod
    def of(cls, shell: Any) -> FrontEnd:
        """The shell's front end, made on first use."""
        found = getattr(shell, "_scandeck_frontend", None)
        if found is None:
            found = cls()
            shell._scandeck_frontend = found
        return found

    def open(self, shell: Any) -> None:
        """Probe the front end, in a kernel whose front end takes input (not under papermill)."""
        from .batch import live_front_end

        if self.probe is not None or getattr(shell, "kernel", None) is None or not live_front_end(shell):
            return
        probe = self._comm({"version": 1})
        if probe is None:
            return
        probe.on_msg(self._on_msg)
        probe.on_close(self._on_close)
        self.probe = probe

    def _comm(self, data: dict[str, Any]) -> Any:
        try:
            from comm import create_comm

            return create_comm(target_name=TARGET, data=data)
        except Exception:  # noqa: BLE001 - no comm support: the notebook is saved by hand, as before
            return None

    def _on_msg(self, msg: dict[str, Any]) -> None:
        data = (msg.get("content") or {}).get("data") or {}
        if isinstance(data, dict) and data.get("ready") is True:
            self.ready = True

    def _on_close(self, msg: Any = None) -> None:
        # No extension in the front end (it closed the comm), or the front end went away.
        self.probe, self.ready = None, False

    def save(self, saved: Callable[[], bool]) -> bool:
        """Ask the front end to save the notebook; True once ``saved()`` says the file is.

        Waits :data:`SAVE_WAIT` seconds at most (:data:`UNANSWERED_WAIT` while the
        probe is unanswered); asks nothing, and returns False, when there is no probe.
        """
        if self.probe is None:
            return False
        self.requests += 1
        request = self._comm({"request": "save", "id": self.requests})
        if request is None:
            return False
        deadline = time.monotonic() + (SAVE_WAIT if self.ready else UNANSWERED_WAIT)
        try:
            while time.monotonic() < deadline:
                if saved():
                    return True
                time.sleep(POLL)
            return saved()
        finally:
            request.close()
