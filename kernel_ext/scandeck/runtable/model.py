"""What a run's facts are: annotations, computed cells, data summaries, and the document queries read.

The query language sees a run's facts as one JSON document (:func:`facts_document`)::

    {"columns": {"peak_cen": 0.52},             # computed values that succeeded
     "tags": ["Ni", "redo"],                    # current tags, in the order first given
     "comments": "bad beam after 12:40\\n...",   # every comment's text, one per line
     "data": {"theta": {"min": 0.0, "max": 5.0}}}

so ``columns.peak_cen > 0.5``, ``tags contains "Ni"``, ``comments contains "bad beam"``
and ``data.theta.min >= 0`` are plain comparisons on it (see :mod:`scandeck.query`).

A notebook's *published values* (``scandeck.glue``, stored by its reruns on their target
run: :mod:`scandeck.provenance.published`) are cells too, of columns named
``<record name>.<value name>`` (:func:`published_column`; a computed column's name is an
identifier, so the dot tells them apart) with the code hash ``glue:<record id>``. In the
document they are grouped by record, ``{"columns": {"peak-fit": {"cen": 0.5}}}``, so that
``columns.peak-fit.cen > 0.5`` searches them (a record name that is not an identifier is
quoted: ``columns.`peak fit`.cen``); a computed column of the record's name keeps its place.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..exceptions import InvalidAnnotation

__all__ = [
    "CELL_STATUSES",
    "FACT_ROOTS",
    "PUBLISHED_MARK",
    "Annotation",
    "Cell",
    "check_column_name",
    "check_comment",
    "check_tag",
    "current_tags",
    "empty_facts",
    "facts_document",
    "merge_summaries",
    "is_published",
    "needs_computing",
    "published_column",
]

#: The first names of query keys that read a run's facts rather than its start document
#: (quoted, `` `tags` ``, they name a start field).
FACT_ROOTS = ("columns", "tags", "comments", "data")
#: How a computed cell ended: a value, an exception in the column's code, or its time limit.
CELL_STATUSES = ("ok", "error", "timeout")
AnnotationKind = Literal["comment", "tag", "untag"]
#: The start of a published value's code hash (``glue:<record id>``): it has no code to run.
PUBLISHED_MARK = "glue:"

_MAX_TAG = 100
_MAX_COMMENT = 10_000


@dataclass(frozen=True)
class Annotation:
    """One entry of a run's annotation history: a comment, a tag added, or a tag removed.

    Entries are only ever appended; the current tags are the history replayed
    (:func:`current_tags`).
    """

    kind: AnnotationKind
    text: str
    author: str
    host: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "author": self.author, "host": self.host, "time": self.time}


@dataclass(frozen=True)
class Cell:
    """One computed column's value for one run.

    ``code_hash`` is the hash of the column's code when the value was computed: a
    column whose code changed since has a *stale* cell. ``status`` is ``ok`` (``value``
    holds the result), ``error`` (``error`` holds the exception's message) or
    ``timeout``. ``final`` is False for a value computed while the run was running.
    """

    value: Any
    code_hash: str
    status: str = "ok"
    error: str | None = None
    time: float = 0.0
    final: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "code_hash": self.code_hash,
            "status": self.status,
            "error": self.error,
            "time": self.time,
            "final": self.final,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cell:
        return cls(
            value=d.get("value"),
            code_hash=str(d.get("code_hash", "")),
            status=str(d.get("status", "ok")),
            error=d.get("error"),
            time=float(d.get("time", 0.0)),
            final=bool(d.get("final", True)),
        )


def needs_computing(cell: Cell | None, code_hash: str) -> bool:
    """Whether a run needs a (new) cell of a column whose code hashes to ``code_hash``: it has none,
    one computed by other code, or one computed while the run was running (the rule of every
    store's :meth:`~scandeck.sources.protocol.RunFacts.needing`).

    Examples
    --------
    >>> needs_computing(None, "h"), needs_computing(Cell(1, "h"), "h"), needs_computing(Cell(1, "old"), "h")
    (True, False, True)
    """
    return cell is None or cell.code_hash != code_hash or not cell.final


def published_column(record_name: str, value_name: str) -> str:
    """The run-table column of a value a record published: ``<record name>.<value name>``.

    Examples
    --------
    >>> published_column("peak fit", "cen")
    'peak fit.cen'
    """
    return f"{record_name}.{value_name}"


def is_published(name: str) -> bool:
    """Whether a cell's column ``name`` is a published value's (computed columns' names have no dot)."""
    return "." in name


def _check_text(what: str, text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidAnnotation(f"a {what} must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidAnnotation(f"a {what} cannot be empty")
    if len(stripped) > limit:
        raise InvalidAnnotation(f"a {what} holds at most {limit} characters, not {len(stripped)}")
    if "\0" in stripped:
        raise InvalidAnnotation(f"a {what} cannot contain a NUL character")
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: no store can keep it as text
        raise InvalidAnnotation(f"a {what} must be valid Unicode text: {err.reason} at {err.start}") from None
    return stripped


def check_tag(tag: object) -> str:
    """A tag as stored (stripped), or :class:`InvalidAnnotation` saying what is wrong.

    A tag is one line of at most 100 characters; tags compare case-sensitively.

    Examples
    --------
    >>> check_tag("  Ni ")
    'Ni'
    """
    text = _check_text("tag", tag, _MAX_TAG)
    if "\n" in text or "\r" in text:
        raise InvalidAnnotation(f"a tag is one line: {text.splitlines()[0]!r}... holds a line break")
    return text


def check_comment(comment: object) -> str:
    """A comment as stored (stripped), or :class:`InvalidAnnotation`."""
    return _check_text("comment", comment, _MAX_COMMENT)


def check_column_name(name: object) -> str:
    """A computed column's name: an identifier (it is written ``columns.<name>`` in queries)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidAnnotation(f"a column name must be a Python identifier such as peak_cen, not {name!r}")
    return name


def current_tags(history: Iterable[Annotation]) -> list[str]:
    """The tags a history leaves on a run, in the order each was (last) added.

    Examples
    --------
    >>> h = [Annotation("tag", t, "a", "h", 0.0) for t in ("Ni", "redo")]
    >>> current_tags(h + [Annotation("untag", "Ni", "a", "h", 1.0)])
    ['redo']
    """
    tags: dict[str, None] = {}
    for note in history:
        if note.kind == "tag":
            tags.pop(note.text, None)
            tags[note.text] = None
        elif note.kind == "untag":
            tags.pop(note.text, None)
    return list(tags)


def merge_summaries(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per-key ``{"min", "max"}`` merged over several streams' summaries (min of mins, max of maxes)."""
    merged: dict[str, dict[str, float]] = {}
    for part in parts:
        for key, s in part.items():
            lo, hi = s.get("min"), s.get("max")
            if lo is None or hi is None:
                continue
            have = merged.get(key)
            if have is None:
                merged[key] = {"min": lo, "max": hi}
            else:
                have["min"] = min(have["min"], lo)
                have["max"] = max(have["max"], hi)
    return merged


def _json_scalar(v: Any) -> Any:
    # JSON has no infinity: the largest float compares as it does with every finite number
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else math.copysign(sys.float_info.max, v)
    return v


def facts_document(
    history: Sequence[Annotation],
    cells: Mapping[str, Cell],
    summary: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """The JSON document queries read for a run's facts (see the module docstring).

    Failed cells are left out (a query on them matches nothing, as a missing key), and
    so is NaN; JSON has no infinity, so an infinite value is the largest float of its sign.

    Examples
    --------
    >>> doc = facts_document([], {"cen": Cell(0.5, "h")}, {"theta": {"min": 0.0, "max": 5.0}})
    >>> doc["columns"], doc["tags"], doc["data"]["theta"]["max"]
    ({'cen': 0.5}, [], 5.0)
    >>> facts_document([], {"peak-fit.cen": Cell(0.5, "glue:1a2b")}, {})["columns"]
    {'peak-fit': {'cen': 0.5}}
    """
    ok = {name: _json_scalar(c.value) for name, c in cells.items() if c.status == "ok"}
    columns: dict[str, Any] = {name: v for name, v in ok.items() if v is not None and not is_published(name)}
    groups: dict[str, dict[str, Any]] = {}
    for name, v in ok.items():
        record, _, value = name.rpartition(".")
        if v is None or not record or (record in columns and record not in groups):
            continue  # a computed column named as the record keeps its place
        groups.setdefault(record, columns.setdefault(record, {}))[value] = v
    comments = "\n".join(n.text for n in history if n.kind == "comment")
    data = {
        key: {k: _json_scalar(v) for k, v in s.items() if k in ("min", "max") and _json_scalar(v) is not None}
        for key, s in summary.items()
    }
    return {"columns": columns, "tags": current_tags(history), "comments": comments, "data": data}


def empty_facts() -> dict[str, Any]:
    """The facts document of a run nothing was recorded about (no annotation, cell or summary).

    A store that keeps no document for such a run reads it as this one, in SQL and in
    its index too, so that every search agrees with ``Query.matches`` given ``facts()``.

    Examples
    --------
    >>> empty_facts()
    {'columns': {}, 'tags': [], 'comments': '', 'data': {}}
    """
    return facts_document([], {}, {})
