"""Ending a RunEngine made in the test process.

Each ``RunEngine()`` made without a loop makes a new asyncio loop and a thread running
it forever: three descriptors (an epoll and a socket pair) and a thread that bluesky
never releases. Made once per test, they add up until a late test's process holds
more than 1,024 descriptors.
"""

from __future__ import annotations

import time
from typing import Any


def stop_run_engine(engine: Any) -> None:
    """Halt ``engine`` if it is running a plan, then stop and close its event loop."""
    from bluesky.run_engine import get_bluesky_event_loop, set_bluesky_event_loop

    if engine.state != "idle":
        engine.halt()
    loop = engine.loop
    if loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    deadline = time.monotonic() + 10
    while loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.001)
    if loop.is_running():
        return  # a callback that never returns: leave it rather than hang the suite
    loop.close()
    if get_bluesky_event_loop() is loop:
        set_bluesky_event_loop(None)  # ophyd-async finds no closed loop there
