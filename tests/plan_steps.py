"""bluesky ``per_step`` hooks for tests: a scan that fails part way, a scan held part way.

Both count the points a plan has taken, so a test can stop or look at a scan at a
known point with a real RunEngine (no documents made by hand).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def failing_after(points: int) -> Callable[..., Any]:
    """A per_step that stops the scan (an exception in the plan) after ``points`` points."""
    from bluesky.plan_stubs import one_nd_step

    done = [0]

    def per_step(detectors, step, pos_cache):
        if done[0] == points:
            raise RuntimeError("beam dump")
        done[0] += 1
        yield from one_nd_step(detectors, step, pos_cache)

    return per_step


@contextmanager
def held_after(
    points: int, RE: Any, plan: Callable[..., Any], *args: Any, hold: float = 30, **kwargs: Any
) -> Iterator[None]:  # noqa: N803
    """Run ``plan(*args, per_step=..., **kwargs)`` on ``RE`` in a thread, held after ``points`` points.

    The block runs while the scan is held (at most ``hold`` seconds); at its end the
    scan goes on and the thread is joined.
    """
    from bluesky.plan_stubs import one_nd_step

    reached, release = threading.Event(), threading.Event()
    done = [0]

    def per_step(detectors, step, pos_cache):
        if done[0] == points:
            reached.set()
            release.wait(hold)
        done[0] += 1
        yield from one_nd_step(detectors, step, pos_cache)

    thread = threading.Thread(target=RE, args=(plan(*args, per_step=per_step, **kwargs),))
    thread.start()
    try:
        if not reached.wait(30):
            raise AssertionError(f"the scan did not reach {points} points in 30 s")
        yield
    finally:
        release.set()
        thread.join(hold)
