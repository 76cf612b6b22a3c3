"""The audit pane open with records at 80x24, and one record opened in full."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.ui.widgets.audit_pane import AuditPane
from tests.ui.test_audit_pane import RUN_A, RUN_B, AuditApp, run_events, write_events


@pytest.fixture(autouse=True)
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot: Pilot[Any]) -> None:
    pane = pilot.app.query_one(AuditPane)
    deadline = time.monotonic() + 10
    while pane.chain.state == "checking" or len(pane.records) < 10:
        assert time.monotonic() < deadline, "the audit pane did not settle"
        await pilot.pause(0.05)
    await pilot.pause()


def two_runs(tmp_path: Path) -> AuditApp:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A) + run_events(RUN_B, offset=20))
    return AuditApp(audit, RUN_B)


def test_audit_pane_all_runs(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(two_runs(tmp_path), terminal_size=(80, 24), run_before=settle, press=["f"])


def test_audit_pane_record_opened(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(
        two_runs(tmp_path), terminal_size=(80, 24), run_before=settle, press=["up", "enter"]
    )
