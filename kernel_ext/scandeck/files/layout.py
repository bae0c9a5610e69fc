"""How a watched instrument file sits in a run: one event, one resource, its datums.

A watched run (``plan_name == "watch"``) has one event per complete file, in a
stream named by the reader that read it (``tiff``, ``table``, ``hdf5``...; a
later file whose data keys differ from the stream's goes to ``<reader>_2``, and
so on). Every event carries, inline, the file's :data:`META_KEYS` and, as
external data, :data:`FILE_KEY` (filled with the path of a verified local copy)
and the reader's data keys (filled with arrays). One resource per file version:

* ``spec`` :data:`SPEC`, ``root`` the watched directory (absolute),
  ``resource_path`` the file's path relative to it (posix), ``path_semantics``;
* ``resource_kwargs``: ``reader`` (registry name), ``sha256``, ``size``,
  ``run`` (the run's uid: where transferred bytes are asked for);
* a datum per external key, ``datum_kwargs = {"key": name}``.

The start document has ``plan_name = "watch"`` and a ``watch`` mapping (see
:func:`watch_metadata`). Transferred bytes (``--transfer``) are written before
the documents that reference them, so an event means a whole file.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CHUNK_SIZE",
    "FILE_KEY",
    "META_KEYS",
    "PLAN_NAME",
    "SPEC",
    "is_watched",
    "meta_data_keys",
    "resource_kwargs",
    "stream_name",
    "watch_metadata",
]

#: The resource spec of a watched file; :mod:`scandeck.files.handler` reads it.
SPEC = "SCANDECK_FILE"
#: ``plan_name`` of a watched run.
PLAN_NAME = "watch"
#: The external key every watched event has: filled, the local path of the file.
FILE_KEY = "file"
#: Default bytes per transferred chunk.
CHUNK_SIZE = 512 * 1024

#: Inline keys of every watched event: name -> (event-model dtype, numpy dtype string).
META_KEYS: dict[str, tuple[str, str]] = {
    "path": ("string", "<U0"),  # relative to the watched root, posix
    "size": ("integer", "<i8"),
    "mtime": ("number", "<f8"),  # seconds since the epoch
    "sha256": ("string", "<U0"),
    "version": ("integer", "<i8"),  # 1, then 2... each time the same path is ingested again
    "info": ("string", "<U0"),  # JSON object: what the reader extracted (tags, attributes, header)
}


def meta_data_keys(source: str = "file") -> dict[str, dict[str, Any]]:
    """The descriptor data keys of :data:`META_KEYS` plus :data:`FILE_KEY`."""
    keys: dict[str, dict[str, Any]] = {
        name: {"dtype": dtype, "dtype_numpy": numpy, "shape": [], "source": source}
        for name, (dtype, numpy) in META_KEYS.items()
    }
    keys[FILE_KEY] = {
        "dtype": "string",
        "dtype_numpy": "<U0",
        "shape": [],
        "source": source,
        "external": "FILESTORE:",
    }
    return keys


def resource_kwargs(reader: str, sha256: str, size: int, run: str) -> dict[str, Any]:
    """A watched file's ``resource_kwargs``."""
    return {"reader": reader, "sha256": sha256, "size": int(size), "run": run}


def stream_name(reader: str, n: int) -> str:
    """The ``n``-th (from 1) stream of one reader in a run: ``tiff``, ``tiff_2``..."""
    return reader if n <= 1 else f"{reader}_{n}"


def watch_metadata(
    roots: list[str], patterns: list[str], run_per: str, host: str, *, transfer: bool, part: str | None = None
) -> dict[str, Any]:
    """The start document's ``watch`` mapping; ``part`` is the directory or file a run holds."""
    meta: dict[str, Any] = {
        "roots": roots,
        "patterns": patterns,
        "run_per": run_per,
        "host": host,
        "transfer": transfer,
    }
    if part is not None:
        meta["part"] = part
    return meta


def is_watched(start: dict[str, Any]) -> bool:
    """Whether a start document is a watched run's."""
    return start.get("plan_name") == PLAN_NAME and isinstance(start.get("watch"), dict)
