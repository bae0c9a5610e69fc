"""External data in bound cells, in a real kernel: values, never datum ids.

Runs are written in this process by a real RunEngine (ophyd-async's blob detector
writing HDF5 through stream resources; ophyd.sim's image detector writing NPY_SEQ
files through resource/datum); the kernel reads the store and the files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kernel_harness import output_text
from test_ophyd_async import step_scan_into


@pytest.fixture
def step_scan(tmp_path: Path, store: Path):
    import scandeck

    cat = scandeck.open_catalog(store)
    _, uid, sums = step_scan_into(cat, tmp_path / "files", 5)
    cat.close()
    return uid, sums


def last_widget_text(kernel) -> str:
    updates = kernel.widget_outputs()
    return output_text(updates[-1][2]) if updates else ""


def test_bound_df_holds_external_scalars_as_values(kernel, step_scan):
    uid, sums = step_scan
    kernel.execute(f'%%bind --uid {uid}\nprint(df["bdet-sum"].tolist(), "bdet" in df, len(df))')
    assert kernel.wait_for(lambda: last_widget_text(kernel).strip().endswith(" 5"), 60)
    values, has_frames, rows = last_widget_text(kernel).strip().rsplit(" ", 2)
    assert ast.literal_eval(values) == sums.tolist()
    assert has_frames == "False"  # an external array is not in df unless asked for


def test_bind_fill_reads_the_frames_asked_for(kernel, step_scan):
    uid, _ = step_scan
    kernel.execute(f'%%bind --uid {uid} --fill bdet\nprint(len(df), df["bdet"].iloc[-1].shape)')
    assert kernel.wait_for(lambda: "5 (1, 240, 320)" in last_widget_text(kernel), 60), last_widget_text(kernel)


def test_bind_fill_npy_seq_images_of_ophyd_sim(kernel, store, RE, hw):
    import bluesky.plans as bp

    import scandeck

    cat = scandeck.open_catalog(store)
    RE.subscribe(cat.writer())
    (uid,) = RE(bp.count([hw.img, hw.det], 3))
    cat.close()
    kernel.execute(f'%%bind --uid {uid}\nprint(sorted(c for c in df.columns if c != "time"))')
    assert kernel.wait_for(lambda: "['det']" in last_widget_text(kernel), 60), last_widget_text(kernel)
    kernel.execute(f'%%bind --uid {uid} --fill img\nprint(type(df["img"].iloc[0]).__name__, len(df))')
    assert kernel.wait_for(lambda: "ndarray 3" in last_widget_text(kernel), 60), last_widget_text(kernel)
