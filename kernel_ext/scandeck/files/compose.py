"""The documents of one watched file version in its run: a resource, its datums, an event.

As :mod:`.layout` says: one resource per file version (spec ``SCANDECK_FILE``), one
datum per external key (the ``file`` key, then the reader's keys), and one event in
the stream of its reader, with the file's metadata inline. The first file of a reader
gets a descriptor for stream ``<reader>``; a later file of the same reader whose data
keys (names, dtypes, shapes) differ gets ``<reader>_2``, and so on.

A reader key that has the name of a metadata key (``path``, ``size``...) or ``file``
is stored as ``<key>_<reader>`` (a CSV column named ``size`` becomes ``size_table``);
its datum still names the reader's key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .layout import FILE_KEY, META_KEYS, SPEC, meta_data_keys, resource_kwargs, stream_name

__all__ = ["FileDocs", "FileVersion", "LayoutChecks", "event_key"]


@dataclass(frozen=True)
class FileVersion:
    """What is known of one complete file version before its documents are written."""

    root: str  # the watched root, absolute
    relpath: str  # posix, relative to root
    size: int
    mtime: float
    sha256: str
    version: int
    reader: str
    data_keys: dict[str, dict[str, Any]]  # the reader's (FileLayout.data_keys)
    info: dict[str, Any]


def event_key(key: str, reader: str) -> str:
    """The event's name for a reader's data key (renamed when it collides with ours)."""
    return f"{key}_{reader}" if key in META_KEYS or key == FILE_KEY else key


def _signature(data_keys: dict[str, dict[str, Any]]) -> tuple[Any, ...]:
    return tuple(
        sorted(
            (k, str(v.get("dtype")), str(v.get("dtype_numpy")), tuple(v.get("shape") or ()))
            for k, v in data_keys.items()
        )
    )


def _descriptor_keys(reader: str, data_keys: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """A stream's descriptor data keys (ours, then the reader's) and the reader's names among them."""
    keys = meta_data_keys(source="file")
    fields = []
    for k, v in data_keys.items():
        name = event_key(k, reader)
        keys[name] = {**v, "source": f"file:{reader}", "external": "FILESTORE:"}
        fields.append(name)
    return keys, fields


class LayoutChecks:
    """Whether event-model takes a reader's data keys in a descriptor, asked once per layout.

    Documents are composed without validation (the store validates them); a reader
    (a plug-in) whose keys a descriptor cannot hold (``"dtype": "float"``, a key
    ``a.b``) would have the store refuse the file's descriptor and stop the watcher.
    """

    def __init__(self) -> None:
        self._good: set[tuple[str, tuple[Any, ...]]] = set()

    def check(self, reader: str, data_keys: dict[str, dict[str, Any]]) -> None:
        """Raise ``ValueError`` saying what is wrong, unless a descriptor can hold ``data_keys``."""
        key = (reader, _signature(data_keys))
        if key in self._good:
            return
        from event_model import DocumentNames, schema_validators

        keys, _fields = _descriptor_keys(reader, data_keys)
        doc = {"uid": "-", "run_start": "-", "time": 0.0, "name": reader, "data_keys": keys, "object_keys": {}}
        errors = sorted(schema_validators[DocumentNames.descriptor].iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise ValueError(f"{errors[0].message} (at {where})")
        self._good.add(key)


@dataclass
class _Stream:
    name: str
    descriptor: Any  # event-model's ComposeDescriptorBundle
    seq: int = 0


@dataclass
class FileDocs:
    """Composes the documents of one watched run, file version by file version.

    ``bundle`` is event-model's ``compose_run`` result for the run.

    Examples
    --------
    >>> docs = FileDocs(compose_run(metadata={"plan_name": "watch"}))       # doctest: +SKIP
    >>> resource = docs.new_resource(version)                               # doctest: +SKIP
    >>> for name, doc in docs.documents(version, resource): writer(name, doc)  # doctest: +SKIP
    """

    bundle: Any
    _streams: dict[tuple[str, tuple[Any, ...]], _Stream] = field(default_factory=dict)
    _per_reader: dict[str, int] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.bundle.start_doc["uid"])

    def streams(self) -> dict[str, int]:
        """Events composed so far per stream name."""
        return {s.name: s.seq for s in self._streams.values()}

    def new_resource(self, f: FileVersion) -> Any:
        """The resource bundle of ``f`` (its uid goes in the ledger before anything is written)."""
        return self.bundle.compose_resource(
            spec=SPEC,
            root=f.root,
            resource_path=f.relpath,
            resource_kwargs=resource_kwargs(f.reader, f.sha256, f.size, self.uid),
            path_semantics="posix",
            validate=False,  # the store's writer validates every document; jsonschema here doubled the cost
        )

    def documents(
        self, f: FileVersion, resource: Any, when: float | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(name, doc)`` of ``f`` in the order they are written: resource, datums, descriptor if new, event."""
        when = time.time() if when is None else when
        out: list[tuple[str, dict[str, Any]]] = [("resource", resource.resource_doc)]
        datums: dict[str, str] = {}
        for key in [FILE_KEY, *f.data_keys]:
            datum = resource.compose_datum(datum_kwargs={"key": key}, validate=False)
            out.append(("datum", datum))
            datums[FILE_KEY if key == FILE_KEY else event_key(key, f.reader)] = datum["datum_id"]
        stream = self._stream_for(f, out)
        stream.seq += 1
        data: dict[str, Any] = {
            "path": f.relpath,
            "size": int(f.size),
            "mtime": float(f.mtime),
            "sha256": f.sha256,
            "version": int(f.version),
            "info": json.dumps(f.info, sort_keys=True, default=str),
            **datums,
        }
        event = stream.descriptor.compose_event(
            data=data,
            timestamps=dict.fromkeys(data, when),
            seq_num=stream.seq,
            filled=dict.fromkeys(datums, False),
            time=when,
            validate=False,
        )
        out.append(("event", event))
        return out

    def _stream_for(self, f: FileVersion, out: list[tuple[str, dict[str, Any]]]) -> _Stream:
        key = (f.reader, _signature(f.data_keys))
        stream = self._streams.get(key)
        if stream is not None:
            return stream
        n = self._per_reader.get(f.reader, 0) + 1
        self._per_reader[f.reader] = n
        name = stream_name(f.reader, n)
        keys, fields = _descriptor_keys(f.reader, f.data_keys)
        desc = self.bundle.compose_descriptor(
            name=name, data_keys=keys, hints={"file": {"fields": fields or ["size"]}}
        )
        out.append(("descriptor", desc.descriptor_doc))
        stream = self._streams[key] = _Stream(name, desc)
        return stream

    def stop(self, exit_status: str = "success", reason: str = "") -> dict[str, Any]:
        """The stop document, with the events per stream that were composed."""
        stop = self.bundle.compose_stop(exit_status=exit_status, reason=reason)
        stop["num_events"] = self.streams()
        return dict(stop)
