"""Lineage of a run: what it came from, who read it, what they made of it.

:func:`lineage` builds a small tree (:class:`LineageNode`) around one run, from
the provenance store and, when given, the catalog:

- **up** (ancestors): the runs a derived run names in its start document's
  ``parent_uids`` (``derived from``, recursively) and the records that wrote it
  (``written by``), with the runs those records read that are not already there;
- **down** (descendants): the records that read the run (``read by``); under
  each, the derived runs it wrote (``wrote``) and the reruns made of it
  (``rerun``), each of them expanded the same way; and derived runs whose
  ``parent_uids`` name the run but that no record claims (``derived``).

A node met a second time is listed again with ``repeat=True`` and not expanded,
so the tree stays finite however records and runs refer to each other.
:func:`render` draws it as text for ``scandeck provenance lineage``.

Examples
--------
>>> tree = lineage("3f2a9c", store=open_store(), catalog=open_catalog())  # doctest: +SKIP
>>> print(render(tree))                                                   # doctest: +SKIP
run 3f2a9c1e  scan_id 12  scan  success
└─ read by  record 1a2b3c4d  peak-fit  batch  ok  2026-11-21 10:02:11
   ├─ wrote  run 9f0e1d2c  derived  success
   ├─ wrote  run 7c6d5e4f  derived  success  pipeline live(primary of 3f2a9c1e) -> map(norm) -> to_run(primary)
   └─ rerun  record 5e6f7a8b  peak-fit  rerun  ok  2026-11-21 10:05:40  on 3f2a9c1e
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import AmbiguousUID, RunNotFound

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import RunSummary
    from .record import ProvenanceRecord
    from .store import ProvStore

__all__ = ["LineageNode", "lineage", "render"]

Relation = Literal["", "derived from", "written by", "read", "read by", "wrote", "rerun", "derived"]

#: How deep the tree goes in each direction before it stops expanding (a guard, not a limit
#: anyone should meet: each level is a generation of analysis).
MAX_DEPTH = 12
#: Longest pipeline summary shown on a derived run's line.
MAX_SUMMARY = 160


@dataclass
class LineageNode:
    """One run or record in a lineage tree.

    ``relation`` says how the node relates to its parent in the tree (empty for
    the root); ``repeat`` marks a node already shown elsewhere, not expanded again.
    """

    kind: Literal["run", "record"]
    id: str
    relation: Relation = ""
    run: RunSummary | None = None
    record: ProvenanceRecord | None = None
    children: list[LineageNode] = field(default_factory=list)
    repeat: bool = False

    def walk(self) -> list[LineageNode]:
        """This node and every node under it, depth first."""
        out = [self]
        for child in self.children:
            out += child.walk()
        return out

    def find(self, relation: str) -> list[LineageNode]:
        """The nodes of the tree (this one included) reached through ``relation``."""
        return [n for n in self.walk() if n.relation == relation]


class _Builder:
    def __init__(self, store: ProvStore, catalog: Catalog | None, max_depth: int) -> None:
        self.store = store
        self.catalog = catalog
        self.max_depth = max_depth
        self.seen: set[tuple[str, str]] = set()
        self._runs: dict[str, RunSummary | None] = {}

    # -- lookups ------------------------------------------------------------------------------

    def summary(self, uid: str) -> RunSummary | None:
        """The catalog's index row of ``uid`` (None without a catalog or when it has none)."""
        if uid not in self._runs:
            found = None
            if self.catalog is not None:
                try:
                    found = self.catalog.source.get(uid)
                except RunNotFound:
                    found = None
            self._runs[uid] = found
        return self._runs[uid]

    def derived_from_catalog(self, uid: str) -> list[str]:
        """Uids of the catalog's runs whose start document lists ``uid`` in ``parent_uids``."""
        if self.catalog is None:
            return []
        from ..query import Key

        found = self.catalog.source.search(Key("parent_uids").contains(uid))
        return [s.uid for s in reversed(found)]  # oldest first, like the records below

    def _node(
        self,
        kind: Literal["run", "record"],
        ident: str,
        relation: Relation,
        record: ProvenanceRecord | None = None,
    ) -> tuple[LineageNode, bool]:
        node = LineageNode(
            kind, ident, relation, record=record, run=self.summary(ident) if kind == "run" else None
        )
        key = (kind, ident)
        if key in self.seen:
            node.repeat = True
            return node, False
        self.seen.add(key)
        return node, True

    # -- up -----------------------------------------------------------------------------------

    def up(self, node: LineageNode, depth: int) -> None:
        """Fill ``node`` (a run) with where it came from."""
        if depth >= self.max_depth:
            return
        parents = _parent_uids(node.run)
        for uid in parents:
            child, fresh = self._node("run", uid, "derived from")
            node.children.append(child)
            if fresh:
                self.up(child, depth + 1)
        for rec in _oldest_first(self.store.writers_of(node.id)):
            child, fresh = self._node("record", rec.id, "written by", rec)
            node.children.append(child)
            if not fresh:
                continue
            for inp in rec.inputs:
                if inp.uid in parents:
                    continue  # already listed as "derived from"
                run, new = self._node("run", inp.uid, "read")
                child.children.append(run)
                if new:
                    self.up(run, depth + 2)

    # -- down ---------------------------------------------------------------------------------

    def down_run(self, node: LineageNode, depth: int) -> None:
        """Fill ``node`` (a run) with the records that read it and the runs derived from it."""
        if depth >= self.max_depth:
            return
        readers = _oldest_first(self.store.readers_of(node.id))
        ids = {r.id for r in readers}
        for rec in readers:
            if rec.parent in ids:
                continue  # a rerun whose parent also read this run is shown under its parent
            child, fresh = self._node("record", rec.id, "read by", rec)
            node.children.append(child)
            if fresh:
                self.down_record(child, depth + 1)
        claimed = {o.uid for rec in readers for o in rec.outputs}
        for uid in self.derived_from_catalog(node.id):
            if uid in claimed or ("run", uid) in self.seen:
                continue
            child, fresh = self._node("run", uid, "derived")
            node.children.append(child)
            if fresh:
                self.down_run(child, depth + 1)

    def down_record(self, node: LineageNode, depth: int) -> None:
        """Fill ``node`` (a record) with the runs it wrote and the reruns made of it."""
        if depth >= self.max_depth or node.record is None:
            return
        for out in node.record.outputs:
            child, fresh = self._node("run", out.uid, "wrote")
            node.children.append(child)
            if fresh:
                self.down_run(child, depth + 1)
        for rec in _oldest_first(self.store.children(node.id)):
            child, fresh = self._node("record", rec.id, "rerun", rec)
            node.children.append(child)
            if fresh:
                self.down_record(child, depth + 1)


def _oldest_first(records: list[ProvenanceRecord]) -> list[ProvenanceRecord]:
    return sorted(records, key=lambda r: r.created)


def _parent_uids(run: RunSummary | None) -> list[str]:
    if run is None:
        return []
    parents = run.start.get("parent_uids")
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list):
        return []
    return [p for p in parents if isinstance(p, str) and p]


def resolve_uid(uid: str, store: ProvStore, catalog: Catalog | None) -> str:
    """The full uid ``uid`` (a uid or uid prefix) names, in the catalog or the store.

    A run that only the store knows (read or written by a record, in a catalog not
    at hand) must be given in full.
    """
    if catalog is not None:
        source = catalog.source
        try:
            return source.get(uid).uid
        except RunNotFound:
            pass
        candidates = source.find_prefix(uid, limit=50)
        if len(candidates) > 1:
            raise AmbiguousUID(uid, [s.uid for s in candidates])
        if candidates:
            return candidates[0].uid
    if store.readers_of(uid) or store.writers_of(uid):
        return uid
    where = f"{catalog.name} or " if catalog is not None else ""
    raise RunNotFound(
        f"no run with uid or uid prefix {uid!r} in {where}the provenance records in {store.directory}"
    )


def lineage(
    uid: str, *, store: ProvStore, catalog: Catalog | None = None, max_depth: int = MAX_DEPTH
) -> LineageNode:
    """The lineage tree of run ``uid`` (a uid, or a uid prefix the catalog resolves).

    Parameters
    ----------
    uid
        The run at the root.
    store
        The provenance store: who read and wrote which runs, and reruns.
    catalog
        Where runs are looked up: prefixes, scan_ids and plan names in the text,
        ``parent_uids`` of derived runs. Without it only records are followed.
    max_depth
        Generations followed in each direction.

    Returns
    -------
    LineageNode
        The run; its children are first the ``derived from`` / ``written by``
        nodes (up), then ``read by`` / ``derived`` (down).
    """
    builder = _Builder(store, catalog, max_depth)
    full = resolve_uid(uid, store, catalog)
    root, _ = builder._node("run", full, "")
    builder.up(root, 0)
    builder.down_run(root, 0)
    return root


# -- text ----------------------------------------------------------------------------------------


def describe(node: LineageNode, root_uid: str = "") -> str:
    """One line for a node: what it is, without the relation."""
    from ..listing import local_time

    if node.kind == "run":
        text = f"run {node.id[:8]}"
        s = node.run
        if s is None:
            return text + "  (not in this catalog)"
        parts = [text]
        if s.scan_id is not None:
            parts.append(f"scan_id {s.scan_id}")
        parts.append(str(s.start.get("plan_name", "-")))
        parts.append(s.status)
        summary = pipeline_summary(s.start)
        if summary:
            parts.append(f"pipeline {summary}")
        return "  ".join(parts)
    rec = node.record
    if rec is None:  # pragma: no cover - record nodes always carry their record
        return f"record {node.id[:8]}"
    parts = [f"record {rec.id[:8]}", rec.name, rec.kind, rec.status, local_time(rec.created)]
    if rec.parent and node.relation != "rerun":  # under its parent already
        parts.append(f"rerun of {rec.parent[:8]}")
    if rec.target_scan:
        here = " (this run)" if root_uid and rec.target_scan == root_uid else ""
        parts.append(f"on {rec.target_scan[:8]}{here}")
    if rec.error is not None:
        where = f"cell {rec.error.cell_index}" if rec.error.cell_index is not None else "?"
        parts.append(f"[{where}: {rec.error.ename}]")
    return "  ".join(parts)


def pipeline_summary(start: dict[str, Any]) -> str:
    """The one-line summary of the pipeline a live derived run (``to_run``) came from, or ""."""
    pipeline = start.get("pipeline")
    summary = pipeline.get("summary") if isinstance(pipeline, dict) else None
    if not isinstance(summary, str):
        return ""
    return summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 3] + "..."


def render(root: LineageNode) -> str:
    """The tree as text, one node a line, with box-drawing branches."""
    lines = [describe(root)]

    def walk(node: LineageNode, prefix: str) -> None:
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            tail = "  (shown above)" if child.repeat else ""
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{child.relation}  {describe(child, root.id)}{tail}")
            walk(child, prefix + ("   " if last else "│  "))

    walk(root, "")
    return "\n".join(lines)
