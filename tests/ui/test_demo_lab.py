"""``./run demo`` from start to Ctrl-C: the URL opens the notebook, one Ctrl-C stops it all.

The test starts what ``./run demo`` execs after its set-up (``python -m
scandeck.demo_lab``) in its own process group, on a free port with a temporary
``SCANDECK_DATA`` and temporary Jupyter directories; opens the printed URL in
Chromium; then sends one SIGINT to the process group, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import artifact, free_port
from notebook_support import wait_for_kernel

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab/tree/(\S+)\?token=(\w+)")
CHECKOUT_PATHS = ["notebooks", "provenance", "reruns"]


def checkout_state() -> str:
    """What git says of the paths the demo used to write into (ignored files included)."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--", *CHECKOUT_PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc), kernels included."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


class Output:
    """The demo's merged output, read on a thread; ``wait_for`` a pattern."""

    def __init__(self, stream) -> None:
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            with self._lock:
                self.text += line

    def close(self, stream) -> None:
        self._thread.join(10)  # the demo has exited: its output ends
        stream.close()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                match = pattern.search(self.text)
            if match:
                return match
            time.sleep(0.1)
        raise AssertionError(f"no {pattern.pattern!r} in {timeout} s; the output:\n{self.text}")


def test_demo_opens_the_notebook_and_one_ctrl_c_stops_everything(tmp_path: Path, page) -> None:
    from playwright.sync_api import expect

    data, home = tmp_path / "scandeck-data", tmp_path / "home"
    for sub in ("config", "data", "runtime", "ipython", "settings", "workspaces"):
        (home / sub).mkdir(parents=True)
    env = {
        **os.environ,
        "SCANDECK_DATA": str(data),
        "SCANDECK_LAB_PORT": str(free_port()),
        "SCANDECK_DEMO_NOTEBOOK": str(REPO / "notebooks" / "live_analysis.ipynb"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    before = checkout_state()
    demo = subprocess.Popen(
        [sys.executable, "-m", "scandeck.demo_lab", "--pace", "0.05", "--seed", "2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    out = Output(demo.stdout)
    try:
        port, path, token = out.wait_for(URL, 60).groups()
        assert port == env["SCANDECK_LAB_PORT"] and path == "live_analysis.ipynb"
        out.wait_for(re.compile(r"scan_id +1 .* finished"), 60)  # the beamline writes
        out.wait_for(re.compile(r"watcher: ingested \d+ files?"), 60)  # and the instrument's files go in

        page.goto(f"http://127.0.0.1:{port}/lab/tree/{path}?token={token}")
        tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text="live_analysis.ipynb")
        expect(tab).to_be_visible(timeout=60_000)
        # expect() lets the page's routed requests through while it waits (time.sleep would not).
        expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=60_000)
        wait_for_kernel(page, SimpleNamespace(api=lambda p: _api(port, token, f"api/{p}")), path, timeout=60)
        notification = _api(port, token, "lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert notification["settings"]["fetchNews"] == "false"  # no news prompt
        expect(page.get_by_text("Jupyter news")).to_have_count(0)
        page.screenshot(path=str(artifact("demo-lab-opens-notebook.png")))

        served = _api(port, token, f"api/contents/{path}?content=0")
        assert Path(served["path"]) == Path("live_analysis.ipynb")
        assert (data / "notebooks" / "live_analysis.ipynb").is_file()  # the lab serves the copy
        processes = descendants(demo.pid)
        kernels = _api(port, token, "api/kernels")
        assert kernels and len(processes) >= 3  # the lab, the beamline, the notebook's kernel

        os.killpg(demo.pid, signal.SIGINT)  # one Ctrl-C
        assert demo.wait(60) == 0, out.text
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        out.close(demo.stdout)
    left = sorted(pid for pid in processes if alive(pid))
    assert not left, f"still running after Ctrl-C: {left}"
    assert re.search(r"\d+ runs? written", out.text)  # the beamline stopped cleanly, not killed
    assert re.search(r"watcher: \d+ file\(s\) of the instrument taken", out.text)
    assert any((data / "instrument").rglob("XRD_*.tif"))  # under the data directory, not the checkout
    assert "Shut down this Jupyter server" not in out.text
    assert checkout_state() == before


def _api(port: str, token: str, path: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{path}", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
