"""The ``scandeck`` command: the parser, assembled from the command modules, and :func:`main`.

Each command module adds its sub-commands (``add_parsers(sub, common)``) and
sets the function that runs them (``handler``); this module only assembles the
parser and turns errors into one stderr line. Heavy imports wait inside the
commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import annotate, auto, columns, files, keeper, provenance, rerun, run, runs, watch, write
from .errors import PROG, CliError, exit_code, hint_for, report, split_query
from .targets import add_catalog_option

__all__ = ["main", "parser"]

#: The command modules, in the order ``scandeck --help`` lists their commands.
COMMANDS = (runs, annotate, write, keeper, run, provenance, rerun, auto, columns, watch, files)


def parser() -> argparse.ArgumentParser:
    """The ``scandeck`` argument parser, every sub-command included."""
    from .. import __version__

    top = argparse.ArgumentParser(
        prog=PROG,
        description="Bluesky runs in an embedded store: list, inspect, import and export them.",
        epilog="'scandeck COMMAND --help' shows a command's options and examples.",
    )
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    add_catalog_option(common)
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub, common)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scandeck`` command line; return the exit status.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.
    """
    from ..exceptions import ScandeckError

    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:
        split = split_query(args, extra)
        if split is None:
            top.parse_args(argv)  # argparse's own message for other stray arguments; exits 2
        else:
            return report(args.command, *split, code=2)
    if args.command is None:
        top.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except CliError as err:
        return report(args.command, str(err), err.hint, err.code)
    except ScandeckError as err:
        return report(args.command, str(err), hint_for(err), exit_code(err))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `scandeck ls | head`: the reader left; silence the flush at exit as well.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
