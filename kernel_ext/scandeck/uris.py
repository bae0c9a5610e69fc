"""Catalog URIs as they may be shown or stored: without their credentials.

A Redis URI carries its password (``redis://:secret@host:6379/0``). Anything that
shows a catalog's URI (reprs, the panel, error messages) or stores it (provenance
records, the notebooks they travel in) passes it through :func:`redact`, so the
password stays where the user typed it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact"]


def redact(uri: str) -> str:
    """``uri`` without a user name or password.

    Examples
    --------
    >>> redact("redis://:secret@host:6379/0?prefix=28id")
    'redis://host:6379/0?prefix=28id'
    >>> redact("/data/store")
    '/data/store'
    """
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
        if parts.password is None and parts.username is None:
            return uri
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
    except ValueError:  # a malformed netloc (a port that is not a number): show no netloc
        return urlunsplit(urlsplit(uri)._replace(netloc="<redacted>"))
    return urlunsplit(parts._replace(netloc=host))
