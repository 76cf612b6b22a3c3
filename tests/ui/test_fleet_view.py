"""A step on many hosts in the UI: one group node with counts; enter lists the hosts with
their status, and picking one shows that host's log in the detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.pilot import Pilot

from console.events import GateOpened, RunStarted, StepFinished, StepStarted, WaveStarted
from console.run.state import StepState
from console.ui.app import ConsoleApp
from console.ui.screens.instances import InstancePicker
from console.ui.widgets.node_status import describe
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow
from tests.ui.conftest import RUN, snapshot_app, ts, wait_for, write_workflow

SnapCompare = Callable[..., bool]
HOSTS = ("web-01", "web-02", "web-03", "web-04")
NOW = datetime(2026, 3, 15, 10, 20, tzinfo=UTC)

FLEET = """
[workflow]
name = "web-rolling"
[hosts.web-01]
address = "127.0.0.2"
groups = ["web"]
[hosts.web-02]
address = "127.0.0.3"
groups = ["web"]
[hosts.web-03]
address = "127.0.0.4"
groups = ["web"]
[hosts.web-04]
address = "127.0.0.5"
groups = ["web"]
[steps.build]
run = "make build"
[steps.deploy]
needs = ["build"]
run = "install-release"
on = "@web"
strategy = { waves = [1, "100%"], max_failures = 1 }
[steps.smoke]
needs = ["deploy"]
run = "smoke-test"
"""


def _fleet(tmp_path: Path) -> LoadedWorkflow:
    return load_workflow(write_workflow(tmp_path, FLEET))


def _events(tmp_path: Path, finished: bool) -> list[Any]:
    def log(unit: str) -> str:
        path = tmp_path / f"{unit}.1.log"
        path.write_text(f"installing on {unit}\n")
        return str(path)

    events: list[Any] = [
        RunStarted(run=RUN, ts=ts(0), workflow="web-rolling", workflow_path="/srv/w.toml",
                   file_hashes={}, params={}, steps=("build", "deploy", "smoke"), user="alice",
                   uid=1000, host="build-01", pid=4242, version="0.1.0", concurrency=2,
                   run_dir="/srv/runs", instances={"deploy": HOSTS}),
        StepStarted(run=RUN, step="build", ts=ts(1), attempt=1, max_attempts=1,
                    command="make build", log_path=log("build"), pid=100),
        StepFinished(run=RUN, step="build", ts=ts(5), attempt=1, outcome="succeeded",
                     exit_code=0, error=None, duration_s=4.0, log_path=log("build"),
                     log_size=10, log_sha256="0" * 64),
        WaveStarted(run=RUN, step="deploy", ts=ts(5), wave=1, waves=2, hosts=HOSTS[:1]),
    ]
    for index, host in enumerate(HOSTS):
        unit = f"deploy[{host}]"
        at = 5 if index == 0 else 20
        if index == 1:
            events.append(WaveStarted(run=RUN, step="deploy", ts=ts(20), wave=2, waves=2,
                                      hosts=HOSTS[1:]))
        events.append(StepStarted(run=RUN, step=unit, ts=ts(at), attempt=1, max_attempts=1,
                                  command="install-release", log_path=log(unit), pid=800 + index,
                                  host=host, host_key="SHA256:Qm9vZmZvb2Zvb2Zvb2Zvb2Zvb2Zvbw"))
        if index == 0 or (finished and index != 3) or index == 2:
            events.append(StepFinished(
                run=RUN, step=unit, ts=ts(at + 10), attempt=1,
                outcome="failed" if index == 2 else "succeeded",
                exit_code=2 if index == 2 else 0, error=None, duration_s=10.0,
                log_path=log(unit), log_size=20, log_sha256="0" * 64))
    return events


def _feed(tmp_path: Path, finished: bool = False) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, ConsoleApp)
        app.run_screen.apply_events(_events(tmp_path, finished))
        app.run_screen.dag.set_selected("deploy", by_person=True)
        app.run_screen.query_one("#dag").focus()

    return run_before


def test_the_group_node_counts_its_hosts(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(_fleet(tmp_path), tmp_path), run_before=_feed(tmp_path))


def test_enter_lists_the_hosts(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(snapshot_app(_fleet(tmp_path), tmp_path), run_before=_feed(tmp_path),
                        press=["enter"])


async def test_picking_a_host_shows_its_log(tmp_path: Path) -> None:
    app = snapshot_app(_fleet(tmp_path), tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _feed(tmp_path, finished=True)(pilot)
        await pilot.pause()
        node = app.run_screen.state.steps["deploy"]
        assert node.instance_counts is not None
        assert {k: v for k, v in node.instance_counts.items() if v} == {
            "succeeded": 2, "failed": 1, "running": 1}
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InstancePicker))
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, InstancePicker))
        await pilot.pause()
        tail = app.run_screen.detail.log_tail
        assert tail.path == tmp_path / "deploy[web-03].1.log"
        assert Text.from_markup(str(tail.border_title)).plain == "▶ log: deploy[web-03]"


async def test_a_gate_between_waves_names_the_wave_it_holds_back(tmp_path: Path) -> None:
    """Passing one wave's gate and meeting the next must not look like nothing happened."""
    def gate(at: float) -> GateOpened:
        return GateOpened(run=RUN, step="deploy", ts=ts(at), approvals_required=1,
                          approvers=(), reason_required=False, deadline=None,
                          approve_command=f"console approve {RUN} deploy")

    app = snapshot_app(_fleet(tmp_path), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.workers.wait_for_complete()
        screen = app.run_screen
        before_any_wave = _events(tmp_path, finished=False)[:3]
        screen.apply_events([*before_any_wave, gate(5)])
        await pilot.pause()
        step = screen.state.steps["deploy"]
        assert describe(step, NOW).word == "awaiting approval 0/1"
        assert any(n.line().startswith("! Approval needed: deploy is waiting")
                   for n in app.notices)
        first_wave = _events(tmp_path, finished=False)[3:6]  # web-01 started and finished
        screen.apply_events([*first_wave, gate(16)])
        await pilot.pause()
        look = describe(step, NOW)
        assert (look.word, look.short) == ("awaiting approval 0/1 for wave 2/2",
                                           "awaiting 0/1, wave 2/2")
        assert any(n.line().startswith("! Approval needed: deploy, wave 2 of 2, is waiting")
                   for n in app.notices)
        dag = screen.dag
        drawn = [dag.render_line(y).text for y in range(dag.size.height)]
        assert any("wave 2/2, awaiting 0/1" in line or look.word in line for line in drawn)


def test_a_finished_group_says_its_failures_first() -> None:
    """At 80 columns the summary cuts a group's word: what went wrong comes before it."""
    clean = StepState(id="deploy", status="succeeded",
                      instance_counts={"succeeded": 9, "reused": 1})
    assert describe(clean, NOW).word == "succeeded: 10 of 10 ok"
    broken = StepState(id="deploy", status="failed",
                       instance_counts={"succeeded": 7, "failed": 2, "error": 1})
    assert describe(broken, NOW).word == "failed: 3 failed, 7 ok of 10"
