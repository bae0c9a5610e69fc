"""The annotation commands of ``scandeck``: tag, comment, annotations.

They do what ``run.annotate``, ``run.untag`` and ``run.annotations`` do
(:mod:`scandeck.runtable.annotate`), on a run named as everywhere on the command
line (a uid or uid prefix, a scan_id, ``-1`` for the newest). Every run value
printed passes through :func:`~scandeck.safe_text.printable`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..listing import local_time, render_table
from ..safe_text import printable
from .arguments import add_command
from .errors import CliError
from .runs import resolve_run
from .targets import open_target

__all__ = ["add_parsers", "cmd_annotations", "cmd_comment", "cmd_tag"]

EPILOGS = {
    "tag": """\
examples:
  scandeck tag -1 Ni redo              tag the newest run "Ni" and "redo"
  scandeck tag 3f2a9c redo --remove    remove the tag "redo"
  scandeck ls 'tags contains "redo"'   the runs tagged "redo"

Each change is kept with its author ($SCANDECK_AUTHOR, else your login), host and
time: 'scandeck annotations UID' shows the history.""",
    "comment": """\
examples:
  scandeck comment -1 "bad beam after 12:40"
  scandeck ls 'comments contains "bad beam"'

A comment holds up to 10,000 characters; quote it for the shell.""",
    "annotations": """\
examples:
  scandeck annotations -1          who commented and tagged the newest run, when
  scandeck annotations 42 --json   one JSON object per entry""",
}


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add tag, comment and annotations to the ``scandeck`` sub-parsers."""

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return add_command(sub, common, name, help, EPILOGS[name])

    tag = command("tag", "add tags to a run (or remove them with --remove)")
    tag.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
    tag.add_argument("tags", nargs="+", metavar="TAG", help="one or more tags")
    tag.add_argument("--remove", action="store_true", help="remove these tags instead")
    tag.set_defaults(handler=cmd_tag)

    comment = command("comment", "add a comment to a run")
    comment.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
    comment.add_argument("text", nargs="+", metavar="TEXT", help="the comment (words are joined by spaces)")
    comment.set_defaults(handler=cmd_comment)

    notes = command("annotations", "show a run's comments and tag changes, oldest first")
    notes.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
    notes.add_argument("--json", action="store_true", help="one JSON object per entry")
    notes.set_defaults(handler=cmd_annotations)


def _fix(
    err: Exception, hint: str = "tags are one line of at most 100 characters; comments at most 10,000"
) -> CliError:
    """Annotation errors as one line with what to do (usage errors: exit status 2)."""
    from ..exceptions import FactsNotSupported

    if isinstance(err, FactsNotSupported):
        return CliError(str(err), "give --catalog a store that keeps them: an embedded store, a Redis bus")
    return CliError(str(err), hint, code=2)


def _name(run: Any) -> str:
    scan = f"scan {run.scan_id}, " if run.scan_id is not None else ""
    return printable(f"run {run.uid[:8]} ({scan}{run.summary.start.get('plan_name', '?')})")


def cmd_tag(args: argparse.Namespace) -> int:
    """``scandeck tag UID TAG... [--remove]``."""
    from ..exceptions import FactsNotSupported, InvalidAnnotation

    cat = open_target(args)
    try:
        run, note = resolve_run(cat, args.run)
        try:
            if args.remove:
                run.untag(*args.tags)
            else:
                run.annotate(tags=args.tags)
        except (InvalidAnnotation, FactsNotSupported) as err:
            if args.remove:
                raise _fix(err, "'scandeck annotations UID' shows who tagged and untagged it") from err
            raise _fix(err) from err
        if note:
            print(f"note: {printable(note)}")
        tags = run.tags
        print(f"{_name(run)}: tags {printable(', '.join(tags)) if tags else 'none'}")
        return 0
    finally:
        cat.close()


def cmd_comment(args: argparse.Namespace) -> int:
    """``scandeck comment UID TEXT``."""
    from ..exceptions import FactsNotSupported, InvalidAnnotation

    cat = open_target(args)
    try:
        run, note = resolve_run(cat, args.run)
        try:
            run.annotate(comment=" ".join(args.text))
        except (InvalidAnnotation, FactsNotSupported) as err:
            raise _fix(err) from err
        if note:
            print(f"note: {printable(note)}")
        n = len(run.comments)
        print(f"{_name(run)}: comment added ({n} comment{'s' if n != 1 else ''})")
        return 0
    finally:
        cat.close()


def cmd_annotations(args: argparse.Namespace) -> int:
    """``scandeck annotations UID [--json]``."""
    from ..exceptions import FactsNotSupported

    cat = open_target(args)
    try:
        run, note = resolve_run(cat, args.run)
        try:
            history = run.annotations
        except FactsNotSupported as err:
            raise _fix(err) from err
        if args.json:
            for entry in history:
                print(printable(json.dumps(entry.to_dict(), ensure_ascii=False)))
            return 0
        if note:
            print(f"note: {printable(note)}")
        if not history:
            print(f"{_name(run)}: no comments or tags yet ('scandeck comment' and 'scandeck tag' add them)")
            return 0
        rows = [[local_time(e.time), f"{e.author}@{e.host}", e.kind, e.text] for e in history]
        print(_name(run))
        print(render_table(["time", "by", "what", "text"], rows))
        tags = run.tags
        print(f"current tags: {printable(', '.join(tags)) if tags else 'none'}")
        return 0
    finally:
        cat.close()
