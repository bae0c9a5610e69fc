"""Where external data lives: a resource's file path and the local path of a ``file://`` URI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..exceptions import FillError

__all__ = ["resource_path", "uri_to_path"]


def resource_path(resource: Mapping[str, Any], root_map: Mapping[str, str] | None = None) -> str:
    """A resource's full path: ``root`` (after ``root_map``) joined to ``resource_path``.

    Joined by the writer's ``path_semantics`` rules, which may not be this machine's.

    Examples
    --------
    >>> resource_path({"root": "/data", "resource_path": "a/b.h5", "path_semantics": "posix"})
    '/data/a/b.h5'
    >>> resource_path({"root": "C:\\\\data", "resource_path": "b.h5", "path_semantics": "windows"})
    'C:\\\\data\\\\b.h5'
    """
    root = resource.get("root") or ""
    if root_map:
        root = root_map.get(root, root)
    semantics = resource.get("path_semantics") or ("windows" if os.name == "nt" else "posix")
    path_cls = PureWindowsPath if semantics == "windows" else PurePosixPath
    rel = resource["resource_path"]
    return str(path_cls(root) / rel) if root else str(path_cls(rel))


def uri_to_path(uri: str) -> str:
    """The local path of ``file://localhost/p`` or ``file:///p`` (or of a plain path).

    Examples
    --------
    >>> uri_to_path("file://localhost/data/scan%201.h5")
    '/data/scan 1.h5'
    >>> uri_to_path("file:///data/x.h5")
    '/data/x.h5'
    """
    parsed = urlparse(uri)
    if not parsed.scheme or len(parsed.scheme) == 1:  # a plain path, or "C:\..."
        return uri
    if parsed.scheme != "file":
        raise FillError(f"cannot read {uri!r}: only file:// URIs are supported")
    if parsed.netloc not in ("", "localhost"):
        raise FillError(
            f"{uri!r} is on host {parsed.netloc!r}; mount its files here and point a "
            "file://localhost/ URI at them, or register a stream handler that can fetch it"
        )
    return url2pathname(parsed.path)
