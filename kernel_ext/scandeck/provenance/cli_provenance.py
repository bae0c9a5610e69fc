"""``scandeck provenance ls|show|open|lineage`` and ``scandeck rerun``.

:func:`add_parsers` adds both commands to the ``scandeck`` parser;
:func:`cmd_provenance` and :func:`cmd_rerun` run them. Errors follow the rest
of the command line: one stderr line and a hint, exit 2 for bad arguments (a
scan or record that does not exist: nothing is run), 1 for failures (a rerun
that failed). This module is imported when the parser is built, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..safe_text import printable

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .record import ProvenanceRecord
    from .store import ProvStore

__all__ = ["add_parsers", "cmd_provenance", "cmd_rerun"]

#: Packages ``provenance show`` names in the environment summary, in this order, when installed.
KEY_PACKAGES = (
    "scandeck", "bluesky", "ophyd", "event-model", "numpy", "scipy", "pandas", "xarray", "matplotlib",
    "holoviews", "papermill", "nbclient", "ipykernel", "dask", "distributed",
)

PROVENANCE_EPILOG = """\
examples:
  scandeck provenance ls                          the 20 newest records
  scandeck provenance ls --scan 3f2a9c            records that read that run
  scandeck provenance ls --query 'sample == "Ni"' records that read any run of sample Ni
  scandeck provenance show 1a2b                   one record: parameters, inputs, environment
  scandeck provenance open 1a2b                   write its executed notebook here
  scandeck provenance lineage 3f2a9c              who read that run, what they derived, reruns

Records live in <data dir>/provenance ($SCANDECK_DATA), or --store DIR."""

RERUN_EPILOG = """\
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


# -- parser ---------------------------------------------------------------------------------------


def _count(text: str) -> int:
    from ..cli import _count as count

    return count(text)


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR", type=Path,
                        help="the provenance store directory (default: <data dir>/provenance)")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``provenance`` (with its sub-commands) and ``rerun`` to the ``scandeck`` sub-parsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    prov = sub.add_parser("provenance", help="list, show and open provenance records; lineage of a run",
                          description="Provenance records: what ran on which runs, with which software.",
                          epilog=PROVENANCE_EPILOG, formatter_class=formatter)
    psub = prov.add_subparsers(dest="provenance_command", metavar="SUBCOMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = psub.add_parser(name, parents=[common], help=help, formatter_class=formatter,
                                 description=help[:1].upper() + help[1:] + ".", epilog=PROVENANCE_EPILOG)
        _store_option(parser)
        return parser

    ls = command("ls", "list records, newest first")
    ls.add_argument("--scan", metavar="UID", help="records that read this run (uid or uid prefix)")
    ls.add_argument("--query", metavar="Q", help="records that read any run matching this query (in --catalog)")
    ls.add_argument("--name", metavar="N", help="records of this name")
    ls.add_argument("--tag", metavar="T", help="records with this tag")
    ls.add_argument("--kind", choices=("interactive", "batch", "rerun"), help="records of this kind")
    ls.add_argument("-n", type=_count, default=20, metavar="N",
                    help="show at most N records (default: 20; 0: all)")
    ls.add_argument("--json", action="store_true", help="one JSON record per line")

    show = command("show", "show one record: parameters, inputs, outputs, environment, reruns, error")
    show.add_argument("record", metavar="ID", help="record id or id prefix")
    show.add_argument("--json", action="store_true", help="the whole record as JSON")

    open_ = command("open", "write a record's executed notebook to a file")
    open_.add_argument("record", metavar="ID", help="record id or id prefix")
    open_.add_argument("path", metavar="PATH", nargs="?", type=Path,
                       help="file or directory to write to (default: ./<name>-<id8>.ipynb)")
    open_.add_argument("--overwrite", action="store_true", help="replace an existing file")

    lin = command("lineage", "show what a run came from, who read it, what they derived and reran")
    lin.add_argument("run", metavar="UID", help="run uid or uid prefix (in --catalog)")
    lin.add_argument("--json", action="store_true", help="the tree as JSON")

    rerun = sub.add_parser("rerun", parents=[common], help="rerun a recorded notebook on other scans",
                           description="Rerun a recorded notebook on other scans, in parallel.",
                           epilog=RERUN_EPILOG, formatter_class=formatter)
    _store_option(rerun)
    rerun.add_argument("record", metavar="ID", help="record id or id prefix ('scandeck provenance ls')")
    rerun.add_argument("--scan", action="append", default=[], metavar="UID",
                       help="a run to rerun on: uid or uid prefix (repeatable)")
    rerun.add_argument("--query", metavar="Q", help="rerun on every run matching this query")
    rerun.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       dest="parameters", help="override a parameter (value parsed as by 'scandeck run')")
    rerun.add_argument("-r", "--raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       dest="raw_parameters", help="override a parameter with a string, as given")
    rerun.add_argument("--workers", type=_positive, default=2, metavar="N",
                       help="reruns at once on this machine (default: 2)")
    rerun.add_argument("--dask", metavar="ADDRESS", help="run on this dask scheduler instead (tcp://host:8786)")
    rerun.add_argument("--executor", metavar="NAME",
                       help="a registered executor (default: local, or dask with --dask)")
    rerun.add_argument("--output-dir", type=Path, metavar="DIR",
                       help="where output notebooks go (default: ./reruns/<name>-<id8>/)")
    rerun.add_argument("-k", "--kernel", metavar="NAME", help="Jupyter kernel (default: the notebook's)")
    rerun.add_argument("--timeout", type=float, metavar="SECONDS", help="fail a cell that runs longer")
    rerun.add_argument("--tag", action="append", default=[], metavar="TAG", help="tag the new records")
    rerun.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    rerun.add_argument("--progress-json", action="store_true",
                       help="for programs: one JSON line on stdout per finished rerun (uid, scan_id, status, "
                            "seconds, output, record, error); the summary goes to stderr")


# -- shared ---------------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> ProvStore:
    from .store import open_store

    return open_store(args.store)


def _get(store: ProvStore, ident: str, code: int = 1) -> ProvenanceRecord:
    from ..cli import CliError
    from ..exceptions import AmbiguousRecord, RecordNotFound

    try:
        return store.get(ident)
    except RecordNotFound as err:
        raise CliError(str(err).split(";")[0], "'scandeck provenance ls' lists the records", code) from None
    except AmbiguousRecord as err:
        raise CliError(str(err), "give more characters of the id", code) from None


def _ago(t: float) -> str:
    from ..listing import local_time

    return local_time(t)


# -- provenance ----------------------------------------------------------------------------------


def cmd_provenance(args: argparse.Namespace) -> int:
    """``scandeck provenance ls|show|open|lineage``."""
    from ..cli import CliError

    handlers = {"ls": _cmd_ls, "show": _cmd_show, "open": _cmd_open, "lineage": _cmd_lineage}
    if args.provenance_command is None:
        raise CliError("which provenance command?", "scandeck provenance ls|show|open|lineage (--help)", 2)
    return handlers[args.provenance_command](args)


def _record_row(rec: ProvenanceRecord) -> list[str]:
    return [rec.id[:8], rec.name, rec.kind, rec.status, _ago(rec.created), str(len(rec.inputs)),
            rec.parent[:8] if rec.parent else "-"]


def _query_uids(args: argparse.Namespace) -> set[str]:
    from ..cli import open_target

    cat = open_target(args)
    try:
        return {s.uid for s in cat.search(args.query).summaries()}
    finally:
        cat.close()


def _cmd_ls(args: argparse.Namespace) -> int:
    from ..cli_format import render_table

    store = _store(args)
    limit = args.n or None
    if args.query:
        uids = _query_uids(args)
        records = [r for r in store.list(scan=args.scan, name=args.name, tag=args.tag, kind=args.kind)
                   if any(i.uid in uids for i in r.inputs)]
        total = len(records)
        records = records[:limit] if limit else records
    else:
        records = store.list(scan=args.scan, name=args.name, tag=args.tag, kind=args.kind,
                             limit=None if limit is None else limit + 1)
        total = len(records)
        if limit is not None and total > limit:
            records = records[:limit]
            filtered = any((args.scan, args.name, args.tag, args.kind))
            total = len(store.list(scan=args.scan, name=args.name, tag=args.tag, kind=args.kind)) \
                if filtered else len(store)
    if args.json:
        for rec in records:
            print(rec.model_dump_json())
        return 0
    if not records:
        filtered = any((args.scan, args.query, args.name, args.tag, args.kind))
        print(f"no {'matching ' if filtered else ''}provenance records in {store.directory}")
        return 0
    header = ["id", "name", "kind", "status", "created", "inputs", "parent"]
    print(render_table(header, [_record_row(r) for r in records], {5}))
    if total > len(records):
        print(f"{len(records)} of {total} records (-n N shows more, -n 0 all)")
    return 0


def environment_summary(env: Any) -> list[str]:
    """Lines for ``show``: interpreter, platform, kernel, host, git, and the packages that matter."""
    lines = [f"python {env.python} ({env.implementation}) on {env.platform}"]
    who = "@".join(x for x in (env.user, env.host) if x)
    extra = [f"kernel {env.kernel_name}" if env.kernel_name else "", who]
    if env.git_commit:
        extra.append(f"git {env.git_commit[:10]}{' (uncommitted changes)' if env.git_dirty else ''}")
    if any(extra):
        lines.append(", ".join(x for x in extra if x))
    shown = [f"{name} {env.packages[name]}" for name in KEY_PACKAGES if name in env.packages]
    if shown:
        lines.append(", ".join(shown))
    lines.append(f"{len(env.packages)} packages installed ('--json' lists them)")
    return lines


def _kv(pairs: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{indent}{k.ljust(width)}  {v}".rstrip() for k, v in pairs]


def show_record(store: ProvStore, rec: ProvenanceRecord) -> str:
    """Everything ``scandeck provenance show`` prints about one record."""
    from ..cli_format import render_table
    from ..listing import cut

    out = [f"record {rec.id}"]
    overview = [("name", rec.name), ("kind", rec.kind), ("status", rec.status), ("created", _ago(rec.created))]
    if rec.duration is not None:
        overview.append(("duration", f"{rec.duration:.1f} s"))
    if rec.tags:
        overview.append(("tags", ", ".join(rec.tags)))
    overview.append(("notebook", rec.notebook_path or "-"))
    overview.append(("sha256", rec.notebook_sha256 or "-"))
    if rec.target_scan:
        overview.append(("target scan", rec.target_scan))
    out += _kv(overview)

    out += ["", "parameters"]
    # As Python literals: that is how the parameters cell and -p spell them.
    out += _kv([(k, cut(repr(v), 100)) for k, v in rec.parameters.items()]) or ["  none"]

    out += ["", "inputs"]
    if rec.inputs:
        rows = [[i.uid[:8], "" if i.scan_id is None else str(i.scan_id), ", ".join(i.streams) or "-",
                 ", ".join(i.fields) or "-", i.catalog or "-"] for i in rec.inputs]
        out += ["  " + line for line in render_table(["uid", "scan_id", "streams", "fields", "catalog"],
                                                     rows, {1}).splitlines()]
    else:
        out.append("  none recorded")

    out += ["", "outputs"]
    out += [f"  {o.uid}  {o.catalog}".rstrip() for o in rec.outputs] or ["  none"]

    out += ["", "environment"]
    out += ["  " + line for line in environment_summary(rec.environment)]

    out += ["", "parent"]
    if rec.parent:
        try:
            parent = store.get(rec.parent)
            out.append(f"  {parent.id[:8]}  {parent.name}  {parent.kind}  {parent.status}  {_ago(parent.created)}")
        except Exception:  # noqa: BLE001 - a parent from another store: show its id
            out.append(f"  {rec.parent}  (not in this store)")
    else:
        out.append("  none")

    children = store.children(rec.id)
    out += ["", f"reruns ({len(children)})" if children else "reruns"]
    if children:
        rows = [[c.id[:8], c.status, (c.target_scan or "-")[:8], _ago(c.created),
                 _short_error(c)] for c in children]
        out += ["  " + line for line in render_table(["id", "status", "scan", "created", "error"],
                                                     rows).splitlines()]
    else:
        out.append("  none")

    if rec.error is not None:
        from .notebooks import describe_failure

        out += ["", "error", f"  {describe_failure(rec.error)}"]
        if rec.error.cell_source:
            out += ["  | " + line for line in rec.error.cell_source.splitlines()]
    return "\n".join(out)


def _short_error(rec: ProvenanceRecord) -> str:
    if rec.error is None:
        return "-"
    where = f"cell {rec.error.cell_index}" if rec.error.cell_index is not None else "?"
    text = f"{where}: {rec.error.ename}: {rec.error.evalue}".splitlines()[0]
    return text if len(text) <= 60 else text[:57] + "..."


def _cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    rec = _get(store, args.record)
    if args.json:
        print(json.dumps(rec.to_metadata(), indent=2))
    else:
        # Names, parameters, errors and cell sources are whatever a notebook held.
        print(printable(show_record(store, rec), keep="\n\t"))
    # The record is shown all the same; open and rerun refuse such a notebook.
    problem = store.notebook_problem(rec)
    if problem is not None:
        print(f"scandeck provenance show: warning: {printable(problem)}", file=sys.stderr)
    return 0


def _cmd_open(args: argparse.Namespace) -> int:
    from ..cli import CliError
    from .rerun import _safe

    store = _store(args)
    rec = _get(store, args.record)
    default = f"{_safe(rec.name)}-{rec.id[:8]}.ipynb"
    path = args.path.expanduser() if args.path is not None else Path(default)
    if path.is_dir():
        path = path / default
    if path.exists() and not args.overwrite:
        raise CliError(f"{path} exists", "--overwrite replaces it, or give another PATH")
    data = store.notebook_bytes(rec)
    try:
        path.write_bytes(data)
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}", "check that the directory exists") from err
    print(path)
    return 0


def node_dict(node: Any) -> dict[str, Any]:
    """A lineage node as JSON-ready data."""
    out: dict[str, Any] = {"kind": node.kind, "id": node.id, "relation": node.relation}
    if node.repeat:
        out["repeat"] = True
    if node.run is not None:
        out.update(scan_id=node.run.scan_id, plan_name=node.run.start.get("plan_name"), status=node.run.status)
    if node.record is not None:
        rec = node.record
        out.update(name=rec.name, record_kind=rec.kind, status=rec.status, created=rec.created,
                   target_scan=rec.target_scan, parent=rec.parent)
    out["children"] = [node_dict(c) for c in node.children]
    return out


def _cmd_lineage(args: argparse.Namespace) -> int:
    from ..cli import open_target
    from .lineage import lineage, render

    store = _store(args)
    cat = open_target(args)
    try:
        tree = lineage(args.run, store=store, catalog=cat)
        if args.json:
            print(json.dumps(node_dict(tree), indent=2))
        else:
            print(printable(render(tree), keep="\n"))
    finally:
        cat.close()
    return 0


# -- rerun ----------------------------------------------------------------------------------------


def _catalog_for_rerun(args: argparse.Namespace, record: ProvenanceRecord) -> tuple[Catalog, str | None, str]:
    """The catalog to look targets up in, the --catalog text for the kernels, and a note."""
    from ..cli import default_store_label, open_target, target_of
    from .rerun import _record_catalog

    target = target_of(args)
    if target:
        return open_target(args), target, ""
    cat = _record_catalog(record)
    if cat is not None:
        return cat, None, f"note: looking the scans up in {cat.name}, the catalog the record read from"
    return open_target(args), None, f"note: looking the scans up in {default_store_label(args)}"


def cmd_rerun(args: argparse.Namespace) -> int:
    """``scandeck rerun ID [--scan UID ...] [--query Q] [-p NAME VALUE ...] [--workers N] [--dask A]``."""
    from ..cli import CliError
    from ..exceptions import AmbiguousUID, RunNotFound
    from .rerun import LOCAL_EXECUTORS, RerunSetupError, execute_plan, plan, summary_table
    from .run_cli import parse_value

    if not args.scan and not args.query:
        raise CliError("no scans to rerun on", "give --scan UID (repeatable) and/or --query Q", 2)
    store = _store(args)
    record = _get(store, args.record, code=2)
    parameters: dict[str, Any] = {name: parse_value(value) for name, value in args.parameters}
    parameters.update({name: value for name, value in args.raw_parameters})
    executor = args.executor or ("dask" if args.dask else "local")
    from .rerun_executors import available_executors

    if executor not in available_executors():
        raise CliError(f"no rerun executor named {executor!r}",
                       f"available: {', '.join(available_executors())}", 2)

    cat, target, note = _catalog_for_rerun(args, record)
    try:
        the_plan = plan(record.id, catalog=cat, store=store, scans=args.scan, query=args.query,
                        parameters=parameters, output_dir=args.output_dir, kernel_name=args.kernel,
                        catalog_target=target, timeout=args.timeout, tags=args.tag,
                        check_kernel=executor in LOCAL_EXECUTORS)
    except (RunNotFound, AmbiguousUID) as err:
        raise CliError(str(err), f"'scandeck ls --catalog ...' lists the runs of {cat.name}", 2) from None
    except RerunSetupError as err:
        raise CliError(str(err), "", 2) from None
    finally:
        cat.close()
    if note:
        print(note, file=sys.stderr)
    for line in the_plan.notes:
        print(line, file=sys.stderr)
    n = len(the_plan.targets)
    where = f"dask at {args.dask}" if args.dask else f"{executor}, {min(args.workers, n)} workers"
    print(f"rerunning {record.id[:8]} ({record.name}) on {n} scan{'s' if n != 1 else ''} ({where}) "
          f"into {the_plan.output_dir}", file=sys.stderr)
    try:
        results = execute_plan(the_plan, executor=executor, workers=args.workers, address=args.dask,
                               progress=not args.no_progress,
                               on_result=_print_json_result if args.progress_json else None)
    except Exception as err:
        from ..exceptions import ScandeckError

        if isinstance(err, ScandeckError):
            raise
        raise CliError(f"the {executor} executor failed: {type(err).__name__}: {err}".splitlines()[0]) from err
    out = sys.stderr if args.progress_json else sys.stdout  # stdout carries only the JSON lines then
    print(summary_table(results), file=out)
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} reruns ok"
          + (f", {len(failed)} failed (their notebooks, with the traceback, are listed above)" if failed else "")
          + f"; 'scandeck provenance show {record.id[:8]}' lists them", file=out)
    return 1 if failed else 0


def _print_json_result(result: Any) -> None:
    """``--progress-json``: one line per finished rerun, flushed at once for a reading program."""
    print(json.dumps({
        "uid": result.uid, "scan_id": result.scan_id, "status": result.status, "seconds": result.seconds,
        "output": result.output_path, "record": result.record_id, "error": result.describe_error() or None,
    }), flush=True)
