"""``scandeck files``: a watched run's files: list them (``ls``), write them out verified (``fetch``).

``fetch`` writes each file under ``--to`` at its path relative to the watched
directory, from wherever this machine can get it (the original, the local
cache, the Redis bus of a ``watch --transfer``, the keeper's archive), each
checked against the run's sha256 (:mod:`scandeck.files.fetch` says how several
versions of one path are named). Progress goes to stderr, one line per file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..safe_text import printable
from .errors import CliError
from .runs import resolve_run
from .targets import open_target

if TYPE_CHECKING:
    from ..files.follow import PendingFile

__all__ = ["add_parsers", "cmd_files"]

EPILOG = """\
examples:
  scandeck files ls -1                        the newest run's files: path, version, size, sha256, where
  scandeck files fetch -1 --to ./xrd          write them under ./xrd, verified
  scandeck files fetch 3f2a9c --catalog redis://bus:6379/0?prefix=xrd --latest

Several versions of one path (the file was rewritten while watched): the newest is
written at the path, older ones beside it as NAME.vN.EXT (img.v1.tif); --latest
writes the newest only. A file already there with the same bytes is left as it is.
'where' in ls: here (the original, unchanged), cache (this machine's cache of
fetched files), bus (the Redis bus), archive (the keeper's copy), or nowhere."""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``files`` (with ``ls`` and ``fetch``) to the ``scandeck`` sub-parsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    top = sub.add_parser(
        "files",
        help="a watched run's files: list them, write them out verified",
        description="The files of a run that 'scandeck watch' wrote.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    top.set_defaults(handler=cmd_files)
    fsub = top.add_subparsers(dest="files_command", metavar="SUBCOMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = fsub.add_parser(
            name,
            parents=[common],
            help=help,
            formatter_class=formatter,
            description=help[:1].upper() + help[1:] + ".",
            epilog=EPILOG,
        )
        parser.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
        return parser

    ls = command("ls", "list a watched run's files: path, version, size, sha256, where they are")
    ls.add_argument("--json", action="store_true", help="one JSON object per file (full sha256)")

    fetch = command("fetch", "write a watched run's files under a directory, verified")
    fetch.add_argument(
        "--to", metavar="DIR", type=Path, help="where to write them (default: ./<first 8 characters of the uid>)"
    )
    fetch.add_argument("--latest", action="store_true", help="only the newest version of each path")
    fetch.add_argument("--overwrite", action="store_true", help="replace files there that hold other bytes")


def cmd_files(args: argparse.Namespace) -> int:
    """``scandeck files ls|fetch UID ...``."""
    if args.files_command is None:
        raise CliError(
            "say what to do with the files", "scandeck files ls UID, or scandeck files fetch UID", code=2
        )
    from ..files.follow import RunFiles

    cat = open_target(args)
    try:
        run, note = resolve_run(cat, args.run)
        if note:
            print(f"note: {printable(note)}", file=sys.stderr)
        files = RunFiles(run).pending()
        if args.files_command == "ls":
            return _ls(cat.source, files, as_json=args.json)
        return _fetch(run.uid, files, args)
    finally:
        cat.close()


def _places(source: Any, f: PendingFile) -> list[str]:
    """Where this machine can get the file: here, cache, bus, archive."""
    from ..files import cache
    from ..files.fetch import same_bytes

    sha, size = str(f.fields["sha256"]), int(f.fields["size"])
    places = ["here"] if same_bytes(Path(f.origin), sha, size) else []
    if cache.cached(sha, size) is not None:
        places.append("cache")
    file_places = getattr(source, "file_places", None)
    if file_places is not None:
        places += file_places(f.run, sha, size)
    return places


def _ls(source: Any, files: list[PendingFile], *, as_json: bool) -> int:
    from ..listing import render_table

    rows = []
    for f in files:
        where = _places(source, f)
        if as_json:
            entry = {k: f.fields[k] for k in ("relpath", "version", "size", "sha256")}
            print(printable(json.dumps({**entry, "origin": f.origin, "where": where}, ensure_ascii=False)))
        else:
            sha = str(f.fields["sha256"])
            size = int(f.fields["size"])
            rows.append([f.relpath, f.fields["version"], size, sha[:12], ", ".join(where) or "nowhere"])
    if not as_json:
        if not rows:
            print("no files in this run yet")
        else:
            print(render_table(["path", "version", "size", "sha256", "where"], rows))
    return 0


def _default_dir(uid: str) -> Path:
    """``./<first 8 characters of the uid>``, when they make a plain folder name (a uid is run data)."""
    name = uid[:8]
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name):
        raise CliError(
            printable(f"run {uid!r} has a uid that does not make a folder name; nothing was written"),
            "give the directory to write into: --to DIR",
            code=2,
        )
    return Path(name)


def _fetch(uid: str, files: list[PendingFile], args: argparse.Namespace) -> int:
    from ..exceptions import ScandeckError
    from ..files.fetch import copy_verified, place, same_bytes

    to = args.to if args.to is not None else _default_dir(uid)
    placed = place(files, to, latest_only=args.latest)
    clash = [
        p
        for p in placed
        if p.target.exists() and not same_bytes(p.target, p.file.fields["sha256"], p.file.fields["size"])
    ]
    if clash and not args.overwrite:
        raise CliError(
            printable(
                f"{clash[0].target} exists with other bytes ({len(clash)} such file(s)); nothing was written"
            ),
            "pass --overwrite to replace them, or --to another directory",
        )
    failed, written, same = [], 0, 0
    for i, p in enumerate(placed, 1):
        sha, size = str(p.file.fields["sha256"]), int(p.file.fields["size"])
        head = f"[{i}/{len(placed)}] {p.name} ({size} bytes)"
        if same_bytes(p.target, sha, size):
            same += 1
            print(printable(f"{head}: already there"), file=sys.stderr)
            continue
        print(printable(f"{head}: fetching"), file=sys.stderr, flush=True)
        try:
            copy_verified(p.file.resolve().path, p.target, sha, size)
        except (ScandeckError, OSError) as err:
            failed.append(p)
            print(printable(f"{head}: not written: {err}"), file=sys.stderr)
            continue
        written += 1
    print(printable(f"{written} written, {same} already there, {len(failed)} failed, under {to}"), file=sys.stderr)
    if failed:
        raise CliError(
            printable(f"{len(failed)} of {len(placed)} files could not be fetched (first: {failed[0].name})"),
            "mount the watched directory, or read through the Redis catalog of a watch --transfer "
            "(--catalog redis://...), whose keeper archives the files",
        )
    return 0
