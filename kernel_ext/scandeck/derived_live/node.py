"""``Stream.to_run``: a pipeline's output written as a new run, live, with the pipeline as provenance.

>>> live = scandeck.live(cat[-1])                                              # doctest: +SKIP
>>> out = (live.stream("primary").map(lambda r: r["det"] / r["I0"])            # doctest: +SKIP
...        .scan(max, start=0.0).to_run(cat, stream="primary", metadata={"purpose": "running max"}))
>>> out.wait(); out.run.primary.read()                                         # doctest: +SKIP

The node is a streamz sink registered on ``streamz.Stream`` when this module is
imported (``scandeck.live`` does it). See :mod:`.values` for how values become
events and :mod:`.describe` for ``start["pipeline"]``; the rules for the end of the
derived run are in :class:`to_run`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import sys
import threading
import time
from typing import Any

from event_model import compose_run
from streamz import Stream
from streamz.sinks import Sink

from ..catalog import Catalog, Run
from ..derived import note_written
from ..exceptions import DerivedValueError, PipelineError
from ..provenance.batch import current_shell
from ..provenance.context import note, pending_record_id
from ..safe_text import printable
from .describe import ancestors, describe, label, last_function_name
from .pipeline_checks import check_nodes, check_sources, function_of, raising_node, streams_of
from .values import Values, bad_key
from .writer import PAGE_INTERVAL, RunWriter

__all__ = ["finish_all", "to_run"]

#: Start-document keys to_run sets itself.
RESERVED = ("parent_uids", "provenance_record", "pipeline")
#: Seconds a stopping Live waits for the derived run's stop document to be written.
STOP_WAIT = 10.0
_RANK = {"success": 0, "abort": 1, "fail": 2}

_open: set[to_run] = set()
_open_lock = threading.Lock()
_exit_registered = False


def _end_at_exit() -> None:
    """Abort the derived runs still open when Python exits, and wait for their stop documents.

    Registered with atexit after the first derived run's store writer exists, so it runs
    before the finalizers that close store writers at exit (atexit runs last-registered
    first): registered earlier, the stops would meet closed writers and the runs stay open.
    """
    with _open_lock:
        nodes = list(_open)
    for node in nodes:
        node._end("abort", "the process exited before the parent run ended")
    deadline = time.monotonic() + STOP_WAIT
    for node in nodes:
        node._writer.join(max(0.0, deadline - time.monotonic()))


def finish_all(timeout: float | None = None) -> None:
    """Wait for every derived run of this process to end (see :meth:`to_run.wait`).

    The papermill engine's end-of-run report calls it, so a batch record lists
    complete derived runs.
    """
    with _open_lock:
        nodes = list(_open)
    for node in nodes:
        node.wait(timeout)


@Stream.register_api()
class to_run(Sink):  # noqa: N801 - streamz nodes are named as the methods they become
    """Write each value the pipeline emits as an event of a new run; return the node.

    Parameters
    ----------
    catalog
        Where the derived run goes: a Catalog or what ``scandeck.open_catalog``
        takes; default the catalog of the pipeline's ``scandeck.live`` source.
    stream
        The derived run's stream name.
    metadata
        Extra start-document metadata (``plan_name`` defaults to ``"derived"``).
    key
        The data key of values that are not dicts; default the name of the last
        function of the pipeline (``scan(total)`` -> ``total``), or ``"value"``
        for a lambda.
    record_id
        The provenance record the run belongs to; default the id of this
        process's next record (as :func:`scandeck.derive`).

    The run starts at once (its start document carries ``parent_uids``,
    ``provenance_record`` and ``pipeline``); its descriptor comes with the first
    value and its events, in pages, as values come. It stops

    - when every parent run has stopped and its last row went through the pipeline:
      with the parents' exit status (the worst of them; a parent whose writer died
      without a stop counts as ``abort``), the reason naming the parent;
    - with ``fail`` when a node between the source and ``to_run`` raised, or a value
      cannot be stored (:class:`~scandeck.exceptions.DerivedValueError`), the error in
      the stop's ``reason``; later values are dropped;
    - with ``abort`` when the ``scandeck.live`` source is stopped, or on :meth:`stop`.
    """

    def __init__(
        self,
        upstream: Any,
        catalog: Catalog | str | None = None,
        *,
        stream: str = "primary",
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
        record_id: str | None = None,
        interval: float = PAGE_INTERVAL,
        stream_name: str | None = None,
    ) -> None:
        nodes = ancestors(upstream)
        origins = {
            id(n): n.scandeck_origin for n in nodes if isinstance(getattr(n, "scandeck_origin", None), dict)
        }
        lives = list({id(o["live"]): o["live"] for o in origins.values()}.values())
        with contextlib.ExitStack() as paused:
            for live in sorted(lives, key=id):
                # Nothing emitted while the node is built: rows or the run's end going past
                # half-way (a sink beside it already ends the pipeline) would miss the new run.
                paused.enter_context(live.paused())
            self._setup(upstream, nodes, origins, lives, catalog, stream, metadata, key, record_id, interval)
            Sink.__init__(self, None, stream_name=stream_name)
            self._start(upstream, lives)

    def _setup(
        self,
        upstream: Any,
        nodes: list[Any],
        origins: dict[int, dict[str, Any]],
        lives: list[Any],
        catalog: Catalog | str | None,
        stream: str,
        metadata: dict[str, Any] | None,
        key: str | None,
        record_id: str | None,
        interval: float,
    ) -> None:
        check_sources(lives)
        check_nodes(nodes)
        if getattr(upstream, "scandeck_origin", {}).get("pages"):
            raise PipelineError(
                "to_run writes one event per value, and a page of live.stream(pages=True) holds however many "
                "rows arrived together (its columns would change shape from page to page): map each page to "
                "a value first, e.g. .map(lambda page: max(page['det'])), or write rows: live.stream()"
            )
        if not isinstance(stream, str) or not stream:
            raise PipelineError(f"to_run's stream must be a non-empty string, not {stream!r}")
        if key is None:
            key = last_function_name(nodes) or "value"
        elif bad_key(key):
            raise PipelineError(
                f"to_run's key names a data key: a non-empty string with no '.' or '/', not {printable(repr(key))}"
            )
        if catalog is None:
            catalog = Catalog(lives[0].source)
        elif not isinstance(catalog, Catalog):
            from ..opening import open_catalog

            catalog = open_catalog(catalog)
        md = {"plan_name": "derived", **(metadata or {})}
        clash = [k for k in RESERVED if k in md]
        if clash:
            raise PipelineError(f"metadata[{clash[0]!r}] is set by to_run; leave it out of metadata")
        self.parent_uids: list[str] = list(dict.fromkeys(live.uid for live in lives))
        md["parent_uids"] = self.parent_uids
        md["provenance_record"] = record_id or pending_record_id()
        md["pipeline"] = describe(nodes, origins, {"stream": stream, "key": key, "catalog": catalog.name})
        bundle = compose_run(metadata=md)

        self.catalog = catalog
        self.uid: str = bundle.start_doc["uid"]
        self.pipeline: dict[str, Any] = md["pipeline"]
        #: The derived run's exit status once it is ending (None while it runs), and why.
        self.exit_status: str | None = None
        self.reason = ""
        #: Values that arrived after the run began to end (not written).
        self.dropped = 0
        self._ids = {id(n) for n in nodes}
        self._lives = lives
        #: The followed streams the pipeline reads, (id of the Live, run uid, stream, fill): the run
        #: ends after the last of them (each Live emits on its own, each stream is followed on its own).
        self._feeds = {(id(o["live"]), o["live"].uid, o["stream"], o.get("fill", False)) for o in origins.values()}
        self._ended: dict[tuple[int, str, str, Any], tuple[str, str]] = {}
        self._watchers = {id(live): functools.partial(self._on_live, id(live)) for live in lives}
        self._lock = threading.RLock()
        self._shell: Any = None
        self._values = Values(key)
        self._writer = RunWriter(catalog, bundle, stream, interval=interval, on_error=self._store_failed)

    def _start(self, upstream: Any, lives: list[Any]) -> None:
        try:
            self._writer.start()
        except BaseException:
            self.destroy()
            raise
        global _exit_registered
        with _open_lock:
            _open.add(self)
            if not _exit_registered:
                atexit.register(_end_at_exit)  # after the store writer's finalizer: see _end_at_exit
                _exit_registered = True
        for live in lives:
            note(live.uid, catalog=live.source.uri)
        note_written(self.uid, self.catalog.name)
        for live in lives:
            live.watch(self._watchers[id(live)])
        if any(live.batch for live in lives):
            self._shell = current_shell()
            if self._shell is not None and hasattr(self._shell, "events"):
                self._shell.events.register("post_run_cell", self._cell_ended)
        upstream.connect(self)

    def __repr__(self) -> str:
        state = "running" if self.exit_status is None else self.exit_status
        return f"<to_run {self.uid[:8]} of {len(self.parent_uids)} parent run(s): {state}, {self.events} events>"

    __str__ = __repr__

    def _ipython_display_(self, **kwargs: Any) -> None:
        # Not streamz's widget of emitted values: a sink emits nothing; its state says more.
        from IPython.display import display

        display({"text/plain": repr(self)}, raw=True)

    @property
    def events(self) -> int:
        """Events written so far."""
        return self._writer.events

    @property
    def done(self) -> bool:
        """True once the stop document is written (or writing gave up)."""
        return self._writer.done.is_set()

    @property
    def run(self) -> Run:
        """The derived run as the catalog has it now."""
        return Run(self.catalog.source, self.catalog.source.get(self.uid))

    def update(self, x: Any, who: Any = None, metadata: Any = None) -> None:
        with self._lock:
            if self.exit_status is not None:
                self.dropped += 1
                return
            try:
                data, data_keys = self._values.take(x)
            except DerivedValueError as err:
                self._end("fail", f"{type(err).__name__}: {err}")
                raise
            if data_keys is not None:
                self._writer.descriptor(data_keys)
            self._writer.event(data, time.time())

    def stop(self, exit_status: str = "abort", reason: str = "stopped by to_run.stop()") -> None:
        """End the derived run now (idempotent); later values are dropped."""
        if exit_status not in _RANK:
            raise ValueError(f"exit_status is one of {', '.join(_RANK)}, not {exit_status!r}")
        self._end(exit_status, reason)
        self._writer.join(STOP_WAIT)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the derived run is stopped; False if not within ``timeout`` seconds.

        In a kernel (where the pipeline is emitted on this very thread, between
        cells) the parent runs' remaining rows are emitted here first
        (``Live.flush``); a batch notebook does this at the end of the cell that
        built the pipeline, so the next cells and the record see a complete run.
        """
        shell = current_shell()
        if getattr(shell, "kernel", None) is not None:
            for live in self._lives:
                if not live.stopped:
                    live.flush(timeout)
        return self._writer.join(timeout)

    # -- the ends ---------------------------------------------------------------------------

    def _end(self, exit_status: str, reason: str) -> None:
        with self._lock:
            if self.exit_status is not None:
                return
            self.exit_status, self.reason = exit_status, reason[:2000]
            self._writer.stop(exit_status, self.reason)
        self._release()

    def _store_failed(self, reason: str) -> None:
        """The writer thread's report that the store refused a document: the run ends with fail."""
        with self._lock:
            # Also when it was ending already: the stop the writer writes now says fail.
            self.exit_status, self.reason = "fail", reason[:2000]
        self._release()

    def _release(self) -> None:
        for live in self._lives:
            live.unwatch(self._watchers[id(live)])
        with _open_lock:
            _open.discard(self)

    def _cell_ended(self, result: Any = None) -> None:
        try:
            self._shell.events.unregister("post_run_cell", self._cell_ended)
        except ValueError:
            pass
        if not self.wait():
            sys.stderr.write(f"scandeck to_run: the derived run {self.uid[:8]} did not end\n")

    def _on_live(self, live: int, event: str, detail: dict[str, Any]) -> None:
        """A report of the Live of id ``live`` (on the thread that emits, or the following thread for errors)."""
        if event == "end":
            feed = (live, detail["uid"], detail["stream"], detail.get("fill", False))
            self._parent_ended(feed, detail["exit_status"], detail.get("reason") or "")
        elif event == "failure":
            err = detail["error"]
            node = raising_node(err)
            if node is self:
                return  # a value it could not store: ended it already
            if node is not None and id(node) in self._ids:
                where = label({"type": type(node).__name__, **function_of(node)})
                self._end("fail", f"{where} raised {type(err).__name__}: {err}")
            elif node is not None and self._missed(err):
                where = label({"type": type(node).__name__, **function_of(node)})
                self._end(
                    "fail",
                    f"a value did not reach to_run: {where}, on a branch beside it, raised {type(err).__name__}: "
                    f"{err}; streamz hands a value to each branch in turn and stops at an error, so attach "
                    "to_run before the other branches or keep them from raising",
                )
            elif node is None and str(detail.get("what", "")).startswith("following"):
                self._end("fail", f"following the parent run failed: {type(err).__name__}: {err}")
        elif event == "stopped":
            self._end("abort", "the pipeline's scandeck.live was stopped before its parent run ended")
            self._writer.join(STOP_WAIT)

    def _missed(self, err: BaseException) -> bool:
        """True when ``err``, raised on another branch, stopped a node of this pipeline from handing
        the value on to the branch that leads here (it comes after the raising one)."""
        chain = streams_of(err)
        ours = [i for i, n in enumerate(chain) if id(n) in self._ids]
        if not ours or ours[-1] + 1 >= len(chain):
            return False
        fork, branch = chain[ours[-1]], chain[ours[-1] + 1]
        order = list(fork.downstreams)
        if branch not in order:
            return False
        after = order[order.index(branch) + 1 :]
        return any(n is self or id(n) in self._ids for n in after)

    def _parent_ended(self, feed: tuple[int, str, str, Any], exit_status: str, reason: str) -> None:
        """A stream of a parent run ended (``feed``: Live, run uid, stream, fill); the run ends after the last."""
        if feed not in self._feeds:
            return  # another stream of the Live: the pipeline's own may still have rows to come
        with self._lock:
            self._ended[feed] = (exit_status, reason)
            if len(self._ended) < len(self._feeds):
                return
            worst, why = "success", ""
            for (_, parent, _, _), (status, text) in self._ended.items():
                known = status if status in _RANK else "abort"
                if _RANK[known] > _RANK[worst]:
                    detail = text if status in _RANK else "it ended without a stop document (its writer died)"
                    worst, why = (
                        known,
                        f"parent run {parent[:8]} ended with {status}" + (f": {detail}" if detail else ""),
                    )
            self._end(worst, why)
