"""The audit trail's timestamps: RFC 3339 UTC with microseconds, made and read back."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def utc_now() -> str:
    """RFC 3339 UTC with microseconds, the audit trail's timestamp format.

    Every event takes one: the date and time to the second are formatted once a second.
    """
    nanoseconds = time.time_ns()
    second, fraction = divmod(nanoseconds, 1_000_000_000)
    return f"{_utc_second(second)}.{fraction // 1000:06d}Z"


@lru_cache(maxsize=2)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def parse_ts(ts: str) -> datetime:
    """The inverse of utc_now (fromisoformat: ~50x faster than strptime, used per event)."""
    moment = datetime.fromisoformat(ts)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
