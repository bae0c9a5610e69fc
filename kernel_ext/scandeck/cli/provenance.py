"""``scandeck provenance ls|show|open|lineage``: the provenance records and the lineage of a run.

:func:`add_parsers` adds the command to the ``scandeck`` parser and
:func:`cmd_provenance` runs it; :func:`store_of` and :func:`get_record` are
shared with ``scandeck rerun`` (:mod:`.rerun`). Errors follow the rest of the
command line: one stderr line and a hint, exit 2 for bad arguments, 1 for
failures. This module is imported when the parser is built, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..listing import local_time, render_table
from ..safe_text import printable
from .arguments import count
from .errors import CliError
from .targets import open_target

if TYPE_CHECKING:
    from ..provenance.record import ProvenanceRecord
    from ..provenance.store import ProvStore

__all__ = [
    "add_parsers",
    "add_store_option",
    "cmd_provenance",
    "environment_summary",
    "get_record",
    "node_dict",
    "show_record",
    "store_of",
]

#: Packages ``provenance show`` names in the environment summary, in this order, when installed.
KEY_PACKAGES = (
    "scandeck",
    "bluesky",
    "ophyd",
    "event-model",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "matplotlib",
    "holoviews",
    "papermill",
    "nbclient",
    "ipykernel",
    "dask",
    "distributed",
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


# -- parser ---------------------------------------------------------------------------------------


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store DIR``: the provenance store to use."""
    parser.add_argument(
        "--store", metavar="DIR", type=Path, help="the provenance store directory (default: <data dir>/provenance)"
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``provenance`` (with its sub-commands) to the ``scandeck`` sub-parsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    prov = sub.add_parser(
        "provenance",
        help="list, show and open provenance records; lineage of a run",
        description="Provenance records: what ran on which runs, with which software.",
        epilog=PROVENANCE_EPILOG,
        formatter_class=formatter,
    )
    prov.set_defaults(handler=cmd_provenance)
    psub = prov.add_subparsers(dest="provenance_command", metavar="SUBCOMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = psub.add_parser(
            name,
            parents=[common],
            help=help,
            formatter_class=formatter,
            description=help[:1].upper() + help[1:] + ".",
            epilog=PROVENANCE_EPILOG,
        )
        add_store_option(parser)
        return parser

    ls = command("ls", "list records, newest first")
    ls.add_argument("--scan", metavar="UID", help="records that read this run (uid or uid prefix)")
    ls.add_argument("--query", metavar="Q", help="records that read any run matching this query (in --catalog)")
    ls.add_argument("--name", metavar="N", help="records of this name")
    ls.add_argument("--tag", metavar="T", help="records with this tag")
    ls.add_argument("--kind", choices=("interactive", "batch", "rerun"), help="records of this kind")
    ls.add_argument("-n", type=count, default=20, metavar="N", help="show at most N records (default: 20; 0: all)")
    ls.add_argument("--json", action="store_true", help="one JSON record per line")

    show = command("show", "show one record: parameters, inputs, outputs, environment, reruns, error")
    show.add_argument("record", metavar="ID", help="record id or id prefix")
    show.add_argument("--json", action="store_true", help="the whole record as JSON")

    open_ = command("open", "write a record's executed notebook to a file")
    open_.add_argument("record", metavar="ID", help="record id or id prefix")
    open_.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        type=Path,
        help="file or directory to write to (default: ./<name>-<id8>.ipynb)",
    )
    open_.add_argument("--overwrite", action="store_true", help="replace an existing file")

    lin = command("lineage", "show what a run came from, who read it, what they derived and reran")
    lin.add_argument("run", metavar="UID", help="run uid or uid prefix (in --catalog)")
    lin.add_argument("--json", action="store_true", help="the tree as JSON")


# -- shared ---------------------------------------------------------------------------------------


def store_of(args: argparse.Namespace) -> ProvStore:
    """The provenance store ``--store`` names (default: ``<data dir>/provenance``)."""
    from ..provenance.store import open_store

    return open_store(args.store)


def get_record(store: ProvStore, ident: str, code: int = 1) -> ProvenanceRecord:
    """The record ``ident`` (an id or id prefix) names, else a :class:`CliError` with exit ``code``."""
    from ..exceptions import AmbiguousRecord, RecordNotFound

    try:
        return store.get(ident)
    except RecordNotFound as err:
        raise CliError(str(err).split(";")[0], "'scandeck provenance ls' lists the records", code) from None
    except AmbiguousRecord as err:
        raise CliError(str(err), "give more characters of the id", code) from None


# -- provenance ----------------------------------------------------------------------------------


def cmd_provenance(args: argparse.Namespace) -> int:
    """``scandeck provenance ls|show|open|lineage``."""
    handlers = {"ls": _cmd_ls, "show": _cmd_show, "open": _cmd_open, "lineage": _cmd_lineage}
    if args.provenance_command is None:
        raise CliError("which provenance command?", "scandeck provenance ls|show|open|lineage (--help)", 2)
    return handlers[args.provenance_command](args)


def _record_row(rec: ProvenanceRecord) -> list[str]:
    return [
        rec.id[:8],
        rec.name,
        rec.kind,
        rec.status,
        local_time(rec.created),
        str(len(rec.inputs)),
        rec.parent[:8] if rec.parent else "-",
    ]


def _query_uids(args: argparse.Namespace) -> set[str]:
    cat = open_target(args)
    try:
        return {s.uid for s in cat.search(args.query).summaries()}
    finally:
        cat.close()


def _cmd_ls(args: argparse.Namespace) -> int:
    store = store_of(args)
    limit = args.n or None
    if args.query:
        uids = _query_uids(args)
        records = [
            r
            for r in store.list(scan=args.scan, name=args.name, tag=args.tag, kind=args.kind)
            if any(i.uid in uids for i in r.inputs)
        ]
        total = len(records)
        records = records[:limit] if limit else records
    else:
        records = store.list(
            scan=args.scan,
            name=args.name,
            tag=args.tag,
            kind=args.kind,
            limit=None if limit is None else limit + 1,
        )
        total = len(records)
        if limit is not None and total > limit:
            records = records[:limit]
            filtered = any((args.scan, args.name, args.tag, args.kind))
            total = (
                len(store.list(scan=args.scan, name=args.name, tag=args.tag, kind=args.kind))
                if filtered
                else len(store)
            )
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
    from ..listing import cut

    out = [f"record {rec.id}"]
    overview = [
        ("name", rec.name),
        ("kind", rec.kind),
        ("status", rec.status),
        ("created", local_time(rec.created)),
    ]
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

    out += ["", "values (published with scandeck.glue)"]
    out += _kv([(k, cut(repr(v), 100)) for k, v in rec.values.items()]) or ["  none"]
    if rec.values and rec.target_scan and rec.kind == "rerun":
        from ..provenance.published import published_key
        from ..runtable.model import published_column

        example = published_key(published_column(rec.name, next(iter(rec.values))))
        out.append(f"  (columns of run {rec.target_scan[:8]} in the run table; searched as e.g. {example})")

    out += ["", "inputs"]
    if rec.inputs:
        rows = [
            [
                i.uid[:8],
                "" if i.scan_id is None else str(i.scan_id),
                ", ".join(i.streams) or "-",
                ", ".join(i.fields) or "-",
                i.catalog or "-",
            ]
            for i in rec.inputs
        ]
        out += [
            "  " + line
            for line in render_table(["uid", "scan_id", "streams", "fields", "catalog"], rows, {1}).splitlines()
        ]
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
            out.append(
                f"  {parent.id[:8]}  {parent.name}  {parent.kind}  {parent.status}  {local_time(parent.created)}"
            )
        except Exception:  # noqa: BLE001 - a parent from another store: show its id
            out.append(f"  {rec.parent}  (not in this store)")
    else:
        out.append("  none")

    children = store.children(rec.id)
    out += ["", f"reruns ({len(children)})" if children else "reruns"]
    if children:
        rows = [
            [c.id[:8], c.status, (c.target_scan or "-")[:8], local_time(c.created), _short_error(c)]
            for c in children
        ]
        out += [
            "  " + line for line in render_table(["id", "status", "scan", "created", "error"], rows).splitlines()
        ]
    else:
        out.append("  none")

    if rec.error is not None:
        from ..provenance.notebooks import describe_failure

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
    store = store_of(args)
    rec = get_record(store, args.record)
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
    from ..provenance.rerun_plan import safe_name

    store = store_of(args)
    rec = get_record(store, args.record)
    default = f"{safe_name(rec.name)}-{rec.id[:8]}.ipynb"
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
        from ..provenance.lineage import pipeline_summary

        summary = pipeline_summary(node.run.start)
        if summary:
            out["pipeline"] = summary  # a live derived run (to_run): the pipeline it came from
    if node.record is not None:
        rec = node.record
        out.update(
            name=rec.name,
            record_kind=rec.kind,
            status=rec.status,
            created=rec.created,
            target_scan=rec.target_scan,
            parent=rec.parent,
        )
    out["children"] = [node_dict(c) for c in node.children]
    return out


def _cmd_lineage(args: argparse.Namespace) -> int:
    from ..provenance.lineage import lineage, render

    store = store_of(args)
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
