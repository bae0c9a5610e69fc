"""pytest-jupyter's server fixtures (``jp_fetch``, ``jp_ws_fetch``, ``jp_serverapp``, ...) for these tests only.

Registered here rather than with ``pytest_plugins`` in the root conftest: the plugin's
autouse fixtures (a fresh event loop per test, closed after it; a ServerApp cleanup)
and its hooks running ``async def`` tests then apply to this directory alone, not to
every test of the suite.
"""

import pytest  # noqa: E402 - after pytest-jupyter's fixtures, which these build on
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures and the async-test hooks
from server_support import Api, scandeck_environment, server_config  # noqa: E402

import scandeck


@pytest.fixture
def paths(monkeypatch, tmp_path):
    """$SCANDECK_DATA, catalogs and provenance under tmp_path (a module may override it)."""
    return scandeck_environment(monkeypatch, tmp_path)


@pytest.fixture
def jp_server_config(paths):
    """The test server: scandeck.server enabled on ``paths`` (a module may override it)."""
    return server_config(paths)


@pytest.fixture
def api(jp_serverapp, http_server_client, jp_base_url, jp_auth_header):
    """The scandeck REST API of the test server, authenticated."""
    return Api(http_server_client, jp_base_url, jp_auth_header)


@pytest.fixture
def store(paths):
    """The default catalog (the embedded store under $SCANDECK_DATA), as the server opens it."""
    cat = scandeck.open_catalog()
    yield cat
    cat.close()
