"""The thread that writes a live derived run: start, descriptor, event pages, stop.

Values come from the thread that emits the pipeline (the kernel's loop, or a
Live's private loop thread); this thread owns the store's writer, so no store
call ever runs on the kernel's loop. Events that arrive within :data:`PAGE_INTERVAL`
of each other go into one ``event_page`` (one transaction in the embedded store).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..safe_text import printable

__all__ = ["MAX_PAGE", "PAGE_INTERVAL", "RunWriter"]

#: Seconds the writer waits after a first event for more to put in the same page.
PAGE_INTERVAL = 0.05
#: Most events in one page.
MAX_PAGE = 10_000


class RunWriter:
    """Writes one run on its own thread: :meth:`start`, then :meth:`descriptor`,
    :meth:`event` ... and :meth:`stop` from any one thread.

    ``bundle`` is event-model's ``compose_run`` result for the run. When the store
    refuses a document, ``on_error(reason)`` is called on this thread before the
    ``fail`` stop is written; what was queued is then dropped, and so is what comes later.
    """

    def __init__(
        self,
        catalog: Any,
        bundle: Any,
        stream: str,
        *,
        interval: float = PAGE_INTERVAL,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.bundle = bundle
        self.stream = stream
        self.interval = interval
        self.on_error = on_error
        self.events = 0
        self._described = False  # a descriptor was stored
        #: The exception that stopped writing (a store error), or None.
        self.error: BaseException | None = None
        #: Set once the stop document is written (or writing gave up).
        self.done = threading.Event()
        self.stop_doc: dict[str, Any] | None = None
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scandeck-to-run", daemon=True)

    def start(self) -> None:
        """Start the thread and write the start document; its error is raised here."""
        self._thread.start()
        self._started.wait()
        if self.error is not None:
            raise self.error

    def descriptor(self, data_keys: dict[str, dict[str, Any]]) -> None:
        self._queue.put(("descriptor", data_keys))

    def event(self, data: dict[str, Any], when: float) -> None:
        if self.error is None:
            self._queue.put(("event", data, when))

    def stop(self, exit_status: str, reason: str) -> None:
        self._queue.put(("stop", exit_status, reason))

    def join(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            writer = self.catalog.writer()
        except BaseException as err:  # noqa: BLE001 - raised to the caller by start()
            self.error = err
            self._started.set()
            self.done.set()
            return
        try:
            writer("start", self.bundle.start_doc)
        except BaseException as err:  # noqa: BLE001 - raised to the caller by start()
            self.error = err
            self._started.set()
            _close(writer)
            self.done.set()
            return
        self._started.set()
        try:
            self._write(writer)
        except Exception as err:  # noqa: BLE001 - a store error ends the run, reported below
            self.error = err
            text = printable("".join(traceback.format_exception(type(err), err, err.__traceback__)), keep="\n")
            sys.stderr.write(f"scandeck to_run: writing the derived run failed:\n{text}")
            reason = f"writing the derived run failed: {type(err).__name__}: {err}"[:1000]
            if self.on_error is not None:
                self.on_error(reason)  # the node ends: it queues nothing more after this
            while not self._queue.empty():
                self._queue.get_nowait()
            self._stop(writer, "fail", reason)
        finally:
            _close(writer)
            self.done.set()

    def _write(self, writer: Any) -> None:
        desc: Any = None
        pending: tuple[Any, ...] | None = None
        while True:
            item = pending if pending is not None else self._queue.get()
            pending = None
            if item[0] == "descriptor":
                desc = self.bundle.compose_descriptor(
                    name=self.stream, data_keys=item[1], hints={"derived": {"fields": list(item[1])}}
                )
                writer("descriptor", desc.descriptor_doc)
                self._described = True
            elif item[0] == "event":
                page = [item]
                deadline = time.monotonic() + self.interval
                while len(page) < MAX_PAGE:
                    try:
                        more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if more[0] != "event":
                        pending = more
                        break
                    page.append(more)
                self._page(writer, desc, page)
            else:
                self._stop(writer, item[1], item[2])
                return

    def _page(self, writer: Any, desc: Any, page: list[tuple[Any, ...]]) -> None:
        keys = list(page[0][1])
        first = self.events + 1
        doc = desc.compose_event_page(
            data={k: [e[1][k] for e in page] for k in keys},
            timestamps={k: [e[2] for e in page] for k in keys},
            seq_num=list(range(first, first + len(page))),
            time=[e[2] for e in page],
            validate=False,  # the store's writer validates; jsonschema here cost half of all the time
        )
        writer("event_page", doc)
        self.events += len(page)

    def _stop(self, writer: Any, exit_status: str, reason: str) -> None:
        stop = self.bundle.compose_stop(exit_status=exit_status, reason=reason)
        if self._described:
            # What the store holds: event-model counts the events composed, refused ones too.
            stop["num_events"] = {self.stream: self.events}
        try:
            writer("stop", stop)
        except Exception as err:  # noqa: BLE001 - nothing more can be done; the run stays open
            sys.stderr.write(
                f"scandeck to_run: the stop document could not be written: {printable(str(err))[:500]}\n"
            )
            return
        self.stop_doc = stop


def _close(writer: Any) -> None:
    close = getattr(writer, "close", None)
    if close is not None:
        close()
