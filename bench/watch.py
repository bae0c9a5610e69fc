"""Instrument files across machines: ``scandeck watch --transfer`` against ``cp`` and raw redis-py.

The pipeline measured is the one of issue 17: an instrument closes a file in a
watched directory; ``scandeck watch DIR --catalog redis://... --transfer`` (its
own process, the real command) finds it complete, hashes it, sends its bytes
through the Redis bus in 512 kB chunks and writes its documents; a reader in
another process follows the watched run and, for each file, gets a verified
copy (sha256 checked) into its own cache. Timed per file: from just after the
writer's ``close()`` to the reader's copy being verified.

The reader fetches through ``scandeck.files.providers.fetch``, which is what
``scandeck.files.handler.local_file`` does on a machine that cannot see DIR
(here it could, so it skips that first look; the bytes come from Redis).

Cases: 1,000 small files of 64 kB, and 2 GB in ten files of 200 MB (random
bytes, so the opaque ``bytes`` reader: no format parsing). The writer (this
process) writes files back to back, as fast as the disk takes them.

In the same run, with the same files:

* **limit, raw redis-py**: a producer process is told each file's path the
  moment it is closed (a pipe), reads it and ``XADD``s its 512 kB chunks,
  pipelined, to a stream; a consumer process ``XREAD BLOCK``s them, writes each
  file and checks its sha256. The transport with nothing else: no completion
  detection, no ledger, no documents, no second hash.
* **limit, cp**: ``cp -r`` of the written directory to another on the same
  disk (its MB/s; the page cache holds the source).

Figures: files/s and MB/s from the first close to the last verified copy, and
p50/p99 of the per-file latency; the ratios of scandeck to each limit.
One redis-server of our own on a free port, flushed between cases. Every
process started here is stopped by its pid.

Usage: ``python bench/watch.py [--quick]``
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RedisServer, banner, fmt_ratio, fmt_time, parse_args, percentile, print_table  # noqa: E402

HERE = os.path.abspath(__file__)
CHUNK = 512 * 1024
MB = 1e6

FULL = {"small": (1000, 64 * 1024), "large": (10, 200 * 1024 * 1024)}
QUICK = {"small": (40, 16 * 1024), "large": (2, 4 * 1024 * 1024)}


# ------------------------------------------------------------------ the child roles


def reader_main(uri: str, n: int, out: str) -> None:
    """Follow the newest watched run; fetch each file from the bus, verified; log the times."""
    import scandeck
    from scandeck.files import providers
    from scandeck.files.layout import SPEC

    cat = scandeck.open_catalog(uri)
    print("ready", flush=True)
    run = next(r for r in cat.follow(timeout=300) if r.start.get("plan_name") == "watch")
    got: list[tuple[str, float, str]] = []
    for name, doc in run.follow(timeout=300):
        if name != "resource" or doc.get("spec") != SPEC:
            continue
        kw = doc["resource_kwargs"]
        path = providers.fetch(kw["run"], kw["sha256"], kw["size"], what=doc["resource_path"])
        if path is None:
            raise SystemExit(f"the bus does not hold {doc['resource_path']}")
        got.append((doc["resource_path"], time.time(), kw["sha256"]))
        if len(got) == n:
            break
    with open(out, "w") as f:
        json.dump(got, f)
    cat.close()


def raw_producer_main(url: str) -> None:
    """Each path read from stdin: its chunks XADDed, pipelined, with its sha256 on the last."""
    import redis

    r = redis.Redis.from_url(url)
    print("ready", flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            break
        digest = hashlib.sha256()
        pipe = r.pipeline(transaction=False)
        name = os.path.basename(path)
        with open(path, "rb") as f:
            offset, pending = 0, 0
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                pipe.xadd("raw", {"f": name, "o": offset, "d": chunk})
                offset += len(chunk)
                pending += 1
                if pending == 16:
                    pipe.execute()
                    pending = 0
        pipe.xadd("raw", {"f": name, "o": offset, "end": digest.hexdigest()})
        pipe.execute()


def raw_consumer_main(url: str, n: int, directory: str, out: str) -> None:
    """XREAD BLOCK the chunks, write each file, check its sha256; log the times."""
    import redis

    r = redis.Redis.from_url(url)
    print("ready", flush=True)
    last, files, got = "0-0", {}, []
    while len(got) < n:
        for _, entries in r.xread({"raw": last}, block=60_000, count=64) or []:
            for entry_id, fields in entries:
                last = entry_id
                name = fields[b"f"].decode()
                if b"end" in fields:
                    f, digest = files.pop(name)
                    f.close()
                    if digest.hexdigest() != fields[b"end"].decode():
                        raise SystemExit(f"{name}: the copy's sha256 differs")
                    got.append((name, time.time(), fields[b"end"].decode()))
                    continue
                if name not in files:
                    files[name] = (open(os.path.join(directory, name), "wb"), hashlib.sha256())
                f, digest = files[name]
                f.write(fields[b"d"])
                digest.update(fields[b"d"])
    with open(out, "w") as fh:
        json.dump(got, fh)


# ---------------------------------------------------------------------- the parent


def _spawn(args: list[str], env: dict[str, str], log: str, stdin: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)


def _ready(proc: subprocess.Popen[str], what: str) -> None:
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "ready":
        raise RuntimeError(f"{what} did not start (exit {proc.poll()}); see its log")


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _write_files(directory: str, n: int, size: int, base: bytes, on_close: Any = None) -> dict[str, float]:
    """``n`` files of ``size`` bytes (``base`` with the index in front); close times by name."""
    closed = {}
    for i in range(n):
        name = f"frame_{i:05d}.bin"
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(i.to_bytes(8, "little"))
            f.write(memoryview(base)[8:size])
        closed[name] = time.time()
        if on_close is not None:
            on_close(path)
    return closed


def _figures(closed: dict[str, float], got: list[Any], size: int) -> dict[str, float]:
    lat = [t - closed[os.path.basename(name)] for name, t, _ in got]
    span = max(t for _, t, _ in got) - min(closed.values())
    n = len(got)
    return {
        "files_s": n / span,
        "mb_s": n * size / MB / span,
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "span": span,
    }


def trial_scandeck(tmp: str, redis: RedisServer, n: int, size: int, base: bytes, env: dict[str, str]) -> dict:
    src, out = os.path.join(tmp, "src"), os.path.join(tmp, "reader.json")
    os.makedirs(src)
    uri = f"{redis.url}?prefix=bw"
    reader = _spawn(
        [sys.executable, HERE, "--role", "reader", uri, str(n), out],
        {**env, "SCANDECK_FILE_CACHE": os.path.join(tmp, "cache")},
        os.path.join(tmp, "reader.log"),
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "scandeck.cli", "watch", src, "--catalog", uri, "--transfer", "--settle", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(tmp, "watch.log"), "w"),
    )
    try:
        _ready(reader, "the reader")
        deadline = time.monotonic() + 60
        while "scandeck watch:" not in open(os.path.join(tmp, "watch.log")).read():
            if watcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("scandeck watch did not start:\n" + open(os.path.join(tmp, "watch.log")).read())
            time.sleep(0.05)
        time.sleep(3.0)  # its start-up (imports, the first scan) is not timed
        closed = _write_files(src, n, size, base)
        if reader.wait(900) != 0:
            raise RuntimeError("the reader failed:\n" + open(os.path.join(tmp, "reader.log")).read())
        got = json.load(open(out))
    finally:
        _stop([reader, watcher])  # type: ignore[list-item]
    return _figures(closed, got, size)


def trial_raw(tmp: str, redis: RedisServer, n: int, size: int, base: bytes, env: dict[str, str]) -> dict:
    src, dst, out = os.path.join(tmp, "src"), os.path.join(tmp, "dst"), os.path.join(tmp, "raw.json")
    os.makedirs(src)
    os.makedirs(dst)
    consumer = _spawn(
        [sys.executable, HERE, "--role", "raw-consumer", redis.url, str(n), dst, out],
        env,
        os.path.join(tmp, "consumer.log"),
    )
    producer = _spawn(
        [sys.executable, HERE, "--role", "raw-producer", redis.url],
        env,
        os.path.join(tmp, "producer.log"),
        stdin=subprocess.PIPE,
    )
    try:
        _ready(consumer, "the raw consumer")
        _ready(producer, "the raw producer")

        def tell(path: str) -> None:
            assert producer.stdin is not None
            producer.stdin.write(path + "\n")
            producer.stdin.flush()

        closed = _write_files(src, n, size, base, tell)
        tell("")
        if consumer.wait(900) != 0:
            raise RuntimeError("the raw consumer failed:\n" + open(os.path.join(tmp, "consumer.log")).read())
        got = json.load(open(out))
    finally:
        _stop([consumer, producer])
    return _figures(closed, got, size)


def trial_cp(tmp: str, n: int, size: int, base: bytes) -> dict:
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    _write_files(src, n, size, base)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", src, os.path.join(tmp, "copy")], check=True)
    span = time.perf_counter() - t0
    nan = float("nan")
    return {"files_s": n / span, "mb_s": n * size / MB / span, "p50": nan, "p99": nan, "span": span}


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    sizes = QUICK if args.quick else FULL
    banner("instrument files: scandeck watch --transfer -> a reader's verified copy", args.quick)
    top = tempfile.mkdtemp(prefix="scandeck-bench-watch-")
    env = {**os.environ, "SCANDECK_DATA": os.path.join(top, "data")}
    redis = RedisServer(top).start()
    rows = []
    try:
        for case, (n, size) in sizes.items():
            base = os.urandom(size)
            results = {}
            for name, trial in (("scandeck", trial_scandeck), ("raw", trial_raw), ("cp", None)):
                tmp = tempfile.mkdtemp(dir=top, prefix=f"{case}-{name}-")
                if trial is None:
                    results[name] = trial_cp(tmp, n, size, base)
                else:
                    results[name] = trial(tmp, redis, n, size, base, env)
                    _flush(redis)
                shutil.rmtree(tmp, ignore_errors=True)
            what = f"{n:,} x {size / 1024:,.0f} kB" if size < 1 << 20 else f"{n:,} x {size / (1 << 20):,.0f} MiB"
            ours = results["scandeck"]
            for name, label in (
                ("scandeck", "scandeck watch --transfer -> reader"),
                ("raw", "limit: raw redis-py XADD/XREAD"),
                ("cp", "limit: cp -r, same disk"),
            ):
                r = results[name]
                rows.append(
                    [
                        what,
                        label,
                        f"{r['files_s']:,.1f}",
                        f"{r['mb_s']:,.1f}",
                        "-" if r["p50"] != r["p50"] else fmt_time(r["p50"]),
                        "-" if r["p99"] != r["p99"] else fmt_time(r["p99"]),
                        "1.00x" if name == "scandeck" else fmt_ratio(ours["mb_s"], r["mb_s"]),
                    ]
                )
    finally:
        redis.stop()
        shutil.rmtree(top, ignore_errors=True)
    print()
    print_table(["files", "path", "files/s", "MB/s", "latency p50", "p99", "scandeck / this"], rows)
    print("\n   MB/s are 10^6 bytes per second, from the first close to the last verified copy.")
    return 0


def _flush(redis: RedisServer) -> None:
    import redis as redis_py

    redis_py.Redis.from_url(redis.url).flushall()


def _child(argv: list[str]) -> None:
    role, rest = argv[0], argv[1:]
    if role == "reader":
        reader_main(rest[0], int(rest[1]), rest[2])
    elif role == "raw-producer":
        raw_producer_main(rest[0])
    elif role == "raw-consumer":
        raw_consumer_main(rest[0], int(rest[1]), rest[2], rest[3])
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        _child(sys.argv[2:])
        sys.exit(0)
    sys.exit(main())
