"""Read and write event-model document files.

Two layouts, the ones suitcase-jsonl/-msgpack and databroker's jsonl/msgpack
backends write: one file per run, named ``<start uid>.jsonl`` or
``<start uid>.msgpack``, holding ``[name, doc]`` pairs in emission order.

* **jsonl** -- one JSON array ``[name, doc]`` per line. Reading also accepts
  ``{"name": ..., "doc": ...}`` objects and skips blank lines.
* **msgpack** -- concatenated msgpack arrays ``[name, doc]``.

numpy values are written, never rejected. JSON has no numpy types, so an
ndarray becomes a nested list and a numpy scalar its Python scalar (what
``event_model.NumpyEncoder`` does); NaN and infinities are written as Python's
``NaN``/``Infinity`` and read back. msgpack uses msgpack_numpy's encoding, so
arrays keep their dtype and shape and databroker reads our files as its own.
In both layouts tuples come back as lists. Floats round-trip exactly.

>>> paths = write_documents(docs, "runs/", format="msgpack")  # doctest: +SKIP
>>> docs_again = [pair for path in paths for pair in read_documents(path)]  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from json import JSONDecodeError
from pathlib import Path
from typing import IO, Any, Literal

import msgpack
import msgpack_numpy
import numpy as np
from event_model import DocumentNames

from .exceptions import DocumentFileError

__all__ = [
    "DOCUMENT_NAMES",
    "RunMembership",
    "read_documents",
    "write_documents",
    "write_documents_to",
]

#: Every valid document name, from ``event_model.DocumentNames``.
DOCUMENT_NAMES: frozenset[str] = frozenset(n.value for n in DocumentNames)

Format = Literal["jsonl", "msgpack"]
_EXTENSIONS = {".jsonl": "jsonl", ".msgpack": "msgpack", ".mpk": "msgpack"}
# A single event page of images can be gigabytes; msgpack's 100 MiB default
# would reject files databroker itself wrote. The buffer grows only as needed.
_MAX_BUFFER = 2**40
_CHUNK = 1 << 20


class RunMembership:
    """Which run each document of a stream belongs to, from its parent links.

    A document is tied to its run by ``run_start`` (stop, descriptor, resource,
    stream_resource), ``descriptor`` (event, event_page), ``resource`` (datum,
    datum_page, bulk_datum) or ``stream_resource`` then ``descriptor``
    (stream_datum); descriptors and (stream_)resources are remembered by uid so
    their children follow. A document without a known parent (an old resource
    without ``run_start``) belongs to the latest run. So interleaved runs are told apart.

    Examples
    --------
    >>> runs = RunMembership()
    >>> runs.start("a"); runs.start("b")
    >>> runs.run_of("descriptor", {"uid": "d", "run_start": "a"})
    'a'
    >>> runs.run_of("event", {"descriptor": "d"}), runs.run_of("resource", {"uid": "r"})
    ('a', 'b')
    """

    # The field(s) that tie a document to its parent, tried in order.
    _PARENT_FIELDS: dict[str, tuple[str, ...]] = {
        "start": ("uid",),
        **dict.fromkeys(("stop", "descriptor", "resource", "stream_resource"), ("run_start",)),
        **dict.fromkeys(("event", "event_page"), ("descriptor",)),
        **dict.fromkeys(("datum", "datum_page", "bulk_datum"), ("resource",)),
        "stream_datum": ("stream_resource", "descriptor"),
    }
    _PARENTS = ("descriptor", "resource", "stream_resource")

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}  # uid of a start/descriptor/resource -> start uid
        self.current: str | None = None  # the latest run's start uid

    def start(self, uid: str) -> None:
        """Begin the run of start uid ``uid``; it becomes the latest run."""
        self._owner[uid] = self.current = uid

    def run_of(self, name: str, doc: Mapping[str, Any]) -> str | None:
        """The start uid of ``doc``'s run (None before any start), remembering it for children."""
        refs = (doc.get(field) for field in self._PARENT_FIELDS.get(name, ()))
        run = next((self._owner[r] for r in refs if isinstance(r, str) and r in self._owner), self.current)
        if name in self._PARENTS and isinstance(doc.get("uid"), str) and run is not None:
            self._owner[doc["uid"]] = run
        return run


def _as_pair(item: object, where: str, **loc: Any) -> tuple[str, dict[str, Any]]:
    """Check that *item* is ``[name, doc]`` (or ``{"name", "doc"}``) and return it."""
    if isinstance(item, dict) and "name" in item and "doc" in item:
        name, doc = item["name"], item["doc"]
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        name, doc = item
    else:
        got = f"list of length {len(item)}" if isinstance(item, list) else type(item).__name__
        raise DocumentFileError(f"{where}: not a [name, doc] pair (got a {got})", **loc)
    if not isinstance(name, str) or name not in DOCUMENT_NAMES:
        valid = ", ".join(sorted(DOCUMENT_NAMES))
        msg = f"{where}: unknown document name {name!r}; expected one of {valid}"
        raise DocumentFileError(msg, **loc)
    if not isinstance(doc, dict):
        msg = f"{where}: the {name} document must be a mapping, not {type(doc).__name__}"
        raise DocumentFileError(msg, **loc)
    return name, doc


# ---------------------------------------------------------------- reading


def read_documents(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the ``(name, doc)`` pairs stored in a document file, in file order.

    The format comes from the extension (``.jsonl``, ``.msgpack``, ``.mpk``),
    else from the first byte. A file may hold several runs back to back; all
    are yielded. This is a generator: errors, even a missing file, surface on
    iteration, after every document before the bad one has been yielded.

    Raises
    ------
    DocumentFileError
        Naming the file and the line (jsonl, from 1) or document index
        (msgpack, from 0): not JSON, not a pair, unknown name, truncated, ...

    Examples
    --------
    >>> [name for name, _ in read_documents("3f2c.jsonl")][:2]  # doctest: +SKIP
    ['start', 'descriptor']
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        fmt = _EXTENSIONS.get(os.path.splitext(path)[1].lower()) or _sniff(f, path)
        if fmt == "jsonl":
            yield from _read_jsonl(f, path)
        else:
            yield from _read_msgpack(f, path)


def _sniff(f: IO[bytes], path: str) -> Format:
    head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    f.seek(0)
    # JSON lines start with [ or {; a msgpack [name, doc] starts with an array
    # header (0x90-0x9f, 0xdc, 0xdd). The two byte ranges do not overlap.
    if not head or head[0] in b"[{":
        return "jsonl"
    if 0x90 <= head[0] <= 0x9F or head[0] in (0xDC, 0xDD):
        return "msgpack"
    raise DocumentFileError(
        f"{path}: cannot tell the format: it starts with byte 0x{head[0]:02x}, neither a "
        "JSON line nor a msgpack array; name it .jsonl or .msgpack if it is one of them",
        path=path,
    )


def _read_jsonl(f: IO[bytes], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # Binary lines split only on b"\n", so line numbers match an editor's.
    # json.loads takes bytes (and a BOM); rstrip() drops "\r\n" so that the
    # column in a JSON error refers to this line rather than the next.
    for number, raw in enumerate(f, 1):
        if not raw.strip():
            continue
        where = f"{path}: line {number}"
        try:
            item = json.loads(raw.rstrip())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            # exc's own "line 1" would contradict ours; keep only the column.
            bad = f"{exc.msg} at column {exc.colno}" if isinstance(exc, JSONDecodeError) else exc
            raise DocumentFileError(f"{where}: not JSON ({bad})", path=path, line=number) from exc
        yield _as_pair(item, where, path=path, line=number)


def _read_msgpack(f: IO[bytes], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    unpacker = msgpack.Unpacker(
        object_hook=msgpack_numpy.decode,
        raw=False,
        strict_map_key=False,
        max_buffer_size=_MAX_BUFFER,
    )
    fed = end = index = 0
    # We feed by hand because an Unpacker reading a file treats a document cut
    # off at the end as a clean end of stream; counting bytes exposes it.
    while chunk := f.read(_CHUNK):
        unpacker.feed(chunk)
        fed += len(chunk)
        while True:
            where = f"{path}: document index {index} (byte offset {end})"
            try:
                item = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
                msg = f"{where}: not valid msgpack ({type(exc).__name__}: {exc})"
                raise DocumentFileError(msg, path=path, index=index) from exc
            yield _as_pair(item, where, path=path, index=index)
            # tell() counts bytes of half-parsed documents too, so only read it
            # after a complete one.
            end = unpacker.tell()
            index += 1
    if end < fed:
        msg = (
            f"{path}: document index {index} (byte offset {end}): truncated msgpack, the file "
            f"ends {fed - end} bytes into a document; was it cut short while being written?"
        )
        raise DocumentFileError(msg, path=path, index=index)


# ---------------------------------------------------------------- writing


def _json_default(obj: object) -> object:
    # ndarray -> nested lists, numpy scalar -> Python scalar; np.float64 never
    # gets here because it subclasses float.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} values cannot be written as JSON")


def _encoder(format: str) -> Callable[[str, dict[str, Any], int], bytes]:
    if format not in ("jsonl", "msgpack"):
        raise DocumentFileError(f"unknown format {format!r}; use 'jsonl' or 'msgpack'")
    packer = msgpack.Packer(default=msgpack_numpy.encode, use_bin_type=True)

    def encode(name: str, doc: dict[str, Any], index: int) -> bytes:
        try:
            if format == "jsonl":
                return (json.dumps([name, doc], default=_json_default) + "\n").encode()
            return bytes(packer.pack([name, doc]))
        except (TypeError, ValueError, OverflowError) as exc:
            msg = f"document index {index} ({name}): cannot be written as {format}: {exc}"
            raise DocumentFileError(msg, index=index) from exc

    return encode


def write_documents_to(docs: Iterable[tuple[str, dict[str, Any]]], fileobj: IO[Any], *, format: Format) -> int:
    """Write ``(name, doc)`` pairs to one open file, as one stream, and return the count.

    *fileobj* may be text (jsonl only) or binary. It is not closed. Several
    runs may share one stream; :func:`read_documents` reads them back in order.

    Examples
    --------
    >>> buf = io.BytesIO()
    >>> write_documents_to([("start", {"uid": "a", "time": 0.0})], buf, format="jsonl")
    1
    >>> buf.getvalue()
    b'["start", {"uid": "a", "time": 0.0}]\\n'
    """
    encode = _encoder(format)
    text = isinstance(fileobj, io.TextIOBase)
    if text and format == "msgpack":
        raise DocumentFileError("msgpack needs a binary file object; open the file with 'wb'")
    count = 0
    for count, item in enumerate(docs, 1):
        name, doc = _as_pair(item, f"document index {count - 1}", index=count - 1)
        data = encode(name, doc, count - 1)
        fileobj.write(data.decode() if text else data)
    return count


class _RunFile:
    """The temporary file a run is written to, and its final name."""

    def __init__(self, tmp: Path, final: Path) -> None:
        self.tmp, self.final = tmp, final
        self.handle: IO[bytes] | None = open(tmp, "xb")

    def write(self, data: bytes) -> None:
        if self.handle is None:  # a document after its run's stop
            self.handle = open(self.tmp, "ab")
        self.handle.write(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def write_documents(
    docs: Iterable[tuple[str, dict[str, Any]]],
    directory: str | os.PathLike[str],
    *,
    format: Format,
    overwrite: bool = False,
) -> list[Path]:
    """Write runs to *directory*, one ``<start uid>.<ext>`` file per run.

    Each document goes to its run's file, in the order given, matched to its run
    by :class:`RunMembership` (a document whose parent is not in *docs* goes to
    the latest run). The directory is created if needed. Files are
    written under hidden ``.part`` names and renamed once every document has
    been written, so a failure (even one raised by *docs*) leaves no file.

    Returns
    -------
    list of Path
        The files written, in the order their start documents came.

    Raises
    ------
    DocumentFileError
        A file exists and *overwrite* is false, a document comes before any
        start, a start uid is repeated or unusable as a file name, or a
        document cannot be encoded.

    Examples
    --------
    >>> write_documents(docs, "runs", format="jsonl")  # doctest: +SKIP
    [PosixPath('runs/8e1f...c2.jsonl')]
    """
    encode = _encoder(format)
    ext = "jsonl" if format == "jsonl" else "msgpack"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    runs: dict[str, _RunFile] = {}  # start uid -> file, in start order
    membership = RunMembership()
    try:
        for index, item in enumerate(docs):
            where = f"document index {index}"
            name, doc = _as_pair(item, where, index=index)
            if name == "start":
                uid = doc.get("uid")
                if not isinstance(uid, str) or not uid or any(c in uid for c in "/\\\0"):
                    msg = f"{where}: start uid {uid!r} cannot be used as a file name"
                    raise DocumentFileError(msg, index=index)
                if uid in runs:
                    raise DocumentFileError(f"{where}: start uid {uid!r} repeats", index=index)
                final = directory / f"{uid}.{ext}"
                if final.exists() and not overwrite:  # fail before writing a long run
                    msg = f"{final} exists; pass overwrite=True to replace it"
                    raise DocumentFileError(msg, path=str(final))
                tmp = directory / f".{uid}.{ext}.{secrets.token_hex(4)}.part"
                runs[uid] = _RunFile(tmp, final)
                membership.start(uid)
            key = membership.run_of(name, doc)
            if key is None:
                msg = f"{where}: a {name} document before any start; a run begins with its start"
                raise DocumentFileError(msg, index=index)
            runs[key].write(encode(name, doc, index))
            if name == "stop":  # close finished runs: a long stream must not exhaust handles
                runs[key].close()
        for run in runs.values():
            run.close()
        # Check again just before renaming: a file may have appeared meanwhile.
        clash = [str(r.final) for r in runs.values() if r.final.exists()]
        if clash and not overwrite:
            msg = f"{', '.join(clash)} exist(s); pass overwrite=True to replace"
            raise DocumentFileError(msg, path=clash[0])
        for run in runs.values():
            os.replace(run.tmp, run.final)
    except BaseException:
        for run in runs.values():
            run.close()
            run.tmp.unlink(missing_ok=True)
        raise
    return [run.final for run in runs.values()]
