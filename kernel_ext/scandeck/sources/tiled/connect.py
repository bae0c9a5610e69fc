"""A ``tiled+http(s)://`` URI to a Tiled container client, with credentials and clear errors.

``tiled+http://host:8000/raw`` names the container ``raw`` on the server at
``http://host:8000`` (Tiled's own form, ``http://host:8000/api/v1/metadata/raw``,
works after ``tiled+`` too, and is how a server under a path prefix is named).
The API key comes from ``?api_key=``, else ``$TILED_API_KEY``, else Tiled's
token cache of a ``tiled login`` (never an interactive prompt: a kernel has no
terminal). A 401/403, a refused connection or a missing container become a
:class:`~scandeck.exceptions.StoreError` that names the credential or the
container to give; the key is never part of a message (:func:`scandeck.uris.redact`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ...exceptions import AuthenticationFailed, RunNotFound, StoreError, require
from ...uris import redact

__all__ = [
    "SCHEMES",
    "TiledTarget",
    "connect",
    "tiled_errors",
    "uri_option",
    "with_key",
    "without_key",
    "without_option",
]

#: The URI schemes of a Tiled source.
SCHEMES = ("tiled+http", "tiled+https")

_API = "/api/v1/metadata"


@dataclass(frozen=True)
class TiledTarget:
    """Where a Tiled source is: server, container path and the API key (if given)."""

    server: str  # http(s)://host:port[/prefix], without the API path
    path: tuple[str, ...]
    api_key: str | None
    uri: str  # the URI as given, for display through redact()

    @property
    def shown(self) -> str:
        """The URI without credentials."""
        return redact(self.uri)

    @property
    def url(self) -> str:
        """Tiled's URL of the container (no key)."""
        return f"{self.server}{_API}/{'/'.join(self.path)}"


def parse_target(uri: str) -> TiledTarget:
    """Split a ``tiled+http(s)://`` URI.

    Examples
    --------
    >>> t = parse_target("tiled+http://host:8000/raw?api_key=abc")
    >>> t.server, t.path, t.api_key, t.shown
    ('http://host:8000', ('raw',), 'abc', 'tiled+http://host:8000/raw')
    >>> parse_target("tiled+https://h/tiled/api/v1/metadata/bl/raw").server
    'https://h/tiled'
    """
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise StoreError(f"not a Tiled URI: {redact(uri)!r}; write tiled+http://host:port/CONTAINER")
    if not parts.hostname:
        raise StoreError(f"the Tiled URI {redact(uri)!r} names no host; write tiled+http://host:port/CONTAINER")
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = [v for k, v in query if k == "api_key"]
    others = [(k, v) for k, v in query if k != "api_key"]
    if others:
        names = ", ".join(sorted({k for k, _ in others}))
        raise StoreError(f"unknown option(s) {names} in the Tiled URI {redact(uri)!r}; only api_key is read")
    path = parts.path
    if _API in path:
        prefix, _, node = path.partition(_API)
    else:
        prefix, node = "", path
    segments = tuple(unquote(p) for p in node.strip("/").split("/") if p)
    if not segments:
        raise StoreError(
            f"the Tiled URI {redact(uri)!r} names no container; write tiled+http://host:port/CONTAINER "
            "(the container of runs TiledWriter writes into, often 'raw')"
        )
    scheme = parts.scheme.removeprefix("tiled+")
    server = urlunsplit((scheme, parts.netloc.rpartition("@")[2], prefix.rstrip("/"), "", ""))
    return TiledTarget(server=server, path=segments, api_key=keys[-1] if keys else None, uri=uri)


def uri_option(uri: str, name: str) -> str | None:
    """The (last) value of the query parameter ``name`` in ``uri``, or None."""
    values = [v for k, v in parse_qsl(urlsplit(uri).query, keep_blank_values=True) if k == name]
    return values[-1] if values else None


def without_option(uri: str, name: str) -> str:
    """``uri`` without the query parameter ``name`` (its other options kept)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_key(uri: str, api_key: str) -> str:
    """``uri`` with ``?api_key=`` set (what the server extension gives a user's kernel)."""
    parts = urlsplit(without_key(uri))
    query = urlencode([("api_key", api_key)])
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def without_key(uri: str) -> str:
    """``uri`` without ``?api_key=`` (its other options kept).

    Examples
    --------
    >>> without_key("tiled+http://host:8000/raw?api_key=abc&batch_size=5")
    'tiled+http://host:8000/raw?batch_size=5'
    """
    return without_option(uri, "api_key")


_CREDENTIALS = (
    "give an API key in the URI (?api_key=...) or in $TILED_API_KEY, or run `tiled login {server}` "
    "in a terminal for a server with logins"
)


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


@contextmanager
def tiled_errors(target: TiledTarget, doing: str) -> Iterator[None]:
    """Turn Tiled's and httpx's errors inside the block into scandeck's, naming ``target``."""
    import httpx

    try:
        yield
    except (StoreError, RunNotFound):
        raise
    except httpx.HTTPStatusError as err:
        status = _status(err)
        if status in (401, 403):
            how = _CREDENTIALS.format(server=target.server)
            raise AuthenticationFailed(
                f"Tiled at {target.shown} refused {doing} ({status}: not allowed with these credentials); {how}"
            ) from None
        detail = server_detail(err)
        raise StoreError(f"Tiled at {target.shown} answered {status} to {doing}: {detail}") from None
    except httpx.TransportError as err:
        raise StoreError(
            f"cannot reach the Tiled server at {target.server} ({type(err).__name__}: {err}) while {doing}; "
            "is it running, and is the address right?"
        ) from None


def server_detail(err: BaseException) -> str:
    """What the Tiled server said of an error (its ``detail``), one line, no credentials."""
    response = getattr(err, "response", None)
    try:
        body = response.json() if response is not None else None
        text = body.get("detail") if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001 - not JSON: say what httpx said
        text = None
    return redact(str(text or err)).splitlines()[0][:300]


def connect(target: TiledTarget) -> Any:
    """A client of the target's container (a Tiled ``Container``), authenticated.

    Raises
    ------
    AuthenticationFailed
        The server wants credentials that were not given, or refused them.
    StoreError
        The server cannot be reached, or has no such container.
    """
    require("tiled.client", "tiled")
    from tiled.client.constructors import from_context
    from tiled.client.context import Context

    api_key = target.api_key or os.environ.get("TILED_API_KEY") or None
    with tiled_errors(target, "a connection"):
        context, _ = Context.from_any_uri(f"{target.server}/api/v1/", api_key=api_key)
        try:
            _authenticate(context, target)
            return from_context(context, node_path_parts=list(target.path))
        except KeyError:
            context.close()
            raise StoreError(
                f"the Tiled server at {target.server} has no container {'/'.join(target.path)!r} "
                f"(or these credentials cannot see it): {target.shown}"
            ) from None
        except BaseException as err:
            context.close()
            if _status(err) == 404:
                raise StoreError(
                    f"the Tiled server at {target.server} has no container {'/'.join(target.path)!r} "
                    f"(or these credentials cannot see it): {target.shown}"
                ) from None
            raise


def _authenticate(context: Any, target: TiledTarget) -> None:
    """Use the key or the cached tokens; never prompt (a kernel cannot answer)."""
    if context.authenticated:
        return
    info = context.server_info.authentication
    if info.providers and context.use_cached_tokens():
        return
    if info.required:
        how = _CREDENTIALS.format(server=target.server)
        raise AuthenticationFailed(f"the Tiled server at {target.server} requires credentials; {how}")
