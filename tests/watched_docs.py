"""Documents of a watched run (``scandeck.files.layout``), composed with event-model's ``compose_run``.

For tests of what reads watched runs (the panel's ``files``), without a watcher process:
each file becomes a resource (spec SCANDECK_FILE), a datum for its ``file`` key and one
event in the stream of its reader, as the watcher writes them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from event_model import compose_run

from scandeck.files import layout


class WatchedRun:
    """A watched run written document by document through ``writer``."""

    def __init__(
        self,
        writer: Callable[[str, dict], None],
        root: str,
        *,
        uid: str | None = None,
        patterns: tuple[str, ...] = ("*.csv", "*.tif"),
        host: str = "lab-pc",
        **metadata: Any,
    ) -> None:
        self.writer = writer
        self.root = root
        watch = layout.watch_metadata([root], list(patterns), "session", host, transfer=False)
        self.bundle = compose_run(uid=uid, metadata={"plan_name": layout.PLAN_NAME, "watch": watch, **metadata})
        self.uid = self.bundle.start_doc["uid"]
        writer("start", self.bundle.start_doc)
        self.streams: dict[str, Any] = {}

    def _stream(self, name: str) -> Any:
        if name not in self.streams:
            desc = self.bundle.compose_descriptor(name=name, data_keys=layout.meta_data_keys("file"))
            self.writer("descriptor", desc.descriptor_doc)
            self.streams[name] = desc
        return self.streams[name]

    def resource(self, relpath: str, reader: str = "table") -> Any:
        """Write the resource and datum of a file (what comes before its event); returns the datum."""
        digest = hashlib.sha256(relpath.encode()).hexdigest()
        res = self.bundle.compose_resource(
            spec=layout.SPEC,
            root=self.root,
            resource_path=relpath,
            resource_kwargs=layout.resource_kwargs(reader, digest, 10, self.uid),
            path_semantics="posix",
        )
        self.writer("resource", res.resource_doc)
        datum = res.compose_datum(datum_kwargs={"key": layout.FILE_KEY})
        self.writer("datum", datum)
        return datum

    def add(self, relpath: str, reader: str = "table") -> None:
        """One complete file: resource, datum, event (in stream ``reader``)."""
        datum = self.resource(relpath, reader)
        desc = self._stream(reader)
        now = time.time()
        data = {
            "path": relpath,
            "size": 10,
            "mtime": now,
            "sha256": hashlib.sha256(relpath.encode()).hexdigest(),
            "version": 1,
            "info": "{}",
            layout.FILE_KEY: datum["datum_id"],
        }
        self.writer(
            "event",
            desc.compose_event(data=data, timestamps=dict.fromkeys(data, now), filled={layout.FILE_KEY: False}),
        )

    def stop(self, exit_status: str = "success") -> None:
        self.writer("stop", self.bundle.compose_stop(exit_status=exit_status))
