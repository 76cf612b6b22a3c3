"""The process exit code for each way a run can end (the CLI and the UI agree on these)."""

from __future__ import annotations

EXIT_CODES: dict[str, int] = {
    "succeeded": 0,
    "failed": 1,
    "denied": 3,
    "cancelled": 130,
    "interrupted": 130,
}
