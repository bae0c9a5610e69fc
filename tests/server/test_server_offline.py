"""The server extension gives the kernels it starts the environment of offline plots (scandeck.offline).

A real kernel started by the test server's kernel manager: its process environment
(``/proc/PID/environ``) holds the variables, so every notebook of that JupyterLab embeds
the plotting JavaScript, loading scandeck or not. ``offline_plots=False`` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from server_support import scandeck_environment, server_config

from scandeck import offline

VARIABLES = ("BOKEH_RESOURCES", "PANEL_INLINE", "HOLOVIEWSRC")


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    for name in VARIABLES:  # as in a fresh shell (another test may have set them in this process)
        monkeypatch.delenv(name, raising=False)
    return scandeck_environment(monkeypatch, tmp_path)


@pytest.fixture
def jp_server_config(paths: dict[str, Path], request: pytest.FixtureRequest) -> dict:
    """scandeck.server on ``paths``, with the ScandeckApp settings a test passes (indirect)."""
    return server_config(paths, **getattr(request, "param", {}))


async def kernel_environment(serverapp) -> dict[str, str]:
    manager = serverapp.kernel_manager
    kernel_id = await manager.start_kernel()
    try:
        pid = manager.get_kernel(kernel_id).provisioner.process.pid
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        await manager.shutdown_kernel(kernel_id, now=True)
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def test_kernels_of_the_server_embed_the_plotting_javascript(jp_serverapp) -> None:
    environ = await kernel_environment(jp_serverapp)
    assert {name: environ.get(name) for name in VARIABLES} == offline.environment({})


@pytest.mark.parametrize("jp_server_config", [{"offline_plots": False}], indirect=True)
async def test_offline_plots_false_leaves_the_kernels_environment_alone(jp_serverapp) -> None:
    environ = await kernel_environment(jp_serverapp)
    assert [name for name in VARIABLES if name in environ] == []
