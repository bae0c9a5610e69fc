"""Programs the multi-process tests start: a RunEngine writer and followers.

``python tests/procs.py write STORE NUM DELAY`` records ``count([det], NUM, DELAY)``;
``python tests/procs.py follow STORE OUT [SLEEP]`` says "following" once it has the
catalog open, follows the next (or current) run and writes the documents it saw to
OUT as JSON;
``python tests/procs.py runs STORE OUT N`` follows the catalog for N new runs;
``python tests/procs.py stream STORE RATE SECONDS [PAGE]`` writes events at RATE per second;
``python tests/procs.py scans STORE SPEC ...`` records one ``scan`` per SPEC ``sample:points[:fail]``
(``fail``: the plan raises after its events, so the run ends with exit status ``fail``) and prints
each run's uid.
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


def stream(store: str, rate: float, seconds: float, page: int) -> None:
    """Write events at ``rate`` per second for ``seconds`` (pages of ``page`` if > 1)."""
    from event_model import compose_run

    cat = scandeck.open_catalog(store)
    writer = cat.writer()
    total = int(rate * seconds)
    bundle = compose_run(metadata={"plan_name": "stream", "num_points": total})
    desc = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "x": {"dtype": "number", "shape": [], "source": "sim:x"},
            "det": {"dtype": "number", "shape": [], "source": "sim:det"},
        },
    )
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    print("writing", flush=True)
    t0 = time.monotonic()
    step = max(page, 1)
    for first in range(0, total, step):
        n = min(step, total - first)
        seq = list(range(first + 1, first + n + 1))
        now = time.time()
        if page > 1:
            writer(
                "event_page",
                desc.compose_event_page(
                    data={"x": [float(s) for s in seq], "det": [float(s % 7) for s in seq]},
                    timestamps={"x": [now] * n, "det": [now] * n},
                    seq_num=seq,
                    time=[now] * n,
                ),
            )
        else:
            writer(
                "event",
                desc.compose_event(
                    data={"x": float(seq[0]), "det": float(seq[0] % 7)},
                    timestamps={"x": now, "det": now},
                    seq_num=seq[0],
                ),
            )
        ahead = t0 + (first + n) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    writer("stop", bundle.compose_stop())


def scans(store: str, specs: list[str]) -> None:
    import bluesky.plan_stubs as bps
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import SynAxis, SynGauss

    RE = RunEngine({}, context_managers=[])  # noqa: N806
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    motor = SynAxis(name="motor")
    det = SynGauss("det", motor, "motor", center=0.25, Imax=1, sigma=0.5)
    uids: list[str] = []
    RE.subscribe(lambda name, doc: uids.append(doc["uid"]) if name == "start" else None)
    for spec in specs:
        sample, points, *flags = spec.split(":")
        steps: list[int] = []

        def per_step(detectors, step, pos_cache, steps=steps, points=int(points), fail="fail" in flags):
            yield from bps.one_nd_step(detectors, step, pos_cache)
            steps.append(1)
            if fail and len(steps) == points:
                raise RuntimeError("failed on purpose")

        try:
            RE(bp.scan([det], motor, -1, 1, int(points), per_step=per_step, md={"sample": sample}))
        except RuntimeError:
            pass
        print(uids[-1], flush=True)


def follow(store: str, out: str, sleep: float = 0.0) -> None:
    cat = scandeck.open_catalog(store)
    print("following", flush=True)
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
    elif command == "stream":
        stream(args[0], float(args[1]), float(args[2]), int(args[3]) if len(args) > 3 else 1)
    elif command == "scans":
        scans(args[0], args[1:])
    elif command == "runs":
        runs(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {command!r}")
