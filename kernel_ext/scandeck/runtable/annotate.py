"""Comments and tags on a run: what ``Run.annotate``, ``Run.untag`` and ``scandeck tag`` do.

Every change is appended to the run's annotation history with its author, host and
time (:class:`~scandeck.runtable.model.Annotation`); nothing is rewritten, and the
current tags are the history replayed. The author is ``$SCANDECK_AUTHOR`` when set
(a shared beamline account can say who sits at it), else the login name.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Iterable

from ..exceptions import FactsNotSupported, InvalidAnnotation
from ..safe_text import printable
from ..sources.protocol import RunFacts, Source
from ..uris import redact
from .model import Annotation, AnnotationKind, check_comment, check_tag, current_tags

__all__ = ["ENV_AUTHOR", "annotate", "author", "facts_of", "untag"]

#: Environment variable naming the author of annotations (default: the login name).
ENV_AUTHOR = "SCANDECK_AUTHOR"


def facts_of(source: Source) -> RunFacts:
    """``source`` as a :class:`~scandeck.sources.protocol.RunFacts`, or :class:`FactsNotSupported`
    naming the store and the stores that keep comments, tags and computed columns."""
    if isinstance(source, RunFacts):
        return source
    raise FactsNotSupported(
        f"the store {redact(source.uri)} cannot keep comments, tags or computed columns; "
        "stores that implement scandeck.sources.protocol.RunFacts can: the embedded store "
        "(a directory or .sqlite file), a Redis bus, memory://, and Tiled archives (in a sidecar file)"
    )


def author() -> str:
    """Who annotates: ``$SCANDECK_AUTHOR``, else the login name, else ``"unknown"``."""
    name = os.environ.get(ENV_AUTHOR, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


def _note(kind: AnnotationKind, text: str, now: float, by: str | None) -> Annotation:
    return Annotation(kind, text, by or author(), socket.gethostname(), now)


def annotate(
    source: Source, uid: str, comment: str | None = None, tags: Iterable[str] = (), *, by: str | None = None
) -> list[Annotation]:
    """Append a comment and/or tags to run ``uid``'s history; return the entries added.

    ``by`` names the author (the Jupyter server passes its user's name); default :func:`author`.

    Every text is checked before anything is stored, so a bad tag stores nothing.
    A tag the run already has is added again (the history says who tagged it when).

    Raises
    ------
    InvalidAnnotation
        Neither a comment nor a tag, or one that cannot be stored (empty, too long, NUL).
    FactsNotSupported
        The store keeps no annotations.
    RunNotFound
        No run ``uid`` in the store.
    """
    facts = facts_of(source)
    if isinstance(tags, str):  # annotate(tags="Ni") would otherwise tag N and i
        tags = [tags]
    checked_tags = [check_tag(t) for t in tags]
    checked_comment = None if comment is None else check_comment(comment)
    if checked_comment is None and not checked_tags:
        raise InvalidAnnotation("nothing to add: give a comment, tags, or both, e.g. annotate(tags=['Ni'])")
    now = time.time()
    notes = [_note("comment", checked_comment, now, by)] if checked_comment is not None else []
    notes += [_note("tag", t, now, by) for t in dict.fromkeys(checked_tags)]
    facts.add_annotations(uid, notes)
    return notes


def untag(source: Source, uid: str, tags: Iterable[str], *, by: str | None = None) -> list[Annotation]:
    """Remove tags from run ``uid`` (appending ``untag`` entries); return the entries added.

    Raises
    ------
    InvalidAnnotation
        No tag given, or a tag the run does not have (the message lists its tags);
        nothing is stored then.
    """
    facts = facts_of(source)
    if isinstance(tags, str):
        tags = [tags]
    wanted = list(dict.fromkeys(check_tag(t) for t in tags))
    if not wanted:
        raise InvalidAnnotation("say which tags to remove, e.g. untag('redo')")
    have = current_tags(facts.annotations(uid))
    absent = [t for t in wanted if t not in have]
    if absent:
        listed = ", ".join(repr(t) for t in have) if have else "none"
        raise InvalidAnnotation(
            printable(f"run {uid[:8]} has no tag {', '.join(repr(t) for t in absent)}; its tags: {listed}")
        )
    now = time.time()
    notes = [_note("untag", t, now, by) for t in wanted]
    facts.add_annotations(uid, notes)
    return notes
