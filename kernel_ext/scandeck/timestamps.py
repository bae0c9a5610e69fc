"""Event times for people: float seconds since the epoch as local, timezone-aware dates.

Documents carry times as float seconds since the epoch (UTC). Tables people read
(``df`` of a bound cell, ``Stream.to_pandas()``) show them as pandas
``datetime64[ns, <local zone>]``, as databroker's tables did; ``read()`` keeps the
seconds (its ``time`` coordinate's attrs say so, :data:`TIME_ATTRS`). The local
zone is found once per call with the standard library (``TZ``, then
``/etc/localtime``), so a DST change inside a run shows the right offset on each
side. pandas is imported only when a conversion is asked for.
"""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

__all__ = ["TIME_ATTRS", "local_datetimes", "local_zone"]

#: Attributes of ``read()``'s ``time`` coordinate: it holds float seconds, not dates.
TIME_ATTRS = {
    "units": "s",
    "description": "seconds since the epoch (UTC), float; Stream.to_pandas() shows them as local dates",
}

_LOCALTIME = "/etc/localtime"
#: Seconds either side of the epoch that nanosecond dates can hold (int64 ns: about 292 years).
_NS_RANGE = 9.2e9


def local_zone() -> tzinfo:
    """The machine's time zone: a named zone (DST-aware) when it can be told, else today's offset.

    ``TZ`` (``Europe/Berlin``, ``:Europe/Berlin``) wins, then the zone
    ``/etc/localtime`` links to; otherwise (Windows, an unnamed zone) the fixed
    offset the clock has now.

    Examples
    --------
    >>> local_zone().utcoffset(datetime(2026, 1, 1)) is not None
    True
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    names = []
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        names.append(tz)
    try:
        target = os.path.realpath(_LOCALTIME)
    except OSError:
        target = ""
    if "/zoneinfo/" in target:
        names.append(target.split("/zoneinfo/", 1)[1])
    for name in names:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue  # a POSIX TZ string ("CET-1") or a missing tzdata: fall back to the offset
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None  # astimezone() always sets one
    return zone


def local_datetimes(seconds: Any) -> pandas.DatetimeIndex:
    """Float seconds since the epoch as ``datetime64[ns, <local zone>]``; NaN becomes NaT.

    Rounded to the nanosecond, so each date is the instant the float names. A
    time no date can hold (NaN, or beyond the years 1678-2261 of nanosecond
    dates) becomes NaT too.

    Examples
    --------
    >>> local_datetimes([0.0, float("nan")]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M").tolist()
    ['1970-01-01 00:00', nan]
    """
    import numpy as np
    import pandas as pd

    values = np.asarray(seconds, dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares False: missing either way
        missing = ~(np.abs(values) < _NS_RANGE)
    values = np.where(missing, 0.0, values)
    # Whole seconds and their fraction apart: seconds * 1e9 in one float would round to 256 ns.
    whole = np.floor(values)
    ns = (whole.astype(np.int64) * 1_000_000_000 + np.round((values - whole) * 1e9).astype(np.int64)).view(
        "datetime64[ns]"
    )
    if missing.any():
        ns[missing] = np.datetime64("NaT", "ns")
    return pd.DatetimeIndex(ns).tz_localize("UTC").tz_convert(local_zone())
