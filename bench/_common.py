"""Helpers shared by the benchmarks: realistic documents, timing, printing.

Documents are built with ``event_model.compose_run`` (and the descriptor
bundle's ``compose_event`` / ``compose_event_page``), shaped like what
bluesky's ``grid_scan([det4], motor1, ..., motor2, ...)`` emits with
``ophyd.sim``: keys ``motor1``, ``motor1_setpoint``, ``motor2``,
``motor2_setpoint`` and ``det4``, all float64, the same descriptor layout
(data_keys, configuration, hints, object_keys).

Only the standard library, numpy and event_model are used here, so that every
script measures scandeck and its peer on exactly the same documents.
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import event_model

Doc = tuple[str, dict[str, Any]]

MOTORS = ("motor1", "motor2")
KEYS = ("motor1", "motor1_setpoint", "motor2", "motor2_setpoint", "det4")


# --------------------------------------------------------------------- arguments


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test in seconds")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def banner(title: str, quick: bool) -> None:
    import sqlite3

    import msgpack

    print(f"== {title}{'  [--quick: small sizes, figures not representative]' if quick else ''}")
    print(
        f"   python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"msgpack {msgpack.version}, event_model {event_model.__version__}, "
        f"{platform.machine()} {_cpus()} cpu(s), load average {_load()}"
    )


def _load() -> str:
    import os

    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------ timing


def timed(
    fn: Callable[[], Any], repeat: int, *, setup: Callable[[], Any] | None = None, warmup: int = 1
) -> list[float]:
    """Wall times (perf_counter) of ``repeat`` calls of ``fn`` after ``warmup`` calls.

    ``setup`` (untimed) runs before every call, warm-up calls included.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    out = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]],
    repeat: int,
    *,
    warmup: int = 1,
    block: int = 1,
) -> dict[str, list[float]]:
    """``repeat`` times of each ``{label: (fn, setup)}`` case, the cases taking turns.

    Each turn runs one case ``block`` times in a row, after one untimed warm-up
    call when ``block`` > 1 (so that a case never pays for the cache its
    predecessor evicted); the order of the cases rotates from round to round.
    A neighbour's load on this (shared) machine thus hits every case alike and
    the ratios stay meaningful even when the absolute figures move.
    """
    labels = list(cases)
    out: dict[str, list[float]] = {k: [] for k in labels}

    def once(label: str) -> float:
        fn, setup = cases[label]
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    for _ in range(warmup):
        for label in labels:
            once(label)
    r = 0
    while any(len(v) < repeat for v in out.values()):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if block > 1:
                once(label)
            for _ in range(min(block, repeat - len(out[label]))):
                out[label].append(once(label))
        r += 1
    return out


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def percentile(times: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 50 samples is the largest but none."""
    ordered = sorted(times)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_rate(per_second: float) -> str:
    if per_second >= 1e6:
        return f"{per_second / 1e6:.3g} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.3g} k/s"
    return f"{per_second:.3g} /s"


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "   ") -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers))
    print(indent + "  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


# --------------------------------------------------------------------- documents


def _grid_start_metadata(nx: int, ny: int, scan_id: int) -> dict[str, Any]:
    """What bluesky's grid_scan puts in its start document (minus the RunEngine's own keys)."""
    args = ["motor1", -1.5, 1.5, nx, "motor2", -0.1, 0.1, ny, False]
    return {
        "scan_id": scan_id,
        "plan_name": "grid_scan",
        "plan_type": "generator",
        "plan_args": {"detectors": ["det4"], "args": args, "per_step": "None"},
        "plan_pattern": "outer_product",
        "plan_pattern_module": "bluesky.plan_patterns",
        "plan_pattern_args": {"args": args},
        "detectors": ["det4"],
        "motors": list(MOTORS),
        "num_points": nx * ny,
        "num_intervals": nx * ny - 1,
        "shape": [nx, ny],
        "extents": [[-1.5, 1.5], [-0.1, 0.1]],
        "snaking": [False, False],
        "hints": {"dimensions": [[["motor1"], "primary"], [["motor2"], "primary"]], "gridding": "rectilinear"},
        "sample": "Ni",
        "operator": "jdoe",
        "proposal": "GU-300001",
        "versions": {"bluesky": "1.15.1", "ophyd": "1.11.2", "event_model": event_model.__version__},
    }


def _data_key(name: str, obj: str) -> dict[str, Any]:
    return {
        "dtype": "number",
        "shape": [],
        "source": f"SIM:{name}",
        "precision": 3,
        "object_name": obj,
        "units": "mm" if obj.startswith("motor") else "counts",
    }


def _descriptor_args(t: float) -> dict[str, Any]:
    config_keys = {
        "det4": {"det4_Imax": 1, "det4_sigma": 1, "det4_noise_multiplier": 1},
        "motor1": {"motor1_velocity": 1, "motor1_acceleration": 1},
        "motor2": {"motor2_velocity": 1, "motor2_acceleration": 1},
    }
    configuration = {
        obj: {
            "data": dict(vals),
            "timestamps": {k: t for k in vals},
            "data_keys": {k: {"dtype": "integer", "shape": [], "source": f"SIM:{k}"} for k in vals},
        }
        for obj, vals in config_keys.items()
    }
    return {
        "name": "primary",
        "data_keys": {
            "motor1": _data_key("motor1", "motor1"),
            "motor1_setpoint": _data_key("motor1_setpoint", "motor1"),
            "motor2": _data_key("motor2", "motor2"),
            "motor2_setpoint": _data_key("motor2_setpoint", "motor2"),
            "det4": _data_key("det4", "det4"),
        },
        "configuration": configuration,
        "hints": {
            "motor1": {"fields": ["motor1"]},
            "motor2": {"fields": ["motor2"]},
            "det4": {"fields": ["det4"]},
        },
        "object_keys": {
            "motor1": ["motor1", "motor1_setpoint"],
            "motor2": ["motor2", "motor2_setpoint"],
            "det4": ["det4"],
        },
        "time": t,
    }


Row = tuple[float, dict[str, float], dict[str, float]]


def _grid_rows(nx: int, ny: int, t0: float, seed: int) -> Iterable[Row]:
    """(time, data, timestamps) per point: motor1 outer, motor2 inner, a 2-D Gaussian + noise."""
    rng = random.Random(seed)
    i = 0
    for ix in range(nx):
        x = -1.5 + 3.0 * ix / max(nx - 1, 1)
        for iy in range(ny):
            y = -0.1 + 0.2 * iy / max(ny - 1, 1)
            t = t0 + 0.05 * (i + 1)
            rx = x + rng.gauss(0.0, 1e-4)  # readbacks differ a little from setpoints
            ry = y + rng.gauss(0.0, 1e-4)
            det = math.exp(-(rx * rx + ry * ry) / 2.0) + rng.gauss(0.0, 1e-3)
            data = {"motor1": rx, "motor1_setpoint": x, "motor2": ry, "motor2_setpoint": y, "det4": det}
            stamps = {
                "motor1": t - 3e-3,
                "motor1_setpoint": t - 3e-3,
                "motor2": t - 2e-3,
                "motor2_setpoint": t - 2e-3,
                "det4": t - 1e-3,
            }
            yield t, data, stamps
            i += 1


def grid_scan_run(
    nx: int, ny: int, *, page_size: int = 0, scan_id: int = 1, t0: float = 1.7e9, seed: int = 0
) -> list[Doc]:
    """A finished ``nx × ny`` grid_scan: start, descriptor, events (or pages), stop.

    ``page_size`` > 0 packs the events into ``event_page`` documents of that many
    events (the last one may be shorter); 0 gives one ``event`` per point, as the
    RunEngine emits them.
    """
    bundle = event_model.compose_run(metadata=_grid_start_metadata(nx, ny, scan_id), time=t0, validate=False)
    docs: list[Doc] = [("start", bundle.start_doc)]
    desc = bundle.compose_descriptor(**_descriptor_args(t0 + 0.01), validate=False)
    docs.append(("descriptor", desc.descriptor_doc))
    rows = _grid_rows(nx, ny, t0, seed)
    if page_size <= 0:
        for seq, (t, data, stamps) in enumerate(rows, 1):
            docs.append(
                ("event", desc.compose_event(data=data, timestamps=stamps, seq_num=seq, time=t, validate=False))
            )
    else:
        import uuid

        buf: list[Row] = []
        seq = 0

        def flush() -> None:
            nonlocal seq
            n = len(buf)
            page = desc.compose_event_page(
                data={k: [r[1][k] for r in buf] for k in KEYS},
                timestamps={k: [r[2][k] for r in buf] for k in KEYS},
                seq_num=list(range(seq + 1, seq + n + 1)),
                time=[r[0] for r in buf],
                uid=[str(uuid.uuid4()) for _ in buf],
                validate=False,
            )
            docs.append(("event_page", page))
            seq += n
            buf.clear()

        for row in rows:
            buf.append(row)
            if len(buf) == page_size:
                flush()
        if buf:
            flush()
    docs.append(
        ("stop", bundle.compose_stop(exit_status="success", time=t0 + 0.05 * (nx * ny + 2), validate=False))
    )
    return docs


def count_events(docs: Iterable[Doc]) -> int:
    n = 0
    for name, doc in docs:
        if name == "event":
            n += 1
        elif name == "event_page":
            n += len(doc["seq_num"])
    return n


def write_msgpack_file(path: str, docs: Iterable[Doc]) -> int:
    """``msgpack.packb([name, doc])`` per document, concatenated; returns the size in bytes."""
    import msgpack

    size = 0
    with open(path, "wb") as f:
        for name, doc in docs:
            blob = msgpack.packb([name, doc], use_bin_type=True)
            f.write(blob)
            size += len(blob)
    return size


def profile_top(fn: Callable[[], Any], n: int = 12, sort: str = "tottime") -> list[tuple[str, int, float, float]]:
    """``(function, calls, tottime, cumtime)`` of the ``n`` costliest functions in one call of ``fn``."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename
        for marker in ("site-packages/", "kernel_ext/", "lib/python"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        rows.append((f"{short}:{line}({func})", nc, tt, ct))
    key = 2 if sort == "tottime" else 3
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:n]


def print_profile(title: str, fn: Callable[[], Any], n: int = 12) -> None:
    rows = profile_top(fn, n)
    print(f"   {title} (cProfile, one call, sorted by own time; profiler overhead inflates small calls)")
    print_table(
        ["function", "calls", "own", "cumulative"],
        [(f[:90], c, fmt_time(tt), fmt_time(ct)) for f, c, tt, ct in rows],
        indent="     ",
    )


def fail_soft(label: str, fn: Callable[[], Any]) -> Any:
    """Run an optional part (it reaches into scandeck internals that may change); never abort."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - a benchmark must exit 0; say what broke
        print(f"   ({label} skipped: {type(err).__name__}: {err})", file=sys.stderr)
        return None


# ------------------------------------------------------------------ helper processes


def free_port() -> int:
    """A free loopback TCP port (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far, from ``/proc`` (10 ms ticks)."""
    import os

    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RedisServer:
    """A private redis-server on a free loopback port, no persistence; stopped by its own pid.

    Never a system Redis: the benchmark owns this server and may flush it.
    Kept apart from ``tests/redis_server.py`` on purpose (the benchmarks must
    not move when a test helper changes).
    """

    def __init__(self, directory: str) -> None:
        import shutil

        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.exe, self.dir, self.port = exe, directory, free_port()
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> RedisServer:
        import os
        import socket
        import subprocess

        log = os.path.join(self.dir, "redis.log")
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--logfile",
                log,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = open(log).read()[-2000:] if os.path.exists(log) else ""
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{text}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001 - it would not stop: kill it, by its pid
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class JupyterServer:
    """A real ``jupyter server`` of this venv on a free loopback port; stopped by its own pid.

    Its user-level config, data and runtime directories (and ``$SCANDECK_DATA``) are
    private directories under ``directory``; the venv's own jupyter paths stay, so the
    server extensions installed in the venv (``scandeck.server`` among them) are enabled
    as in a user's ``jupyter lab``. ``args`` are added to the command line. Requests
    authenticate with ``Authorization: token ...`` (:attr:`headers`).
    """

    def __init__(self, directory: str, args: Sequence[str] = ()) -> None:
        import os
        import secrets

        self.dir, self.args, self.port = directory, list(args), free_port()
        self.token = secrets.token_hex(24)
        self.root = os.path.join(directory, "root")
        self.log_path = os.path.join(directory, "jupyter-server.log")
        self.proc: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, probe: str, timeout: float = 90) -> JupyterServer:
        """Start it and wait until ``GET probe`` (a path under ``/``) answers 200."""
        import http.client
        import os
        import subprocess
        from pathlib import Path

        env = dict(os.environ)
        for var in ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTER_NO_CONFIG", "SCANDECK_CATALOG"):
            env.pop(var, None)  # the venv's own paths, nothing from the caller's shell
        for var, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("SCANDECK_DATA", "scandeck-data"),
        ):
            env[var] = os.path.join(self.dir, sub)
            os.makedirs(env[var], exist_ok=True)
        os.makedirs(self.root, exist_ok=True)
        exe = str(Path(sys.executable).with_name("jupyter"))
        argv = [
            exe,
            "server",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--allow-root",
            f"--ServerApp.root_dir={self.root}",
            *self.args,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    conn.request("GET", probe, headers=self.headers)
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
                if resp.status == 200:
                    return self
                last = f"{resp.status} {body[:300]!r}"
            except OSError as err:
                last = f"{type(err).__name__}: {err}"
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = open(self.log_path, errors="replace").read()[-3000:]
                raise RuntimeError(
                    f"jupyter server on port {self.port} did not answer GET {probe} ({last}):\n{text}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; by its own pid. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001 - it would not stop: kill it, by its pid
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
