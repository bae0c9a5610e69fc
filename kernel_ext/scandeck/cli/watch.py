"""``scandeck watch``: each complete file under watched directories becomes an event of a run.

The watcher is :mod:`scandeck.files.watch`'s; this module reads the arguments,
checks them, and runs it until Ctrl-C, SIGTERM or (``--once``) the end of what is there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

from ..exceptions import ScandeckError
from ..opening import catalog_name
from .arguments import add_command, seconds
from .errors import CliError
from .targets import open_target, target_of

__all__ = ["EPILOG", "add_parsers", "cmd_watch", "parse_metadata"]

EPILOG = """\
examples:
  scandeck watch /data/xrd --pattern '*.tif' --metadata sample=Ni --metadata temperature=300
  scandeck watch /data/uvvis /data/ir --recursive --run-per directory
  scandeck watch /data/xrd --once                   what is there now, then exit
  scandeck watch /data/xrd --catalog 'redis://bus:6379/0?prefix=xrd' --transfer

A file is taken once it is complete: nobody holds it open for writing (Linux) and
it was closed after writing or moved into place, or its size and mtime stayed the
same for --settle seconds (files found by a scan, network shares; with
--ignore-closes, for instruments that close and reopen a file between pieces, only
this rule counts). Each complete
file becomes an event of a run (plan_name "watch"), in a stream named by its format
reader (tiff, hdf5, table, npy, bytes...), the file referenced as external data. Runs:
one per watch session (default), one per directory (--run-per directory), or one per
file. A ledger beside the catalog remembers what is in: a restarted watcher takes
nothing twice and catches up on what arrived meanwhile; a rewritten file becomes a
new version. Hidden files (.name) are never taken. With --transfer (a Redis bus
catalog) each file's bytes go through the bus too, for readers on other machines.
Ctrl-C, SIGTERM or SIGHUP (its terminal closed) stops once the file in hand is in, ending the runs with success
(Ctrl-C again stops at once: that file is taken by the next start)."""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``watch`` to the ``scandeck`` sub-parsers."""
    parser = add_command(
        sub, common, "watch", "turn the files an instrument writes into runs, as they complete", EPILOG
    )
    parser.set_defaults(handler=cmd_watch)
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="directories to watch")
    parser.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="GLOB",
        dest="patterns",
        help="take only files matching GLOB (case-insensitive; repeatable; a GLOB with / matches "
        "the path below DIR); default: every file",
    )
    parser.add_argument("--recursive", action="store_true", help="watch subdirectories too")
    parser.add_argument(
        "--run-per",
        choices=("session", "directory", "file"),
        default="session",
        help="one run per watch session (default), per directory, or per file",
    )
    parser.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add to every run's start document (VALUE read as JSON when it is JSON, else text); repeatable",
    )
    parser.add_argument(
        "--settle",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="a file found by a scan is complete once unchanged this long (default: 2)",
    )
    parser.add_argument(
        "--ignore-closes",
        action="store_true",
        help="a close does not complete a file, only --settle seconds unchanged do (for instruments "
        "that close and reopen a file between pieces)",
    )
    parser.add_argument("--once", action="store_true", help="take the files there now, then exit")
    parser.add_argument(
        "--transfer", action="store_true", help="also send each file's bytes through the catalog's Redis bus"
    )
    parser.add_argument(
        "--chunk-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="bytes per transferred chunk (default: 512kB)",
    )


def _size(text: str) -> int:
    from ..sources.redis_layout import parse_size

    try:
        value = parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if value < 1:
        raise argparse.ArgumentTypeError("a chunk holds at least 1 byte")
    return value


def parse_metadata(items: list[str]) -> dict[str, Any]:
    """``["sample=Ni", "T=300"]`` -> ``{"sample": "Ni", "T": 300}`` (JSON values when they parse)."""
    from ..files.watch import RESERVED_METADATA

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--metadata {item!r} is not KEY=VALUE", "write e.g. --metadata sample=Ni", 2)
        if key in RESERVED_METADATA:
            raise CliError(f"--metadata {key} is set by the watcher", "choose another key", 2)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[key] = value
    return out


def _check_patterns(patterns: list[str]) -> None:
    for pattern in patterns:
        if not pattern.strip():
            raise CliError("--pattern is empty", "give a glob such as --pattern '*.tif'", 2)
        if pattern.startswith("/") or os.path.isabs(pattern) or ".." in pattern.split("/"):
            raise CliError(
                f"--pattern {pattern!r} is a path, not a glob of names below DIR",
                "give the directory as DIR and the files as --pattern '*.tif' (or 'sub/*.tif')",
                2,
            )


def _check_dirs(dirs: list[str], patterns: list[str]) -> None:
    for directory in dirs:
        if os.path.isdir(directory):
            continue
        if os.path.exists(directory):
            hint = "give the directory the file is in"
            if patterns:
                hint += "; quote --pattern ('*.tif') so the shell does not expand it into file names"
            raise CliError(f"{directory} is a file, not a directory", hint, 2)
        raise CliError(f"no directory {directory}", "check the path; scandeck watch does not create it", 2)


def _watcher(cls: Any, catalog: Any, args: argparse.Namespace, metadata: dict[str, Any], say: Any) -> Any:
    from ..files.layout import CHUNK_SIZE

    try:
        return cls(
            catalog,
            args.dirs,
            patterns=args.patterns,
            recursive=args.recursive,
            run_per=args.run_per,
            metadata=metadata,
            settle=args.settle,
            closes=not args.ignore_closes,
            once=args.once,
            transfer=args.transfer,
            chunk_size=args.chunk_size or CHUNK_SIZE,
            say=say,
        )
    except (NotADirectoryError, ValueError) as err:
        if isinstance(err, ScandeckError):
            raise
        raise CliError(str(err), code=2) from None


def cmd_watch(args: argparse.Namespace) -> int:
    """``scandeck watch DIR [DIR ...] [--pattern GLOB ...] [...]``."""
    from ..safe_text import printable

    _check_patterns(args.patterns)
    _check_dirs(args.dirs, args.patterns)
    metadata = parse_metadata(args.metadata)
    if args.chunk_size is not None and not args.transfer:
        raise CliError("--chunk-size is for --transfer", "add --transfer, or leave --chunk-size out", 2)
    target = target_of(args) or ""
    # Known before opening (and creating) a store; a catalog name is checked once opened (by the Watcher).
    if args.transfer and catalog_name(target).kind != "name" and not target.startswith(("redis://", "rediss://")):
        raise CliError(
            "--transfer sends files through a Redis bus, and this catalog is not one",
            "give --catalog 'redis://host:6379/0?prefix=P', or leave --transfer out",
            2,
        )

    def say(line: str) -> None:
        print(printable(line), file=sys.stderr, flush=True)

    from ..files.watch import Watcher, human_size

    catalog = open_target(args, create=True)
    try:
        watcher = _watcher(Watcher, catalog, args, metadata, say)
        stop = threading.Event()

        def on_signal(*_: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C: leave the file in hand to the next start
            stop.set()

        handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            what = "the files there now" if args.once else "until Ctrl-C"
            say(
                f"scandeck watch: {', '.join(watcher.roots)} -> {catalog.name} (a run per {args.run_per}"
                f"{', transfer' if args.transfer else ''}; {what}); ledger {watcher.ledger.path}"
            )
            summary = watcher.run(stop)
        finally:
            for sig, previous in handlers.items():
                signal.signal(sig, previous)
    finally:
        catalog.close()
    runs = ", ".join(uid[:8] for uid in summary.runs) or "none"
    say(
        f"done: {summary.files} file{'' if summary.files == 1 else 's'} ({human_size(summary.bytes)}) in "
        f"{len(summary.runs)} run{'' if len(summary.runs) == 1 else 's'} ({runs}); "
        f"{len(summary.unreadable)} unreadable, {len(summary.vanished)} vanished"
    )
    return 0
