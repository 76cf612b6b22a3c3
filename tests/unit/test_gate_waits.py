"""Who may pass a gate, asked without acting: the per-caller judgement `console status`
shows, and the headless line that says at once when a gate waits for someone else."""

from __future__ import annotations

import os
from io import StringIO
from typing import Any

from rich.console import Console

from console.commands.live_view import LivePrinter, steps_table
from console.events import Event, GateClosed, GateOpened, RunStarted, event_from_json
from console.policy.approvals import GateTally
from console.policy.decision import Decision, RuleOutcome, combine
from console.policy.identity import Identity, identity_for_uid
from console.present import printed_line as describe
from console.run.gates import Gates

ALICE = Identity("alice", 1001, frozenset({"sre"}))
BOB = Identity("bob", 1002, frozenset({"release"}))
CAROL = Identity("carol", 1003, frozenset({"sre"}))
RUN = "20250304-101500-7f3a9c"
NOBODY = 65534


def rule(
    name: str, effect: str = "require_approval", level: str = "hard", **kw: Any
) -> RuleOutcome:
    fields: dict[str, Any] = {
        "reason": "step has tag 'prod'", "approvals": 1 if effect == "require_approval" else 0,
        "approvers": (), "separation_of_duties": False, "reason_required": False,
        "timeout_s": None, "override_by": (), "origin": "/w.toml",
    }
    fields.update(kw)
    return RuleOutcome(name=name, effect=effect, level=level, **fields)  # type: ignore[arg-type]


TWO_PEOPLE = rule("two people", approvals=2, approvers=("@sre",), separation_of_duties=True)
FREEZE = rule("Friday freeze", "deny", "soft", override_by=("@release",))


def test_why_not_judges_without_acting() -> None:
    gate = GateTally(combine([TWO_PEOPLE]), ALICE.uid, {"run": RUN})
    assert gate.why_not(ALICE) == "you started this run; policy 'two people' requires someone else"
    assert gate.why_not(CAROL) is None
    assert gate.why_not(BOB) == "you are not in @sre (policy 'two people')"
    assert gate.approvals == [], "asking approves nothing"
    assert gate.approve(CAROL, None).ok
    assert gate.why_not(CAROL) == "you already approved; 1 of 2 given, needs someone else"


def test_why_not_of_a_soft_deny_is_about_the_override() -> None:
    gate = GateTally(combine([FREEZE]), ALICE.uid, {"run": RUN})
    assert gate.why_not(BOB) is None
    assert gate.why_not(CAROL) == "you cannot override policy 'Friday freeze': only @release may"
    assert gate.overridden_by is None


def gates_of(initiator_uid: int) -> tuple[Gates, list[Event]]:
    events: list[Event] = []
    gates = Gates(RUN, initiator_uid, {}, clock=lambda: None,  # type: ignore[arg-type,return-value]
                  emit=events.append, on_passed=lambda step: None,
                  on_denied=lambda *args: None)
    return gates, events


def decision(*rules: RuleOutcome) -> Decision:
    return combine(rules)


def test_a_gate_the_initiator_cannot_pass_says_so_as_it_opens() -> None:
    gates, events = gates_of(os.getuid())
    gates.open("switch-traffic", decision(rule("others", separation_of_duties=True)))
    gates.open("smoke", decision(rule("anyone")))
    opened = [e for e in events if isinstance(e, GateOpened)]
    assert [(e.step, e.initiator_may_approve) for e in opened] == [
        ("switch-traffic", False), ("smoke", True)]
    assert opened[0].initiator_why_not == (
        "you started this run; policy 'others' requires someone else")
    assert opened[1].initiator_why_not is None


def test_a_gate_for_a_group_the_initiator_is_not_in() -> None:
    gates, events = gates_of(NOBODY)
    gates.open("migrate", decision(rule("dba", approvers=("@console-no-such-group",))))
    [opened] = [e for e in events if isinstance(e, GateOpened)]
    assert not opened.initiator_may_approve
    assert opened.initiator_why_not == "you are not in @console-no-such-group (policy 'dba')"


def test_summaries_judge_the_uid_asking() -> None:
    gates, _ = gates_of(os.getuid())
    gates.open("switch-traffic", decision(rule("others", approvals=2,
                                               separation_of_duties=True)))
    plain = gates.summaries()["switch-traffic"]
    assert plain == {"summary": "needs 2 approvals", "approvals": 0, "approvals_required": 2,
                     "approvers": [], "approve_command": f"console approve {RUN} switch-traffic",
                     "deadline": None}
    mine = gates.summaries(for_uid=os.getuid())["switch-traffic"]
    assert (mine["may_approve"], mine["why_not"]) == (
        False, "you started this run; policy 'others' requires someone else")
    theirs = gates.summaries(for_uid=NOBODY)["switch-traffic"]
    assert (theirs["may_approve"], theirs["why_not"]) == (True, None)
    assert identity_for_uid(NOBODY).uid == NOBODY


def test_audit_lines_written_before_the_fields_existed_still_parse() -> None:
    old = {"run": RUN, "type": "gate.opened", "step": "deploy", "ts": "2025-03-04T10:15:00Z",
           "data": {"approvals_required": 1, "approvers": ["@sre"], "reason_required": False,
                    "deadline": None, "approve_command": f"console approve {RUN} deploy"}}
    event = event_from_json(old)
    assert isinstance(event, GateOpened)
    assert (event.initiator_may_approve, event.initiator_why_not) == (True, None)
    assert describe(event) == (f"deploy: awaiting approval: needs 1 approval(s) from @sre\n"
                               "  to approve, run:\n"
                               f"  console approve {RUN} deploy")


def waiting_gate(**kw: Any) -> GateOpened:
    fields: dict[str, Any] = {
        "run": RUN, "step": "switch-traffic", "approvals_required": 2, "approvers": ("@sre",),
        "reason_required": False, "deadline": None,
        "approve_command": f"console approve {RUN} switch-traffic",
        "initiator_may_approve": False,
        "initiator_why_not": "you started this run; policy 'two people' requires someone else",
    }
    fields.update(kw)
    return GateOpened(**fields)


def test_the_headless_line_names_who_may_approve_and_how() -> None:
    assert describe(waiting_gate()) == (
        "switch-traffic: waiting for @sre (not you: you started this run), 2 approvals needed\n"
        f"  they approve in `console attach {RUN}`, or with:\n"
        f"  console approve {RUN} switch-traffic"
    )
    override = waiting_gate(
        approvals_required=0, approvers=(),
        approve_command=f'console override {RUN} switch-traffic --reason "..."',
        initiator_why_not="you cannot override policy 'Friday freeze': only @release may")
    assert describe(override) == (
        "switch-traffic: waiting for an override by someone else (not you: you cannot "
        "override policy 'Friday freeze': only @release may)\n"
        f"  they override in `console attach {RUN}`, or with:\n"
        f'  console override {RUN} switch-traffic --reason "..."'
    )


def test_the_live_table_says_whom_a_step_waits_for() -> None:
    out = StringIO()
    screen = Console(file=out, force_terminal=False, width=120)
    started = RunStarted(
        run=RUN, workflow="bluegreen", workflow_path="/w.toml", file_hashes={}, params={},
        steps=("switch-traffic",), user="alice", uid=1001, host="h", pid=1, version="0",
        concurrency=1, run_dir="/r")
    with LivePrinter(screen) as live:
        live.publish(started)
        live.publish(waiting_gate())
        assert live.waiting == {"switch-traffic": "waiting for @sre (not you)"}
        table = StringIO()
        Console(file=table, width=120).print(steps_table(live.state, None, live.waiting))
        assert "waiting for @sre (not you)" in table.getvalue()
        live.publish(GateClosed(run=RUN, step="switch-traffic", outcome="approved"))
        assert live.waiting == {}
    assert "switch-traffic: waiting for @sre (not you: you started this run)" in out.getvalue()
    assert f"they approve in `console attach {RUN}`, or with:" in out.getvalue()
