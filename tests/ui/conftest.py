"""Fixtures for the browser tests: a real ``jupyter lab`` server and Debian's Chromium.

The server runs from this venv on a free loopback port with its own token, a
temporary root directory and temporary Jupyter/IPython config, data, runtime
and settings directories (nothing of the developer's ~/.jupyter leaks in, and
the news prompt is switched off so it stays out of screenshots). Its kernels
inherit ``SCANDECK_DATA``. It is stopped by its pid at teardown (SIGTERM, on
which jupyter_server shuts its kernels down; SIGKILL if it does not exit).

The browser is ``/usr/bin/chromium`` (``apt-get install chromium``; ``./run
test`` installs it) driven by Python Playwright; no browser is downloaded. Its
pages reach nothing but the loopback: other requests are aborted and recorded
in ``page.blocked_requests``.
Screenshots go to ``test-artifacts/ui/``; a failing test also leaves a
screenshot of the page there and the server's log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
LAB_START_TIMEOUT = 60.0


def artifact(name: str) -> Path:
    """A path under ``test-artifacts/ui/`` (created on demand)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running ``jupyter lab``: its base URL, token, root directory and process."""

    url: str
    token: str
    root: Path
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def page_url(self, path: str) -> str:
        """``/lab/tree/PATH`` with the token, as a user would open it."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


def _quiet_settings(settings_dir: Path) -> None:
    """User settings that keep the news and update prompts out of the page."""
    notification = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    # The prompt asking about news shows while fetchNews is "none", whatever news_url says.
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def _wait_until_serving(lab: Lab) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            lab.api("status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"jupyter lab did not answer in {LAB_START_TIMEOUT} s:\n{lab.log.read_text()[-3000:]}")


def _stop(lab: Lab) -> None:
    """Shut the kernels down, then stop the server by its pid."""
    if lab.proc.poll() is None:
        try:
            for kernel in lab.api("kernels"):
                lab.api(f"kernels/{kernel['id']}", method="DELETE")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # the SIGTERM below shuts them down as well
        os.kill(lab.proc.pid, signal.SIGTERM)
        try:
            lab.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(lab.proc.pid, signal.SIGKILL)
            lab.proc.wait(10)


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """``jupyter lab`` serving ``tmp_path/root``; kernels get ``SCANDECK_DATA``."""
    root = tmp_path / "root"
    home = tmp_path / "home"  # Jupyter's and IPython's own directories, outside the served root
    root.mkdir()
    for sub in ("config", "data", "runtime", "ipython", "settings", "workspaces"):
        (home / sub).mkdir(parents=True)
    _quiet_settings(home / "settings")
    env = {
        **os.environ,
        "SCANDECK_DATA": str(tmp_path / "scandeck-data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyter-lab.log"
    (ARTIFACTS / f"{request.node.name}-jupyter-lab.log").unlink(missing_ok=True)  # from an earlier run
    jupyter = Path(sys.executable).with_name("jupyter")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(jupyter),
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                "--allow-root",
                "--LabApp.news_url=None",
                f"--ServerApp.root_dir={root}",
                f"--LabApp.user_settings_dir={home / 'settings'}",
                f"--LabApp.workspaces_dir={home / 'workspaces'}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, proc=proc, log=log, env=env)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(server)
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shutil.copy(log, artifact(f"{request.node.name}-jupyter-lab.log"))


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/ui/``, where screenshots go."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (./run test does it)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


# Every http(s) URL whose host is not the loopback. A pattern, not a Python predicate: the
# browser matches it itself, so requests to the lab never wait for this process to answer
# (with a predicate every request is paused until Playwright's Python side runs again).
OFF_MACHINE = re.compile(r"^https?://(?!(?:127\.0\.0\.1|localhost|\[::1\])(?:[:/?#]|$))", re.IGNORECASE)


def _block(route: Any, blocked: list[str]) -> None:
    blocked.append(route.request.url)
    route.abort("internetdisconnected")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (own context) at 1280x900; on failure its screenshot is kept.

    ``page.console_errors`` collects the browser console's errors, for messages.
    Every request for a host other than the loopback is aborted, as on an offline
    beamline network, and its URL kept in ``page.blocked_requests`` (assert it is
    empty where nothing may need the internet).
    """
    failure_shot = ARTIFACTS / f"{request.node.name}-failure.png"
    failure_shot.unlink(missing_ok=True)  # from an earlier run
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    context.route(OFF_MACHINE, lambda route: _block(route, blocked))
    tab = context.new_page()
    tab.blocked_requests = blocked
    tab.console_errors = []
    tab.on("console", lambda msg: tab.console_errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda err: tab.console_errors.append(f"pageerror: {err}"))
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print("browser console errors:", *tab.console_errors or ["none"], sep="\n  ")
            print("blocked off-machine requests:", *blocked or ["none"], sep="\n  ")
            try:
                tab.screenshot(path=str(artifact(failure_shot.name)))
            except Exception as err:  # noqa: BLE001 - a missing failure screenshot must not hide the failure
                print(f"no failure screenshot: {err!r}")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
