"""scandeck.peaks agrees with bluesky's PeakStats, run on the same scans by the same RunEngine."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky.callbacks.fitting import PeakStats
from bluesky.plans import count, grid_scan, rel_scan, scan

import scandeck
from scandeck.peak_stats import NotAScan, peak_stats


def _compare(ours, theirs):
    assert ours.max_at == pytest.approx(theirs.max[0]) and ours.max == pytest.approx(theirs.max[1])
    assert ours.min_at == pytest.approx(theirs.min[0]) and ours.min == pytest.approx(theirs.min[1])
    assert ours.com == pytest.approx(theirs.com)
    if theirs.cen is None:
        assert ours.cen is None and ours.fwhm is None and ours.crossings == ()
    else:
        assert ours.cen == pytest.approx(theirs.cen)
        assert list(ours.crossings) == pytest.approx(list(theirs.crossings))
        assert (ours.fwhm is None) == (theirs.fwhm is None)
        if theirs.fwhm is not None:
            assert ours.fwhm == pytest.approx(theirs.fwhm)


@pytest.mark.parametrize(
    ("plan", "edge_count"),
    [
        (lambda hw: scan([hw.det], hw.motor, -5, 5, 41), None),  # the whole peak
        (lambda hw: scan([hw.det], hw.motor, -5, 5, 41), 3),  # with a linear background taken off
        (lambda hw: scan([hw.det], hw.motor, 0.5, 5, 19), None),  # one side: one crossing, no fwhm
        (lambda hw: rel_scan([hw.det, hw.noisy_det], hw.motor, -3, 3, 25), None),
        (lambda hw: scan([hw.det], hw.motor, 5, -5, 30), None),  # scanned downwards
    ],
)
def test_peaks_agree_with_peakstats(tmp_path, RE, hw, plan, edge_count):
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    stats = PeakStats("motor", "det", edge_count=edge_count)
    (uid,) = RE(plan(hw), stats)
    ours = scandeck.peaks(cat[uid], edge_count=edge_count)  # det and motor from the run's hints
    assert (ours.x, ours.y, ours.points) == ("motor", "det", len(cat[uid].primary.read()["det"]))
    _compare(ours, stats)


def test_peaks_of_another_key_and_of_a_running_run(tmp_path, RE, hw):
    cat = scandeck.open_catalog(tmp_path / "store")
    writer = cat.writer()
    seen = []

    def during(name, doc):
        writer(name, doc)
        if name == "event" and doc["seq_num"] == 12:
            seen.append(scandeck.peaks(cat[-1], "motor", "noisy_det"))

    RE.subscribe(during)
    stats = PeakStats("motor", "noisy_det")
    (uid,) = RE(scan([hw.det, hw.noisy_det], hw.motor, -4, 4, 21), stats)
    _compare(scandeck.peaks(cat[uid], y="noisy_det"), stats)
    assert seen[0].points == 12  # the rows so far


def test_runs_without_one_motor_need_x(tmp_path, RE, hw):
    cat = scandeck.open_catalog(tmp_path / "store")
    RE.subscribe(cat.writer())
    RE(count([hw.det], num=3))
    with pytest.raises(NotAScan, match="pass x="):
        scandeck.peaks(cat[-1])
    RE(grid_scan([hw.det4], hw.motor1, -1, 1, 3, hw.motor2, -1, 1, 3))
    with pytest.raises(NotAScan, match="2 dimensions"):
        scandeck.peaks(cat[-1])
    p = scandeck.peaks(cat[-1], "motor1", "det4")  # named: any two columns
    assert p.points == 9 and p.max == pytest.approx(cat[-1].primary.read()["det4"].values.max())


def test_degenerate_data_give_what_peakstats_gives():
    assert peak_stats(np.array([]), np.array([]))["cen"] is None
    flat = peak_stats(np.arange(5.0), np.ones(5))
    assert flat["cen"] is None and flat["max"] == 1.0 and flat["com"] == pytest.approx(2.0)
    zero = peak_stats(np.arange(3.0), np.array([1.0, -2.0, 1.0]))  # sum 0: no centre of mass
    assert np.isnan(zero["com"]) and zero["fwhm"] == pytest.approx(1.0)
