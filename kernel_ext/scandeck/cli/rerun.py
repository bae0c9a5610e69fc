"""``scandeck rerun``: rerun a recorded notebook on other scans, in parallel.

Planning and executing are :mod:`scandeck.provenance.rerun`'s; this module reads
the arguments, picks the catalog the targets are looked up in, and prints the
progress and the summary. Every target is looked up first: a bad argument (a
scan or record that does not exist) exits 2 with nothing run; a rerun that
failed exits 1. Imported when the parser is built: nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import add_command, add_parameter_options, positive
from .errors import CliError
from .provenance import add_store_option, get_record, store_of
from .run import parse_value
from .targets import default_store_label, open_target, target_of

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..provenance.record import ProvenanceRecord

__all__ = ["EPILOG", "add_parsers", "cmd_rerun"]

EPILOG = """\
examples:
  scandeck rerun 1a2b --scan 3f2a9c --scan 77e0b1          on two scans
  scandeck rerun 1a2b --query 'sample == "Ni"' --workers 4  on every Ni run
  scandeck rerun 1a2b --scan 3f2a9c -p bins 40              with a parameter changed
  scandeck rerun 1a2b --query 'scan_id > 100' --dask tcp://10.0.0.5:8786

Each target runs the record's notebook in a fresh kernel with its recorded
parameters (-p overrides them) and the scan parameter (scan_uid, or the one
nb.metadata.scandeck.scan_parameter names) set to the target's uid. Every
target is looked up first: one that is missing stops the command before any
kernel starts. Output notebooks go to ./reruns/<name>-<id8>/<scan_id>-<uid8>.ipynb
(--output-dir), failed ones included; each rerun is recorded with the record as
its parent. Exit status 1 when any rerun failed."""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add rerun to the ``scandeck`` sub-parsers."""
    rerun = add_command(sub, common, "rerun", "rerun a recorded notebook on other scans", EPILOG)
    rerun.description = "Rerun a recorded notebook on other scans, in parallel."
    rerun.set_defaults(handler=cmd_rerun)
    add_store_option(rerun)
    rerun.add_argument("record", metavar="ID", help="record id or id prefix ('scandeck provenance ls')")
    rerun.add_argument(
        "--scan",
        action="append",
        default=[],
        metavar="UID",
        help="a run to rerun on: uid or uid prefix (repeatable)",
    )
    rerun.add_argument("--query", metavar="Q", help="rerun on every run matching this query")
    add_parameter_options(rerun, "override", " as by 'scandeck run'")
    rerun.add_argument(
        "--workers", type=positive, default=2, metavar="N", help="reruns at once on this machine (default: 2)"
    )
    rerun.add_argument("--dask", metavar="ADDRESS", help="run on this dask scheduler instead (tcp://host:8786)")
    rerun.add_argument(
        "--executor", metavar="NAME", help="a registered executor (default: local, or dask with --dask)"
    )
    rerun.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="where output notebooks go (default: ./reruns/<name>-<id8>/)",
    )
    rerun.add_argument("-k", "--kernel", metavar="NAME", help="Jupyter kernel (default: the notebook's)")
    rerun.add_argument("--timeout", type=float, metavar="SECONDS", help="fail a cell that runs longer")
    rerun.add_argument("--tag", action="append", default=[], metavar="TAG", help="tag the new records")
    rerun.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    rerun.add_argument(
        "--progress-json",
        action="store_true",
        help="for programs: one JSON line on stdout per finished rerun (uid, scan_id, status, "
        "seconds, output, record, error); the summary goes to stderr",
    )


# -- rerun ----------------------------------------------------------------------------------------


def _catalog_for_rerun(args: argparse.Namespace, record: ProvenanceRecord) -> tuple[Catalog, str | None, str]:
    """The catalog to look targets up in, the --catalog text for the kernels, and a note."""
    from ..provenance.rerun_plan import record_catalog

    target = target_of(args)
    if target:
        return open_target(args), target, ""
    cat = record_catalog(record)
    if cat is not None:
        return cat, None, f"note: looking the scans up in {cat.name}, the catalog the record read from"
    return open_target(args), None, f"note: looking the scans up in {default_store_label(args)}"


def cmd_rerun(args: argparse.Namespace) -> int:
    """``scandeck rerun ID [--scan UID ...] [--query Q] [-p NAME VALUE ...] [--workers N] [--dask A]``."""
    from ..exceptions import AmbiguousUID, RunNotFound
    from ..provenance.rerun import LOCAL_EXECUTORS, RerunSetupError, execute_plan, plan, summary_table

    if not args.scan and not args.query:
        raise CliError("no scans to rerun on", "give --scan UID (repeatable) and/or --query Q", 2)
    store = store_of(args)
    record = get_record(store, args.record, code=2)
    parameters: dict[str, Any] = {name: parse_value(value) for name, value in args.parameters}
    parameters.update({name: value for name, value in args.raw_parameters})
    executor = args.executor or ("dask" if args.dask else "local")
    from ..provenance.rerun_executors import available_executors

    if executor not in available_executors():
        raise CliError(
            f"no rerun executor named {executor!r}", f"available: {', '.join(available_executors())}", 2
        )

    cat, target, note = _catalog_for_rerun(args, record)
    try:
        the_plan = plan(
            record.id,
            catalog=cat,
            store=store,
            scans=args.scan,
            query=args.query,
            parameters=parameters,
            output_dir=args.output_dir,
            kernel_name=args.kernel,
            catalog_target=target,
            timeout=args.timeout,
            tags=args.tag,
            check_kernel=executor in LOCAL_EXECUTORS,
        )
    except BaseException as err:
        cat.close()  # else kept open to the end: the reruns' values are published to it
        if isinstance(err, (RunNotFound, AmbiguousUID)):
            raise CliError(str(err), f"'scandeck ls --catalog ...' lists the runs of {cat.name}", 2) from None
        if isinstance(err, RerunSetupError):
            raise CliError(str(err), "", 2) from None
        raise
    if note:
        print(note, file=sys.stderr)
    for line in the_plan.notes:
        print(line, file=sys.stderr)
    n = len(the_plan.targets)
    where = f"dask at {args.dask}" if args.dask else f"{executor}, {min(args.workers, n)} workers"
    print(
        f"rerunning {record.id[:8]} ({record.name}) on {n} scan{'s' if n != 1 else ''} ({where}) "
        f"into {the_plan.output_dir}",
        file=sys.stderr,
    )
    try:
        results = execute_plan(
            the_plan,
            executor=executor,
            workers=args.workers,
            address=args.dask,
            progress=not args.no_progress,
            on_result=_print_json_result if args.progress_json else None,
            catalog=cat,  # the reruns' published values become columns of their targets there
        )
    except Exception as err:
        from ..exceptions import ScandeckError

        if isinstance(err, ScandeckError):
            raise
        raise CliError(f"the {executor} executor failed: {type(err).__name__}: {err}".splitlines()[0]) from err
    finally:
        cat.close()
    out = sys.stderr if args.progress_json else sys.stdout  # stdout carries only the JSON lines then
    print(summary_table(results), file=out)
    failed = [r for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)} of {len(results)} reruns ok"
        + (f", {len(failed)} failed (their notebooks, with the traceback, are listed above)" if failed else "")
        + f"; 'scandeck provenance show {record.id[:8]}' lists them",
        file=out,
    )
    return 1 if failed else 0


def _print_json_result(result: Any) -> None:
    """``--progress-json``: one line per finished rerun, flushed at once for a reading program."""
    print(
        json.dumps(
            {
                "uid": result.uid,
                "scan_id": result.scan_id,
                "status": result.status,
                "seconds": result.seconds,
                "output": result.output_path,
                "record": result.record_id,
                "error": result.describe_error() or None,
            }
        ),
        flush=True,
    )
