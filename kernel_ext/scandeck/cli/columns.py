"""``scandeck columns serve|recompute|list``: the computed columns of a catalog's run table."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from .arguments import add_command, positive, seconds
from .errors import CliError
from .targets import open_target

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..runtable.columns import ColumnSpec

__all__ = ["add_parsers", "cmd_list", "cmd_recompute", "cmd_serve"]

EPILOGS = {
    "columns": """\
examples:
  scandeck columns list --catalog ./store
  scandeck columns serve --catalog ./store --workers 4
  scandeck columns recompute peak_cen --catalog ./store

A catalog's columns file is columns.py beside its embedded store, or the file its
catalog entry names (metadata: {columns: FILE}). Each @scandeck.column function runs
in a worker process, with a time limit (timeout=, else --timeout, else 30 s).""",
    "serve": """\
examples:
  scandeck columns serve --catalog ./store
  scandeck columns serve --catalog beamtime --workers 4 --interval 5 --timeout 60

Computes every column of every run that ends, of running runs at most every
--interval seconds, and recomputes stale cells (edited columns) in the background,
newest runs first. A line per batch: runs done, cells, failures. Ctrl-C stops.""",
    "recompute": """\
examples:
  scandeck columns recompute --catalog ./store              every column, every run
  scandeck columns recompute peak_cen fwhm --catalog ./store

Exit status 1 when some cells failed (their errors are stored: 'scandeck ls
--columns NAME' shows them), 0 otherwise.""",
    "list": """\
examples:
  scandeck columns list --catalog ./store

For each column: where it is defined, its code hash, and how many runs have a
fresh, stale (computed by other code), failed or missing cell.""",
}


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=positive, default=2, metavar="N", help="worker processes computing at once (default: 2)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="seconds a column may take when it names no timeout= (default: 30)",
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``columns`` and its sub-commands to the ``scandeck`` sub-parsers."""
    group = sub.add_parser(
        "columns",
        help="compute, recompute and list the computed columns of the run table",
        description="The computed columns of a catalog's run table.",
        epilog=EPILOGS["columns"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group.set_defaults(handler=lambda args: _usage(group))
    inner = group.add_subparsers(dest="columns_command", metavar="SUBCOMMAND")

    serve = add_command(
        inner, common, "serve", "compute every run's columns as runs end, until Ctrl-C", EPILOGS["serve"]
    )
    _worker_options(serve)
    serve.add_argument(
        "--interval",
        type=seconds,
        default=3.0,
        metavar="S",
        help="least seconds between two computations of a running run's columns (default: 3)",
    )
    serve.set_defaults(handler=cmd_serve)

    recompute = add_command(
        inner,
        common,
        "recompute",
        "recompute columns (all, or those named) for every run now",
        EPILOGS["recompute"],
    )
    recompute.add_argument("names", nargs="*", metavar="NAME", help="columns to recompute (default: all)")
    _worker_options(recompute)
    recompute.set_defaults(handler=cmd_recompute)

    listing = add_command(inner, common, "list", "list the columns and the state of their cells", EPILOGS["list"])
    listing.set_defaults(handler=cmd_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _service(args: argparse.Namespace, cat: Catalog, say: Any) -> Any:
    from ..runtable.service import ColumnService

    return ColumnService(
        cat, workers=args.workers, interval=getattr(args, "interval", 3.0), timeout=args.timeout, say=say
    )


def _say(line: str) -> None:
    from ..safe_text import printable

    print(printable(line), flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """``scandeck columns serve [--workers N] [--interval S] [--timeout S]``."""
    cat = open_target(args)
    try:
        service = _service(args, cat, _say)
        try:
            _say(
                f"scandeck columns: serving {cat.name} with {args.workers} workers "
                f"(running runs every {args.interval:g} s); Ctrl-C stops"
            )
            previous = signal.signal(signal.SIGINT, lambda *_: service.stop())
            term = signal.signal(signal.SIGTERM, lambda *_: service.stop())
            try:
                service.serve()
            finally:
                signal.signal(signal.SIGINT, previous)
                signal.signal(signal.SIGTERM, term)
            _say(f"stopped: {service.totals}")
        finally:
            service.close()
        if service.failed is not None:
            raise CliError(str(service.failed), "serve a store this process can write")
        return 0
    finally:
        cat.close()


def cmd_recompute(args: argparse.Namespace) -> int:
    """``scandeck columns recompute [NAME ...]``."""
    from ..exceptions import ColumnsFileError

    cat = open_target(args)
    try:
        service = _service(args, cat, lambda line: None)
        try:

            def progress(done: int, total: int, counts: Any) -> None:
                _say(f"  {done}/{total} runs, {counts.cells} cells, {counts.failed} failed")

            service.refresh_columns()
            unknown = [n for n in args.names if n not in service.columns]
            if unknown and service.file_error is None:
                raise CliError(
                    f"no column {', '.join(unknown)} in {cat.name}",
                    f"the columns are: {', '.join(service.columns)}",
                    code=2,
                )
            try:
                counts = service.recompute(args.names or None, progress=progress)
            except ColumnsFileError as err:
                raise CliError(str(err), "'scandeck columns list' lists the columns") from err
        finally:
            service.close()
        _say(f"recomputed {counts.cells} cells of {counts.runs} runs: {counts.failed} failed")
        return 1 if counts.failed else 0
    finally:
        cat.close()


def cmd_list(args: argparse.Namespace) -> int:
    """``scandeck columns list``."""
    from ..listing import render_table
    from ..runtable.columns import columns_file, columns_for
    from ..safe_text import printable
    from ..sources.protocol import RunFacts

    cat = open_target(args)
    try:
        specs = columns_for(cat)
        path = columns_file(cat)
        counts = _states(cat, specs)
        rows = []
        for name, spec in specs.items():
            c = counts[name]
            where = "built-in" if spec.builtin else str(path)
            rows.append(
                [name, spec.title, spec.units or "", where, spec.code_hash[:12], *(str(c[k]) for k in _STATES)]
            )
        print(render_table(["name", "title", "units", "defined", "code", *_STATES], rows, right={5, 6, 7, 8}))
        print(printable(f"{len(cat)} runs in {cat.name}; columns file: {path or 'none'}"))
        if not isinstance(cat.source, RunFacts):
            print(printable(f"the store {cat.name} keeps no computed cells: they are computed when read"))
        return 0
    finally:
        cat.close()


_STATES = ("fresh", "stale", "failed", "missing")


def _states(cat: Catalog, specs: dict[str, ColumnSpec]) -> dict[str, dict[str, int]]:
    """Per column, how many runs have a fresh, stale, failed or missing cell."""
    from ..runtable.rows import cell_state
    from ..sources.protocol import RunFacts

    counts = {name: dict.fromkeys(_STATES, 0) for name in specs}
    source = cat.source
    page: list[Any] = []

    def count(page: list[Any]) -> None:
        cells = source.cells([s.uid for s in page]) if isinstance(source, RunFacts) else {}
        for s in page:
            have = cells.get(s.uid, {})
            for name, spec in specs.items():
                cell = have.get(name)
                if cell is None:
                    counts[name]["missing"] += 1
                    continue
                state = cell_state(cell, spec).state
                if state == "running" and s.status != "running":
                    state = "stale"
                counts[name][{"ok": "fresh", "running": "fresh"}.get(state, state)] += 1

    for run in cat:
        page.append(run.summary)
        if len(page) == 500:
            count(page)
            page = []
    count(page)
    return counts
