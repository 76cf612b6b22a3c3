"""console/present.py: the one place events, records, durations and widths become words."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from console.events import (
    EVENT_TYPES,
    Actor,
    GateOpened,
    StepFinished,
    StepStarted,
    event_from_json,
)
from console.present import (
    cells,
    countdown,
    cut,
    duration,
    event_lines,
    fit,
    pad_to,
    printed_line,
    record_line,
    record_summary,
    step_time,
)

RUN = "20260315-101500-a1b2"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0.0s"), (1.24, "1.2s"), (59.94, "59.9s"), (60, "1m00s"), (65, "1m05s"),
    (3599, "59m59s"), (3600, "1h00m"), (7380, "2h03m"), (-3, "0.0s"),
])
def test_one_duration_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (44.6, "45s"), (60, "1m"), (29 * 60 + 59, "29m"), (7500, "2h05m"),
])
def test_countdown_is_as_coarse_as_a_glance(seconds: float, text: str) -> None:
    assert countdown(seconds) == text


def test_fit_cuts_with_an_ellipsis_pads_and_neutralises() -> None:
    assert fit("deploy-green", 8) == "deploy-…"
    assert fit("ok", 5, pad=True) == "ok   "
    assert fit("a\x1b]2;x\x07b", 40) == "a\\x1b]2;x\\x07b"
    assert fit("a\u200bb", 5) == "a b"
    assert fit("abc", 0) == ""


def test_widths_are_terminal_cells() -> None:
    """One measure for the UI and the CLI tables: a wide character takes two cells."""
    assert cells("部署") == 4 and cells("e\u0301") == 1
    assert cut("部署-green", 5) == "部署…" and cells(cut("部署部署", 5)) == 5
    assert fit("部署", 6, pad=True) == "部署  "
    assert pad_to("ok", 4) == "ok  " and cut("fits", 4) == "fits"


def _finished(**extra: object) -> StepFinished:
    fields: dict[str, object] = dict(
        run=RUN, step="build", attempt=1, outcome="failed", exit_code=2, error=None,
        duration_s=75.0, log_path="/l/build.1.log", log_size=3, log_sha256="0" * 64)
    fields.update(extra)
    return StepFinished(**fields)  # type: ignore[arg-type]


def test_an_event_reads_the_same_in_the_printer_the_pane_and_audit_tail() -> None:
    event = _finished(retry_in_s=2.0)
    line = printed_line(event)
    assert line == "build: failed (exit 2) after 1m15s, log /l/build.1.log — retrying in 2s"
    record = {"seq": 3, "ts": "2026-03-15T10:15:00.000000Z", **event.to_json()}
    assert record_summary(record) == line.removeprefix("build: ")
    tail = record_line(record)
    assert tail.endswith(line.removeprefix("build: ")) and " build " in tail


def test_every_event_type_has_words_of_its_own() -> None:
    for kind, cls in EVENT_TYPES.items():
        fields = {"run": RUN, "type": kind, "step": "s", "data": {}}
        try:
            event = event_from_json(fields)
        except TypeError:
            continue  # needs data; covered by the record tests
        assert event_lines(event, with_step=False)[0] != kind, cls.__name__


def test_a_gate_gives_its_command_on_a_line_of_its_own() -> None:
    gate = GateOpened(run=RUN, step="release", approvals_required=1, approvers=(),
                      reason_required=True, deadline=None,
                      approve_command=f"console approve {RUN} release --reason TEXT")
    lines = event_lines(gate)
    assert lines[0] == "release: awaiting approval: needs 1 approval(s)"
    assert lines[1:] == ("  to approve (a reason is required), run:",
                         f"  console approve {RUN} release --reason TEXT")


def test_a_gate_for_others_gives_its_command_on_a_line_of_its_own() -> None:
    gate = GateOpened(run=RUN, step="release", approvals_required=1, approvers=("@sre",),
                      reason_required=False, deadline=None,
                      approve_command=f"console approve {RUN} release",
                      initiator_may_approve=False, initiator_why_not="you started this run")
    assert event_lines(gate)[1:] == (f"  they approve in `console attach {RUN}`, or with:",
                                     f"  console approve {RUN} release")


def test_someone_elses_text_cannot_drive_the_terminal() -> None:
    event = _finished(outcome="error", error="boom\x1b[2J\nforged line")
    (line,) = event_lines(event)
    assert "\x1b" not in line and "\n" not in line and "\\x1b[2J\\nforged" in line


def test_an_unknown_or_unreadable_record_shows_its_data() -> None:
    odd = {"type": "future.thing", "data": {"b": "two words", "a": 1, "c": None}}
    assert record_summary(odd) == 'a=1, b="two words"'
    bad = {"type": "step.finished", "actor": Actor("u", 1, "cli").to_json(), "data": {"x": 1}}
    assert record_summary(bad) == "x=1"


def test_present_loads_without_textual_or_rich() -> None:
    code = "import console.present, sys; print('textual' in sys.modules or 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_steps_time_is_what_it_took_or_how_long_it_has_run() -> None:
    now = datetime(2026, 3, 15, 10, 16, 5, tzinfo=UTC)
    started = "2026-03-15T10:15:00.000000Z"
    assert step_time(12.04, started, False, now) == "12.0s"
    assert step_time(None, started, True, now) == "1m05s"
    assert step_time(None, started, False, now) == ""
    assert step_time(None, "not a time", True, now) == ""


@pytest.mark.parametrize(("command", "shown"), [
    (("make", "build", "VERSION=1.4.2"), "make build VERSION=1.4.2"),
    # The argument boundaries survive: copied into a shell, it runs the same command.
    (("sh", "-c", 'echo "deploying $1"', "deploy", "a b"),
     """sh -c 'echo "deploying $1"' deploy 'a b'"""),
    (("printf", ""), "printf ''"),
    # A script's lines stay apart: two commands never read as one.
    ('echo "plan"\necho "count=3" >> "$CONSOLE_OUTPUT"\n',
     'echo "plan" ↵ echo "count=3" >> "$CONSOLE_OUTPUT"'),
    ("  make   test  ", "make test"),
])
def test_a_started_step_shows_its_command_as_it_runs(
    command: tuple[str, ...] | str, shown: str
) -> None:
    started = StepStarted(run=RUN, ts="2026-03-15T10:15:00.000Z", step="build", attempt=1,
                          max_attempts=1, command=command, log_path="/l", pid=42)
    assert event_lines(started) == (f"build: started, attempt 1/1, pid 42: {shown}",)


def test_a_step_that_failed_on_its_way_in_reads_in_order() -> None:
    """A host that could not be reached: no pid to show, and the fix ends the line."""
    started = StepStarted(run=RUN, ts="2026-03-15T10:15:00.000Z", step="deploy[web-01]",
                          attempt=1, max_attempts=2, command="deploy", log_path="/l", pid=0)
    assert event_lines(started) == ("deploy[web-01]: started, attempt 1/2: deploy",)
    remote = StepStarted(run=RUN, ts="2026-03-15T10:15:00.000Z", step="deploy[web-01]",
                         attempt=1, max_attempts=2, command="deploy", log_path="/l", pid=7,
                         host="web-01")
    assert event_lines(remote) == ("deploy[web-01]: started, attempt 1/2, web-01 pid 7: deploy",)
    failed = _finished(step="deploy[web-01]", outcome="error", exit_code=None, duration_s=0.0,
                       error="web-01 (127.0.0.2:2222): cannot use the key /k — check "
                             "`identity` in the inventory", retry_in_s=1.0)
    assert event_lines(failed) == (
        "deploy[web-01]: error after 0.0s: web-01 (127.0.0.2:2222): cannot use the key /k — "
        "check `identity` in the inventory; log /l/build.1.log — retrying in 1s",)
