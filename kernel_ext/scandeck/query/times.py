"""Points in time for queries: date strings read as intervals, and timestamps written back.

A date string stands for the whole span of its precision (a day, a minute, a
second, or an instant when the seconds have decimals); without an offset it is
local time. Stdlib only.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import date, datetime, timedelta, timezone
from typing import TypeAlias

from ..exceptions import InvalidQuery

#: What :class:`~scandeck.queries.TimeRange` and the ``time`` key accept as a point in time.
TimeLike: TypeAlias = "float | int | datetime | date | str"

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
DATE_FORMS = (
    "a unix timestamp or a date string like '2026-11-21', '2026-11-21 10:30', "
    "'2026-11-21T10:30:00' or '2026-11-21T10:30:00+01:00' (seconds may have up to 6 "
    "decimals; 'Z' means UTC; without an offset it is local time)"
)


def date_interval(text: str) -> tuple[float, float]:
    """The interval [start, end) of unix time a date string stands for.

    The interval's length is the string's precision: a day, a minute, a second,
    or a single instant when the seconds have decimals.
    """
    m = _DATE_RE.fullmatch(text)
    if m is None:
        raise InvalidQuery(f"invalid date {text!r}: use {DATE_FORMS}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        tzinfo = None
        if tz == "Z":
            tzinfo = timezone.utc
        elif tz:
            hours, minutes = int(tz[1:3]), int(tz[-2:])
            if hours > 23 or minutes > 59:
                raise ValueError(f"UTC offset {tz} out of range")
            sign = -1 if tz[0] == "-" else 1
            tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
        dt = datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
            int((frac or "0").ljust(6, "0")), tzinfo=tzinfo,
        )  # fmt: skip
        begin = dt.timestamp()
        if h is None:
            end = (dt + timedelta(days=1)).timestamp()
        elif s is None:
            end = (dt + timedelta(minutes=1)).timestamp()
        elif frac is None:
            end = (dt + timedelta(seconds=1)).timestamp()
        else:
            end = math.nextafter(begin, math.inf)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidQuery(f"invalid date {text!r} ({exc}): use {DATE_FORMS}") from None
    return begin, end


def time_interval(value: object) -> tuple[float, float]:
    """[start, end) for a point in time; a number or datetime is a single instant."""
    if isinstance(value, str):
        return date_interval(value)
    if isinstance(value, datetime):
        t = value.timestamp()  # naive means local time
    elif isinstance(value, date):
        return date_interval(value.isoformat())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        t = float(value)
    else:
        raise InvalidQuery(f"invalid time {value!r}: use a datetime or {DATE_FORMS}")
    if not math.isfinite(t):
        raise InvalidQuery(f"invalid time {value!r}: it must be finite")
    return t, math.nextafter(t, math.inf)


def _format_time(t: float) -> str | None:
    """An ISO string in local time with offset that parses back to exactly ``t``."""
    try:
        dt = datetime.fromtimestamp(t, timezone.utc).astimezone()
        text = dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")
        return text if date_interval(text)[0] == t else None
    except (OverflowError, OSError, ValueError):
        return None


def text_time(t: float) -> str:
    """A timestamp in the text syntax: a quoted ISO date when one is exact, else the number."""
    iso = _format_time(t)
    return repr(t) if iso is None else f'"{iso}"'


def py_time(t: float) -> str:
    """A timestamp as a Python literal: an ISO date string when one is exact, else the float."""
    iso = _format_time(t)
    return repr(t if iso is None else iso)
