"""Time windows (`during = { weekdays, from, to, tz }`), judged on the zone's wall clock.

`now` is converted to the window's IANA zone and compared as local time, so a window means
what a person reading it expects on both sides of a daylight-saving change: "09:00–17:00
Europe/Berlin" is 09:00–17:00 on the office clock in winter and in summer. On the day the
clocks spring forward the skipped hour never happens; on the day they fall back the repeated
hour is inside the window both times.

Both ends are whole minutes and both are included: "15:00"–"23:59" covers 15:00:00 through
23:59:59.999. A window whose `from` is later than its `to` wraps past midnight, and
`weekdays` then names the day the window *started*: Fri 22:00–06:00 covers Friday 22:00
through Saturday 06:00:59, not Friday 00:00–06:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from console.workflow.spec import WEEKDAYS, Window


def in_window(window: Window, now: datetime) -> bool:
    """True when the aware datetime `now` falls inside `window`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("in_window needs a timezone-aware datetime (e.g. datetime.now(UTC))")
    local = now.astimezone(ZoneInfo(window.tz))
    minute = local.hour * 60 + local.minute
    start, end = _minutes(window.from_), _minutes(window.to)
    days = set(window.weekdays)
    today = WEEKDAYS[local.weekday()]
    if start <= end:
        return today in days and start <= minute <= end
    if minute >= start:
        return today in days
    if minute <= end:
        yesterday = WEEKDAYS[(local.date() - timedelta(days=1)).weekday()]
        return yesterday in days
    return False


def describe_window(window: Window) -> str:
    """"Fri 15:00–23:59 Europe/Berlin", for reasons and the plan."""
    days = window.weekdays
    if list(days) == list(WEEKDAYS):
        day_text = "every day"
    else:
        day_text = ",".join(d for d in WEEKDAYS if d in days) or "no day"
    return f"{day_text} {window.from_}–{window.to} {window.tz}"


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)
