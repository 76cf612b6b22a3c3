"""The run summary at 80x24: a failed run with skipped and denied steps."""

from __future__ import annotations

from typing import Any

from tests.ui.test_summary import SummaryHost, finished_run


def test_summary_snapshot(snap_compare: Any) -> None:
    assert snap_compare(SummaryHost(finished_run()), terminal_size=(80, 24))
