"""Catalog URIs as they may be shown or stored: without their credentials.

A Redis URI carries its password (``redis://:secret@host:6379/0``), a Tiled URI its
API key (``tiled+http://host:8000/raw?api_key=secret``). Anything that
shows a catalog's URI (reprs, the panel, error messages) or stores it (provenance
records, the notebooks they travel in) passes it through :func:`redact`, so the
password stays where the user typed it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["redact"]


#: Query parameters that carry credentials.
_SECRET_PARAMS = frozenset({"api_key", "password", "token"})


def _without_secret_params(uri: str) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k.lower() not in _SECRET_PARAMS]
    if len(kept) == len(query):
        return uri
    return urlunsplit(parts._replace(query=urlencode(kept)))


def redact(uri: str) -> str:
    """``uri`` without a user name, password or API key.

    Examples
    --------
    >>> redact("redis://:secret@host:6379/0?prefix=28id")
    'redis://host:6379/0?prefix=28id'
    >>> redact("tiled+http://host:8000/raw?api_key=secret")
    'tiled+http://host:8000/raw'
    >>> redact("/data/store")
    '/data/store'
    """
    if "://" not in uri:
        return uri
    try:
        uri = _without_secret_params(uri)
        parts = urlsplit(uri)
        if parts.password is None and parts.username is None:
            return uri
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
    except ValueError:  # a malformed netloc (a port that is not a number): show no netloc
        return urlunsplit(urlsplit(uri)._replace(netloc="<redacted>"))
    return urlunsplit(parts._replace(netloc=host))
