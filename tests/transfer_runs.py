"""Watched runs for the transfer tests: files sent through the bus, then their documents.

The documents follow :mod:`scandeck.files.layout` (one resource per file version,
a ``file`` datum, one event in stream ``bytes``), composed with event-model's
``compose_run``; the bytes go first, through :func:`scandeck.files.transfer.sender_for`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from event_model import compose_run

from scandeck.files.layout import FILE_KEY, PLAN_NAME, SPEC, meta_data_keys, resource_kwargs, watch_metadata


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_file(path: Path, size: int, seed: int = 0) -> Path:
    """``size`` pseudo-random bytes (never a repeating pattern: a misplaced chunk shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(f"{seed}".encode()).digest()
    out = bytearray()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64  # 2 kB per step, each step different
    path.write_bytes(bytes(out[:size]))
    return path


@dataclass
class WatchedRun:
    """An open watched run on a catalog, sending files before their documents."""

    cat: Any
    root: Path
    transfer: bool = True
    chunk_size: int = 512 * 1024
    uid: str = ""
    writer: Any = None
    sender: Any = None
    bundle: Any = None
    desc: Any = None
    seq: int = 0
    versions: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from scandeck.files.transfer import sender_for

        self.writer = self.cat.writer()
        meta = watch_metadata([str(self.root)], ["*"], "session", socket.gethostname(), transfer=self.transfer)
        self.bundle = compose_run(metadata={"plan_name": PLAN_NAME, "watch": meta})
        self.uid = self.bundle.start_doc["uid"]
        self.writer("start", self.bundle.start_doc)
        self.desc = self.bundle.compose_descriptor(name="bytes", data_keys=meta_data_keys())
        self.writer("descriptor", self.desc.descriptor_doc)
        if self.transfer:
            self.sender = sender_for(self.cat.source, self.chunk_size)

    def add(self, path: Path, **send: Any) -> dict[str, Any]:
        """Send ``path`` (under root) into the run, then write its resource, datum and event."""
        rel = path.relative_to(self.root).as_posix()
        size, sha = path.stat().st_size, sha256_of(path)
        if self.sender is not None:
            self.sender.send(self.uid, sha, path, size, **send)
        version = self.versions[rel] = self.versions.get(rel, 0) + 1
        resource = self.bundle.compose_resource(
            spec=SPEC,
            root=str(self.root),
            resource_path=rel,
            resource_kwargs=resource_kwargs("bytes", sha, size, self.uid),
            path_semantics="posix",
        )
        datum = resource.compose_datum(datum_kwargs={"key": FILE_KEY})
        self.seq += 1
        data = {
            "path": rel,
            "size": size,
            "mtime": os.stat(path).st_mtime,
            "sha256": sha,
            "version": version,
            "info": "{}",
            FILE_KEY: datum["datum_id"],
        }
        event = self.desc.compose_event(
            data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=self.seq, filled={FILE_KEY: False}
        )
        self.writer("resource", resource.resource_doc)
        self.writer("datum", datum)
        self.writer("event", event)
        return {"path": rel, "sha256": sha, "size": size, "version": version}

    def stop(self) -> None:
        self.writer("stop", self.bundle.compose_stop())
        self.writer.close()
        if self.sender is not None:
            self.sender.close()
