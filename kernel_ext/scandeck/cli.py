"""The ``scandeck`` command: list, show, ingest, export runs and run the demo beamline.

Every command works on one catalog, chosen with ``--catalog NAME|PATH|URI``
(default: ``$SCANDECK_CATALOG``, else the embedded default store). Errors that
the user can fix print one line on stderr with a hint and exit non-zero:
2 for usage errors (bad arguments, a query that does not parse), 1 for
failures. The commands themselves live in :mod:`scandeck.cli_commands` and
:mod:`scandeck.cli_write`; imports are lazy so that ``--help`` is instant.

Examples
--------
$ scandeck ls 'plan_name == "scan" and sample == "Ni"' -n 5
$ scandeck show -1
$ scandeck export -1 --format msgpack -o backup/
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["CliError", "main", "open_target", "report"]

PROG = "scandeck"
ENV_CATALOG = "SCANDECK_CATALOG"


class CliError(Exception):
    """A user-facing failure: one message line, an optional hint, an exit code."""

    def __init__(self, message: str, hint: str = "", code: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


# -- catalogs ---------------------------------------------------------------------------------


def target_of(args: argparse.Namespace) -> str | None:
    """The ``--catalog`` value, else ``$SCANDECK_CATALOG``, else None (the default store)."""
    return args.catalog or os.environ.get(ENV_CATALOG) or None


def _looks_like_path(text: str) -> bool:
    if text.startswith("sqlite://"):
        return True
    if "://" in text:
        return False
    text = text.split("?", 1)[0]  # ./store?mode=ro
    return "/" in text or "\\" in text or text.endswith((".sqlite", ".sqlite3", ".db"))


def open_target(args: argparse.Namespace, *, create: bool = False) -> Catalog:
    """Open the catalog ``--catalog`` names.

    Parameters
    ----------
    args
        Parsed arguments with a ``catalog`` attribute.
    create
        Whether a missing store path may be created (ingest, demo). Reading
        commands refuse, because silently creating an empty store at a mistyped
        path would only show "0 runs".
    """
    from . import open_catalog
    from .sources import sqlite_target

    target = target_of(args)
    if target is None:
        return open_catalog()
    if _looks_like_path(target) and not create:
        path = Path(sqlite_target(target)[0]).expanduser()
        if not path.exists():
            raise CliError(
                f"no run store at {path}",
                "check the path; 'scandeck ingest' or 'scandeck demo' create a store there",
            )
    try:
        return open_catalog(target)
    except ModuleNotFoundError as err:
        # Named catalogs come from scandeck.catalog_files; without it only paths work.
        if err.name != "scandeck.catalog_files":
            raise
        if Path(target).exists():
            return open_catalog(Path(target))
        raise CliError(
            f"no store at {target!r}, and named catalogs are not available in this installation",
            "give a store directory (./store), a .sqlite file or a URI (memory://name)",
        ) from None


def default_store_label(args: argparse.Namespace) -> str:
    """How to name this catalog to a user: the ``--catalog`` value or "the default store"."""
    target = target_of(args)
    return repr(target) if target else "the default store"


# -- parser -----------------------------------------------------------------------------------

_EPILOGS = {
    "ls": """\
examples:
  scandeck ls                                    the 20 newest runs
  scandeck ls -n 0                               every run
  scandeck ls 'sample == "Ni"'                   runs of one sample
  scandeck ls 'plan_name == "scan" and num_points > 10'
  scandeck ls 'stop.exit_status != "success"'    runs that did not succeed
  scandeck ls 'time > "2024-05-01"' --json       one JSON object per run (for jq)

Running runs come first, then the rest newest first. Quote the query for the shell.""",
    "show": """\
examples:
  scandeck show -1          the newest run (-2: the one before)
  scandeck show 42          the newest run with scan_id 42
  scandeck show 3f2a9c      the run whose uid starts with 3f2a9c""",
    "ingest": """\
examples:
  scandeck ingest runs/*.jsonl
  scandeck ingest --catalog ./store backup/*.msgpack

Runs already in the catalog are skipped, so ingesting a folder twice is safe.
A damaged file is reported with its line and skipped from there on; the
documents before the damage are kept (that run is then 'incomplete').""",
    "export": """\
examples:
  scandeck export -1                             the newest run, as <uid>.jsonl here
  scandeck export 42 43 --format msgpack -o backup/

Files the run refers to (detector images) are not copied: its resource
documents keep their paths. 'scandeck ingest' reads the files back.""",
    "demo": """\
examples:
  scandeck demo                     runs until Ctrl-C, about one point per second
  scandeck demo --runs 5 --pace 0   five runs, as fast as possible
  scandeck demo --catalog ./demo-store --seed 1
  scandeck demo --catalog 'redis://localhost:6379/0?prefix=demo'   publish on a Redis bus

Watch it from another terminal with 'scandeck ls' (same --catalog).
Ctrl-C stops: the run in flight is aborted and still gets its stop document.""",
    "catalogs": """\
examples:
  scandeck catalogs
  scandeck ls --catalog NAME     list the runs of one of them""",
}


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bluesky runs in an embedded store: list, inspect, import and export them.",
        epilog="'scandeck COMMAND --help' shows a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--catalog",
        metavar="NAME|PATH|URI",
        help=f"the catalog to use: a catalog name, a store directory, a .sqlite file or a URI "
        f"(default: ${ENV_CATALOG}, else the embedded default store)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, parents=[common], help=help, description=help[:1].upper() + help[1:] + ".",
            epilog=_EPILOGS[name], formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    ls = command("ls", "list runs, running ones first, then newest first")
    ls.add_argument("query", nargs="?", metavar="QUERY", help="a scandeck text query")
    ls.add_argument("-n", type=_count, default=20, metavar="N",
                    help="show at most N runs (default: 20; 0: all)")
    ls.add_argument("--json", action="store_true", help="one JSON object per run")

    show = command("show", "show one run's metadata, status, streams and data keys")
    show.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")

    ingest = command("ingest", "store the runs of document files (JSON lines or msgpack)")
    ingest.add_argument("files", nargs="+", metavar="FILE", help=".jsonl or .msgpack files")

    export = command("export", "write runs to document files, one <uid>.<format> per run")
    export.add_argument("runs", nargs="+", metavar="UID",
                        help="uid, uid prefix, scan_id, or -1 for the newest")
    export.add_argument("--format", choices=("jsonl", "msgpack"), default="jsonl",
                        help="file format (default: jsonl)")
    export.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                        help="directory to write to (default: the current directory)")
    export.add_argument("--overwrite", action="store_true", help="replace existing files")

    demo = command("demo", "record simulated beamline scans into the catalog")
    demo.add_argument("--pace", type=_seconds, default=1.0, metavar="SECONDS",
                      help="seconds per point (default: 1; 0: as fast as possible)")
    demo.add_argument("--runs", type=_count, default=None, metavar="N",
                      help="stop after N runs (default: until Ctrl-C)")
    demo.add_argument("--seed", type=int, default=None, metavar="S",
                      help="reproduce the same mix of plans, samples and data")

    command("catalogs", "list the catalogs available by name")

    from . import cli_keeper

    keeper_help = "persist a Redis bus's finished runs to the archive and trim Redis"
    cli_keeper.add_arguments(sub.add_parser(
        "keeper", parents=[common], help=keeper_help,
        description=keeper_help[:1].upper() + keeper_help[1:] + ".",
        epilog=cli_keeper.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter))

    from .provenance import run_cli

    run_help = "execute a notebook with papermill and record its provenance"
    run_cli.add_arguments(sub.add_parser(
        "run", parents=[common], help=run_help, description=run_help[:1].upper() + run_help[1:] + ".",
        epilog=run_cli.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter))

    from .provenance import cli_provenance

    cli_provenance.add_parsers(sub, common)  # provenance ls|show|open|lineage, rerun
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


# -- errors -----------------------------------------------------------------------------------

#: Hints for scandeck's errors, by class name (their messages already say what happened).
_HINTS = {
    "RunNotFound": "'scandeck ls' lists the runs; give a uid prefix, a scan_id or -1",
    "QuerySyntaxError": "queries look like: plan_name == \"scan\" and sample == \"Ni\" "
    "(quote the whole query for the shell)",
    "InvalidQuery": "queries look like: plan_name == \"scan\" and sample == \"Ni\"",
    "UnknownName": "'scandeck catalogs' lists the catalog names; or give a store path",
    "StreamNotFound": "'scandeck show UID' lists the run's streams",
    "UnknownKernel": "'jupyter kernelspec list' shows the installed kernels",
}
_USAGE_ERRORS = ("QuerySyntaxError", "InvalidQuery")


def report(command: str, message: str, hint: str = "", code: int = 1) -> int:
    """Print ``scandeck COMMAND: error: message`` and a hint on stderr; return ``code``.

    Messages embed run values (uids, metadata): control characters are escaped.
    """
    from .safe_text import printable

    where = f"{PROG} {command}" if command else PROG
    print(f"{where}: error: {printable(message, keep=chr(10))}", file=sys.stderr)
    if hint:
        print(f"  hint: {printable(hint, keep=chr(10))}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scandeck`` command line; return the exit status.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.
    """
    from .exceptions import ScandeckError

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _dispatch(args)
    except CliError as err:
        return report(args.command, str(err), err.hint, err.code)
    except ScandeckError as err:
        kind = type(err).__name__
        code = 2 if kind in _USAGE_ERRORS else 1
        return report(args.command, str(err), _HINTS.get(kind, ""), code)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `scandeck ls | head`: the reader left; silence the flush at exit as well.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    from . import cli_commands, cli_write

    handlers = {
        "ls": cli_commands.cmd_ls,
        "show": cli_commands.cmd_show,
        "export": cli_commands.cmd_export,
        "catalogs": cli_commands.cmd_catalogs,
        "ingest": cli_write.cmd_ingest,
        "demo": cli_write.cmd_demo,
    }
    if args.command == "keeper":
        from .cli_keeper import cmd_keeper

        return cmd_keeper(args)
    if args.command == "run":
        from .provenance.run_cli import cmd_run

        return cmd_run(args)
    if args.command in ("provenance", "rerun"):
        from .provenance import cli_provenance

        if args.command == "provenance":
            return cli_provenance.cmd_provenance(args)
        return cli_provenance.cmd_rerun(args)
    return handlers[args.command](args)


if __name__ == "__main__":
    # `python -m scandeck.cli`: run the imported module's main, not this __main__ copy,
    # so CliError raised by the command modules is the class main() catches.
    from scandeck.cli import main as _main

    sys.exit(_main())
