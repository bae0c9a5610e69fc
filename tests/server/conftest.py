"""pytest-jupyter's server fixtures (``jp_fetch``, ``jp_ws_fetch``, ``jp_serverapp``, ...) for these tests only.

Registered here rather than with ``pytest_plugins`` in the root conftest: the plugin's
autouse fixtures (a fresh event loop per test, closed after it; a ServerApp cleanup)
and its hooks running ``async def`` tests then apply to this directory alone, not to
every test of the suite.
"""

from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures and the async-test hooks
