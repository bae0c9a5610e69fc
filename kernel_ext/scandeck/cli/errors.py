"""The command line's errors: :class:`CliError`, the hints for scandeck's errors, :func:`report`.

An error the user can fix prints one line on stderr with a hint and exits
non-zero: 2 for usage errors (bad arguments, a query that does not parse), 1
for failures.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys

__all__ = ["HINTS", "PROG", "USAGE_ERRORS", "CliError", "exit_code", "hint_for", "report", "split_query"]

PROG = "scandeck"

#: Hints for scandeck's errors, by class name (their messages already say what happened).
HINTS = {
    "RunNotFound": "'scandeck ls' lists the runs; give a uid prefix, a scan_id or -1",
    "QuerySyntaxError": 'queries look like: plan_name == "scan" and sample == "Ni" '
    "(quote the whole query for the shell)",
    "InvalidQuery": 'queries look like: plan_name == "scan" and sample == "Ni"',
    "UnknownName": "'scandeck catalogs' lists the catalog names; or give a store path",
    "StreamNotFound": "'scandeck show UID' lists the run's streams",
    "UnknownKernel": "'jupyter kernelspec list' shows the installed kernels",
}
#: scandeck errors that are the user's arguments: exit status 2, as argparse's own.
USAGE_ERRORS = ("QuerySyntaxError", "InvalidQuery")


class CliError(Exception):
    """A user-facing failure: one message line, an optional hint, an exit code."""

    def __init__(self, message: str, hint: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


def hint_for(err: BaseException) -> str:
    """The hint shown under a scandeck error ("" when its message says enough)."""
    return HINTS.get(type(err).__name__, "")


def exit_code(err: BaseException) -> int:
    """2 for a usage error (the arguments were wrong), else 1."""
    return 2 if type(err).__name__ in USAGE_ERRORS else 1


def report(command: str, message: str, hint: str = "", code: int = 1) -> int:
    """Print ``scandeck COMMAND: error: message`` and a hint on stderr; return ``code``.

    Messages embed run values (uids, metadata): control characters are escaped.
    """
    from ..safe_text import printable

    where = f"{PROG} {command}" if command else PROG
    print(f"{where}: error: {printable(message, keep=chr(10))}", file=sys.stderr)
    if hint:
        print(f"  hint: {printable(hint, keep=chr(10))}", file=sys.stderr)
    return code


#: Operators after which a bare word was a string the shell unquoted (``sample == Ni``).
_OPERATORS = {"==", "!=", "<", "<=", ">", ">=", "contains", "startswith"}
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def split_query(args: argparse.Namespace, extra: list[str]) -> tuple[str, str] | None:
    """(message, hint) when the shell split an unquoted query into several arguments.

    ``scandeck ls sample == Ni`` reaches us as ``sample``, ``==``, ``Ni`` (the shell
    also drops quotes typed around ``"Ni"``); argparse would say "unrecognized
    arguments". ``None`` when ``extra`` are not the rest of a query (an unknown option).
    """
    query = getattr(args, "query", None)
    if not query or any(word.startswith("-") and not _NUMBER.fullmatch(word) for word in extra):
        return None
    words = [query, *extra]
    quoted = [
        f'"{word}"' if before in _OPERATORS and _bare_word(word) else word
        for before, word in zip(["", *words[:-1]], words, strict=True)
    ]
    text = " ".join(quoted)
    return (
        f"the query was split by the shell into {len(words)} arguments: {' '.join(words)}",
        f"quote the whole query, and strings in it: {PROG} {args.command} {shlex.quote(text)}",
    )


def _bare_word(word: str) -> bool:
    return not (_NUMBER.fullmatch(word) or word in ("true", "false", "null") or word[:1] in "\"'[")
