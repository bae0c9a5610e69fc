"""``./run demo``: the simulated beamline and JupyterLab on the live notebook, from one command.

The lab serves a copy of ``notebooks/live_analysis.ipynb`` in ``<data dir>/notebooks``
(``$SCANDECK_DATA``), so its autosave, the provenance notebooks and the reruns land there
and the checkout stays clean. The printed URL opens that notebook, with its token. One
Ctrl-C stops the beamline (the run in flight still gets its stop document), JupyterLab and
its kernels, and the command exits 0.

The beamline runs with ``--files <data dir>/instrument`` (unless ARGS name ``--files``): a
simulated instrument writes TIFF images and CSV patterns there, a folder per sample, and a
watcher takes them into the same catalog, so the panel also shows a watched run growing.

``python -m scandeck.demo_lab [ARGS]`` is what ``./run demo`` runs after its set-up; ARGS go
to ``scandeck demo``. ``SCANDECK_LAB_PORT`` picks the lab's port (default 8888, or a free
one when 8888 is taken) and ``SCANDECK_DEMO_NOTEBOOK`` the notebook to copy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .config import data_dir

__all__ = ["INSTRUMENT_DIR", "beamline_command", "main", "prepare_notebook", "run_lab_demo"]

#: Where the demo's simulated instrument writes, under the data directory.
INSTRUMENT_DIR = "instrument"
#: The notebook the demo opens, as shipped in the repository.
REPOSITORY_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "live_analysis.ipynb"
LAB_START_TIMEOUT = 60.0
#: How long the beamline and the lab get to stop before they are killed.
STOP_TIMEOUT = 30.0
#: JupyterLab's news prompt shows while fetchNews is "none", whatever news_url says.
QUIET_LAB = {"fetchNews": "false", "checkForUpdates": False}


def prepare_notebook(notebook: Path, workspace: Path) -> tuple[Path, str]:
    """Copy ``notebook`` into ``workspace`` unless an up-to-date copy is there.

    Parameters
    ----------
    notebook
        The notebook shipped in the checkout (never written to).
    workspace
        The directory the lab serves (created if needed).

    Returns
    -------
    tuple of (Path, str)
        The copy, and what was done: ``"copied"``, ``"kept"`` (the copy is as new as the
        shipped one, or newer: the user's edits) or ``"refreshed"`` (the shipped one
        changed since; the previous copy is kept beside it as ``*.previous.ipynb``).

    Examples
    --------
    >>> prepare_notebook(Path("notebooks/live_analysis.ipynb"), data_dir() / "notebooks")  # doctest: +SKIP
    (PosixPath('/home/me/.local/share/scandeck/notebooks/live_analysis.ipynb'), 'copied')
    """
    if not notebook.is_file():
        raise FileNotFoundError(
            f"the demo notebook {notebook} is missing: run ./run demo from a scandeck checkout, "
            "or set SCANDECK_DEMO_NOTEBOOK to a notebook"
        )
    workspace.mkdir(parents=True, exist_ok=True)
    copy = workspace / notebook.name
    if not copy.exists():
        shutil.copy2(notebook, copy)  # copy2: the copy's mtime is the shipped one's, so "older" means it
        return copy, "copied"
    if copy.stat().st_mtime >= notebook.stat().st_mtime:
        return copy, "kept"
    # A newer notebook shipped (a pull): the user's copy may hold edits, so keep it aside.
    os.replace(copy, copy.with_suffix(".previous.ipynb"))
    shutil.copy2(notebook, copy)
    return copy, "refreshed"


def run_lab_demo(
    beamline_args: Sequence[str],
    *,
    notebook: Path = REPOSITORY_NOTEBOOK,
    port: int | None = None,
    say: Callable[[str], Any] = print,
) -> int:
    """Start the beamline and JupyterLab; stop both, and the lab's kernels, on Ctrl-C or SIGTERM.

    Parameters
    ----------
    beamline_args
        Arguments of ``scandeck demo`` (``--pace``, ``--runs``, ``--seed``, ``--catalog``).
    notebook
        The notebook to copy into ``<data dir>/notebooks`` and open.
    port
        The lab's port; ``None``: 8888, or a free port when 8888 is taken.
    say
        Gets the lines meant for the user (the URL among them).

    Returns
    -------
    int
        0 when stopped by the user (or the beamline finished its ``--runs``), else 1.
    """
    data = data_dir()
    copy, done = prepare_notebook(notebook, data / "notebooks")
    port = port or _default_port()
    token = secrets.token_hex(24)
    env = {**os.environ, "SCANDECK_DATA": str(data)}
    log_path = data / "jupyter-lab.log"
    url = f"http://127.0.0.1:{port}/lab/tree/{copy.name}?token={token}"

    stop_requests: list[int] = []

    def request_stop(signum: int, frame: Any) -> None:
        stop_requests.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    try:
        with open(log_path, "wb") as log:
            # Own sessions: the terminal's Ctrl-C reaches only this process, which stops the
            # two in order (so no "Shut down this Jupyter server?" prompt, no second Ctrl-C).
            lab = subprocess.Popen(
                _lab_command(copy, port, token, _lab_settings(data / "lab-settings")),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        children.append(lab)
        if not _wait_for_lab(lab, port, token, stop_requests):
            if lab.poll() is not None:
                say(f"JupyterLab exited with {lab.returncode}; the end of its log ({log_path}):")
                say(log_path.read_text(errors="replace")[-2000:])
                return 1
            return _stop(children, stop_requests, say)  # Ctrl-C while the lab was starting
        say(f"the live notebook ({done} to {copy}) in JupyterLab; open:\n\n    {url}\n")
        say(f"JupyterLab's log: {log_path}; Ctrl-C once stops the beamline, JupyterLab and its kernels")
        command = beamline_command(beamline_args, data)
        if command[-2:] == ["--files", str(data / INSTRUMENT_DIR)]:
            say(f"a simulated instrument writes files into {data / INSTRUMENT_DIR}, watched into the catalog")
        beamline = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        children.append(beamline)
        while not stop_requests and lab.poll() is None and beamline.poll() is None:
            time.sleep(0.1)
        if lab.returncode is not None:
            say(f"JupyterLab exited with {lab.returncode} (its log: {log_path}); stopping the beamline")
        finished = beamline.returncode == 0 and not stop_requests  # --runs N done: the lab stays
        if finished:
            say(f"the beamline finished; JupyterLab keeps serving {url}, Ctrl-C stops it")
            while not stop_requests and lab.poll() is None:
                time.sleep(0.1)
        return _stop(children, stop_requests, say)
    finally:
        for child in children:  # only after an error of ours: kill what is left
            if child.poll() is None:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def beamline_command(beamline_args: Sequence[str], data: Path) -> list[str]:
    """``scandeck demo ARGS``, with ``--files <data>/instrument`` unless ARGS name ``--files``.

    Examples
    --------
    >>> beamline_command(["--pace", "0"], Path("/d"))[3:]
    ['demo', '--pace', '0', '--files', '/d/instrument']
    >>> beamline_command(["--files", "x"], Path("/d"))[-2:]
    ['--files', 'x']
    """
    command = [sys.executable, "-m", "scandeck.cli", "demo", *beamline_args]
    if not any(a == "--files" or a.startswith("--files=") for a in beamline_args):
        command += ["--files", str(data / INSTRUMENT_DIR)]
    return command


def _default_port() -> int:
    text = os.environ.get("SCANDECK_LAB_PORT", "").strip()
    if text:
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError(f"SCANDECK_LAB_PORT must be a port number (1-65535), not {text!r}")
        return int(text)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8888))
            return 8888
        except OSError:  # another lab has 8888: any free port will do, the URL names it
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _lab_settings(directory: Path) -> Path:
    """The demo lab's own user settings directory, without the news prompt.

    Written only when absent: a choice made later in the demo's Settings stays.
    """
    notification = directory / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    if not notification.exists():
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps(QUIET_LAB, indent=1))
    return directory


def _lab_command(notebook: Path, port: int, token: str, settings: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # the printed URL names this port
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebook.parent}",
        f"--LabApp.default_url=/lab/tree/{notebook.name}",  # "/" opens the notebook too
        "--LabApp.news_url=None",
        f"--LabApp.user_settings_dir={settings}",
        "--ScandeckApp.open_panel=True",
    ]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")  # containers and CI run as root
    return command


def _wait_for_lab(lab: subprocess.Popen[bytes], port: int, token: str, stop_requests: list[int]) -> bool:
    """True once the lab answers; False if it exited, did not answer in time, or Ctrl-C came."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline and not stop_requests and lab.poll() is None:
        try:
            with opener.open(request, timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    return False


def _stop(children: list[subprocess.Popen[bytes]], stop_requests: list[int], say: Callable[[str], Any]) -> int:
    """Stop the beamline (as a first Ctrl-C does) and the lab (SIGTERM: it shuts its kernels down)."""
    lab, *rest = children
    beamline = rest[0] if rest else None
    say("stopping the beamline and JupyterLab")
    if beamline is not None and beamline.poll() is None:
        beamline.send_signal(signal.SIGINT)
    if lab.poll() is None:
        lab.send_signal(signal.SIGTERM)
    seen, deadline = len(stop_requests), time.monotonic() + STOP_TIMEOUT
    while any(child.poll() is None for child in children) and time.monotonic() < deadline:
        if len(stop_requests) > seen and beamline is not None and beamline.poll() is None:
            beamline.send_signal(signal.SIGINT)  # another Ctrl-C: the beamline quits at once
        seen = len(stop_requests)
        time.sleep(0.05)
    codes = []
    for child in children:
        if child.poll() is None:
            say(f"{'JupyterLab' if child is lab else 'the beamline'} did not stop in {STOP_TIMEOUT:g} s: killed")
            child.kill()
            child.wait()
        codes.append(child.returncode)
    return 0 if all(code == 0 for code in codes) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scandeck.demo_lab [ARGS of scandeck demo]`` (what ``./run demo`` runs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:  # the options are the beamline's: no lab for its help
        return subprocess.call([sys.executable, "-m", "scandeck.cli", "demo", *args])
    notebook = Path(os.environ.get("SCANDECK_DEMO_NOTEBOOK") or REPOSITORY_NOTEBOOK)

    def say(line: str) -> None:
        print(f"\033[1m[scandeck]\033[0m {line}" if sys.stderr.isatty() else f"[scandeck] {line}", file=sys.stderr)

    try:
        port = _default_port()
    except ValueError as err:
        say(str(err))
        return 1
    try:
        return run_lab_demo(args, notebook=notebook, port=port, say=say)
    except FileNotFoundError as err:  # the notebook: the message says what to do
        say(str(err))
        return 1


if __name__ == "__main__":
    sys.exit(main())
