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
    writer = cat.writer()
    RE.subscribe(writer)
    RE(bp.scan([det], motor, -1, 1, 3))
    writer.close()  # no other connection holds the file: SQLite defers no close to it
    cat.close()
    kept = []  # the catalogs stay referenced: close(), not the collector, must release
    with ThreadPoolExecutor(4) as pool:
        cat = scandeck.open_catalog(store)
        list(pool.map(lambda _, c=cat: c[-1].primary.read(), range(4)))  # warm up: imports, the pool's threads
        cat.close()
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


def test_closing_a_facts_sidecar_read_from_other_threads_releases_their_connections(tmp_path):
    from scandeck.sources.facts_overlay import FactsOverlay
    from scandeck.sources.memory import MemorySource

    path = tmp_path / "facts.sqlite"
    kept = []
    with ThreadPoolExecutor(4) as pool:
        FactsOverlay(MemorySource(), path).cell_names()  # warm up: the file exists
        before = open_descriptors()
        for _ in range(50):
            source = FactsOverlay(MemorySource(), path)
            assert list(pool.map(lambda _, s=source: s.cell_names(), range(4))) == [set()] * 4
            source.close()
            kept.append(source)
        assert open_descriptors() == before
        source = kept[-1]  # closed, it reads again from any thread
        assert list(pool.map(lambda _, s=source: s.cell_names(), range(2))) == [set(), set()]
        source.close()
