"""A reader that joins a shared follower and starts after the follower has read the run to its stop.

Found by a flaky test (two ``scandeck.live`` of one short run zipped into ``to_run``): the
second Live's reader joined the follower the first one had started, the follower read
the whole run and told its started readers, and the second reader, started a moment
later, heard nothing: no rows, no end, and the derived run never ended. Here the
window is held open on purpose: the second reader starts only after the first heard
the stop.
"""

from __future__ import annotations

import threading
import time

from scandeck.pipeline.follower import RUN_START, RUN_STOP
from scandeck.pipeline.hub import subscribe


def _listener(reader_box: list, heard: list, rows: list, done: threading.Event):
    def listen(kind, state):
        heard.append(kind)
        taken = reader_box[0].take()
        if taken is not None:
            rows.extend(taken[1].get("x", []))
        if kind == RUN_STOP:
            done.set()

    return listen


def test_a_reader_started_after_the_run_was_read_hears_its_rows_and_stop(sqlite_cat):
    from event_model import compose_run

    bundle = compose_run(metadata={"plan_name": "short"})
    desc = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim:x"}}
    )
    writer = sqlite_cat.writer()
    writer("start", bundle.start_doc)
    writer("descriptor", desc.descriptor_doc)
    for i, x in enumerate([1.0, 2.0, 3.0]):
        writer("event", desc.compose_event(data={"x": x}, timestamps={"x": time.time()}, seq_num=i + 1))
    writer("stop", bundle.compose_stop())
    uid = bundle.start_doc["uid"]

    boxes, heard, rows, done = [[], []], [[], []], [[], []], [threading.Event(), threading.Event()]
    readers = []
    for i in range(2):  # both join the same follower before either starts
        readers.append(subscribe(sqlite_cat.source, uid, listener=_listener(boxes[i], heard[i], rows[i], done[i])))
        boxes[i].append(readers[-1])
    assert readers[0].follower is readers[1].follower
    try:
        readers[0].start()
        assert done[0].wait(30), heard[0]
        readers[1].start()  # the follower has told its stop already
        assert done[1].wait(30), heard[1]
        assert heard[1][0] == RUN_START and heard[1].count(RUN_STOP) == 1
        assert rows[1] == rows[0] == [1.0, 2.0, 3.0]
    finally:
        for reader in readers:
            reader.close()
