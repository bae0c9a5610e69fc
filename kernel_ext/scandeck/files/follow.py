"""Code on whole files: a watched run's files, each complete and local, as they arrive.

What OpenMSIStream's stream processors do, over a catalog: ``scandeck.files(run)``
reads a watched run's documents (:mod:`.layout`), and hands on one
:class:`FileEntry` per file version, once its bytes are on this machine and
verified (:func:`scandeck.files.handler.local_file`: the original file, the
local cache, or a copy fetched from the Redis bus or the archive). Iterating
gives the files stored so far; :meth:`RunFiles.follow` waits for each new one
until the run stops. ``Live.files()`` is the same as a ``streamz`` source, for
the newest watched run and each new one (:class:`FileFeed` does the following).

Examples
--------
>>> for f in scandeck.files(cat[-1]).follow():          # doctest: +SKIP
...     print(f.relpath, f.size, f.read().mean())
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from event_model import DocumentRouter

from ..catalog import Catalog, Run
from ..exceptions import NotWatchedRun, ScandeckError
from ..external.paths import resource_path
from ..follow import RunCursor
from ..provenance.context import note
from ..safe_text import printable
from ..sources.matching import keep_matching
from ..sources.protocol import RunSummary, Source, WaitRun
from .layout import FILE_KEY, META_KEYS, PLAN_NAME, SPEC, is_watched

if TYPE_CHECKING:
    import numpy as np
    from event_model.documents import Datum, Event, EventDescriptor, Resource, RunStart

__all__ = [
    "FileDocuments",
    "FileEntry",
    "FileFeed",
    "PendingFile",
    "RunFiles",
    "files",
    "follow_watched",
    "newest_watched",
    "refuse_unwatched",
]

#: Longest wait between reads of followed runs (bounds how late a new run or a stop is seen).
_IDLE_WAIT = 0.5


@dataclass(frozen=True)
class FileEntry:
    """One complete file version of a watched run, verified and on this machine.

    Usable wherever a path is (``open(entry)``, ``tifffile.imread(entry)``,
    ``Path(entry)``, ``str(entry)``): it is an :class:`os.PathLike` of :attr:`path`.

    Attributes
    ----------
    path
        The local, verified file: the original, the cached copy, or one fetched
        from the Redis bus or the archive.
    relpath
        Its path relative to the watched directory (posix), as the event's ``path``.
    version
        1, then 2... each time the same path was ingested again (rewritten).
    size, sha256, mtime
        As the watcher found the file (``mtime`` in seconds since the epoch).
    reader, stream
        The format reader that described it, and the run's stream holding its event.
    info
        What the reader extracted (tags, attributes, header), as a dict.
    uid, seq_num, time
        The run, the event's place in its stream, the event's time.
    keys
        The reader's data keys for this file (what :meth:`read` takes).
    origin
        The file's path as written on the watching host (root + relpath).
    """

    path: Path
    relpath: str
    version: int
    size: int
    sha256: str
    mtime: float
    reader: str
    stream: str
    info: dict[str, Any] = field(compare=False)
    uid: str
    seq_num: int
    time: float
    keys: tuple[str, ...]
    origin: str

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        """The local path, as for a :class:`~pathlib.Path` (``str(entry)`` where a string is wanted)."""
        return os.fspath(self.path)

    @property
    def name(self) -> str:
        """The file's name (last part of :attr:`relpath`)."""
        return PurePosixPath(self.relpath).name

    def read(self, key: str | None = None) -> np.ndarray:
        """The array of data key ``key`` as the file's reader reads it (default: its only key).

        Examples
        --------
        >>> image = entry.read()                # a TIFF: its pixels    # doctest: +SKIP
        >>> entry.read("temperature")           # a CSV: one column     # doctest: +SKIP
        """
        if key is None:
            if len(self.keys) != 1:
                raise KeyError(
                    printable(
                        f"{self.relpath!r} has {len(self.keys)} data keys, name one: "
                        f"entry.read(key) with key one of {', '.join(self.keys) or 'none'}"
                    )
                )
            key = self.keys[0]
        elif key not in self.keys:
            raise KeyError(
                printable(f"{self.relpath!r} has no data key {key!r}; its keys: {', '.join(self.keys) or 'none'}")
            )
        from .readers import get_reader

        return get_reader(self.reader).read(os.fspath(self.path), key)

    def __repr__(self) -> str:
        version = f" v{self.version}" if self.version != 1 else ""
        return printable(f"<FileEntry {self.relpath!r}{version} {self.size} bytes {self.reader} -> {self.path}>")


@dataclass(frozen=True)
class PendingFile:
    """A file version a run's documents announce, not yet made local (:meth:`resolve`)."""

    origin: str  # the full path as written (resource root + resource_path)
    run: str  # where transferred bytes are asked for (resource_kwargs["run"])
    fields: dict[str, Any]  # FileEntry's other fields

    @property
    def relpath(self) -> str:
        return str(self.fields["relpath"])

    def resolve(self) -> FileEntry:
        """The :class:`FileEntry`, once the file is local and verified (may fetch: blocks).

        Raises :class:`~scandeck.exceptions.ExternalFileMissing` (not on this machine
        and no open source holds its bytes) or :class:`~scandeck.exceptions.FileMismatch`
        (rewritten since it was ingested), saying what to do.
        """
        from .handler import local_file

        local = local_file(self.origin, self.fields["sha256"], self.fields["size"], self.run)
        return FileEntry(path=Path(local), origin=self.origin, **self.fields)


class FileDocuments(DocumentRouter):
    """Reads a watched run's documents into :class:`PendingFile` records, one per event.

    Feed it every document of the run in order (``docs(name, doc)``); :meth:`take`
    hands on the files announced since the last call. Events without a
    :data:`~scandeck.files.layout.FILE_KEY` datum of a ``SCANDECK_FILE`` resource
    (another stream of the run) are passed over.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resources: dict[str, Resource] = {}
        self.datums: dict[str, tuple[str, str]] = {}  # datum id -> (resource uid, reader key), of our resources
        self.streams: dict[str, str] = {}  # descriptor uid -> stream name
        self._found: list[PendingFile] = []
        self.uid: str | None = None

    def take(self) -> list[PendingFile]:
        """The files announced since the last call, in order."""
        found, self._found = self._found, []
        return found

    def start(self, doc: RunStart) -> RunStart:
        self.uid = doc["uid"]
        return doc

    def descriptor(self, doc: EventDescriptor) -> EventDescriptor:
        self.streams[doc["uid"]] = str(doc.get("name", "primary"))
        return doc

    def resource(self, doc: Resource) -> Resource:
        if doc.get("spec") == SPEC:
            self.resources[doc["uid"]] = doc
        return doc

    def datum(self, doc: Datum) -> Datum:
        if doc["resource"] in self.resources:
            self.datums[doc["datum_id"]] = (doc["resource"], str(doc["datum_kwargs"].get("key", "")))
        return doc

    def event(self, doc: Event) -> Event:
        data = doc["data"]
        datum_id = data.get(FILE_KEY)
        found = self.datums.get(datum_id) if isinstance(datum_id, str) else None
        if found is None:
            return doc
        resource_uid = found[0]
        resource = self.resources[resource_uid]
        kwargs = resource.get("resource_kwargs", {})
        # The reader's keys as it names them (an event key may be renamed: see files.compose.event_key).
        keys = tuple(
            ours[1]
            for name, value in data.items()
            if name != FILE_KEY
            and isinstance(value, str)
            and (ours := self.datums.get(value)) is not None
            and ours[0] == resource_uid
        )
        missing = [k for k in META_KEYS if k not in data]
        if missing:
            raise ScandeckError(
                printable(
                    f"event {doc['uid']!r} of a watched run lacks {', '.join(missing)}: it was not written "
                    "by scandeck watch, or by an older one; read its streams instead (run[stream].read())"
                )
            )
        fields = {
            "relpath": str(data["path"]),
            "version": int(data["version"]),
            "size": int(data["size"]),
            "sha256": str(data["sha256"]),
            "mtime": float(data["mtime"]),
            "reader": str(kwargs.get("reader", "bytes")),
            "stream": self.streams.get(doc["descriptor"], "primary"),
            "info": _info(data["info"]),
            "uid": self.uid or str(kwargs.get("run", "")),
            "seq_num": int(doc["seq_num"]),
            "time": float(doc["time"]),
            "keys": keys,
        }
        run = str(kwargs.get("run") or self.uid or "")
        self._found.append(PendingFile(origin=resource_path(resource), run=run, fields=fields))
        return doc


def _info(text: Any) -> dict[str, Any]:
    """The event's ``info`` (JSON text of a dict) as a dict; ``{}`` when it is not one."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def refuse_unwatched(uid: str, start: dict[str, Any]) -> None:
    """Raise :class:`~scandeck.exceptions.NotWatchedRun` unless ``start`` is a watched run's."""
    if is_watched(start):
        return
    plan = start.get("plan_name")
    raise NotWatchedRun(
        printable(
            f"run {uid[:8]} (plan {plan!r}) is not a watched run: scandeck.files reads runs that "
            f"`scandeck watch DIR` wrote (plan_name {PLAN_NAME!r}); read this one's streams instead, "
            "e.g. run.primary.read()"
        ),
        uid,
        plan if isinstance(plan, str) else None,
    )


class RunFiles:
    """The files of one watched run: iterate for those stored so far, :meth:`follow` for each new one.

    Made by :func:`scandeck.files`. Each item is a :class:`FileEntry` (a path-like
    of a verified local copy), in the order the watcher stored them; a file
    rewritten after ingestion appears once per version.

    Examples
    --------
    >>> for f in scandeck.files(run):                       # doctest: +SKIP
    ...     print(f.relpath, f.sha256[:8])
    >>> for f in scandeck.files(run).follow():              # doctest: +SKIP
    ...     process(f)                                       # as each file arrives
    """

    def __init__(self, run: Run) -> None:
        refuse_unwatched(run.uid, run.start)
        self.run = run

    def __repr__(self) -> str:
        return f"<RunFiles of run {self.run.uid[:8]}>"

    def __iter__(self) -> Iterator[FileEntry]:
        """The files stored so far, each made local (fetched if need be) as it is reached."""
        return _resolved(self.run.documents())

    def pending(self) -> list[PendingFile]:
        """The files stored so far, without making any local (no fetch, no hashing)."""
        return list(_announced(self.run.documents()))

    def follow(self, timeout: float | None = None) -> Iterator[FileEntry]:
        """Each file, stored or new, as it becomes complete and local, until the run stops.

        Ends after the run's stop document, when its writer (the watcher) died
        without one, or when no document arrived for ``timeout`` seconds
        (``None``: wait for ever). A file that cannot be made local raises
        (:class:`~scandeck.exceptions.ExternalFileMissing` says where to get it).
        """
        return _resolved(self.run.follow(timeout=timeout))


def _announced(documents: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[PendingFile]:
    docs = FileDocuments()
    for name, doc in documents:
        docs(name, doc)
        yield from docs.take()


def _resolved(documents: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[FileEntry]:
    for pending in _announced(documents):
        yield pending.resolve()


def files(target: object = None, *, catalog: Catalog | None = None) -> RunFiles:
    """The files of a watched run; see :func:`scandeck.files`."""
    return RunFiles(_run_of(target, catalog))


def _run_of(target: object, catalog: Catalog | None) -> Run:
    """``target`` as a Run: a Run; a uid, uid prefix or scan_id in ``catalog``; a Catalog or
    ``None`` (the embedded store): its newest watched run, or in a batch execution the
    run the parameters name."""
    if isinstance(target, Run):
        return target
    if isinstance(target, Catalog):
        catalog, target = target, None
    if catalog is None:
        from ..opening import open_catalog

        catalog = open_catalog()
    if isinstance(target, (str, int)) and not isinstance(target, bool):
        return catalog[target]
    if target is not None:
        raise TypeError(
            "scandeck.files reads a Run, a uid (or prefix), a scan_id, a Catalog or None, "
            f"not {type(target).__name__}"
        )
    from ..provenance.batch import batch_scan

    key = batch_scan()
    if key is not None:
        return catalog[key]
    from ..query import Key

    watched = catalog.search(Key("plan_name") == PLAN_NAME)
    if not watched:
        raise NotWatchedRun(
            "this catalog holds no watched run yet: record one with `scandeck watch DIR --catalog ...`, "
            "or pass the run (scandeck.files(cat[uid]))",
            "",
            None,
        )
    return watched[-1]


def follow_watched(
    source: Source,
    uid: str | None,
    *,
    query: Any = None,
    begin: tuple[str | None, int] | None = None,
    stopping: threading.Event | None = None,
) -> Iterator[PendingFile]:
    """The files of followed watched runs as their events are stored, in the order read.

    ``uid``: that run until it ends. ``None``: every watched run matching ``query``
    that arrives after ``begin`` (``(newest watched uid or None, source seq)``,
    default now), followed side by side (a watcher with ``--run-per directory``
    writes several at once), and the run ``begin`` names. Ends when ``stopping``
    is set (or the one run ended).
    """
    stopping = stopping or threading.Event()
    runs: dict[str, tuple[RunCursor, FileDocuments]] = {}

    def add(run_uid: str, summary: RunSummary | None = None) -> None:
        summary = summary or source.get(run_uid)
        note(run_uid, scan_id=summary.scan_id, catalog=source.uri)
        runs[run_uid] = (RunCursor(source, run_uid), FileDocuments())

    seq = 0
    if uid is not None:
        add(uid)
    else:
        newest, seq = begin if begin is not None else newest_watched(source, query)
        if newest is not None:
            add(newest)
    while not stopping.is_set():
        token = source.change_token()
        if uid is None:
            for summary in source.runs_since(seq):
                seq = summary.seq
                if (
                    is_watched(summary.start)
                    and summary.uid not in runs
                    and keep_matching(source, query, [summary])
                ):
                    add(summary.uid, summary)
        read = False
        for run_uid, (cursor, docs) in list(runs.items()):
            batch = cursor.read()
            if not batch and cursor.writer_gone():
                batch = cursor.read(limit=None)  # what it committed after our last read
            for entry in batch:
                docs(entry.name, entry.doc)
            read = read or bool(batch)
            yield from docs.take()
            if cursor.ended:
                del runs[run_uid]
        if uid is not None and not runs:
            return
        if read:
            continue
        if uid is not None or (len(runs) == 1 and isinstance(source, WaitRun)):
            # One run: woken by its documents (Redis wakes a reader per run; new runs are
            # looked for at least every _IDLE_WAIT). Several: by any change of the store.
            next(iter(runs.values()))[0].wait(_IDLE_WAIT)
        else:
            source.wait(token, _IDLE_WAIT)


def newest_watched(source: Source, query: Any = None) -> tuple[str | None, int]:
    """``(uid of the newest watched run matching query, or None; the source's seq now)``."""
    from ..query import Key

    seq = source.latest_seq()
    wanted = Key("plan_name") == PLAN_NAME
    found = source.search(wanted if query is None else (wanted & query), limit=1)
    return (found[0].uid if found else None), seq


class FileFeed:
    """Follows watched runs on a daemon thread; calls ``emit(entry)`` for each file made local there.

    The thread behind ``Live.files()``: fetching and hashing happen on it, never
    on the kernel's loop; ``emit`` queues the entry for the loop. A file that
    cannot be made local is reported through ``failed(error, what)`` and the feed
    goes on; an error following the runs is reported the same way and ends it.
    """

    def __init__(
        self,
        source: Source,
        uid: str | None,
        *,
        query: Any = None,
        emit: Callable[[FileEntry], None],
        failed: Callable[[BaseException, str], None],
    ) -> None:
        if uid is not None:
            refuse_unwatched(uid, source.get(uid).start)
        self.source, self.uid, self.query = source, uid, query
        self.emit, self.failed = emit, failed
        #: Set once the followed run ended (for one run), or the feed stopped or failed.
        self.ended = threading.Event()
        self._stopping = threading.Event()
        self._begin: tuple[str | None, int] | None = None
        self._thread = threading.Thread(target=self._main, name="scandeck-live-files", daemon=True)

    def start(self) -> None:
        # "The newest watched run and each new one" counts from here, as Live's streams do.
        if self.uid is None:
            self._begin = newest_watched(self.source, self.query)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and wait for it (idempotent)."""
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            for pending in follow_watched(
                self.source, self.uid, query=self.query, begin=self._begin, stopping=self._stopping
            ):
                if self._stopping.is_set():
                    return
                try:
                    entry = pending.resolve()
                except (ScandeckError, OSError) as err:
                    self.failed(err, f"making {printable(pending.relpath)!r} local")
                    continue
                self.emit(entry)
        except Exception as err:  # noqa: BLE001 - reported through failed(), never lost
            self.failed(err, "following the files of watched runs")
        finally:
            self.ended.set()
