"""The run summary at 80x24 (a failed run with skipped and denied steps) and at 60x20 (more
steps than fit: the audit head stays whole, above the timeline)."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from console.ui.screens.summary import SummaryScreen
from tests.ui.conftest import wait_for
from tests.ui.test_summary import SummaryHost, finished_run, many_steps_run


async def _settled(pilot: Pilot[Any]) -> None:
    """The summary pushed, mounted and drawn (under load the first frame can lag)."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SummaryScreen))
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_summary_snapshot(snap_compare: Any) -> None:
    assert snap_compare(SummaryHost(finished_run()), terminal_size=(80, 24),
                        run_before=_settled)


def test_summary_at_60x20_keeps_the_whole_head(snap_compare: Any) -> None:
    assert snap_compare(SummaryHost(many_steps_run()), terminal_size=(60, 20),
                        run_before=_settled)
