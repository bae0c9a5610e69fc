"""The writing commands of ``scandeck``: ingest (document files) and demo (simulated beamline)."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import DocumentFileError, InvalidDocument, RunNotFound, ScandeckError
from ..safe_text import printable
from .arguments import add_command, count, seconds
from .errors import report
from .keeper import start_keeper_thread
from .targets import default_store_label, open_target, target_of

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..sources.protocol import Writer

__all__ = ["add_parsers", "cmd_demo", "cmd_ingest"]

EPILOGS = {
    "ingest": """\
examples:
  scandeck ingest runs/*.jsonl
  scandeck ingest --catalog ./store backup/*.msgpack

Runs already in the catalog are skipped, so ingesting a folder twice is safe.
A damaged file is reported with its line and skipped from there on; the
documents before the damage are kept (that run is then 'incomplete').""",
    "demo": """\
examples:
  scandeck demo                     runs until Ctrl-C, about one point per second
  scandeck demo --runs 5 --pace 0   five runs, as fast as possible
  scandeck demo --catalog ./demo-store --seed 1
  scandeck demo --catalog 'redis://localhost:6379/0?prefix=demo'   publish on a Redis bus
  scandeck demo --files ./xrd       also a simulated instrument writing TIFF images and
                                    CSV patterns into ./xrd, watched into the catalog

Watch it from another terminal with 'scandeck ls' (same --catalog).
Ctrl-C stops: the run in flight is aborted and still gets its stop document.""",
}


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ingest and demo to the ``scandeck`` sub-parsers."""
    ingest = add_command(
        sub, common, "ingest", "store the runs of document files (JSON lines or msgpack)", EPILOGS["ingest"]
    )
    ingest.add_argument("files", nargs="+", metavar="FILE", help=".jsonl or .msgpack files")
    ingest.set_defaults(handler=cmd_ingest)

    demo = add_command(sub, common, "demo", "record simulated beamline scans into the catalog", EPILOGS["demo"])
    demo.add_argument(
        "--pace",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds per point (default: 1; 0: as fast as possible)",
    )
    demo.add_argument(
        "--runs", type=count, default=None, metavar="N", help="stop after N runs (default: until Ctrl-C)"
    )
    demo.add_argument(
        "--seed", type=int, default=None, metavar="S", help="reproduce the same mix of plans, samples and data"
    )
    demo.add_argument(
        "--files",
        type=Path,
        default=None,
        metavar="DIR",
        help="also run a simulated instrument writing TIFF and CSV files into DIR (a folder per sample), "
        "and a watcher taking them into the catalog (one watched run per demo; --runs N: N samples)",
    )
    demo.set_defaults(handler=cmd_demo)


@dataclass
class _Tally:
    """What one file (or the whole ingest) did."""

    runs: int = 0
    documents: int = 0
    skipped: list[str] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.runs += other.runs
        self.documents += other.documents
        self.skipped += other.skipped


class _SkipAlreadyStored:
    """Tells which documents belong to a run the catalog already has.

    Documents are matched to runs by :class:`~scandeck.docfiles.RunMembership`.
    """

    def __init__(self, cat: Catalog) -> None:
        from ..docfiles import RunMembership

        self.cat = cat
        self.runs = RunMembership()
        self.skipping: set[str] = set()  # start uids to skip

    def __call__(self, name: str, doc: dict[str, Any]) -> bool:
        """True when ``doc`` belongs to a run already in the catalog."""
        if name == "start":
            uid = doc.get("uid")
            if not isinstance(uid, str):
                return False  # the writer rejects it with a clear message
            self.runs.start(uid)
            try:
                # The source, not the catalog: a catalog restricted by a query would
                # say "not here" for a stored run, and storing it again fails.
                self.cat.source.get(uid)
            except RunNotFound:
                return False
            self.skipping.add(uid)
            return True
        return self.runs.run_of(name, doc) in self.skipping


def _ingest_file(cat: Catalog, path: str) -> tuple[_Tally, str]:
    """Store one file's runs; return what was stored and an error message ("" if none)."""
    from ..docfiles import read_documents

    tally = _Tally()
    skip = _SkipAlreadyStored(cat)
    writer: Writer = cat.writer()
    index = 0
    try:
        for index, (name, doc) in enumerate(read_documents(path), 1):  # noqa: B007
            if skip(name, doc):
                if name == "start":
                    tally.skipped.append(doc["uid"])
                continue
            writer(name, doc)
            tally.documents += 1
            tally.runs += name == "start"
    except DocumentFileError as err:
        return tally, str(err)  # names the file and the line or document index
    except InvalidDocument as err:
        return tally, f"{path}: document {index}: {err}"
    except IsADirectoryError:
        return tally, f"{path}: is a directory; give the files in it (e.g. {path}/*.jsonl)"
    except OSError as err:  # a missing or unreadable file
        if isinstance(err, ScandeckError):  # StoreError: the store itself failed
            raise
        return tally, f"{path}: cannot read it: {err.strerror or err}"
    finally:
        # Closing marks a run cut short by an error 'incomplete'; its documents stay.
        writer.close()
    return tally, ""


def _runs(n: int) -> str:
    return f"{n} run{'s' * (n != 1)}"


def cmd_ingest(args: argparse.Namespace) -> int:
    """``scandeck ingest FILES...``."""
    cat = open_target(args, create=True)
    total, failed = _Tally(), 0
    try:
        for path in args.files:
            tally, error = _ingest_file(cat, path)
            total.add(tally)
            done = f"{_runs(tally.runs)} ({tally.documents} documents) stored"
            skipped = printable(", ".join(uid[:8] for uid in tally.skipped))
            if error:
                failed += 1
                if skipped:
                    print(f"{path}: already stored, skipped: {skipped}")
                # The documents before the error stay; say so, else the user re-runs blindly.
                kept = f"{done} from it before the error" if tally.documents else ""
                report("ingest", error, kept)
            elif tally.runs or not tally.skipped:
                extra = f"; already stored, skipped: {skipped}" if skipped else ""
                print(f"{path}: {done}{extra}")
            else:
                print(f"{path}: already stored, skipped: {skipped}")
        files = f"{len(args.files)} file{'s' * (len(args.files) != 1)}"
        summary = f"ingested {_runs(total.runs)} ({total.documents} documents) from {files}"
        summary += f" into {cat.name}"
        if total.skipped:
            summary += f"; {_runs(len(total.skipped))} already stored"
        if failed:
            summary += f"; {failed} file{'s' * (failed != 1)} failed"
        print(summary)
        return 1 if failed else 0
    finally:
        cat.close()


# -- demo -------------------------------------------------------------------------------------


def _asset_dir(cat: Catalog, args: argparse.Namespace) -> Path:
    """Where the demo's detectors write files: next to the store, or in the data directory."""
    from ..config import data_dir

    directory = getattr(cat.source, "directory", None)
    if target_of(args) is None or directory is None:
        return data_dir() / "assets"
    return Path(directory).resolve() / "assets"


def cmd_demo(args: argparse.Namespace) -> int:
    """``scandeck demo [--pace SECONDS] [--runs N] [--seed S]``."""
    from ..demo import run_demo

    stop = threading.Event()
    pressed: list[bool] = []

    def on_ctrl_c(signum: int, frame: Any) -> None:
        # First Ctrl-C: finish cleanly (the run in flight gets its stop document).
        # Second: the user means it.
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)
        stop.set()
        print(
            "stopping: the run in flight is being closed (Ctrl-C again to quit at once)",
            file=sys.stderr,
            flush=True,
        )

    # Installed before opening anything: a Ctrl-C while ophyd imports still stops cleanly.
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        cat = open_target(args, create=True)
        try:
            return _demo(cat, args, run_demo, stop)
        finally:
            cat.close()
    finally:
        signal.signal(signal.SIGINT, previous)


def _demo(cat: Catalog, args: argparse.Namespace, run_demo: Any, stop: threading.Event) -> int:
    assets = _asset_dir(cat, args)
    target = target_of(args)
    where = "" if target is None else f" --catalog {shlex.quote(target)}"
    watch, show_newest = f"scandeck ls{where}", f"scandeck show -1{where}"
    runs = "until Ctrl-C" if args.runs is None else _runs(args.runs)
    print(f"scandeck demo: simulated beamline writing to {default_store_label(args)} ({cat.source.uri})")
    print(f"  {runs}, {args.pace:g} s per point; detector images in {assets}")
    print(f"  watch it from another terminal:  {watch}   (the newest run: {show_newest})")
    if cat.source.uri.startswith("memory://"):
        print("  note: a memory:// catalog vanishes when this command ends")
    if args.runs is None:
        print("  Ctrl-C stops; the run in flight still gets its stop document")

    if cat.source.uri.startswith(("redis://", "rediss://")):
        print("  a keeper copies finished runs to the archive and trims Redis (scandeck keeper --help)")
        keeper = start_keeper_thread(
            cat.source.uri, stop, lambda line: print(f"  keeper: {printable(line)}", flush=True)
        )
    else:
        keeper = None
    instrument = _start_instrument(cat, args) if getattr(args, "files", None) is not None else None
    print(flush=True)

    writer = cat.writer()
    try:
        last = cat.summaries(limit=1)
        n = run_demo(
            writer,
            asset_dir=assets,
            pace=args.pace,
            runs=args.runs,
            seed=args.seed,
            stop_event=stop,
            progress=lambda line: print(line, flush=True),
            last_scan_id=(last[0].scan_id or 0) if last else 0,
        )
    finally:
        writer.close()
        if instrument is not None:
            _finish_instrument(instrument, now=stop.is_set() or args.runs is None)
        if keeper is not None:
            stop.set()
            keeper.join(timeout=30)
    print(f"\n{_runs(n)} written; see them with: {watch}")
    return 0


def _start_instrument(cat: Catalog, args: argparse.Namespace) -> Any:
    """The simulated instrument writing into ``--files DIR`` and its watcher, started."""
    from ..files.instrument import InstrumentDemo

    directory = args.files.expanduser().resolve()
    demo = InstrumentDemo(
        cat,
        directory,
        pace=args.pace,
        samples=args.runs,
        seed=args.seed,
        say=lambda line: print(f"  {printable(line)}", flush=True),
    )
    print(f"  instrument: TIFF images and CSV patterns into {printable(str(directory))}, a folder per sample;")
    print("  a watcher takes each finished file into one watched run (scandeck watch --help)")
    demo.start()
    return demo


def _finish_instrument(demo: Any, *, now: bool) -> None:
    summary = demo.finish(now=now)
    print(f"  watcher: {summary.files} file(s) of the instrument taken into the catalog", flush=True)
