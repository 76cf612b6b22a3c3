"""Time windows on the zone's wall clock, across DST changes and midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from console.policy.windows import describe_window, in_window
from console.workflow import model, spec

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def window(**kwargs: object) -> spec.Window:
    return spec.Window(**model.Window.model_validate(kwargs).model_dump())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_friday_freeze_in_berlin_winter_and_summer() -> None:
    freeze = window(weekdays=["Fri"], **{"from": "15:00"}, to="23:59", tz="Europe/Berlin")
    # Winter (CET, UTC+1): 15:00 Berlin is 14:00 UTC.
    assert not in_window(freeze, utc(2024, 1, 12, 13, 59))
    assert in_window(freeze, utc(2024, 1, 12, 14, 0))
    assert in_window(freeze, utc(2024, 1, 12, 22, 59, 59))
    assert not in_window(freeze, utc(2024, 1, 12, 23, 0))  # Saturday 00:00 Berlin
    # Summer (CEST, UTC+2): 15:00 Berlin is 13:00 UTC.
    assert in_window(freeze, utc(2024, 7, 12, 13, 0))
    assert not in_window(freeze, utc(2024, 7, 12, 12, 59))
    # Thursday is not Friday, whatever the hour.
    assert not in_window(freeze, utc(2024, 7, 11, 14, 0))


def test_berlin_spring_forward_skipped_hour_never_happens() -> None:
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    skipped = window(**{"from": "02:00"}, to="02:59", tz="Europe/Berlin")
    instants = [utc(2024, 3, 31, 0, 0) + timedelta(minutes=m) for m in range(0, 180)]
    assert not any(in_window(skipped, t) for t in instants)
    morning = window(**{"from": "03:00"}, to="03:59", tz="Europe/Berlin")
    assert in_window(morning, utc(2024, 3, 31, 1, 0))  # 03:00 CEST
    assert not in_window(morning, utc(2024, 3, 31, 0, 59))  # 01:59 CET


def test_berlin_fall_back_repeated_hour_is_inside_twice() -> None:
    # 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:xx happens at 00:xx and 01:xx UTC.
    repeated = window(**{"from": "02:00"}, to="02:59", tz="Europe/Berlin")
    assert in_window(repeated, utc(2024, 10, 27, 0, 30))
    assert in_window(repeated, utc(2024, 10, 27, 1, 30))
    assert not in_window(repeated, utc(2024, 10, 27, 2, 0))  # 03:00 CET
    assert not in_window(repeated, utc(2024, 10, 26, 23, 59))  # 01:59 CEST


def test_new_york_business_hours_across_dst() -> None:
    hours = window(weekdays=["Mon", "Tue", "Wed", "Thu", "Fri"], **{"from": "09:00"},
                   to="17:00", tz="America/New_York")
    # 2024-03-10 (Sunday) clocks spring forward; Monday 2024-03-11 09:00 EDT = 13:00 UTC.
    assert in_window(hours, utc(2024, 3, 11, 13, 0))
    assert not in_window(hours, utc(2024, 3, 11, 12, 59))
    # Friday 2024-03-08 09:00 EST = 14:00 UTC.
    assert not in_window(hours, utc(2024, 3, 8, 13, 30))
    assert in_window(hours, utc(2024, 3, 8, 14, 0))
    # Sunday is outside, even during the hours.
    assert not in_window(hours, utc(2024, 3, 10, 15, 0))


def test_same_instant_differs_by_zone() -> None:
    instant = utc(2024, 6, 3, 23, 30)  # Monday 23:30 UTC
    evening = {"weekdays": ["Mon"], "from": "18:00", "to": "23:59"}
    assert in_window(window(**evening, tz="UTC"), instant)
    assert not in_window(window(**evening, tz="Europe/Berlin"), instant)  # Tue 01:30
    assert in_window(window(**evening, tz="America/New_York"), instant)  # Mon 19:30
    assert not in_window(window(**evening, tz="Asia/Tokyo"), instant)  # Tue 08:30


def test_any_aware_now_is_converted_first() -> None:
    friday = window(weekdays=["Fri"], tz="Europe/Berlin")
    # Thursday 23:30 in New York is Friday 05:30 in Berlin.
    assert in_window(friday, datetime(2024, 1, 11, 23, 30, tzinfo=NEW_YORK))


def test_wrap_around_window_belongs_to_the_day_it_started() -> None:
    night = window(weekdays=["Fri"], **{"from": "22:00"}, to="06:00", tz="Europe/Berlin")
    at = lambda *a: datetime(*a, tzinfo=BERLIN)  # noqa: E731
    assert in_window(night, at(2024, 1, 12, 22, 0))  # Fri 22:00
    assert in_window(night, at(2024, 1, 13, 3, 0))  # Sat 03:00, started Friday
    assert in_window(night, at(2024, 1, 13, 6, 0, 59))  # `to` includes its whole minute
    assert not in_window(night, at(2024, 1, 13, 6, 1))
    assert not in_window(night, at(2024, 1, 12, 3, 0))  # Fri 03:00 started Thursday
    assert not in_window(night, at(2024, 1, 13, 22, 0))  # Sat evening
    assert not in_window(night, at(2024, 1, 12, 21, 59))


def test_wrap_around_across_the_week_end() -> None:
    sunday_night = window(weekdays=["Sun"], **{"from": "23:00"}, to="01:00", tz="UTC")
    assert in_window(sunday_night, utc(2024, 1, 8, 0, 30))  # Monday 00:30
    assert not in_window(sunday_night, utc(2024, 1, 9, 0, 30))  # Tuesday 00:30


def test_bounds_are_whole_minutes() -> None:
    freeze = window(**{"from": "15:00"}, to="23:59", tz="UTC")
    assert in_window(freeze, utc(2024, 1, 1, 23, 59, 59, 999999))
    assert not in_window(freeze, utc(2024, 1, 1, 14, 59, 59, 999999))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        in_window(window(), datetime(2024, 1, 1, 12, 0))


def test_describe() -> None:
    assert describe_window(window(weekdays=["Sat", "Fri"], **{"from": "15:00"},
                                  tz="Europe/Berlin")) == "Fri,Sat 15:00–23:59 Europe/Berlin"
    assert describe_window(window()) == "every day 00:00–23:59 UTC"
