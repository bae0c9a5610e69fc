"""Helpers of the server extension tests (``test_server_*.py``): environment, requests, runs.

The tests run jupyter_server in-process with pytest-jupyter; this module only holds
plain functions, each test module defines its fixtures with them.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from event_model import compose_run

#: Enables the extension in a pytest-jupyter server; ScandeckApp settings are added per test.
EXTENSION = {"jpserver_extensions": {"scandeck.server": True}}

CATALOG_FILE = """\
version: 2
metadata: {{}}
user_parameters: {{}}
aliases: {{beamtime: beamtime}}
data:
  beamtime_store:
    datatype: scandeck.intake_readers:ScandeckStore
    kwargs: {{uri: "{store}"}}
    metadata: {{}}
    user_parameters: {{}}
entries:
  beamtime:
    reader: scandeck.intake_readers:ScandeckReader
    kwargs: {{data: "{{data(beamtime_store)}}"}}
    output_instance: scandeck.catalog:Catalog
    metadata: {{description: "The test beamtime"}}
    user_parameters: {{}}
"""


def scandeck_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Point scandeck at ``tmp_path``: the data dir (default store, provenance) and a catalog file
    naming ``beamtime`` (a second store). Returns the paths."""
    data = tmp_path / "data"
    catalogs = tmp_path / "catalogs"
    catalogs.mkdir()
    beamtime = tmp_path / "beamtime"
    (catalogs / "test.yaml").write_text(CATALOG_FILE.format(store=beamtime))
    monkeypatch.setenv("SCANDECK_DATA", str(data))
    monkeypatch.setenv("SCANDECK_CATALOGS", str(catalogs))
    monkeypatch.delenv("SCANDECK_CATALOG", raising=False)
    return {"data": data, "store": data / "store", "beamtime": beamtime, "prov": tmp_path / "prov"}


def server_config(paths: dict[str, Path], **scandeck: Any) -> dict[str, Any]:
    """The ``jp_server_config`` enabling ``scandeck.server`` with its provenance store in ``paths``."""
    return {"ServerApp": dict(EXTENSION), "ScandeckApp": {"provenance_dir": str(paths["prov"]), **scandeck}}


class Api:
    """Requests to ``{base_url}scandeck/api/`` on the test server: ``(status, JSON body)``, no raising.

    ``path`` is sent as given (already URL-encoded), so tests can send ``..%2F`` and the like.
    """

    def __init__(self, client: Any, base_url: str, auth: dict[str, str]) -> None:
        self.client = client
        self.base_url = base_url
        self.auth = auth

    async def __call__(
        self,
        path: str,
        *,
        method: str = "GET",
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        url = f"{self.base_url}scandeck/api/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        all_headers = dict(self.auth) if auth else {}
        all_headers.update(headers or {})
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if body is None and method == "POST":
            body = ""
        response = await self.client.fetch(
            url,
            method=method,
            headers=all_headers,
            body=body,
            raise_error=False,
            follow_redirects=False,
            request_timeout=60,
        )
        text = response.body.decode() if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return response.code, data


def write_run(
    writer: Callable[[str, dict], None],
    *,
    time_: float | None = None,
    events: int = 1,
    exit_status: str | None = "success",
    uid: str | None = None,
    **metadata: Any,
) -> Any:
    """One run of ``events`` events of a ``x`` key (compose_run); returns the bundle (uid: ``.start_doc``)."""
    bundle = compose_run(metadata={"plan_name": "count", **metadata}, time=time_, uid=uid)
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim:x", "units": "mm"}}
    )
    writer("descriptor", desc.descriptor_doc)
    for i in range(events):
        writer("event", desc.compose_event(data={"x": float(i)}, timestamps={"x": time.time()}))
    if exit_status is not None:
        writer("stop", bundle.compose_stop(exit_status=exit_status))
    return bundle


async def until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate()`` on the event loop until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
