"""How much of a run one local user can take through its control socket, and the one line
the run prints when it turned connections away.

The socket is mode 0666, so any local user can connect. Without limits, one user holding
thousands of idle connections uses up the run's file descriptors: approvals fail and the
next step cannot start. So the server keeps at most MAX_CONNECTIONS_PER_UID connections per
uid and MAX_CONNECTIONS in all, answers a connection over a limit with one `busy` line and
closes it, and stops accepting while fewer than FD_RESERVE descriptors are free (those are
for the steps). What it turned away is reported on stderr as one line per burst, never a
line per connection. docs/control.md states every limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

MAX_CONNECTIONS_PER_UID = 8
MAX_CONNECTIONS = 64
# Descriptors kept free for the steps: the server accepts nothing while fewer are left.
FD_RESERVE = 128
# After accept() failed for lack of descriptors, or the reserve was reached, wait this long.
ACCEPT_PAUSE_S = 0.25
# Connections accepted per wakeup of the listener, so a flood cannot hold the event loop.
ACCEPT_BATCH = 64
LISTEN_BACKLOG = 128
# A burst is reported when its window ends; windows double while a flood goes on.
REPORT_WINDOW_S = 1.0
REPORT_WINDOW_MAX_S = 60.0
# uids named in one report line; the rest are summed up.
_UIDS_NAMED = 4

LimitHit = Literal["per_user", "total"]


class ConnectionCount:
    """The connections being served, per uid and in all."""

    def __init__(
        self, per_uid: int = MAX_CONNECTIONS_PER_UID, total: int = MAX_CONNECTIONS
    ) -> None:
        self.per_uid = per_uid
        self.total = total
        self._by_uid: Counter[int] = Counter()
        self._open = 0

    def limit_hit(self, uid: int) -> LimitHit | None:
        """Which limit one more connection from `uid` would go over, if any."""
        if self._by_uid[uid] >= self.per_uid:
            return "per_user"
        if self._open >= self.total:
            return "total"
        return None

    def admit(self, uid: int) -> None:
        self._by_uid[uid] += 1
        self._open += 1

    def release(self, uid: int) -> None:
        self._by_uid[uid] -= 1
        if self._by_uid[uid] <= 0:
            del self._by_uid[uid]
        self._open -= 1

    def of(self, uid: int) -> int:
        return self._by_uid[uid]

    @property
    def open(self) -> int:
        return self._open

    def busy_message(self, run_id: str, uid: int, hit: LimitHit) -> str:
        if hit == "per_user":
            return (
                f"uid {uid} already has {self._by_uid[uid]} connections open to run {run_id} "
                f"(limit {self.per_uid} per user); close one and try again"
            )
        return (
            f"run {run_id} is serving {self._open} connections (limit {self.total} in all); "
            "try again shortly"
        )


def warn_on_stderr(line: str) -> None:
    """The default report: one line on the run's stderr (a closed stderr loses it quietly)."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


class BurstLog:
    """Counts what the socket turned away or failed at, and reports it as one line when
    the window that began with the first such event ends."""

    def __init__(
        self,
        warn: Callable[[str], None],
        count: ConnectionCount,
        fd_reserve: int,
        *,
        window_s: float = REPORT_WINDOW_S,
        max_window_s: float = REPORT_WINDOW_MAX_S,
    ) -> None:
        self._warn = warn
        self._count = count
        self._fd_reserve = fd_reserve
        self._base_window_s = window_s
        self._max_window_s = max_window_s
        self._window_s = window_s
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._last_report = float("-inf")
        self._refused: Counter[int] = Counter()
        self._limits_hit: set[LimitHit] = set()
        self._accept_errors: Counter[str] = Counter()
        self._reserve_pauses = 0
        self._lowest_free: int | None = None
        self._internal = 0
        self._last_internal = ""

    def refused(self, uid: int, hit: LimitHit) -> None:
        self._begin()
        self._refused[uid] += 1
        self._limits_hit.add(hit)

    def accept_failed(self, exc: OSError) -> None:
        self._begin()
        self._accept_errors[exc.strerror or type(exc).__name__] += 1

    def reserve_reached(self, free: int) -> None:
        self._begin()
        self._reserve_pauses += 1
        self._lowest_free = free if self._lowest_free is None else min(self._lowest_free, free)

    def internal_error(self, exc: BaseException) -> None:
        self._begin()
        self._internal += 1
        self._last_internal = f"{type(exc).__name__}: {exc}"[:200]

    def _begin(self) -> None:
        if self._timer is not None:
            return
        now = time.monotonic()
        if now - self._last_report > self._window_s:
            self._window_s = self._base_window_s  # quiet for a whole window: a new burst
        self._started = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(self._window_s, self._window_ended)

    def _window_ended(self) -> None:
        self._timer = None
        self.flush()
        self._window_s = min(self._window_s * 2, self._max_window_s)

    def flush(self) -> None:
        """Report what was counted since the window began (also when the server closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line = self.line(time.monotonic() - self._started)
        self._refused.clear()
        self._limits_hit.clear()
        self._accept_errors.clear()
        self._reserve_pauses = 0
        self._lowest_free = None
        self._internal = 0
        self._last_report = time.monotonic()
        if line is not None:
            self._warn(line)

    def line(self, elapsed_s: float) -> str | None:
        """The report for the window so far, or None when nothing happened in it."""
        parts: list[tuple[str, str | None]] = []
        if self._refused:
            parts.append((self._refused_text(), self._limits_text()))
        if self._accept_errors:
            failures = ", ".join(f"{why} ({n:,}x)" for why, n in self._accept_errors.items())
            parts.append((f"accept() failed: {failures}", f"paused {ACCEPT_PAUSE_S:g} s each"))
        if self._reserve_pauses:
            times = "once" if self._reserve_pauses == 1 else f"{self._reserve_pauses:,} times"
            parts.append((
                f"stopped accepting {times} with "
                f"{self._lowest_free} file descriptors free",
                f"{self._fd_reserve} are kept for steps",
            ))
        if self._internal:
            parts.append((
                f"{self._internal:,} connection{'' if self._internal == 1 else 's'} ended "
                "on an internal error",
                f"last: {self._last_internal}",
            ))
        if not parts:
            return None
        (first, note), rest = parts[0], parts[1:]
        line = f"control socket: {first} in the last {elapsed_s:.1f} s"
        line += f" ({note})" if note else ""
        for text, note in rest:
            line += f"; {text}" + (f" ({note})" if note else "")
        return line

    def _refused_text(self) -> str:
        ranked = self._refused.most_common()
        total = sum(self._refused.values())
        head = f"refused {total:,} connection{'' if total == 1 else 's'}"
        if len(ranked) == 1:
            return f"{head} from {_who(ranked[0][0])}"
        named = [f"{n:,} from {_who(uid)}" for uid, n in ranked[:_UIDS_NAMED]]
        others = ranked[_UIDS_NAMED:]
        if others:
            named.append(f"{sum(n for _, n in others):,} from {len(others)} other uids")
        return f"{head}: {', '.join(named)}"

    def _limits_text(self) -> str:
        texts = []
        if "per_user" in self._limits_hit:
            texts.append(f"{self._count.per_uid} per user")
        if "total" in self._limits_hit:
            texts.append(f"{self._count.total} in all")
        return ("limit " if len(texts) == 1 else "limits: ") + ", ".join(texts)


def _who(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def busy_response(message: str) -> dict[str, Any]:
    return {"ok": False, "error": "busy", "message": message}
