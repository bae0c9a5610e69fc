"""Real Tiled servers for tests, each in its own process on a free port.

* :class:`TiledServer` runs what tiled's ``SimpleTiledServer`` runs (SQLite catalog,
  files in a directory, the in-process streaming cache, so WebSocket subscriptions
  work), with tables in SQLite rather than DuckDB (see :func:`_serve`): the server
  most tests use, up in about 5 s.
* :class:`TiledDeployment` runs ``tiled serve config`` as a facility does: a SQLite
  catalog, a Redis streaming cache on the given redis-server, bluesky-tiled-plugins'
  document exporter, and optionally an access policy.

Run as a script (``python tiled_server.py DIR KEY``) this module is the server process
of :class:`TiledServer`: it prints the base URL and serves until its stdin closes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from redis_server import free_port

#: The spec TiledWriter's parent container carries (bluesky-tiled-plugins' layout, version 3).
CATALOG_SPEC = ("CatalogOfBlueskyRuns", "3.0")


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the tiled server exited ({proc.returncode}); its log:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    tail = log.read_text()[-4000:]
    raise RuntimeError(f"the tiled server did not answer /healthz in {timeout} s; its log:\n{tail}")


class _Server:
    base: str
    api_key: str
    proc: subprocess.Popen[bytes] | None = None

    def client(self, api_key: str | None = None) -> Any:
        """A tiled client of the server's root (closed by the caller: ``client.context.close()``)."""
        from tiled.client import from_uri

        return from_uri(self.base, api_key=api_key or self.api_key)

    def new_catalog(self, name: str | None = None, *, access_tags: list[str] | None = None) -> str:
        """Create an empty container of Bluesky runs; return its ``tiled+http://`` URI with the key."""
        from tiled.structures.core import Spec

        name = name or f"raw-{uuid.uuid4().hex[:12]}"
        client = self.client()
        try:
            kwargs: dict[str, Any] = {"specs": [Spec(*CATALOG_SPEC)]}
            if access_tags is not None:
                kwargs["access_tags"] = access_tags
            client.create_container(name, **kwargs)
        finally:
            client.context.close()
        return self.uri(name)

    def uri(self, path: str, api_key: str | None = None) -> str:
        """``tiled+http://host:port/PATH?api_key=KEY``."""
        return f"tiled+{self.base}/{path}?api_key={api_key or self.api_key}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class TiledServer(_Server):
    """A Tiled server as tiled's SimpleTiledServer makes it, in a child process (see :func:`_serve`)."""

    def __init__(self, directory: Path, api_key: str = "scandecktestkey", *, readable: Path | None = None) -> None:
        self.dir = Path(directory)
        self.api_key = api_key
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        #: A directory whose files (detectors' HDF5, NPY) the server may read for its clients.
        self.readable = readable

    def start(self) -> TiledServer:
        log = self.dir / "server.log"
        readable = [str(self.readable)] if self.readable is not None else []
        with log.open("wb") as out:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.dir), self.api_key, str(self.port), *readable],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(self.base, self.proc, log)
        return self


class TiledDeployment(_Server):
    """``tiled serve config``: SQLite catalog, Redis streaming cache, the document exporter.

    ``extra_config`` is merged into the server's configuration (an ``access_control``
    section for tiled's tag-based policy, other ``authentication``).
    """

    def __init__(
        self,
        directory: Path,
        redis_url: str | None,
        *,
        api_key: str = "scandeckadminkey",
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.redis_url = redis_url
        self.api_key = api_key
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_config = extra_config or {}

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "authentication": {"single_user_api_key": self.api_key},
            "trees": [
                {
                    "path": "/",
                    "tree": "catalog",
                    "args": {
                        "uri": f"sqlite:///{self.dir / 'catalog.db'}",
                        "writable_storage": [str(self.dir / "data"), f"sqlite:///{self.dir / 'tables.sqlite'}"],
                        "init_if_not_exists": True,
                    },
                }
            ],
            "media_types": {
                "BlueskyRun": {"application/json-seq": "bluesky_tiled_plugins.exporters:json_seq_exporter"}
            },
            "uvicorn": {"host": "127.0.0.1", "port": self.port},
        }
        if self.redis_url is not None:  # None: a server without live subscriptions
            config["streaming_cache"] = {"uri": self.redis_url}
        config.update(self.extra_config)
        return config

    def start(self) -> TiledDeployment:
        import yaml

        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        path = self.dir / "config.yml"
        path.write_text(yaml.safe_dump(self.config()))
        log = self.dir / "server.log"
        tiled = Path(sys.executable).with_name("tiled")
        env = {**os.environ, "TILED_CONFIG": str(path)}
        with log.open("wb") as out:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(tiled), "serve", "config", str(path)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_healthy(self.base, self.proc, log)
        return self


def _serve(directory: str, api_key: str, port: str, readable: str | None = None) -> None:
    """What SimpleTiledServer serves (SQLite catalog, in-memory streaming cache), with tables in SQLite.

    SimpleTiledServer keeps tables in DuckDB, whose driver crashed this server process
    when a reader and TiledWriter used one table at once (a follow test, 200 events);
    SQLite tables do not. Ends when the parent closes our stdin (or dies).
    """
    import threading

    import uvicorn
    from tiled.catalog import from_uri as catalog_from_uri
    from tiled.config import Authentication, StreamingCacheConfig
    from tiled.server.app import build_app

    root = Path(directory)
    (root / "data").mkdir(parents=True, exist_ok=True)
    catalog = catalog_from_uri(
        f"sqlite:///{root / 'catalog.db'}",
        writable_storage=[str(root / "data"), f"sqlite:///{root / 'tables.sqlite'}"],
        readable_storage=[readable] if readable else None,
        init_if_not_exists=True,
        cache_config=StreamingCacheConfig(uri="memory").model_dump(),
    )
    app = build_app(catalog, authentication=Authentication(single_user_api_key=api_key))

    def watch_parent() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    _serve(*sys.argv[1:5])
