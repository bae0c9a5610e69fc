"""Programs the live derived-run tests start in other processes.

``python tests/derived_live_procs.py produce CATALOG GATE N`` runs a real RunEngine: a
scan of ``2 * N`` points of ophyd.sim's ``motor`` and ``det``, which waits after ``N``
points until the file GATE exists, so a test decides when the run may go on and end.
It prints "started UID" once the run is open.

``python tests/derived_live_procs.py follow CATALOG UID OUT K`` follows run UID live
(``Run.follow``), prints "saw K" once it has seen K events, and at the end writes the
documents it saw to OUT as JSON (``[name, doc]`` pairs).
"""

from __future__ import annotations

import json
import os
import sys

import scandeck


def produce(catalog: str, gate: str, n: int) -> None:
    import bluesky.plan_stubs as bps
    from bluesky import RunEngine
    from ophyd.sim import det, motor

    RE = RunEngine({}, context_managers=[])  # noqa: N806
    cat = scandeck.open_catalog(catalog)
    RE.subscribe(cat.writer())
    RE.subscribe(lambda name, doc: print("started", doc["uid"], flush=True) if name == "start" else None)

    def plan():
        yield from bps.open_run({"plan_name": "gated", "num_points": 2 * n})
        for i in range(2 * n):
            if i == n:
                while not os.path.exists(gate):
                    yield from bps.sleep(0.02)
            yield from bps.mv(motor, -1 + 2 * i / (2 * n - 1))
            yield from bps.trigger_and_read([motor, det])
        yield from bps.close_run()

    RE(plan())


def follow(catalog: str, uid: str, out: str, k: int) -> None:
    cat = scandeck.open_catalog(catalog)
    seen: list[list[object]] = []
    events = 0
    told = False
    for name, doc in cat[uid].follow(timeout=120):
        seen.append([name, doc])
        if name == "event":
            events += 1
        elif name == "event_page":
            events += len(doc["seq_num"])
        if events >= k and not told:
            print("saw", events, flush=True)
            told = True
    with open(out, "w") as f:
        json.dump(seen, f)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "produce":
        produce(args[0], args[1], int(args[2]))
    elif command == "follow":
        follow(args[0], args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")
