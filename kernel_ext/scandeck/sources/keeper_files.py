"""The keeper's part for transferred files: archive them with their run, delete them with it.

A run watched with ``--transfer`` carries its files' bytes on the bus
(:mod:`.redis_files`). Before the keeper marks such a run persisted it copies
each whole file into the archive, verified (an embedded store keeps them in
``<store directory>/files``: :mod:`.archive_files`), so that trimming the run
from Redis loses no file. An archive that cannot keep files (a Tiled server)
makes the keeper say so and keep the run in Redis. A file whose sender stopped
mid-way (no document references it: documents follow the bytes) is not
copied; trimming deletes it with the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import FileMismatch, StoreError
from .redis_files import file_chunks, run_files

if TYPE_CHECKING:
    from .redis_source import RedisSource

__all__ = ["file_keys", "persist_files"]

log = logging.getLogger(__name__)


def persist_files(bus: RedisSource, archive: Any, uid: str, shown: str) -> str | None:
    """Copy run ``uid``'s whole files to ``archive``; why it cannot be done, or None when done."""
    files = run_files(bus, uid)
    if not files:
        return None
    whole = [f for f in files.values() if f.complete]
    for entry in files.values():
        if not entry.complete:
            log.info("not archiving file %s of run %s: its sender stopped mid-way", entry.sha256, uid)
    if not whole:  # only files abandoned mid-way: nothing references them, nothing to keep
        return None
    keep = getattr(archive, "keep_file", None)
    if keep is None:
        n = len(whole)
        return (
            f"it carries {n} transferred file{'s' if n != 1 else ''} (scandeck watch --transfer), and "
            f"{shown} cannot hold files: only an embedded store keeps them, beside its database. Give "
            "the keeper an embedded store as archive (scandeck keeper --archive DIR) to archive and "
            "trim such runs"
        )
    for entry in whole:
        chunks = file_chunks(bus, uid, entry.sha256, entry.size)
        if chunks is None:  # withdrawn meanwhile: nothing references it
            continue
        what = f"file {entry.sha256} of run {uid}"
        try:
            keep(entry.sha256, entry.size, chunks, what=what)
        except FileMismatch as err:
            return f"its {what} in Redis is damaged, so it was not archived: {err}"
        except (StoreError, OSError) as err:
            return f"copying its {what} to {shown} failed: {err}"
    return None


def file_keys(bus: RedisSource, uid: str) -> list[str]:
    """The keys of a run's transferred files (its files hash first), for trimming and memory counts."""
    keys = bus.keys
    return [keys.files(uid)] + [keys.file(uid, sha) for sha in run_files(bus, uid)]
