"""The panel's ``files`` of a watched run (issue 17) on every source: the count so far and the
newest file's path, first found from the run's end, then from where the last look stopped."""

from __future__ import annotations

import pytest
from watched_docs import WatchedRun

from scandeck.server import watched_runs


def test_files_of_a_watched_run_on_every_source(cat, tmp_path) -> None:
    if cat.source.uri.startswith(("http://", "https://", "tiled")):
        # Tiled's server stores the SCANDECK_FILE key `file` as bytes, not as an array: its
        # stream cannot be counted (StoreError), so it holds no readable watched run yet.
        pytest.skip("Tiled does not read SCANDECK_FILE resources as arrays")
    writer = cat.writer()
    try:
        run = WatchedRun(writer, str(tmp_path / "xrd"))
        assert watched_runs.files_of(cat.source, cat.source.get(run.uid)) == {"count": 0, "newest": None}
        for i in range(5):
            run.add(f"S01/XRD_{i:04d}.tif", "tiff")
            run.add(f"S01/XRD_{i:04d}.csv", "table")
        run.resource("S01/XRD_0005.tif", "tiff")  # the next file's documents, its event not yet written
        first = watched_runs.files_of(cat.source, cat.source.get(run.uid))
        assert first == {"count": 10, "newest": "S01/XRD_0004.csv"}
        run.add("S02/XRD_0000.tif", "tiff")
        run.stop()
        ended = cat.source.get(run.uid)
        assert watched_runs.files_of(cat.source, ended) == {"count": 11, "newest": "S02/XRD_0000.tif"}
        watched_runs._seen.clear()  # noqa: SLF001 - a server that never saw the run: from its end
        assert watched_runs.files_of(cat.source, ended) == {"count": 11, "newest": "S02/XRD_0000.tif"}
    finally:
        writer.close()
