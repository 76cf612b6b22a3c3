"""Issue 9: what others wrote reaches the terminal as visible text, never as escapes.

Each test drives the real command (a subprocess, or tmux for a real terminal) with a
workflow, an audit file or a control socket holding escape sequences, and checks that no
ESC, control character, C1 control or bidi override reaches stdout or stderr except the
program's own styling, and that the hostile text is still shown, visibly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from console.audit.log import AuditLog
from console.commands.live_view import LivePrinter
from console.events import (
    Actor,
    ApprovalGiven,
    Event,
    GateOpened,
    RunFinished,
    RunStarted,
    StepDenied,
    StepFinished,
    StepReady,
    StepStarted,
)
from console.paths import control_socket_path
from console.policy.verdict import Verdict
from console.run.control import ControlServer
from console.textsafe import terminal_safe

REPO = Path(__file__).resolve().parents[2]
# A window title (ended by BEL, which rich and Textual drop, then by ST, which they keep), a
# clear screen, an 8-bit CSI, a right-to-left override and rich markup.
HOSTILE = "evil\x1b]2;pwned\x07\x1b]2;pwned\x1b\\\x1b[2J\x9b31m\u202e[red]x[/red]"
SHOWN = terminal_safe(HOSTILE)  # evil\x1b]2;pwned\x07\x1b]2;pwned\x1b\\x1b[2J\x9b31m…
# Anything a terminal acts on but a newline (the lines of the output themselves).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
OWN_STYLING = re.compile(r"\x1b\[[0-9;]*m")
# rich's Live redraws with these besides colours: cursor up, erase line, cursor shown/hidden.
OWN_REDRAWING = re.compile(r"\x1b\[(?:[0-9;]*[mAK]|\?25[hl])|\r")
SCRIPT = "echo one\n" + HOSTILE + "\necho two"  # a script: several lines by nature
RUN = "20250314T090000Z-abcdef"
BOB = Actor(user=HOSTILE, uid=1001, via="socket")


def assert_safe(output: str, *, styled: bool = False) -> None:
    rest = OWN_STYLING.sub("", output) if styled else output
    found = UNSAFE.search(rest)
    assert found is None, f"{found.group()!r} reached the terminal in:\n{rest!r}"


def console(*args: str, cwd: Path | None = None, color: bool = False
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["COLUMNS"] = "200"  # rich wraps at 80 otherwise: one line per line here
    if color:
        env["FORCE_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "console", *args], capture_output=True, text=True, timeout=60,
        env=env, cwd=cwd, errors="surrogateescape",
    )


def toml(text: str) -> str:
    """`text` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text)


def hostile_workflow(directory: Path, name: str = "hostile.toml") -> Path:
    path = directory / name
    path.write_text(f"""\
[workflow]
name = {toml(HOSTILE)}
description = {toml(HOSTILE)}

[params]
target = {{ type = "string", default = {toml(HOSTILE)} }}

[steps.build]
run = ["echo", "{{{{ params.target }}}}", {toml(HOSTILE)}]
env = {{ NOTE = {toml(HOSTILE)} }}
tags = [{toml(HOSTILE)}]
description = {toml(HOSTILE)}

[steps.deploy]
needs = ["build"]
run = {toml(SCRIPT)}
cwd = {toml(HOSTILE)}

[[policy]]
name = {toml(HOSTILE)}
match = {{ tags = [{toml(HOSTILE)}] }}
effect = "require_approval"
""")
    return path


# --- validate, plan, graph ----------------------------------------------------------------


def test_validate_quotes_a_bad_step_id_visibly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[workflow]\nname = 'x'\n\n[steps.{toml(HOSTILE)}]\nrun = ['true']\n")
    result = console("validate", str(bad))
    assert result.returncode == 1
    assert_safe(result.stdout + result.stderr)
    assert "steps.\"evil\\x1b]2;pwned\\x07" in result.stderr


@pytest.mark.parametrize("command", ["plan", "graph", "run"])
def test_other_commands_quote_a_bad_workflow_visibly(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[workflow]\nname = 'x'\n\n[steps.{toml(HOSTILE)}]\nrun = ['true']\n")
    result = console(command, str(bad), *(["--no-tui"] if command == "run" else []))
    assert result.returncode == 1
    assert_safe(result.stdout + result.stderr)
    assert "steps.\"evil\\x1b]2;pwned\\x07" in result.stderr


def test_validate_names_a_file_someone_else_named_visibly(tmp_path: Path) -> None:
    # `console validate workflows/*.toml` prints names it did not choose.
    path = hostile_workflow(tmp_path, name="wf\x1b]2;pwned\x07.toml")
    result = console("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout + result.stderr)
    assert "wf\\x1b]2;pwned\\x07.toml: ok" in result.stdout


@pytest.mark.parametrize("color", [False, True], ids=["plain", "styled"])
def test_plan_shows_the_workflows_text_visibly(tmp_path: Path, color: bool) -> None:
    result = console("plan", str(hostile_workflow(tmp_path)), color=color)
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout + result.stderr, styled=color)
    plain = OWN_STYLING.sub("", result.stdout)
    assert plain.startswith(SHOWN + " — plan as of ")  # markup shown, not obeyed
    assert plain.count("pwned") >= 6  # name, param, argv, env, cwd, script, rule


@pytest.mark.parametrize("compact", [False, True], ids=["full", "compact"])
def test_graph_shows_the_workflows_text_visibly(tmp_path: Path, compact: bool) -> None:
    args = ["graph", str(hostile_workflow(tmp_path))] + (["--compact"] if compact else [])
    result = console(*args, color=True)
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout + result.stderr, styled=True)
    plain = OWN_STYLING.sub("", result.stdout)
    assert plain.startswith(SHOWN + " — 2 steps")


# --- status and the audit trail ----------------------------------------------------------


def write_audit(path: Path, events: list[Event]) -> Path:
    with AuditLog(path) as log:
        for event in events:
            log.append(event.to_json())
    return path


def hostile_trail(path: Path) -> Path:
    alice = Actor(user="alice", uid=1000, via="cli")
    return write_audit(path, [
        RunStarted(run=RUN, ts="2025-03-14T09:00:00.000000Z", workflow=HOSTILE,
                   workflow_path="/srv/w.toml", file_hashes={}, params={"v": HOSTILE},
                   steps=("build", "deploy"), user=HOSTILE, uid=1000, host=HOSTILE, pid=1,
                   version="0.1.0", concurrency=2, run_dir="/srv/runs", actor=alice),
        StepReady(run=RUN, step="build", ts="2025-03-14T09:00:01.000000Z"),
        StepStarted(run=RUN, step="build", ts="2025-03-14T09:00:01.000000Z", attempt=1,
                    max_attempts=1, command=("make", HOSTILE), log_path="/l/build.1.log",
                    pid=2),
        StepFinished(run=RUN, step="build", ts="2025-03-14T09:00:02.000000Z", attempt=1,
                     outcome="error", exit_code=None, error=HOSTILE, duration_s=1.0,
                     log_path="/l/build.1.log", log_size=0, log_sha256="0" * 64),
        GateOpened(run=RUN, step="deploy", ts="2025-03-14T09:00:03.000000Z",
                   approvals_required=1, approvers=(), reason_required=True, deadline=None,
                   approve_command=f"console approve {RUN} deploy"),
        ApprovalGiven(run=RUN, step="deploy", ts="2025-03-14T09:00:04.000000Z", actor=BOB,
                      approvals=1, approvals_required=1, reason="\x1b]2;pwned\x07",
                      binding={"run": RUN}),
        StepDenied(run=RUN, step="deploy", ts="2025-03-14T09:00:05.000000Z",
                   reason="\x1b[2J" + HOSTILE, policies=(HOSTILE,)),
        RunFinished(run=RUN, ts="2025-03-14T09:00:06.000000Z", outcome="denied",
                    counts={"error": 1, "denied": 1}, duration_s=6.0),
    ])


def test_audit_tail_shows_an_approvers_reason_visibly(tmp_path: Path) -> None:
    audit = hostile_trail(tmp_path / "audit.jsonl")
    result = console("audit", "tail", str(audit))
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout + result.stderr)
    approval = next(line for line in result.stdout.splitlines() if "approval.given" in line)
    assert "\\x1b]2;pwned\\x07" in approval
    assert "\\x1b[2J" in result.stdout
    assert len(result.stdout.splitlines()) == 8, "one line per record, none forged"


def test_audit_tail_json_is_the_same_json_and_safe(tmp_path: Path) -> None:
    audit = hostile_trail(tmp_path / "audit.jsonl")
    result = console("audit", "tail", "--json", str(audit))
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout + result.stderr)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [json.loads(line) for line in result.stdout.splitlines()] == records


def test_status_shows_names_and_reasons_from_the_audit_visibly(tmp_path: Path) -> None:
    audit = hostile_trail(tmp_path / "audit.jsonl")
    table = console("status", "--audit", str(audit))
    one = console("status", RUN, "--audit", str(audit))
    for result in (table, one):
        assert result.returncode == 0, result.stderr
        assert_safe(result.stdout + result.stderr)
        assert SHOWN in result.stdout
    assert f"workflow    {SHOWN} (/srv/w.toml)" in one.stdout


# --- a run, headless -----------------------------------------------------------------------


def runnable_workflow(directory: Path) -> Path:
    path = directory / "run.toml"
    path.write_text(f"""\
[workflow]
name = {toml(HOSTILE)}

[steps.build]
run = ["true"]

[steps.broken]
run = [{toml("/nonexistent/" + HOSTILE)}]
""")
    return path


def test_a_headless_run_prints_the_workflows_text_visibly(tmp_path: Path) -> None:
    result = console("run", "--no-tui", str(runnable_workflow(tmp_path)))
    assert result.returncode == 1, result.stdout + result.stderr  # `broken` cannot start
    assert_safe(result.stdout + result.stderr)
    assert f"{SHOWN} started by " in result.stdout
    assert "broken: error" in result.stdout


def test_the_live_table_draws_ids_and_notes_as_text() -> None:
    out = StringIO()
    screen = Console(file=out, force_terminal=True, color_system="standard", width=200)
    with LivePrinter(screen) as live:
        for event in hostile_trail_events():
            live.publish(event)
    shown = OWN_REDRAWING.sub("", out.getvalue())
    assert_safe(shown)
    assert SHOWN in shown


def hostile_trail_events() -> list[Event]:
    return [
        StepReady(run=RUN, step="build", ts="2025-03-14T09:00:01.000000Z"),
        StepFinished(run=RUN, step="build", ts="2025-03-14T09:00:02.000000Z", attempt=1,
                     outcome="error", exit_code=None, error=HOSTILE, duration_s=1.0,
                     log_path="/l/build.1.log", log_size=0, log_sha256="0" * 64),
        StepDenied(run=RUN, step="deploy", ts="2025-03-14T09:00:05.000000Z", reason=HOSTILE,
                   policies=(HOSTILE,)),
    ]


# --- the control socket ------------------------------------------------------------------


class EchoingRun:
    """A run whose answers quote what it was sent, as refusals do."""

    run_id = RUN

    def status(self) -> dict[str, Any]:
        return {"run": RUN, "status": "running"}

    def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict:
        return Verdict(True, f"approved {step}: {reason}")

    def deny(self, step: str, uid: int, via: str, reason: str) -> Verdict:
        return Verdict(False, f"{step} is not at a gate; your reason was {reason}")

    def _no(self, *args: object) -> Verdict:
        return Verdict(False, HOSTILE)

    override = cancel_step = cancel_run = retry_step = _no


async def test_messages_from_the_control_socket_are_printed_visibly() -> None:
    run = EchoingRun()
    server = ControlServer(run, control_socket_path(RUN), run.status)  # type: ignore[arg-type]
    await server.start()
    try:
        approved = await asyncio.to_thread(
            console, "approve", RUN, "deploy", "--reason", "\x1b]2;pwned\x07")
        denied = await asyncio.to_thread(
            console, "deny", RUN, "deploy", "--reason", "\x1b[2J" + HOSTILE)
        cancelled = await asyncio.to_thread(console, "cancel", RUN)
    finally:
        await server.close()
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout == "approved deploy: \\x1b]2;pwned\\x07\n"
    assert (denied.returncode, cancelled.returncode) == (3, 3)
    for result in (approved, denied, cancelled):
        assert_safe(result.stdout + result.stderr)
    assert "\\x1b[2J" in denied.stderr and SHOWN in cancelled.stderr


# --- a real terminal: tmux -----------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """A tmux session running one command at 100x30."""

    def __init__(self, command: str) -> None:
        self.session = f"console-safe-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "-L", self.session, "new-session", "-d", "-s", self.session,
                        "-x", "100", "-y",
                        "30", command], check=True)

    def tmux(self, command: str, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.session, command, "-t", self.session, *args],
                              capture_output=True, text=True, check=False).stdout

    def title(self) -> str:
        title = self.tmux("display-message", "-p", "#{pane_title}").strip()
        assert title, "tmux gave no pane title"
        return title

    def wait_for(self, text: str, seconds: float = 40.0) -> str:
        deadline = time.monotonic() + seconds
        screen = ""
        while time.monotonic() < deadline:
            screen = self.tmux("capture-pane", "-p")
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.session, "kill-server"], check=False)


@pytest.fixture
def pane_running(tmp_path: Path) -> Iterator[Any]:
    panes: list[Pane] = []

    def start(*args: str) -> Pane:
        env = {
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "CONSOLE_RUNTIME_DIR": str(tmp_path / "runtime"),
            "TERM": "xterm-256color",
        }
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        argv = " ".join(shlex.quote(a) for a in args)
        pane = Pane(f"cd {shlex.quote(str(REPO))} && env {exports} "
                    f"{shlex.quote(sys.executable)} -m console {argv}; sleep 30")
        panes.append(pane)
        return pane

    yield start
    for pane in panes:
        pane.close()


@needs_tmux
def test_the_ui_does_not_let_a_workflow_name_retitle_the_pane(
    tmp_path: Path, pane_running: Any
) -> None:
    pane = pane_running("run", str(runnable_workflow(tmp_path)))
    before = pane.title()
    # The run ends at once: the summary names the workflow, drawn after the header did.
    screen = pane.wait_for("steps finished")
    assert "evil\\x1b]2;pwned\\x07" in screen
    assert pane.title() == before != "pwned"


@needs_tmux
def test_the_live_view_does_not_let_a_workflow_name_retitle_the_pane(
    tmp_path: Path, pane_running: Any
) -> None:
    pane = pane_running("run", "--no-tui", str(runnable_workflow(tmp_path)))
    before = pane.title()
    screen = pane.wait_for("keep it to prove the trail later:")
    assert "evil\\x1b]2;pwned\\x07" in screen  # rich may wrap the line before it
    assert pane.title() == before != "pwned"
