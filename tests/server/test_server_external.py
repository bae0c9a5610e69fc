"""The panel's preview of a run whose detector writes files: values read from them, never ids."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import scandeck
from scandeck.external import uri_to_path

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_ophyd_async import step_scan_into  # noqa: E402 - the ophyd-async beamline of the tests


async def test_preview_plots_an_external_scalar_read_from_its_hdf5_file(api, paths, tmp_path):
    cat = scandeck.open_catalog()
    _, uid, sums = step_scan_into(cat, tmp_path / "files", 4)
    cat.close()
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200
    assert body["x"]["name"] == "stage-x" and np.allclose(body["x"]["values"], [-1, -1 / 3, 1 / 3, 1])
    assert body["y"] == [{"name": "bdet-sum", "values": sums.tolist()}]
    assert body["num_events"] == 4
    code, body = await api(f"runs/{uid}")
    assert code == 200 and body["run"]["num_events"] == 4


async def test_preview_without_the_file_plots_the_rest_and_says_what_it_skipped(api, paths, tmp_path):
    import os

    cat = scandeck.open_catalog()
    beamline, uid, _ = step_scan_into(cat, tmp_path / "files", 3)
    (sres, *_) = beamline.of(uid, "stream_resource")
    beamline.bdet.pattern_generator.close_file()
    os.remove(uri_to_path(sres["uri"]))
    cat.close()
    code, body = await api(f"runs/{uid}/preview")
    assert code == 200
    assert body["x"]["name"] == "stage-x" and len(body["x"]["values"]) == 3 and body["y"] == []
    (skipped,) = body["skipped"]
    assert skipped["name"] == "bdet-sum" and "does not exist" in skipped["reason"]
