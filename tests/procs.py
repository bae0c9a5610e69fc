"""Programs the multi-process tests start: a RunEngine writer and followers.

``python tests/procs.py write STORE NUM DELAY`` records ``count([det], NUM, DELAY)``;
``python tests/procs.py follow STORE OUT [SLEEP]`` follows the next (or current)
run and writes the documents it saw to OUT as JSON;
``python tests/procs.py runs STORE OUT N`` follows the catalog for N new runs.
"""

from __future__ import annotations

import json
import sys
import time

import scandeck


def write(store: str, num: int, delay: float) -> None:
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det

    RE = RunEngine({}, context_managers=[])  # noqa: N806
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    print("writing", flush=True)
    RE(bp.count([det], num=num, delay=delay), sample="Ni")


def follow(store: str, out: str, sleep: float = 0.0) -> None:
    cat = scandeck.open_catalog(store)
    deadline = time.monotonic() + 30
    while not len(cat):  # wait for the writer's run to appear
        if time.monotonic() > deadline:
            raise SystemExit("no run appeared")
        time.sleep(0.005)
    seen = []
    for pos, name, doc in cat[-1].follow(positions=True, timeout=30):
        seen.append([pos, name, doc.get("uid") or doc.get("datum_id")])
        if sleep:
            time.sleep(sleep)
    with open(out, "w") as f:
        json.dump(seen, f)


def runs(store: str, out: str, n: int) -> None:
    cat = scandeck.open_catalog(store)
    print("following", flush=True)
    uids = []
    for run in cat.follow(timeout=30):
        uids.append(run.uid)
        if len(uids) == n:
            break
    with open(out, "w") as f:
        json.dump(uids, f)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "write":
        write(args[0], int(args[1]), float(args[2]))
    elif command == "follow":
        follow(args[0], args[1], float(args[2]) if len(args) > 2 else 0.0)
    elif command == "runs":
        runs(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {command!r}")
