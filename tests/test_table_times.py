"""Times in tables for people: local, timezone-aware dates (issue 12).

``df`` of a bound cell (``LiveTable.frame``) and ``Stream.to_pandas()`` show an
event's time as ``datetime64[ns, <local zone>]``, the same instant as the float
seconds of the documents; ``read()`` keeps the seconds and says so in its attrs.
Documents come from a real RunEngine with ophyd.sim devices. The local zone is
set through ``TZ`` to one that is not UTC, so a conversion that forgot the zone
shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from test_source_conformance import record

from scandeck.pipeline.table import LiveTable
from scandeck.timestamps import TIME_ATTRS, local_datetimes, local_zone

ZONE = "America/Santiago"  # far from UTC, with DST: a forgotten zone or a fixed offset shows


@pytest.fixture
def local_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with ``TZ`` naming a zone that is not UTC (libc's local time too)."""
    monkeypatch.setenv("TZ", ZONE)
    time.tzset()
    yield ZONE
    monkeypatch.undo()
    time.tzset()


def seconds_of(dates: pd.Series) -> np.ndarray:
    """The float seconds since the epoch of tz-aware dates (NaT -> NaN)."""
    ns = dates.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    out = ns / 1e9
    out[dates.isna().to_numpy()] = np.nan
    return out


def assert_local_dates(dates: pd.Series, seconds: list[float]) -> None:
    assert isinstance(dates.dtype, pd.DatetimeTZDtype)
    assert dates.dtype.unit == "ns" and str(dates.dtype.tz) == ZONE
    # Equal instants: within the float's own resolution (~2e-7 s at today's epoch).
    np.testing.assert_allclose(seconds_of(dates), seconds, rtol=0, atol=1e-6)
    # The wall clock people read is the local one, as datetime.fromtimestamp gives it.
    wall = [datetime.fromtimestamp(t, ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S") for t in seconds]
    assert dates.dt.strftime("%Y-%m-%d %H:%M:%S").tolist() == wall


def test_local_zone_follows_tz(local_tz: str) -> None:
    assert str(local_zone()) == local_tz


def test_local_datetimes_keep_the_instant_and_mark_impossible_times_missing(local_tz: str) -> None:
    seconds = [1_796_538_023.123456, 1_500_000_002.25, 0.0, -86_400.5]
    dates = pd.Series(local_datetimes(seconds))
    assert_local_dates(dates, seconds)
    # To the nanosecond: the float's exact value, rounded (not the float times 1e9, off by ~100 ns).
    exact = [int((Decimal(t) * 10**9).to_integral_value(ROUND_HALF_EVEN)) for t in seconds]
    assert local_datetimes(seconds).asi8.tolist() == exact
    odd = local_datetimes([float("nan"), float("inf"), 1e300, 2.0])
    assert odd.isna().tolist() == [True, True, True, False]


def test_bound_cell_df_shows_local_dates(RE, sqlite_cat, hw, local_tz: str) -> None:
    import bluesky.plans as bp

    uid, emitted = record(RE, sqlite_cat, bp.scan([hw.det], hw.motor, -1, 1, 6))
    table = LiveTable("primary")
    for name, doc in sqlite_cat[uid].documents():
        table.add(name, doc)
    df = table.frame()
    times = [doc["time"] for name, doc in emitted if name == "event"]
    assert_local_dates(df["time"], times)
    # The rows keep the seconds: pipelines and plots (table.columns()) do arithmetic on them.
    assert table.columns()["time"] == times
    assert table.row()["time"] == times[-1]
    # A slice (``new`` of a bound cell) too, and describe() summarises the numbers only.
    assert_local_dates(table.frame(4)["time"], times[4:])
    assert "time" not in df.describe().columns and list(df.describe().columns) == [
        "det",
        "motor",
        "motor_setpoint",
    ]


def test_to_pandas_shows_local_dates_and_read_keeps_seconds(RE, cat, hw, local_tz: str) -> None:
    import bluesky.plans as bp

    uid, emitted = record(RE, cat, bp.scan([hw.det], hw.motor, -1, 1, 5))
    times = [doc["time"] for name, doc in emitted if name == "event"]
    df = cat[uid].primary.to_pandas()
    assert_local_dates(df["time"], times)
    ds = cat[uid].primary.read()
    assert ds["time"].dtype == np.float64
    np.testing.assert_array_equal(ds["time"].values, times)
    assert ds["time"].attrs == TIME_ATTRS and ds["time"].attrs["units"] == "s"
    assert "seconds since the epoch (UTC)" in ds["time"].attrs["description"]


def test_an_empty_table_has_its_descriptor_columns(RE, sqlite_cat, hw, local_tz: str) -> None:
    """The start of a run: the descriptor is there, no event yet. df has typed, empty columns."""
    import bluesky.plans as bp

    uid, _ = record(RE, sqlite_cat, bp.scan([hw.det], hw.motor, -1, 1, 3))
    table = LiveTable("primary")
    assert not table.described and list(table.frame().columns) == ["time"]
    for name, doc in sqlite_cat[uid].documents():
        if name in ("event", "event_page"):
            break
        table.add(name, doc)
    assert table.described and len(table) == 0
    df = table.frame()
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype)
    numeric = df.select_dtypes("number")
    assert list(numeric.columns) == ["det", "motor", "motor_setpoint"]
    assert numeric.describe().loc["count"].tolist() == [0.0, 0.0, 0.0]


def test_run_tables_show_local_start_times_with_their_offset(RE, cat, hw, local_tz: str) -> None:
    """``%scans`` and catalog tables: the local date and time, the UTC offset on hover."""
    import bluesky.plans as bp

    from scandeck.notebook.display import catalog_html

    uid, emitted = record(RE, cat, bp.count([hw.det], 2))
    t = emitted[0][1]["time"]
    local = datetime.fromtimestamp(t, ZoneInfo(ZONE))
    offset = local.strftime("%z")
    title = f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"
    assert f'<span title="{title}">{local:%Y-%m-%d %H:%M:%S}</span>' in catalog_html(cat)
