"""The facts of the in-memory store's runs: annotations, computed cells, data summaries.

:class:`MemoryFacts` holds them as plain Python objects; it does no locking of its
own: :class:`~scandeck.sources.memory.MemorySource` calls it under the store's
lock and bumps the store's change token on every write, so ``wait()`` wakes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..runtable.model import Annotation, Cell, facts_document, needs_computing
from ..runtable.summaries import column_range, reading_range

__all__ = ["MemoryFacts", "event_summary"]


def event_summary(name: str, doc: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per data key ``{"min", "max"}`` of an event's or event page's readings, by the one
    summary rule every writer follows (:func:`scandeck.runtable.summaries.reading_range`,
    :func:`~scandeck.runtable.summaries.column_range` for a page's columns).

    Examples
    --------
    >>> event_summary("event_page", {"data": {"th": [3.0, -1], "img": [[[1, 2], [3, 4]]], "ok": [True]}})
    {'th': {'min': -1, 'max': 3.0}, 'img': {'min': 1, 'max': 4}}
    """
    data = doc.get("data")
    if not isinstance(data, Mapping):
        return {}
    out: dict[str, dict[str, float]] = {}
    for key, raw in data.items():
        found = column_range(raw) if name == "event_page" and isinstance(raw, list) else reading_range(raw)
        if found is not None:
            out[key] = {"min": found[0], "max": found[1]}
    return out


@dataclass
class _Facts:
    history: list[Annotation] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    changed: int = 0  # the facts counter when they last changed


class MemoryFacts:
    """Annotations, cells and data summaries per run uid, and a counter of their changes."""

    def __init__(self) -> None:
        self._runs: dict[str, _Facts] = {}
        self._mark = 0

    def add_run(self, uid: str) -> None:
        self._runs[uid] = _Facts()

    def _touch(self, facts: _Facts) -> None:
        self._mark += 1
        facts.changed = self._mark

    def add_events(self, uid: str, name: str, doc: Mapping[str, Any]) -> None:
        """Fold an event (page) into the run's data summary; a change counts as a facts change."""
        facts = self._runs[uid]
        moved = False
        for key, s in event_summary(name, doc).items():
            have = facts.summary.get(key)
            if have is None:
                facts.summary[key] = dict(s)
                moved = True
            elif s["min"] < have["min"] or s["max"] > have["max"]:
                have["min"], have["max"] = min(have["min"], s["min"]), max(have["max"], s["max"])
                moved = True
        if moved:
            self._touch(facts)

    def add_annotations(self, uid: str, notes: Sequence[Annotation]) -> None:
        facts = self._runs[uid]
        facts.history.extend(notes)
        self._touch(facts)

    def annotations(self, uid: str) -> list[Annotation]:
        return list(self._runs[uid].history)

    def put_cells(self, uid: str, cells: Mapping[str, Cell]) -> None:
        facts = self._runs[uid]
        facts.cells.update(cells)
        self._touch(facts)

    def delete_cells(self, name: str) -> int:
        n = 0
        for facts in self._runs.values():
            if facts.cells.pop(name, None) is not None:
                n += 1
                self._touch(facts)
        return n

    def cells(self, uids: Collection[str], names: Collection[str] | None) -> dict[str, dict[str, Cell]]:
        out: dict[str, dict[str, Cell]] = {}
        wanted = None if names is None else set(names)
        for uid in uids:
            facts = self._runs.get(uid)
            if facts is None:
                continue
            found = {n: c for n, c in facts.cells.items() if wanted is None or n in wanted}
            if found:
                out[uid] = found
        return out

    def names(self) -> tuple[set[str], set[str]]:
        """The column names of every stored cell, and the data keys of every summary."""
        cells = {name for facts in self._runs.values() for name in facts.cells}
        keys = {key for facts in self._runs.values() for key in facts.summary}
        return cells, keys

    def data_summary(self, uid: str) -> dict[str, dict[str, float]]:
        return {key: dict(s) for key, s in self._runs[uid].summary.items()}

    def document(self, uid: str) -> dict[str, Any]:
        facts = self._runs[uid]
        return facts_document(facts.history, facts.cells, facts.summary)

    def stale(self, uid: str, name: str, code_hash: str) -> bool:
        """Whether run ``uid`` needs a (new) cell of ``name``: none, other code, or not final."""
        return needs_computing(self._runs[uid].cells.get(name), code_hash)

    def since(self, mark: int) -> tuple[int, list[str]]:
        changed = sorted((f.changed, uid) for uid, f in self._runs.items() if f.changed > mark)
        return self._mark, [uid for _, uid in changed]
