"""The install puts both halves of the Scans panel in place: no ``jupyter lab build``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


def listing(*args: str) -> str:
    env = {"PATH": str(Path(sys.executable).parent), "NO_COLOR": "1", "HOME": str(Path.home())}
    done = subprocess.run([JUPYTER, *args], capture_output=True, text=True, timeout=120, env=env)
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # without colour codes


def test_the_prebuilt_lab_extension_is_enabled() -> None:
    assert re.search(r"scandeck v\S+ enabled OK \(python, scandeck\)", listing("labextension", "list"))


def test_the_server_extension_is_enabled_and_loads() -> None:
    text = listing("server", "extension", "list")
    assert re.search(r"scandeck\.server enabled", text)
    assert re.search(r"scandeck\.server \S+ OK", text)
