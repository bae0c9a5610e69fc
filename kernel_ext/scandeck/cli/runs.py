"""The reading commands of ``scandeck``: ls, show, export, catalogs.

Each ``cmd_*`` takes the parsed arguments and returns an exit status; user
errors are raised (:class:`~scandeck.cli.errors.CliError` or scandeck's own) and
turned into one stderr line by :func:`scandeck.cli.main`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..listing import list_runs, render_table
from ..safe_text import printable
from .arguments import add_command, count
from .errors import CliError, report
from .format import run_json, run_rows, show_run
from .targets import open_target, target_of

if TYPE_CHECKING:
    from ..catalog import Catalog, Run
    from ..sources.protocol import RunSummary

__all__ = ["add_parsers", "cmd_catalogs", "cmd_export", "cmd_ls", "cmd_show", "resolve_run"]

EPILOGS = {
    "ls": """\
examples:
  scandeck ls                                    the 20 newest runs
  scandeck ls -n 0                               every run
  scandeck ls 'sample == "Ni"'                   runs of one sample
  scandeck ls 'plan_name == "scan" and num_points > 10'
  scandeck ls 'stop.exit_status != "success"'    runs that did not succeed
  scandeck ls 'time > "2024-05-01"' --json       one JSON object per run (for jq)
  scandeck ls --columns peak_cen,tags           computed columns, tags, comments, fields
  scandeck ls 'columns.peak_cen > 0.5' --columns peak_cen,data.theta.max

Running runs come first, then the rest newest first. Quote the query for the shell.
In --columns cells, * marks a stale value (its column's code changed), ! a failed
one, ~ a value computed while the run ran, ? one not computed yet.""",
    "show": """\
examples:
  scandeck show -1          the newest run (-2: the one before)
  scandeck show 42          the newest run with scan_id 42
  scandeck show 3f2a9c      the run whose uid starts with 3f2a9c""",
    "export": """\
examples:
  scandeck export -1                             the newest run, as <uid>.jsonl here
  scandeck export 42 43 --format msgpack -o backup/

Files the run refers to (detector images) are not copied: its resource
documents keep their paths. 'scandeck ingest' reads the files back.""",
    "catalogs": """\
examples:
  scandeck catalogs
  scandeck ls --catalog NAME     list the runs of one of them""",
}


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ls, show, export and catalogs to the ``scandeck`` sub-parsers."""

    def command(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return add_command(sub, common, name, help, epilog)

    ls = command("ls", "list runs, running ones first, then newest first", EPILOGS["ls"])
    ls.add_argument("query", nargs="?", metavar="QUERY", help="a scandeck text query")
    ls.add_argument("-n", type=count, default=20, metavar="N", help="show at most N runs (default: 20; 0: all)")
    ls.add_argument("--json", action="store_true", help="one JSON object per run")
    ls.add_argument(
        "--columns",
        metavar="NAMES",
        help="more columns, comma-separated: computed columns (peak_cen), tags, comments, "
        "start fields (sample, md.x), stop.FIELD, data.KEY.min|max, values reruns published (peak-fit.cen)",
    )
    ls.set_defaults(handler=cmd_ls)

    show = command("show", "show one run's metadata, status, streams and data keys", EPILOGS["show"])
    show.add_argument("run", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
    show.set_defaults(handler=cmd_show)

    export = command("export", "write runs to document files, one <uid>.<format> per run", EPILOGS["export"])
    export.add_argument("runs", nargs="+", metavar="UID", help="uid, uid prefix, scan_id, or -1 for the newest")
    export.add_argument(
        "--format", choices=("jsonl", "msgpack"), default="jsonl", help="file format (default: jsonl)"
    )
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="directory to write to (default: the current directory)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace existing files")
    export.set_defaults(handler=cmd_export)

    catalogs = command("catalogs", "list the catalogs available by name", EPILOGS["catalogs"])
    catalogs.set_defaults(handler=cmd_catalogs)


def resolve_run(cat: Catalog, ident: str) -> tuple[Run, str]:
    """The run ``ident`` names, and a note for the user (or "").

    ``-N`` is the N-th newest run; all digits is a scan_id (the newest run with
    it), falling back to a uid prefix because uids can start with digits too;
    anything else is a uid or uid prefix.
    """
    from ..exceptions import InvalidQuery, RunNotFound
    from ..queries import ScanID

    if re.fullmatch(r"-\d+", ident):
        index = int(ident)
        if index == 0:
            raise CliError("-0 is not a run", "-1 is the newest run, -2 the one before", code=2)
        try:
            return cat[index], ""
        except RunNotFound:
            # The API's message speaks of cat[-N]; on the command line say it plainly.
            raise RunNotFound(f"{ident}: {cat.name} has only {len(cat)} runs") from None
    if ident.isdigit():
        try:
            run = cat[int(ident)]
        except (RunNotFound, InvalidQuery):  # (InvalidQuery: more digits than a scan_id holds)
            try:
                return cat[ident], ""
            except RunNotFound:
                raise RunNotFound(
                    f"no run with scan_id {ident} or a uid starting with {ident!r} in {cat.name}"
                ) from None
        # scan_ids restart with each RunEngine session, so several runs may share one.
        same = len(cat.search(ScanID(int(ident))))
        note = f"{same} runs have scan_id {ident}; this is the newest" if same > 1 else ""
        return run, note
    return cat[ident], ""


# -- ls ---------------------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    """``scandeck ls [QUERY] [-n N] [--json]``."""
    cat = open_target(args)
    try:
        if args.query:
            cat = cat.search(args.query)
        limit = args.n or None
        summaries = list_runs(cat, limit)  # running runs first, then the newest
        total = len(cat) if limit is not None else len(summaries)  # a count, no rows read
        refs, table = _columns(cat, args.columns, summaries)
        if args.json:
            for s in summaries:
                cells = table.get(s.uid)
                print(run_json(s, None if cells is None else {n: c.to_dict() for n, c in cells.cells.items()}))
            return 0
        if not summaries:
            what = "matching runs" if args.query else "runs"
            print(f"no {what} in {cat.name}")
            hint = cat.empty_hint if args.query else None
            if hint:
                print(hint)
            return 0
        header, rows, right = run_rows(summaries, refs, list(table.values()))
        print(render_table(header, rows, right))
        if table:
            from ..runtable.marks import legend

            for line in legend(list(table.values())):
                print(line)
        if total > len(summaries):
            print(f"{len(summaries)} of {total} runs (-n N shows more, -n 0 all)")
        return 0
    finally:
        cat.close()


def _columns(cat: Catalog, names: str | None, summaries: list[RunSummary]) -> tuple[list[Any], dict[str, Any]]:
    """``--columns``: the resolved columns and each listed run's row (by uid); none without it."""
    if not names:
        return [], {}
    from ..exceptions import FactsNotSupported, InvalidQuery
    from ..runtable.rows import resolve_columns, table_rows

    try:
        refs = resolve_columns(cat, names)
        rows = table_rows(cat, summaries, refs)
    except InvalidQuery as err:
        raise CliError(str(err), "'scandeck columns list' lists the computed columns", code=2) from err
    except FactsNotSupported as err:
        raise CliError(str(err), "tags, comments and computed columns need a store that keeps them") from err
    return refs, {r.uid: r for r in rows}


# -- show -------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    """``scandeck show UID``."""
    cat = open_target(args)
    try:
        run, note = resolve_run(cat, args.run)
        print(show_run(run, note))
        return 0
    finally:
        cat.close()


# -- export -----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    """``scandeck export UID... --format jsonl|msgpack [-o DIR]``."""
    from ..docfiles import write_documents
    from ..exceptions import DocumentFileError

    cat = open_target(args)
    try:
        # Resolve every run first: a typo in the third uid must not leave two files behind.
        runs: dict[str, Run] = {}
        for ident in args.runs:
            run, _ = resolve_run(cat, ident)
            runs.setdefault(run.uid, run)
        failed = 0
        for run in runs.values():
            if run.refresh().status == "running":
                print(f"note: run {printable(run.uid[:8])} is still running; exporting its documents so far")
            try:
                paths = write_documents(run.documents(), args.output, format=args.format, overwrite=args.overwrite)
            except DocumentFileError as err:
                failed += 1
                # Only the "file exists" error names a path; the others are encoding failures.
                hint = "--overwrite replaces existing files" if err.path else ""
                report("export", f"run {run.uid[:8]}: {err}", hint)
                continue
            except OSError as err:
                msg = f"cannot write to {args.output}: {err.strerror or err}"
                raise CliError(msg, "check that the directory is writable") from err
            for path in paths:
                print(printable(str(path)))
        return 1 if failed else 0
    finally:
        cat.close()


# -- catalogs ---------------------------------------------------------------------------------


def cmd_catalogs(args: argparse.Namespace) -> int:
    """``scandeck catalogs``: the Intake catalog entries available by name."""
    from ..config import catalog_dirs

    try:
        from ..catalog_files import list_entries
    except ImportError:
        raise CliError(
            "named catalogs are not available in this installation "
            "(scandeck.catalog_files.list_entries is missing)",
            "open a store by path instead: scandeck ls --catalog ./store",
        ) from None
    entries = list_entries()
    if not entries:
        searched = ", ".join(str(d) for d in catalog_dirs())
        print(f"no named catalogs; catalog files are searched for in: {searched}")
        return 0
    # "*" marks the one --catalog / $SCANDECK_CATALOG selects, as git marks its branch.
    current = target_of(args)
    table = [
        [
            ("* " if name == current else "  ") + name,
            str(getattr(entry, "description", "") or "-"),
            str(getattr(entry, "path", "") or "-"),
        ]
        for name, entry in entries.items()
    ]
    print(render_table(["  name", "description", "defined in"], table))
    print("\nopen one with: scandeck ls --catalog NAME")
    return 0
