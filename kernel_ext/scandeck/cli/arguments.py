"""What the command modules share to build their parsers: argument types, :func:`add_command`."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_command", "add_parameter_options", "count", "positive", "seconds"]


def count(text: str) -> int:
    """A whole number, 0 or more (``-n 0``: all)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def add_command(
    sub: Any,
    common: argparse.ArgumentParser,
    name: str,
    help: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """A sub-command of ``scandeck`` with the common options (``--catalog``) and examples below its help.

    ``help`` is the one line ``scandeck --help`` shows; the description is that line as a sentence.
    """
    return sub.add_parser(
        name,
        parents=[common],
        help=help,
        description=help[:1].upper() + help[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_parameter_options(parser: argparse.ArgumentParser, verb: str, parsed: str) -> None:
    """``-p NAME VALUE`` (value parsed as ``parsed`` says) and ``-r NAME VALUE`` (a string), repeatable.

    ``scandeck run`` sets parameters, ``scandeck rerun`` overrides them: ``verb`` says which.
    """
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        dest="parameters",
        help=f"{verb} a parameter (value parsed{parsed})",
    )
    parser.add_argument(
        "-r",
        "--raw",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        dest="raw_parameters",
        help=f"{verb} a parameter with a string, as given",
    )
