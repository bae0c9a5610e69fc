"""A real redis-server for tests, started on a free port (Debian's redis-server package).

``./run test`` installs the package when it is missing; without it, tests that
need Redis fail with a message that says how to install it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process; ``appendonly`` keeps its data across :meth:`restart`.

    With ``password`` it runs with ``--requirepass``; :attr:`url` then still has no
    password in it, :meth:`url_with` puts one in.
    """

    def __init__(
        self, directory: Path, *, appendonly: bool = False, port: int | None = None, password: str | None = None
    ) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server (./run test does it)")
        self.exe = exe
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_with(self, userinfo: str) -> str:
        """The URL with ``userinfo@`` (``":PASSWORD"``, ``"USER:PASSWORD"``) before the host."""
        return f"redis://{userinfo}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.password is not None:
            args += ["--requirepass", self.password]
        hello = b"PING\r\n" if self.password is None else f"AUTH {self.password}\r\nPING\r\n".encode()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(hello)
                    answer = b""
                    while answer.count(b"\r\n") < hello.count(b"\r\n"):  # one reply line per command
                        chunk = s.recv(64)
                        if not chunk:
                            break
                        answer += chunk
                    if answer.endswith(b"+PONG\r\n"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: Redis finishes writing its append-only file, then exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
