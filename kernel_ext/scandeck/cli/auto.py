"""``scandeck auto``: a standing analysis, rerunning a recorded notebook on every new matching scan.

The service is :mod:`scandeck.provenance.auto`'s; this module reads the
arguments, prints one line per rerun, and lists the standing analyses
(``--list``, ``--show``). Imported when the parser is built: nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import add_command, positive
from .errors import CliError
from .provenance import add_store_option, get_record, store_of
from .targets import target_of

if TYPE_CHECKING:
    from ..provenance.standing import Ledger

__all__ = ["EPILOG", "add_parsers", "cmd_auto"]

EPILOG = """\
examples:
  scandeck auto 1a2b --query 'sample == "Ni"'              rerun on every new Ni scan that succeeds
  scandeck auto 1a2b --query 'plan_name == "count"' --workers 4 --since 2026-12-01
  scandeck auto 1a2b --status any --dask tcp://10.0.0.5:8786
  scandeck auto --list                                      the standing analyses and their counts
  scandeck auto --show 5c1e                                 one analysis: its latest reruns

Every run of the catalog that matches --query and ends with --status (success,
fail, abort or any; default success) is rerun once through the record's
notebook, as 'scandeck rerun' does: a rerun record whose parent is the record,
tagged auto:<id>. The analysis keeps its place in the provenance store: a
restarted service catches up on the runs that ended while it was down and reruns
nothing twice; a second service for the same analysis waits as a standby and
takes over if the first stops. Runs that ended before the analysis was first
started are not rerun, except those since --since DATE (given again later, it
catches up on the runs since DATE the analysis has not seen). A run left
incomplete (its writer went away) is watched: it is rerun if it is taken over
and ends. A query on a run's facts (tags contains "good", columns.peak_cen >
0.5) is asked again when they change after the run's end (tagged later, final
cells computed). Ctrl-C stops (reruns in flight are finished first; Ctrl-C again
leaves them to the next start)."""


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``auto`` to the ``scandeck`` sub-parsers."""
    auto = add_command(sub, common, "auto", "rerun a recorded notebook on every new matching scan", EPILOG)
    auto.description = "Rerun a recorded notebook on every new scan that matches a query, until stopped."
    auto.set_defaults(handler=cmd_auto)
    add_store_option(auto)
    auto.add_argument("record", metavar="ID", nargs="?", help="record id or id prefix ('scandeck provenance ls')")
    auto.add_argument(
        "--query", metavar="Q", default="", help="rerun on the new runs matching this query (default: all)"
    )
    auto.add_argument(
        "--status",
        choices=("success", "fail", "abort", "any"),
        default="success",
        help="the exit status a run must end with (default: success)",
    )
    auto.add_argument(
        "--since", metavar="DATE", help="also rerun on runs started since DATE that have already ended"
    )
    auto.add_argument(
        "--workers", type=positive, default=2, metavar="N", help="reruns at once on this machine (default: 2)"
    )
    auto.add_argument("--dask", metavar="ADDRESS", help="run on this dask scheduler instead (tcp://host:8786)")
    auto.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="where output notebooks go (default: <store>/auto/<name>/)"
    )
    auto.add_argument("--list", action="store_true", help="list the standing analyses with their counts, and exit")
    auto.add_argument(
        "--show", metavar="AUTO_ID", help="show one standing analysis and its latest reruns, and exit"
    )
    auto.add_argument("--remove", metavar="AUTO_ID", help="forget a stopped standing analysis (records stay)")
    auto.add_argument("--json", action="store_true", help="--list/--show as JSON")


def _say(line: str) -> None:
    from ..safe_text import printable

    print(f"{time.strftime('%H:%M:%S')} {printable(line)}", flush=True)


def cmd_auto(args: argparse.Namespace) -> int:
    """``scandeck auto ID [--query Q] [...]``, ``--list``, ``--show AUTO_ID``, ``--remove AUTO_ID``."""
    from ..provenance.auto import ledger_of

    store = store_of(args)
    ledger = ledger_of(store)
    if args.list:
        return _list(ledger, args.json)
    if args.show:
        return _show(ledger, args.show, args.json)
    if args.remove:
        return _remove(ledger, args.remove)
    if not args.record:
        raise CliError("no record given", "scandeck auto ID --query Q, or scandeck auto --list", 2)
    return _serve(args, store)


def _serve(args: argparse.Namespace, store: Any) -> int:
    from ..exceptions import InvalidQuery, QuerySyntaxError
    from ..provenance.auto import AutoService, define

    record = get_record(store, args.record, code=2)
    try:
        standing = define(
            record.id,
            query=args.query,
            catalog=target_of(args),
            status=args.status,
            since=args.since,
            workers=args.workers,
            dask=args.dask,
            output_dir=args.output_dir,
            store=store,
        )
    except (QuerySyntaxError, InvalidQuery) as err:
        raise CliError(
            f"bad --query or --since: {err}", "see 'scandeck ls --help' for the query language", 2
        ) from None
    _say(
        f"standing analysis {standing.id[:8]}: record {standing.name} ({record.id[:8]}) on "
        f"{standing.query or 'every run'} ending {standing.status} in {standing.catalog or 'the default store'}, "
        f"{'dask ' + standing.dask if standing.dask else f'{standing.workers} workers'}; Ctrl-C stops"
    )
    service = AutoService(standing.id, store=store, say=_say)
    stopping = threading.Event()

    def on_signal(*_: Any) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: leave reruns in flight to the next start
        stopping.set()
        service.stop()
        _say("stopping: reruns in flight finish first (Ctrl-C again to leave them to the next start)")

    previous = signal.signal(signal.SIGINT, on_signal)
    term = signal.signal(signal.SIGTERM, on_signal)
    try:
        service.start()
        while service.running:
            service.join(timeout=0.5)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, term)
    counts = ledger_counts_text(service.ledger.counts(standing.id))
    _say(f"stopped: {counts}")
    if service.failed is not None:
        raise CliError(f"the standing analysis stopped: {service.failed}", "fix the cause and start it again")
    return 0


def ledger_counts_text(counts: dict[str, int]) -> str:
    return f"{counts['done']} done, {counts['failed']} failed, {counts['pending'] + counts['running']} pending"


def _list(ledger: Ledger, as_json: bool) -> int:
    from ..listing import render_table
    from ..provenance.auto import describe
    from ..provenance.standing import owner_text
    from ..safe_text import printable

    analyses = ledger.all()
    if as_json:
        for s in analyses:
            print(json.dumps(describe(ledger, s)))
        return 0
    if not analyses:
        print("no standing analyses; start one with: scandeck auto ID --query Q")
        return 0
    rows = []
    for s in analyses:
        info = describe(ledger, s, latest=1)
        counts = info["counts"]
        last = info["latest"][0] if info["latest"] else None
        last_text = "-"
        if last is not None:
            label = last["scan_id"] if last["scan_id"] is not None else last["uid"][:8]
            last_text = f"{label} {last['state']}"
        holder = info["holder"]
        state = f"running ({owner_text(holder)})" if holder else "stopped"
        rows.append(
            [
                s.id[:8],
                f"{s.name} {s.record[:8]}",
                s.query or "*",
                s.status,
                state + (" [server]" if s.managed else ""),
                str(counts["done"]),
                str(counts["failed"]),
                str(counts["pending"] + counts["running"]),
                last_text,
            ]
        )
    headers = ["id", "record", "query", "status", "state", "done", "failed", "pending", "last"]
    print(render_table(headers, [[printable(c) for c in row] for row in rows], {5, 6, 7}))
    return 0


def _show(ledger: Ledger, ident: str, as_json: bool) -> int:
    from ..exceptions import AmbiguousRecord, RecordNotFound
    from ..listing import render_table
    from ..provenance.auto import describe
    from ..safe_text import printable

    try:
        standing = ledger.get(ident)
    except (RecordNotFound, AmbiguousRecord) as err:
        raise CliError(str(err).split(";")[0], "'scandeck auto --list' lists them", 2) from None
    info = describe(ledger, standing, latest=20)
    if as_json:
        print(json.dumps(info))
        return 0
    lines = [
        f"standing analysis {standing.id}",
        f"  record:  {standing.name} {standing.record}",
        f"  query:   {standing.query or '*'} (ending {standing.status})",
        f"  catalog: {standing.catalog or 'the default store'}",
        f"  output:  {standing.output_dir}",
        f"  state:   {'running (' + info['holder'] + ')' if info['holder'] else 'stopped'}",
        f"  counts:  {ledger_counts_text(info['counts'])}, {info['counts']['open']} still running or incomplete",
    ]
    print("\n".join(printable(line) for line in lines))
    rows = [
        [
            "" if r["scan_id"] is None else str(r["scan_id"]),
            r["uid"][:8],
            r["state"],
            (r["record_id"] or "-")[:8],
            (r["message"] or "").splitlines()[0][:60] if r["message"] else "",
        ]
        for r in info["latest"]
    ]
    if rows:
        safe = [[printable(c) for c in row] for row in rows]
        print(render_table(["scan_id", "uid", "state", "record", "message"], safe, {0}))
    return 0


def _remove(ledger: Ledger, ident: str) -> int:
    from ..exceptions import AmbiguousRecord, RecordNotFound

    try:
        standing = ledger.get(ident)
    except (RecordNotFound, AmbiguousRecord) as err:
        raise CliError(str(err).split(";")[0], "'scandeck auto --list' lists them", 2) from None
    if ledger.holder(standing.id):
        raise CliError(f"standing analysis {standing.id[:8]} is running", "stop its service first", 1)
    ledger.remove(standing.id)
    print(f"removed standing analysis {standing.id[:8]} (its rerun records stay)")
    return 0
