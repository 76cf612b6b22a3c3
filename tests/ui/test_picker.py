"""The picker `console attach` opens when several runs are live: what waits on you first."""

from __future__ import annotations

from textual.widgets import OptionList

from console.ui.picker import LiveRun, PickerApp, describe

OTHERS = LiveRun("20261130-010000-aaaaaa", {
    "workflow": "db-migration", "status": "running", "user": "carol", "gates": {}})
MINE = LiveRun("20261130-020000-bbbbbb", {
    "workflow": "payments-bluegreen", "status": "awaiting_approval", "user": "alice",
    "gates": {"switch-traffic": {"approvals": 1, "approvals_required": 2, "may_approve": True,
                                 "deadline": "2026-11-30T03:00:00.000000Z"}}})
NOT_MINE = LiveRun("20261130-030000-cccccc", {
    "workflow": "demo", "status": "awaiting_approval", "user": "bob",
    "gates": {"release": {"approvals": 0, "approvals_required": 1, "may_approve": False,
                          "why_not": "you are not in @release"}}})


async def test_the_run_waiting_on_you_comes_first_and_enter_attaches_to_it() -> None:
    app = PickerApp([OTHERS, NOT_MINE, MINE])
    async with app.run_test(size=(80, 24)) as pilot:
        options = app.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(3)] == [
            MINE.run_id, OTHERS.run_id, NOT_MINE.run_id]
        await pilot.press("enter")
    assert app.return_value == MINE.run_id


async def test_escape_leaves_without_attaching() -> None:
    app = PickerApp([OTHERS, MINE])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("escape")
    assert app.return_value is None


def test_each_gate_says_whether_you_may_pass_it_and_when_it_expires() -> None:
    mine = describe(MINE).plain
    assert "switch-traffic: 1/2 approvals, expires 2026-11-30 03:00 UTC (you may approve)" in mine
    assert "started by alice" in mine
    assert "(not you: you are not in @release)" in describe(NOT_MINE).plain
