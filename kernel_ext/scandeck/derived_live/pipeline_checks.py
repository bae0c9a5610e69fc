"""Checks of a pipeline ending in ``to_run``, and where in it an error came from.

``check_sources`` and ``check_nodes`` refuse, before anything is written, pipelines whose
derived run would be wrong; ``streams_of`` and ``raising_node`` read a failure's traceback
for the node that raised (see :meth:`scandeck.derived_live.node.to_run._on_live`).
"""

from __future__ import annotations

from typing import Any

from streamz import Stream

from ..exceptions import PipelineError
from ..safe_text import printable

__all__ = ["TIMED", "check_nodes", "check_sources", "function_of", "raising_node", "streams_of"]

#: streamz nodes that emit on their own clock (streamz's event loop), after the rows that fed them:
#: the derived run ends with the parent's last row, before their last values.
TIMED = ("timed_window", "timed_window_unique", "delay", "rate_limit", "buffer", "latest", "map_async")


def check_sources(lives: list[Any]) -> None:
    if not lives:
        raise PipelineError(
            "to_run writes a run derived from the runs its pipeline reads: start the pipeline "
            "at scandeck.live(run).stream(...), e.g. scandeck.live(cat[-1]).stream().map(f).to_run(cat)"
        )
    for live in lives:
        if live.uid is None:
            raise PipelineError(
                "to_run derives one run from one parent run, and this scandeck.live follows each new run: "
                "make it for one run, e.g. scandeck.live(cat[-1])"
            )
        if live.stopped:
            raise PipelineError("this scandeck.live was stopped; make a new one with scandeck.live(...)")
        if live.rows:
            raise PipelineError(
                f"{live.rows} rows of run {printable(live.uid[:8])} went through this scandeck.live before "
                "to_run was attached, and the derived run would miss them: build the pipeline, to_run "
                "included, in one cell, or on a new scandeck.live(...)"
            )


def check_nodes(nodes: list[Any]) -> None:
    for node in nodes:
        kind = type(node).__name__
        timed = kind in TIMED or (kind == "partition" and getattr(node, "_timeout", None) is not None)
        if timed or any(c.__name__ == "DaskStream" for c in type(node).__mro__):
            raise PipelineError(
                f"to_run cannot follow {kind}: it emits on its own clock (streamz's event loop), after the "
                "rows that fed it, so the derived run would end before its last values; use nodes that emit "
                "as rows come (map, filter, accumulate, partition(n) without timeout, sliding_window, zip)"
            )


def streams_of(err: BaseException) -> list[Any]:
    """The streamz nodes ``err`` went through, outermost first (each once)."""
    chain: list[Any] = []
    tb = err.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        me = frame.f_locals.get("self") if frame.f_code.co_name in ("update", "_emit", "emit") else None
        if isinstance(me, Stream) and (not chain or chain[-1] is not me):
            chain.append(me)
        tb = tb.tb_next
    return chain


def raising_node(err: BaseException) -> Any:
    """The streamz node whose ``update`` raised ``err`` (the innermost on its traceback), or None."""
    found = None
    tb = err.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        me = frame.f_locals.get("self") if frame.f_code.co_name == "update" else None
        if isinstance(me, Stream):
            found = me
        tb = tb.tb_next
    return found


def function_of(node: Any) -> dict[str, Any]:
    fn = getattr(node, "func", None) or getattr(node, "predicate", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return {"function": {"qualname": str(name)}} if name else {}
