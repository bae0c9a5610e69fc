"""Opening and closing a store again and again leaves no descriptor open.

A long-lived kernel opens catalogs again and again, and reads them from other threads
(followers, thread pools): each close must release every descriptor those reads took.
"""

from __future__ import annotations

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import bluesky.plans as bp
from ophyd.sim import det, motor

import scandeck


def open_descriptors() -> int:
    gc.collect()  # count what is held, not what is waiting for the collector
    return len(os.listdir("/proc/self/fd"))


def test_closing_a_catalog_read_from_other_threads_releases_their_connections(tmp_path, RE):
    store = tmp_path / "store"
    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    RE(bp.scan([det], motor, -1, 1, 3))
    cat.close()
    kept = []  # the catalogs stay referenced: close(), not the collector, must release
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: scandeck.open_catalog(store)[-1].primary.read(), range(4)))  # warm up
        before = open_descriptors()
        for _ in range(50):
            cat = scandeck.open_catalog(store)
            sums = list(pool.map(lambda _, c=cat: float(c[-1].primary.read()["det"].sum()), range(4)))
            assert len(set(sums)) == 1
            cat.close()
            kept.append(cat)
        assert open_descriptors() == before


def test_a_closed_catalog_reads_again_from_any_thread(tmp_path, RE):
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([det], num=2))
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: cat[uid].uid, range(2))) == [uid, uid]
        cat.close()
        assert list(pool.map(lambda _: len(cat[uid].primary.read()["det"]), range(2))) == [2, 2]
    cat.close()
