"""``scandeck keeper``: persist a Redis bus's finished runs to the archive and trim Redis."""

from __future__ import annotations

import argparse
import re
import signal
import threading
from typing import Any

from .arguments import add_command
from .errors import CliError
from .targets import target_of

__all__ = ["EPILOG", "add_arguments", "add_parsers", "cmd_keeper", "start_keeper_thread"]

EPILOG = """\
examples:
  scandeck keeper redis://bus.example:6379/0?prefix=28id
  scandeck keeper redis://localhost/0?prefix=28id --archive /data/28id/store --max-runs 200
  scandeck keeper redis://localhost/0 --max-age 2d --max-memory 4GB --once
  scandeck keeper redis://localhost/0?prefix=28id --archive tiled+http://tiled.example:8000/raw

Every finished run (stopped, or incomplete for longer than --grace) is copied to
the archive; then runs already copied leave Redis by the limits given. A run not
yet in the archive never leaves Redis, and readers of a trimmed run read it from
the archive transparently. One keeper per bus is active; others wait for it.
A Tiled archive (tiled+http(s)://host:port/CONTAINER, the API key from ?api_key=
or $TILED_API_KEY) gets runs through bluesky-tiled-plugins' TiledWriter; a copy
there that was cut short cannot be completed: the keeper names the run, keeps it
in Redis and goes on. Ctrl-C stops."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 90s, 15m, 12h or 7d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _size(text: str) -> int:
    from ..sources.redis_layout import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("keep at least 1 run")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bus", nargs="?", metavar="REDIS_URI", help="the bus, redis://host:port/db?prefix=P (default: --catalog)"
    )
    parser.add_argument(
        "--archive",
        metavar="PATH|URI",
        help="durable catalog for finished runs: a store path, sqlite://, redis:// or "
        "tiled+http(s)://host:port/CONTAINER (default: archive= in the URI, else the "
        "archive the bus already uses, else the embedded default store)",
    )
    parser.add_argument(
        "--max-runs", type=_limit, default=1000, metavar="N", help="keep at most N runs in Redis (default: 1000)"
    )
    parser.add_argument(
        "--max-age",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="trim runs that ended longer ago (e.g. 12h, 7d)",
    )
    parser.add_argument(
        "--max-memory",
        type=_size,
        default=None,
        metavar="SIZE",
        help="trim the oldest runs while Redis uses more (e.g. 2GB)",
    )
    parser.add_argument(
        "--grace",
        type=_duration,
        default=60.0,
        metavar="DURATION",
        help="how long a run whose writer vanished waits before it counts as finished (default: 60s)",
    )
    parser.add_argument("--once", action="store_true", help="one pass, then exit")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add keeper to the ``scandeck`` sub-parsers."""
    parser = add_command(
        sub, common, "keeper", "persist a Redis bus's finished runs to the archive and trim Redis", EPILOG
    )
    add_arguments(parser)
    parser.set_defaults(handler=cmd_keeper)


def _keeper(args: argparse.Namespace, say: Any) -> Any:
    from ..sources.redis_keeper import Keeper, TrimPolicy

    bus = args.bus or target_of(args)
    if not bus or not bus.startswith(("redis://", "rediss://")):
        raise CliError(
            "the keeper needs a Redis bus", "give it as scandeck keeper redis://host:6379/0?prefix=P", code=2
        )
    policy = TrimPolicy(max_runs=args.max_runs, max_age=args.max_age, max_memory=args.max_memory, grace=args.grace)
    return Keeper(bus, archive=args.archive, policy=policy, say=say)


def cmd_keeper(args: argparse.Namespace) -> int:
    """``scandeck keeper REDIS_URI [--archive A] [--max-runs N] [--max-age D] [--max-memory S]``."""
    from ..safe_text import printable
    from ..uris import redact

    keeper = _keeper(args, lambda line: print(printable(line), flush=True))  # lines name run uids
    try:
        keeper.start()
        if args.once:
            report = keeper.run_once()
            if report.waiting:
                print("another keeper is active on this bus; nothing done")
            else:
                print(
                    f"{len(report.persisted)} persisted, {len(report.trimmed)} trimmed, "
                    f"{len(report.skipped)} could not be persisted"
                )
            return 1 if report.skipped else 0
        print(
            f"scandeck keeper: {redact(keeper.bus.uri)} -> archive {keeper.archive_shown} "
            f"({keeper.policy_text()}); Ctrl-C stops",
            flush=True,
        )
        stop = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            keeper.run_forever(stop)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 0
    finally:
        keeper.close()


def start_keeper_thread(uri: str, stop: threading.Event, say: Any) -> threading.Thread:
    """A keeper with the default policy on a daemon thread (the demo's), until ``stop``."""
    from ..sources.redis_keeper import Keeper

    keeper = Keeper(uri, say=say)

    def keep() -> None:
        try:
            keeper.run_forever(stop)
        except Exception as err:  # noqa: BLE001 - the beamline goes on; say why keeping stopped
            say(f"the keeper stopped: {err}")
        finally:
            keeper.close()

    thread = threading.Thread(target=keep, name="scandeck-keeper", daemon=True)
    thread.start()
    return thread
