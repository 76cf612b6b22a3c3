"""The audit pane follows the audit file live, filters by run, shows records and the chain."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.audit.log import AuditLog
from console.events import (
    Actor,
    ApprovalGiven,
    Event,
    GateOpened,
    RunStarted,
    StepFinished,
    StepStarted,
)
from console.ui.widgets.audit_pane import MAX_ROWS, AuditEventScreen, AuditPane
from console.ui.widgets.audit_records import last_records

RUN_A = "20260315T101500-a1b2"
RUN_B = "20260315T110000-c3d4"
ALICE = Actor("alice", 1000, "tui")
BOB = Actor("bob", 1001, "socket")


@pytest.fixture(autouse=True)
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rows show local time; pin the zone so the tests read the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ts(second: int) -> str:
    return f"2026-03-15T10:15:{second:02d}.000000Z"


def run_events(run: str, offset: int = 0) -> list[Event]:
    return [
        RunStarted(
            run=run, ts=ts(offset), actor=ALICE, workflow="payments-deploy",
            workflow_path="workflows/payments.toml", file_hashes={}, params={"env": "prod"},
            steps=("build", "migrate", "switch"), user="alice", uid=1000, host="build-01",
            pid=4242, version="0.1.0", concurrency=2, run_dir="/tmp/runs/x",
        ),
        StepStarted(
            run=run, ts=ts(offset + 1), step="build", attempt=1, max_attempts=3,
            command=("make", "build", "VERSION=1.4.2"), log_path="/tmp/runs/x/build.1.log",
            pid=4243,
        ),
        StepFinished(
            run=run, ts=ts(offset + 4), step="build", attempt=1, outcome="succeeded",
            exit_code=0, error=None, duration_s=2.5, log_path="/tmp/runs/x/build.1.log",
            log_size=1024, log_sha256="ab" * 32,
        ),
        GateOpened(
            run=run, ts=ts(offset + 5), step="migrate", approvals_required=2,
            approvers=("@sre",), reason_required=True, deadline=None,
            approve_command=f"console approve {run} migrate",
        ),
        ApprovalGiven(
            run=run, ts=ts(offset + 9), step="migrate", actor=BOB, reason="schema reviewed",
            approvals=1, approvals_required=2, binding={"run": run},
        ),
    ]


def write_events(path: Path, events: list[Event]) -> None:
    with AuditLog(path) as log:
        for event in events:
            log.append(event.to_json())


class AuditApp(App[None]):
    CSS = "AuditPane { height: 1fr; }"

    def __init__(self, audit_path: Path, run_id: str | None) -> None:
        super().__init__()
        self.audit_path = audit_path
        self.run_id = run_id
        self.arrived: list[dict[str, object]] = []

    def compose(self) -> ComposeResult:
        yield AuditPane(self.audit_path, self.run_id)

    def on_audit_pane_event_arrived(self, message: AuditPane.EventArrived) -> None:
        self.arrived.append(message.record)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def settled(app: AuditApp, rows: int) -> Callable[[], bool]:
    def check() -> bool:
        pane = app.query_one(AuditPane)
        return pane.chain.state != "checking" and len(pane.records) >= rows

    return check


def table_rows(app: AuditApp) -> list[list[str]]:
    table: DataTable[str] = app.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_rows_summaries_and_the_verified_chain(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, settled(app, 5))
        rows = table_rows(app)
        assert rows[0][:4] == ["10:15:00", "alice", "run.started", ""]
        assert rows[0][4].startswith("payments-deploy started by alice@build-01, 3 steps")
        assert rows[1][4] == "started, attempt 1/3, pid 4243: make build VERSION=1.4.2"
        assert rows[2][4] == "succeeded after 2.5s, log /tmp/runs/x/build.1.log"
        assert rows[3][4].startswith("awaiting approval: needs 2 approval(s) from @sre")
        assert rows[4][:5] == ["10:15:09", "bob", "approval.given", "migrate",
                               "approved by bob (1/2): schema reviewed"]
        pane = app.query_one(AuditPane)
        assert pane.border_title == "Audit · verified to seq 5"
        assert not pane.has_class("-broken")
        assert app.arrived == [], "records already in the file are not news"


async def test_the_summary_column_takes_the_room_left_and_cuts_with_an_ellipsis(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 5))
        summary = table_rows(app)[0][4]
        assert summary.endswith("…")
        assert "payments-deploy started by alice@build-01, 3 steps".startswith(summary[:-1])
        table: DataTable[str] = app.query_one(DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width


async def test_a_narrow_pane_gives_the_actor_and_time_room_to_the_summary(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(60, 20)) as pilot:
        await until(pilot, settled(app, 5))
        table: DataTable[str] = app.query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["type", "step", "summary"]
        kind, step, summary = table_rows(app)[4]
        assert (kind, step) == ("approval.given", "migrate")
        assert summary.startswith("approved by bob (1/2): ") and summary.endswith("…")
        assert table.virtual_size.width <= table.scrollable_content_region.width
        await pilot.resize_terminal(100, 24)
        await until(pilot, lambda: len(table.columns) == 5)


async def test_f_toggles_between_this_run_and_all_runs(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A) + run_events(RUN_B, offset=20))
    app = AuditApp(audit, RUN_B)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 10))
        pane = app.query_one(AuditPane)
        assert {r["run"] for r in pane.shown_records} == {RUN_B}
        assert len(table_rows(app)) == 5
        await pilot.press("f")
        assert len(table_rows(app)) == 10
        assert "all runs" in str(pane.border_subtitle)
        await pilot.press("f")
        assert len(table_rows(app)) == 5
        pane.run_id = RUN_A
        await pilot.pause()
        assert {r["run"] for r in pane.shown_records} == {RUN_A}


async def test_enter_opens_the_whole_record_and_escape_closes_it(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 5))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AuditEventScreen)
        shown = json.loads(str(app.screen.query_one("#audit-record-json", Static).render()))
        assert shown["type"] == "approval.given"
        assert shown["seq"] == 5 and len(shown["hash"]) == 64
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AuditEventScreen)


APPEND_FROM_ANOTHER_PROCESS = """
import sys
from console.audit.log import AuditLog
entry = {"run": sys.argv[2], "type": "approval.given", "ts": "2026-03-15T10:16:00.000000Z",
         "step": "migrate", "actor": {"user": "carol", "uid": 1002, "via": "socket"},
         "data": {"reason": "from terminal two", "approvals": 2, "approvals_required": 2,
                  "binding": {}}}
with AuditLog(sys.argv[1]) as log:
    log.append(entry, sync=True)
"""


async def test_a_record_appended_by_another_process_appears_live(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, settled(app, 5))
        subprocess.run(
            [sys.executable, "-c", APPEND_FROM_ANOTHER_PROCESS, str(audit), RUN_A], check=True
        )
        await until(pilot, lambda: len(table_rows(app)) == 6)
        assert table_rows(app)[-1][1:] == [
            "carol", "approval.given", "migrate", "approved by carol (2/2): from terminal two"
        ]
        assert [r["seq"] for r in app.arrived] == [6]
        pane = app.query_one(AuditPane)
        assert pane.border_title == "Audit · verified to seq 6"
        table: DataTable[str] = app.query_one(DataTable)
        assert table.cursor_row == 5, "the newest row stays in view"


async def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    audit = tmp_path / "later" / "audit.jsonl"
    app = AuditApp(audit, None)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 0))
        pane = app.query_one(AuditPane)
        assert "empty" in str(pane.border_title)
        write_events(audit, run_events(RUN_A)[:2])
        await until(pilot, lambda: len(table_rows(app)) == 2)
        assert pane.border_title == "Audit · verified to seq 2"
        assert [r["seq"] for r in app.arrived] == [1, 2]


async def test_a_modified_line_shows_where_the_chain_breaks(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    lines = audit.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"duration_s":2.5', '"duration_s":9.5')
    audit.write_text("".join(lines))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 5))
        pane = app.query_one(AuditPane)
        assert pane.border_title == "Audit · chain broken at line 3: modified"
        assert pane.has_class("-broken")


async def test_a_forged_line_appended_later_breaks_the_chain_incrementally(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, 5))
        last = json.loads(audit.read_text().splitlines()[-1])
        forged = {**last, "seq": 6, "prev": last["hash"], "data": {**last["data"], "approvals": 2}}
        with audit.open("a") as handle:
            handle.write(json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n")
        await until(pilot, lambda: len(table_rows(app)) == 6)
        pane = app.query_one(AuditPane)
        assert pane.border_title == (
            "Audit · chain broken at line 6: the line does not match its hash"
        )
        assert pane.has_class("-broken")


async def test_rows_are_bounded(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    events = run_events(RUN_A)
    write_events(audit, [events[2]] * (MAX_ROWS + 50))
    app = AuditApp(audit, RUN_A)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, settled(app, MAX_ROWS))
        pane = app.query_one(AuditPane)
        assert len(pane.records) == MAX_ROWS
        assert pane.records[0]["seq"] == 51
        write_events(audit, events[:1])
        await until(pilot, lambda: pane.records[-1]["seq"] == MAX_ROWS + 51)
        assert len(pane.records) == MAX_ROWS
        assert len(table_rows(app)) == MAX_ROWS
        assert pane.border_title == f"Audit · verified to seq {MAX_ROWS + 51}"


def test_last_records_reads_backwards_and_leaves_a_torn_line(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_events(audit, run_events(RUN_A) + run_events(RUN_B, offset=20))
    complete = audit.stat().st_size
    with audit.open("ab") as handle:
        handle.write(b'{"torn": ')
    records, offset = last_records(audit, 3)
    assert [r["seq"] for r in records] == [8, 9, 10]
    assert offset == complete
    everything, _ = last_records(audit, 100)
    assert [r["seq"] for r in everything] == list(range(1, 11))
    assert last_records(tmp_path / "absent.jsonl", 5) == ([], 0)
