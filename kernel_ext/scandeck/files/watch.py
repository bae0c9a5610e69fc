"""The watcher: each complete file under watched directories becomes an event of a run.

:class:`Watcher` finds complete files (:mod:`.complete`), skips those its ledger
(:mod:`.ledger`) says are in the catalog already, reads each new version once
(hash, then its reader's :meth:`describe`), sends its bytes through the bus when
asked (``transfer``), and writes its documents (:mod:`.compose`) into the run it
belongs to: one run per watch session, per subdirectory, or per file. Every run is
ended with a ``success`` stop when the watcher stops (``stop`` set, ``once`` done),
``fail`` when a document could not be stored.

Examples
--------
>>> watcher = Watcher(cat, ["/data/xrd"], patterns=["*.tif"], once=True)   # doctest: +SKIP
>>> watcher.run().files                                                     # doctest: +SKIP
12
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..exceptions import FileMismatch, UnreadableFile
from ..safe_text import printable
from .complete import Candidate, Tracker, enable_leases, read_whole, same_version
from .compose import FileDocs, FileVersion, LayoutChecks
from .layout import CHUNK_SIZE, PLAN_NAME, watch_metadata
from .ledger import IN_MEMORY, Ledger, RootLock, ledger_of, settle_pending
from .reader_kit import jsonable

__all__ = ["RUN_PER", "RESERVED_METADATA", "WatchSummary", "Watcher", "human_size"]

#: How files are grouped into runs.
RUN_PER = ("session", "directory", "file")
#: Start document keys the watcher sets itself.
RESERVED_METADATA = ("uid", "time", "plan_name", "watch")
#: Seconds between progress lines.
PROGRESS_INTERVAL = 1.0
#: Seconds (at least twice the settle time) before ``once`` says which files keep it waiting.
WAITING_NOTE = 5.0


def human_size(n: float) -> str:
    """``3.4 MB`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass
class WatchSummary:
    """What a watcher did."""

    files: int = 0
    bytes: int = 0
    runs: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # relpaths
    vanished: list[str] = field(default_factory=list)
    settled: tuple[int, int] = (0, 0)  # pending rows found done / taken again at start


@dataclass
class _Run:
    docs: FileDocs
    part: str | None
    files: int = 0
    bytes: int = 0
    newest: str = ""

    @property
    def uid(self) -> str:
        return self.docs.uid


class Watcher:
    """Watch ``roots`` and write each complete file into ``catalog``.

    Parameters
    ----------
    catalog
        A :class:`~scandeck.catalog.Catalog` (writable).
    roots
        Directories to watch.
    patterns
        Globs of the files to take (``*.tif``; one with ``/`` matches the relative
        path); none: every file. Hidden files (``.name``) are never taken.
    recursive
        Watch subdirectories too (new ones as they appear).
    run_per
        ``session`` (one run), ``directory`` (a run per directory, ``watch.part`` its
        path relative to the root, ``.`` for the root) or ``file`` (a run per file version).
    metadata
        Added to every start document.
    settle
        Seconds a file found by a scan must stay unchanged to count as complete.
    closes
        False: a close after writing does not complete a file, only ``settle`` seconds
        unchanged do (instruments that close and reopen a file between pieces).
    once
        Take the files there now (waiting for those still being written), then stop.
    transfer
        Send each file's bytes through the catalog's Redis bus before its documents.
    say
        Where progress lines and warnings go (default: stderr), escaped with
        :func:`~scandeck.safe_text.printable`.
    reader_for
        ``reader_for(path)``: the format reader (default :func:`scandeck.files.readers.reader_for`).
    """

    def __init__(
        self,
        catalog: Any,
        roots: Sequence[str | os.PathLike[str]],
        *,
        patterns: Sequence[str] = (),
        recursive: bool = False,
        run_per: str = "session",
        metadata: dict[str, Any] | None = None,
        settle: float = 2.0,
        closes: bool = True,
        once: bool = False,
        transfer: bool = False,
        chunk_size: int = CHUNK_SIZE,
        say: Callable[[str], None] | None = None,
        reader_for: Callable[[str], Any] | None = None,
        use_inotify: bool = True,
        scan_interval: float | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        if run_per not in RUN_PER:
            raise ValueError(f"run_per must be one of {', '.join(RUN_PER)}, not {run_per!r}")
        self.catalog = catalog
        self.roots = list(dict.fromkeys(str(Path(r).expanduser().resolve()) for r in roots))
        for root in self.roots:
            if not os.path.isdir(root):
                raise NotADirectoryError(f"{printable(root)} is not a directory; give the directory to watch")
            if not _is_text(root):
                raise ValueError(
                    f"the path {os.fsencode(root)!r} is not UTF-8 text, which documents hold; "
                    "watch it through a link with a UTF-8 name"
                )
        if recursive:
            for inner in self.roots:
                for outer in self.roots:
                    if inner.startswith(outer.rstrip(os.sep) + os.sep):
                        raise ValueError(
                            f"{printable(inner)} is inside {printable(outer)}, which is watched with its "
                            "subdirectories: its files would be taken twice; give only the outer one"
                        )
        self.patterns = list(patterns)
        self.recursive = recursive
        self.run_per = run_per
        self.metadata = dict(metadata or {})
        reserved = [k for k in RESERVED_METADATA if k in self.metadata]
        if reserved:
            raise ValueError(
                f"the metadata key(s) {', '.join(reserved)} are set by the watcher; choose other names"
            )
        self.settle = float(settle)
        self.once = once
        self.transfer = transfer
        self.chunk_size = int(chunk_size)
        if transfer and not str(catalog.source.uri).startswith(("redis://", "rediss://")):
            raise ValueError(
                "--transfer sends files through a Redis bus, and this catalog is not one; "
                "watch into a redis://host:port/db?prefix=P catalog, or leave --transfer out"
            )
        told = say if say is not None else _stderr
        # Lines name files (and runs): whoever hears them gets them escaped, terminal or not.
        self.say: Callable[[str], None] = lambda line: told(printable(line))
        if reader_for is None:
            from .readers import reader_for as default_reader_for

            reader_for = default_reader_for
        self.reader_for = reader_for
        if ledger is None:
            ledger, self._own_ledger = ledger_of(catalog)
        else:
            self._own_ledger = False
        self.ledger = ledger
        self._skip_dirs = self._catalog_dirs()
        db_path = getattr(catalog.source, "db_path", None)
        # The store's database and the ledger, with their -wal, -shm and .locks beside them.
        self._own_names = (self.ledger.path.name, *([db_path.name] if isinstance(db_path, Path) else []))
        enable_leases()
        self.tracker = Tracker(
            self.roots,
            self.patterns,
            recursive=recursive,
            settle=self.settle,
            closes=closes,
            skip=self._skip,
            use_inotify=use_inotify,
            scan_interval=scan_interval,
        )
        from ..sources.liveness import HOST

        self.host = HOST
        self.summary = WatchSummary()
        self._runs: dict[tuple[str, str], _Run] = {}
        self._writer: Any = None
        self._sender: Any = None
        self._last_progress = 0.0
        self._progress_due = False
        self._newest: tuple[_Run, str] | None = None
        self._waiting_said = False
        self._bad_names: set[str] = set()
        self._layouts = LayoutChecks()

    def __repr__(self) -> str:
        return f"<Watcher {self.roots!r} -> {self.catalog.name!r}>"

    # -- what not to watch ----------------------------------------------------------------------

    def _catalog_dirs(self) -> list[str]:
        dirs = [str(self.ledger.path.parent.resolve())] if self.ledger.path != IN_MEMORY else []
        directory = getattr(self.catalog.source, "directory", None)
        if isinstance(directory, Path):
            dirs.append(str(directory.resolve()))
        return dirs

    def _skip(self, path: str) -> bool:
        """The catalog's own files are never taken: a store directory inside a watched one is
        skipped whole; a store in a watched directory itself, its database and ledger files."""
        for d in self._skip_dirs:
            if path == d:
                return True
            if path.startswith(d.rstrip(os.sep) + os.sep):
                if d not in self.roots and not any(r.startswith(d.rstrip(os.sep) + os.sep) for r in self.roots):
                    return True
                rest = path[len(d.rstrip(os.sep)) + 1 :]
                if rest.split(os.sep)[0].startswith(self._own_names):
                    return True
        return False

    # -- running ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> WatchSummary:
        """Watch until ``stop`` is set (or, with ``once``, until the files there now are in).

        Raises :class:`~scandeck.exceptions.ScandeckError` when another watcher watches
        one of the roots into the same catalog.
        """
        stop = stop if stop is not None else threading.Event()
        locks = [RootLock(self.ledger.path, root) for root in self.roots]
        try:
            for lock in locks:
                lock.acquire()
            self.summary.settled = settle_pending(self.ledger, self.catalog, self.roots)
            if self.transfer:
                from .transfer import sender_for

                self._sender = sender_for(self.catalog.source, self.chunk_size)
            self._writer = self.catalog.writer()
            _warm_up()
            self._watch(stop)
        finally:
            self._close()
            for lock in locks:
                lock.release()
        return self.summary

    def _watch(self, stop: threading.Event) -> None:
        status, reason = "success", ""
        try:
            self.tracker.scan()
            initial = set(self.tracker.pending()) if self.once else set()
            began = time.monotonic()
            while not stop.is_set():
                for cand in self.tracker.poll(self._wait()):
                    if stop.is_set():
                        break
                    if self.once and (cand.root, cand.relpath) not in initial:
                        continue
                    self.ingest(cand)
                self._vanished()
                self._progress()
                if self.once:
                    waiting = initial & set(self.tracker.pending())
                    if not waiting:
                        break
                    self._say_waiting(waiting, began)
        except BaseException as err:
            if not isinstance(err, KeyboardInterrupt):
                status, reason = "fail", f"the watcher stopped: {type(err).__name__}: {err}"[:1000]
            raise
        finally:
            self._progress(final=True)
            self._stop_all(status, reason)

    def _say_waiting(self, waiting: set[tuple[str, str]], began: float) -> None:
        """With ``once``: say (once) which files keep it waiting, being written still."""
        if self._waiting_said or time.monotonic() - began < max(WAITING_NOTE, 2 * self.settle):
            return
        self._waiting_said = True
        names = sorted(rel for _root, rel in waiting)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        self.say(f"waiting for {len(names)} file{'' if len(names) == 1 else 's'} still being written: {shown}")

    def _wait(self) -> float:
        return max(0.02, min(1.0, self.settle / 4))

    def _close(self) -> None:
        for thing in (self._writer, self._sender):
            close = getattr(thing, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as err:  # noqa: BLE001 - closing; say so and go on
                    self.say(f"warning: closing {type(thing).__name__} failed: {err}")
        self._writer = self._sender = None
        self.tracker.close()
        if self._own_ledger:
            self.ledger.close()

    def _stop_all(self, status: str, reason: str) -> None:
        for key in list(self._runs):
            self._stop_run(key, status, reason)

    def _stop_run(self, key: tuple[str, str], status: str, reason: str) -> None:
        run = self._runs.pop(key)
        if self._writer is None:
            return
        try:
            self._writer("stop", run.docs.stop(status, reason))
        except Exception as err:  # noqa: BLE001 - the run stays incomplete; say so
            self.say(f"warning: the stop document of run {run.uid[:8]} could not be written: {err}")

    def _run_for(self, root: str, relpath: str) -> tuple[tuple[str, str], _Run]:
        if self.run_per == "session":
            key, part, roots = ("", ""), None, self.roots
        elif self.run_per == "directory":
            parent = str(PurePosixPath(relpath).parent)
            key, part, roots = (root, parent), parent, [root]
        else:
            key, part, roots = (root, relpath), relpath, [root]
        run = self._runs.get(key)
        if run is None:
            from event_model import compose_run

            watch = watch_metadata(
                roots, self.patterns, self.run_per, self.host, transfer=self.transfer, part=part
            )
            bundle = compose_run(metadata={**self.metadata, "plan_name": PLAN_NAME, "watch": watch})
            self._writer("start", bundle.start_doc)
            run = self._runs[key] = _Run(FileDocs(bundle), part)
            self.summary.runs.append(run.uid)
        return key, run

    # -- one file ---------------------------------------------------------------------------------

    def ingest(self, cand: Candidate) -> bool:
        """Take one complete file version; whether it became an event."""
        root, relpath, st = cand.root, cand.relpath, cand.stat
        if not _is_text(relpath):
            if relpath not in self._bad_names:
                self._bad_names.add(relpath)
                self.summary.unreadable.append(relpath)
                shown = os.fsencode(relpath)
                self.say(
                    f"warning: the name {shown!r} is not UTF-8 text, which documents hold; rename it to be taken"
                )
            return False
        done, bad = self.ledger.marks(root, relpath)
        same_stat = done is not None and (done.size, done.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if same_stat and not cand.closed:  # closed again: hashed, as a rewrite may keep size and mtime
            return False
        if bad is not None and (bad.size, bad.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return False
        path = cand.path
        try:
            sha = read_whole(path, st)
        except FileNotFoundError:
            self._warn_vanished(relpath)
            return False
        except OSError as err:
            # Not noted in the ledger: a permission put right changes no mtime, a restart tries again.
            self.summary.unreadable.append(relpath)
            self.say(
                f"warning: {relpath} cannot be read: {err.strerror or err}; skipped "
                "(tried again when it changes, or when the watcher starts again)"
            )
            return False
        if sha is None:
            self.tracker.forget(root, relpath)  # it changed meanwhile: taken when complete again
            return False
        if done is not None and done.sha256 == sha:
            self.ledger.touch(done.id, st.st_size, st.st_mtime_ns)  # same bytes: nothing new
            return False
        if bad is not None and bad.sha256 == sha:
            self.ledger.touch(bad.id, st.st_size, st.st_mtime_ns)
            return False
        reader = self.reader_for(path)
        try:
            layout = reader.describe(path)
            # As the built-ins make it (numpy values, keys of several types, NaN): JSON the run can hold.
            info = jsonable(dict(layout.info))
        except UnreadableFile as err:
            self._unreadable(cand, sha, str(err))
            return False
        except FileNotFoundError:  # moved away (a mover takes files once closed): nothing to note
            self._warn_vanished(relpath, "before it was read")
            return False
        except Exception as err:  # noqa: BLE001 - a reader's bug is this file's problem, not the watcher's
            self._unreadable(cand, sha, f"its reader {reader.name!r} failed: {type(err).__name__}: {err}")
            return False
        try:
            self._layouts.check(reader.name, dict(layout.data_keys))
        except ValueError as err:  # else the store refuses the descriptor, and the watcher stops
            self._unreadable(cand, sha, f"its reader {reader.name!r} described it wrongly: {err}")
            return False
        try:
            if not same_version(os.stat(path), st):
                self.tracker.forget(root, relpath)
                return False
        except FileNotFoundError:
            pass  # read whole and described: it is in, even if it went away since
        key, run = self._run_for(root, relpath)
        version = FileVersion(
            root=root,
            relpath=relpath,
            size=st.st_size,
            mtime=st.st_mtime,
            sha256=sha,
            version=0,
            reader=reader.name,
            data_keys=dict(layout.data_keys),
            info=info,
        )
        resource = run.docs.new_resource(version)
        row = self.ledger.begin(
            root, relpath, st.st_size, st.st_mtime_ns, sha, run.uid, resource.resource_doc["uid"]
        )
        version = dataclasses.replace(version, version=row.version or 1)
        if self._sender is not None:
            try:
                self._sender.send(run.uid, sha, path, st.st_size)
            except (FileMismatch, FileNotFoundError) as err:
                self.ledger.drop(row.id)  # nothing of it is in the run: taken again when complete
                if isinstance(err, FileNotFoundError):
                    self._warn_vanished(relpath, "before it was sent")
                else:
                    self.tracker.forget(root, relpath)
                return False
        for name, doc in run.docs.documents(version, resource):
            self._writer(name, doc)
        flush = getattr(self._writer, "flush", None)
        if flush is not None:
            # A bus's writer sends from a thread: "done" only once Redis holds the documents,
            # else a watcher killed meanwhile leaves a file the ledger says is in and the run lacks.
            flush()
        self.ledger.done(row.id)
        run.files += 1
        run.bytes += st.st_size
        run.newest = relpath
        self.summary.files += 1
        self.summary.bytes += st.st_size
        self._newest = (run, relpath)
        self._progress_due = True
        if self.run_per == "file":
            self._progress(final=True)
            self._stop_run(key, "success", "")
        return True

    def _unreadable(self, cand: Candidate, sha: str, reason: str) -> None:
        reason = reason.removeprefix(f"{cand.path}: ")  # readers name the file; the line names it already
        self.ledger.mark_unreadable(cand.root, cand.relpath, cand.stat.st_size, cand.stat.st_mtime_ns, sha, reason)
        self.summary.unreadable.append(cand.relpath)
        self.say(f"warning: {cand.relpath} is unreadable, skipped: {reason} (taken again if it changes)")

    def _warn_vanished(self, relpath: str, when: str = "before it was complete") -> None:
        self.summary.vanished.append(relpath)
        self.say(f"warning: {relpath} vanished {when}; skipped")

    def _vanished(self) -> None:
        gone, self.tracker.vanished[:] = list(self.tracker.vanished), []
        for _root, relpath in gone:
            self._warn_vanished(relpath)

    def _progress(self, final: bool = False) -> None:
        if not self._progress_due or self._newest is None:
            return
        now = time.monotonic()
        if not final and now - self._last_progress < PROGRESS_INTERVAL:
            return
        run, newest = self._newest
        self.say(
            f"ingested {run.files} file{'' if run.files == 1 else 's'} ({human_size(run.bytes)}) into run "
            f"{run.uid[:8]}…; newest: {newest}"
        )
        self._last_progress = now
        self._progress_due = False


def _is_text(name: str) -> bool:
    """Whether a path from the file system is text (not bytes that are not UTF-8, decoded with surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _warm_up() -> None:
    """Import now what the first file needs (event-model: about a second, most of it
    jsonschema's format checkers), and find the plug-in readers, so that the first file
    is taken as quickly as the others."""
    import event_model  # noqa: F401

    from .readers import load_entry_points

    load_entry_points()


def _stderr(line: str) -> None:
    print(printable(line), file=sys.stderr, flush=True)
