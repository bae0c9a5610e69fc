"""The ``scandeck`` papermill engine: execute a notebook and record its provenance.

``papermill --engine scandeck in.ipynb out.ipynb -p scan_uid X`` (the engine is
registered through the ``papermill.engine`` entry point), ``scandeck run`` and
reruns all execute through :class:`ScandeckEngine`. It is papermill's nbclient
engine plus, at the end of execution:

1. **Inputs, values and environment from the kernel.** The runs a notebook read (and
   the values it published with ``scandeck.glue``) are noted
   in the *kernel's* process (:mod:`scandeck.provenance.context`), not in
   papermill's. After the last cell (also after a failing cell: the kernel is
   still up), the engine sends the kernel one silent ``execute_request`` with
   empty code and a *user expression* calling
   :func:`scandeck.provenance.recording.kernel_report`; the reply carries the
   kernel's context inputs and values and the environment captured in the kernel (its
   interpreter, its packages) as JSON. Silent requests add no output, no
   execution count and no history to the notebook. When the kernel cannot answer
   (died, no scandeck in its environment, timed out) the record has no inputs and
   the environment of the papermill process; the reason is logged.
2. **The record.** Built by :func:`~scandeck.provenance.recording.build_record`
   from the executed notebook (parameters, failure), stamped into
   ``nb.metadata.scandeck`` and saved with the notebook to the provenance store;
   then the output notebook is written again, so it carries the stamp. A failing
   notebook is recorded with ``status="failed"`` and the failing cell, and
   papermill then raises its ``PapermillExecutionError`` as usual (after writing
   the output notebook with its error markers).

Options travel as one engine keyword, ``scandeck=Recording(...)``, which
``papermill.execute_notebook`` passes through to the engine::

    rec = Recording(kind="rerun", parent=record.id, target_scan=uid, store=store)
    papermill.execute_notebook(src, out, parameters={"scan_uid": uid},
                               engine_name="scandeck", scandeck=rec)
    rec.record  # the stored ProvenanceRecord (also when papermill raised)

:func:`execute` wraps exactly that and returns the record without raising for
a failing notebook.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import TYPE_CHECKING, Any


def __getattr__(name: str) -> Any:
    # Importing papermill imports its engine entry points, this module among them. When the
    # first papermill import happens *here* (scandeck imported before papermill), papermill
    # asks this half-imported module for ScandeckEngine: hand it a stand-in that defers to
    # the real class, which register() puts in papermill's registry at the end of this module.
    if name == "ScandeckEngine":
        return _DeferredEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _DeferredEngine:
    """papermill's engine interface, forwarded to :class:`ScandeckEngine` once it exists."""

    @classmethod
    def execute_notebook(cls, *args: Any, **kwargs: Any) -> Any:
        return ScandeckEngine.execute_notebook(*args, **kwargs)

    @classmethod
    def nb_kernel_name(cls, *args: Any, **kwargs: Any) -> Any:
        return ScandeckEngine.nb_kernel_name(*args, **kwargs)

    @classmethod
    def nb_language(cls, *args: Any, **kwargs: Any) -> Any:
        return ScandeckEngine.nb_language(*args, **kwargs)


from nbclient.util import ensure_async, run_sync  # noqa: E402 - after the stand-in, see __getattr__
from papermill.clientwrap import PapermillNotebookClient  # noqa: E402
from papermill.engines import NBClientEngine, NotebookExecutionManager  # noqa: E402

from .record import ErrorInfo  # noqa: E402

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from .record import ProvenanceRecord
    from .recording import Kind
    from .store import ProvStore

__all__ = ["ENGINE_NAME", "Recording", "ScandeckEngine", "execute", "register"]

ENGINE_NAME = "scandeck"
log = logging.getLogger("scandeck.provenance")

#: Seconds the kernel gets to answer the end-of-run report (it imports scandeck
#: and lists installed distributions).
REPORT_TIMEOUT = 60.0


@dataclass
class Recording:
    """What to record about one execution, and (afterwards) the stored record.

    One instance per execution: the engine writes ``record`` (the stored record)
    and ``kernel_report_error`` (why the kernel did not report, or "").
    """

    kind: Kind = "batch"
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    parent: str | None = None
    target_scan: str | None = None
    #: A ProvStore, a directory for one, or None for the default (``open_store()``).
    store: Any = None
    record: ProvenanceRecord | None = None
    kernel_report_error: str = ""

    def open_store(self) -> ProvStore:
        from .store import ProvStore, open_store

        if isinstance(self.store, ProvStore):
            return self.store
        return open_store(self.store)


class ScandeckNotebookClient(PapermillNotebookClient):
    """papermill's client plus the end-of-run kernel report and the running cell's index."""

    def __init__(
        self,
        nb_man: NotebookExecutionManager,
        km: Any = None,
        raise_on_iopub_timeout: bool = True,
        *,
        report_expression: str = "",
        **kw: Any,
    ) -> None:
        super().__init__(nb_man, km=km, raise_on_iopub_timeout=raise_on_iopub_timeout, **kw)
        self.report_expression = report_expression
        self.report: dict[str, Any] | None = None
        self.report_error = ""
        self.running_cell: int | None = None

    def execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        self.running_cell = cell_index
        return super().execute_cell(cell, cell_index, *args, **kwargs)

    def papermill_execute_cells(self) -> None:
        super().papermill_execute_cells()
        # Cell errors end the loop without raising; timeouts and a dead kernel raise
        # past this point, and then there is no kernel to ask.
        if self.report_expression:
            try:
                self.report = self.kernel_report(self.report_expression, REPORT_TIMEOUT)
            except Exception as err:  # noqa: BLE001 - a missing report must not lose the run
                self.report_error = f"{type(err).__name__}: {err}"
                log.warning(
                    "scandeck: the kernel did not report its inputs and environment (%s); "
                    "recording without inputs, with this process's environment",
                    self.report_error,
                )

    async def _async_kernel_report(self, expression: str, timeout: float) -> dict[str, Any]:
        assert self.kc is not None
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            allow_stdin=False,
            stop_on_error=False,
            user_expressions={"scandeck": expression},
        )
        deadline = monotonic() + timeout
        while True:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply within {timeout:.0f} s")
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        if content.get("status") != "ok":
            raise RuntimeError(f"{content.get('ename', 'error')}: {content.get('evalue', '')}")
        result = content.get("user_expressions", {}).get("scandeck", {})
        if result.get("status") != "ok":
            raise RuntimeError(f"{result.get('ename', 'error')}: {result.get('evalue', '')}")
        # text/plain of a str is its repr: a Python literal, possibly split over lines.
        return json.loads(ast.literal_eval(result["data"]["text/plain"]))

    kernel_report = run_sync(_async_kernel_report)


def _local_path(path: Any) -> Path | None:
    """``path`` as an absolute local file path (papermill paths may be URLs or relative to its cwd)."""
    if not path or not isinstance(path, (str, os.PathLike)):
        return None
    text = str(path)
    if "://" in text and not text.startswith("file://"):
        return None
    local = Path(text.removeprefix("file://")).expanduser()
    if not local.is_absolute():
        base = None
        try:  # papermill resolves local paths against the cwd it had before --cwd
            from papermill.iorw import papermill_io

            base = getattr(papermill_io.get_handler("local"), "_cwd", None)
        except Exception:  # noqa: BLE001
            base = None
        local = Path(base or os.getcwd()) / local
    return local


class ScandeckEngine(NBClientEngine):
    """papermill's nbclient engine that records provenance at the end of execution."""

    @classmethod
    def execute_notebook(
        cls,
        nb: NotebookNode,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: Any = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> NotebookNode:
        recording = kwargs.pop(ENGINE_NAME, None) or Recording()
        if not isinstance(recording, Recording):
            recording = Recording(**dict(recording))
        input_path = _local_path(kwargs.get("input_path"))
        nb_man = NotebookExecutionManager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        holder: dict[str, Any] = {}
        failure: BaseException | None = None
        started = time.monotonic()
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(
                nb_man,
                kernel_name,
                log_output=log_output,
                scandeck_holder=holder,
                scandeck_notebook_path=str(input_path) if input_path else None,
                **kwargs,
            )
        except BaseException as err:
            failure = err
            raise
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
            client = holder.get("client")
            # A kernel that never ran a cell (no such kernel, failed to start): nothing to record.
            if failure is None or (client is not None and client.running_cell is not None):
                try:
                    cls._record(
                        nb_man, recording, client, kernel_name, input_path, time.monotonic() - started, failure
                    )
                except Exception:
                    if failure is None:
                        raise
                    log.exception("scandeck: recording the failed execution failed too")
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: NotebookExecutionManager,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        scandeck_holder: dict[str, Any] | None = None,
        scandeck_notebook_path: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """As :meth:`NBClientEngine.execute_managed_notebook`, with :class:`ScandeckNotebookClient`."""
        from papermill.log import logger
        from papermill.utils import merge_kwargs, remove_args

        from .recording import kernel_report_expression

        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        client = ScandeckNotebookClient(
            nb_man, report_expression=kernel_report_expression(kernel_name, scandeck_notebook_path), **final_kwargs
        )
        if scandeck_holder is not None:
            scandeck_holder["client"] = client
        from .batch import DEFAULT_SCAN_PARAMETER, SCAN_PARAMETER_ENV
        from .rerun_plan import scan_parameter_of

        scan_param = scan_parameter_of(nb_man.nb)
        if scan_param != DEFAULT_SCAN_PARAMETER and SCAN_PARAMETER_ENV not in os.environ:
            # The kernel's entry points (batch.batch_scan) read the run this parameter names.
            return client.execute(env={**os.environ, SCAN_PARAMETER_ENV: scan_param})
        return client.execute()

    @classmethod
    def _record(
        cls,
        nb_man: NotebookExecutionManager,
        recording: Recording,
        client: ScandeckNotebookClient | None,
        kernel_name: str,
        input_path: Path | None,
        duration: float,
        failure: BaseException | None,
    ) -> None:
        from .notebooks import failure_of, first_lines
        from .recording import build_record, save_stamped

        nb = nb_man.nb
        report = client.report if client is not None else None
        recording.kernel_report_error = (
            client.report_error
            if client is not None and client.report_error
            else ""
            if report is not None
            else "execution ended before the kernel could report"
        )
        environment = (report or {}).get("environment")
        if environment is None:
            from .environment import capture

            environment = capture(kernel_name=kernel_name, notebook_path=input_path)
        # An exception that ended the execution (a timeout, a dead kernel) is the failure, even
        # when the interrupted cell also shows an error output; else papermill's rule.
        error = None if failure is not None else failure_of(nb)
        if failure is not None:
            index = client.running_cell if client is not None else None
            source = nb.cells[index].source if index is not None and index < len(nb.cells) else ""
            error = ErrorInfo(
                cell_index=index,
                cell_source=first_lines(source),
                ename=type(failure).__name__,
                evalue=str(failure)[:500],
            )
        record = build_record(
            nb,
            kind=recording.kind,
            environment=environment,
            name=recording.name,
            inputs=(report or {}).get("inputs", ()),
            outputs=(report or {}).get("outputs", ()),
            values=(report or {}).get("values"),
            record_id=(report or {}).get("record_id"),
            tags=recording.tags,
            parent=recording.parent,
            target_scan=recording.target_scan,
            duration=round(duration, 3),
            notebook_path=input_path,
            error=error,
        )
        store = recording.open_store()
        try:
            recording.record = save_stamped(store, record, nb)
        finally:
            if store is not recording.store:
                store.close()
        nb_man.save()


def register() -> None:
    """Register the engine with papermill by name (the entry point does it when installed)."""
    from papermill.engines import papermill_engines

    papermill_engines.register(ENGINE_NAME, ScandeckEngine)


def execute(
    input_path: str | Path,
    output_path: str | Path,
    *,
    parameters: dict[str, Any] | None = None,
    recording: Recording | None = None,
    kernel_name: str | None = None,
    language: str | None = None,
    cwd: str | Path | None = None,
    progress_bar: bool = False,
    **papermill_kwargs: Any,
) -> tuple[ProvenanceRecord, NotebookNode | None]:
    """Execute a notebook with papermill and the scandeck engine; return (record, executed nb).

    A failing notebook does not raise: its record has ``status == "failed"`` and
    ``error`` set, and the output notebook is written (with papermill's error
    markers). Errors before execution (no such notebook, no such kernel) raise.
    The returned notebook is None when the notebook failed (read the output file).
    The kernel and language are :func:`~.notebooks.choose_kernel`'s for a local
    notebook: a notebook without kernelspec metadata runs in ``python3``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    register()
    local = _local_path(input_path)
    if local is not None and local.is_file():
        from .notebooks import choose_kernel, read_notebook

        kernel_name, language = choose_kernel(read_notebook(local), kernel_name, language)
    recording = recording or Recording()
    try:
        nb = papermill.execute_notebook(
            str(input_path),
            str(output_path),
            parameters=parameters or {},
            engine_name=ENGINE_NAME,
            kernel_name=kernel_name,
            language=language,
            cwd=str(cwd) if cwd is not None else None,
            progress_bar=progress_bar,
            **{ENGINE_NAME: recording},
            **papermill_kwargs,
        )
    except PapermillExecutionError:
        if recording.record is None:
            raise
        return recording.record, None
    except Exception:  # a timeout or a dead kernel: recorded as failed, reported as such
        if recording.record is None or recording.record.status != "failed":
            raise
        return recording.record, None
    assert recording.record is not None
    return recording.record, nb


register()  # the real class, also when papermill registered the stand-in above
