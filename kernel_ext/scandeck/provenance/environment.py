"""The software and machine a notebook runs on, for its provenance record.

:func:`capture` is cheap after its first call in a process: the list of
installed distributions is read once and cached (:func:`clear_cache` rereads
it, e.g. after ``pip install`` in a running kernel). The git state of the
notebook's directory is asked of ``git`` each time, with a short timeout.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import threading
from pathlib import Path

from .record import Environment

#: Seconds each git command may take before the git fields are left None.
GIT_TIMEOUT = 3.0

_packages: dict[str, str] | None = None
_packages_lock = threading.Lock()

# Variables that would point git at another repository than the one asked about.
_GIT_ENV_OVERRIDES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
)


def _canonical(name: str) -> str:
    """PEP 503 normalised distribution name: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """Installed distributions, normalised name -> version, sorted (cached per process).

    When a name is installed twice on ``sys.path`` the first one (the one
    imported) wins.
    """
    global _packages
    if _packages is None:
        with _packages_lock:
            if _packages is None:
                from importlib.metadata import distributions

                found: dict[str, str] = {}
                for dist in distributions():
                    try:
                        name = dist.metadata["Name"]
                        version = dist.version
                    except Exception:  # a broken .dist-info must not stop a record
                        continue
                    if name and version is not None:
                        found.setdefault(_canonical(name), str(version))
                _packages = dict(sorted(found.items()))
    return dict(_packages)


def clear_cache() -> None:
    """Forget the cached list of installed distributions."""
    global _packages
    with _packages_lock:
        _packages = None


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or passwd (containers)
        return ""


def _git(directory: Path, *args: str) -> str | None:
    """Output of ``git -C directory args``, or None if git fails, is missing or is slow."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_OVERRIDES}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # status must not take the index lock from a user's git
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def git_state(directory: str | Path) -> tuple[str | None, bool | None]:
    """``(HEAD commit, uncommitted changes?)`` of the repository holding ``directory``.

    ``(None, None)`` outside a repository, in one without commits, or without
    git. Untracked files count as changes (``git status --porcelain``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None, None
    head = _git(directory, "rev-parse", "--verify", "HEAD")
    commit = head.strip() if head else None
    if not commit:
        return None, None
    status = _git(directory, "status", "--porcelain")
    return commit, (None if status is None else bool(status.strip()))


def _notebook_dir(notebook_path: str | Path | None) -> Path:
    if notebook_path is None or str(notebook_path) == "":
        return Path.cwd()
    path = Path(notebook_path).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    return path if path.is_dir() else path.parent


def capture(*, kernel_name: str = "", notebook_path: str | Path | None = None) -> Environment:
    """The environment of this process, and the git state of the notebook's directory.

    ``notebook_path``: the notebook file (or its directory); None means the
    current working directory, which is the notebook's in a Jupyter kernel.

    Examples
    --------
    >>> env = capture(kernel_name="python3", notebook_path="analysis.ipynb")
    >>> env.python == platform.python_version()
    True
    """
    commit, dirty = git_state(_notebook_dir(notebook_path))
    return Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        packages=installed_packages(),
        kernel_name=kernel_name,
        user=_user(),
        host=socket.gethostname() or platform.node(),
        git_commit=commit,
        git_dirty=dirty,
    )


__all__ = ["capture", "installed_packages", "clear_cache", "git_state", "GIT_TIMEOUT"]
