"""Derived runs for the panel: a run's parents and pipeline, the runs derived from it.

A derived run (``scandeck.derive()``, a pipeline's ``to_run``) names its parents in
its start document (``parent_uids``); a live one also describes its pipeline
(``pipeline``, see :mod:`scandeck.derived_live.describe`). The listing carries each
run's ``parent_uids`` (:func:`parent_uids_of`, from the index row: nothing read), so
the panel nests a derived run under its parent when both are on the loaded pages.
The rest costs at most one search per request:

- a page names the parents it lists no row of (:func:`page_parents`): one search by
  uid, so a derived run listed alone says which scan it came from;
- a run's detail names its parents (a lookup each, at most 20), its pipeline
  in steps, and the runs derived from it (one ``parent_uids contains UID`` search, which
  the embedded store answers from its index of start-document values).

Everything is plain JSON from the documents, texts cut to :data:`MAX_TEXT`: the panel
renders it as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound, ScandeckError
from ..query import Key
from ..sources.matching import keep_matching
from .serialize import parent_uids_of, run_summary

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..query import Query
    from ..sources.protocol import RunSummary

__all__ = [
    "MAX_DERIVED",
    "derived_detail",
    "page_parents",
    "parent_ref",
    "pipeline_steps",
]

#: Derived runs listed in a parent's detail, newest first.
MAX_DERIVED = 50
#: Steps of a pipeline kept, and the longest text of one.
MAX_STEPS = 40
MAX_TEXT = 200


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def parent_ref(s: RunSummary) -> dict[str, Any]:
    """What the panel shows of a parent: uid, scan_id, plan_name, status, time."""
    plan = (s.start or {}).get("plan_name")
    return {"uid": s.uid, "scan_id": s.scan_id, "plan_name": _text(plan), "status": s.status, "time": s.time}


def _find(cat: Catalog, query: Query, limit: int) -> list[RunSummary]:
    """Runs of ``cat`` (within its own query) that match ``query``; none when the store cannot say."""
    view = cat.search(query)
    try:
        return view.source.search(view.query, limit=limit)
    except ScandeckError:
        return []


def page_parents(cat: Catalog, listed: Iterable[RunSummary]) -> dict[str, dict[str, Any]]:
    """The parents of the listed runs that are not listed themselves, by uid: one search.

    A parent the catalog does not have (deleted, in another catalog) is left out, and so
    are all when the store cannot answer: the panel then names them by uid.
    """
    rows = list(listed)
    here = {s.uid for s in rows}
    wanted = list(dict.fromkeys(u for s in rows for u in parent_uids_of(s.start) if u not in here))
    if not wanted:
        return {}
    return {s.uid: parent_ref(s) for s in _find(cat, Key("uid").in_(wanted), len(wanted))}


def _step(node: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = node.get("type")
    if not isinstance(kind, str) or not kind:
        return None
    step: dict[str, Any] = {"type": _text(kind)}
    fn = node.get("function") or node.get("predicate")
    if isinstance(fn, Mapping) and isinstance(fn.get("qualname"), str):
        qualname = fn["qualname"]
        step["function"] = _text(qualname.rsplit(".", 1)[-1])
        step["qualname"] = _text(qualname)
        if isinstance(fn.get("module"), str):
            step["module"] = _text(fn["module"])
        if isinstance(fn.get("sha256"), str):
            step["sha256"] = _text(fn["sha256"])
    for key in ("stream", "run", "key", "name"):
        if isinstance(node.get(key), str):
            step[key] = _text(node[key])
    return step


def pipeline_steps(start: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A live derived run's pipeline for reading: its summary line and its nodes as steps.

    Each step is ``{"type", "function"?, "qualname"?, "module"?, "sha256"?, "stream"?,
    "run"?, "key"?}``, in the order the description lists them (sources first). None for a
    run without a pipeline description.

    Examples
    --------
    >>> start = {"pipeline": {"summary": "map(f) -> to_run(primary)", "nodes": [
    ...     {"type": "map", "function": {"qualname": "mod.f", "module": "m", "sha256": None}},
    ...     {"type": "to_run", "stream": "primary"}]}}
    >>> [s.get("function", s["type"]) for s in pipeline_steps(start)["steps"]]
    ['f', 'to_run']
    """
    pipeline = (start or {}).get("pipeline")
    if not isinstance(pipeline, Mapping):
        return None
    nodes = pipeline.get("nodes")
    steps = [] if not isinstance(nodes, list) else [_step(n) for n in nodes[:MAX_STEPS] if isinstance(n, Mapping)]
    summary = pipeline.get("summary")
    return {
        "summary": _text(summary) if isinstance(summary, str) else None,
        "steps": [s for s in steps if s is not None],
        "more_steps": isinstance(nodes, list) and len(nodes) > MAX_STEPS,
        "format": _text(pipeline.get("format")),
    }


def _parents(cat: Catalog, uids: list[str]) -> list[dict[str, Any]]:
    out = []
    for uid in uids:
        try:
            found = keep_matching(cat.source, cat.query, [cat.source.get(uid)])
        except RunNotFound:
            found = []
        out.append(parent_ref(found[0]) if found else {"uid": uid, "missing": True})
    return out


def derived_detail(cat: Catalog, summary: RunSummary, start: Mapping[str, Any] | None) -> dict[str, Any]:
    """The detail's ``parents``, ``pipeline`` and ``derived`` (newest first) of run ``summary``.

    ``derived`` are runs of the whole catalog (not only those a search shows); it lists at
    most :data:`MAX_DERIVED`, ``derived_more`` says whether there are more.
    """
    start = start if start is not None else summary.start
    children = _find(cat, Key("parent_uids").contains(summary.uid), MAX_DERIVED + 1)
    return {
        "parents": _parents(cat, parent_uids_of(start)),
        "pipeline": pipeline_steps(start),
        # contains also matches a string holding the uid: keep the runs whose list names it.
        "derived": [
            run_summary(s)
            for s in children[:MAX_DERIVED]
            if s.uid != summary.uid and summary.uid in parent_uids_of(s.start)
        ],
        "derived_more": len(children) > MAX_DERIVED,
    }
