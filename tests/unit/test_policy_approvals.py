"""GateTally: separation of duties, N-of-M, approver sets, deny, soft/hard override."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from console.policy.approvals import GateTally
from console.policy.decision import Decision, RuleOutcome, combine
from console.policy.identity import Identity, current_identity, identity_for_uid

from ..multiuser import Accounts

ALICE = Identity("alice", 1001, frozenset({"sre", "dev"}))
BOB = Identity("bob", 1002, frozenset({"release"}))
CAROL = Identity("carol", 1003, frozenset({"sre", "release"}))
DAVE = Identity("dave", 1004, frozenset({"dev"}))
BINDING = {"run": "r1", "step": "deploy", "file_hashes": {"/w.toml": "ab" * 32}}


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


TWO_PEOPLE = rule("prod needs two people", approvals=2, approvers=("@sre", "@release"),
                  separation_of_duties=True)
FREEZE = rule("Friday freeze", "deny", "soft", override_by=("@release",))
HARD = rule("no deploys to the old region", "deny", "hard")


def tally(*rules: RuleOutcome, initiator: Identity = ALICE) -> GateTally:
    return GateTally(combine(rules), initiator.uid, BINDING)


def test_initiator_cannot_approve_under_separation_of_duties() -> None:
    gate = tally(TWO_PEOPLE)
    verdict = gate.approve(ALICE, "looks fine")
    assert not verdict.ok
    assert verdict.message == (
        "you started this run; policy 'prod needs two people' requires someone else"
    )
    assert gate.approvals == []


def test_two_of_many_with_the_same_person_counted_once() -> None:
    gate = tally(TWO_PEOPLE)
    first = gate.approve(CAROL, None)
    assert first.ok and first.message == "approved by carol: 1 of 2 given"
    again = gate.approve(CAROL, None)
    assert not again.ok
    assert again.message == "you already approved; 1 of 2 given, needs someone else"
    assert not gate.satisfied
    assert gate.progress == "needs 2 approvals, 1 given"
    second = gate.approve(Identity("erin", 1005, frozenset({"sre", "release"})), None)
    assert second.message == "approved by erin: 2 of 2 given — the step can run"
    assert gate.satisfied and gate.state == "approved"
    assert gate.progress == "approved by carol, erin"
    assert gate.approvals[0].binding == {**BINDING, "uid": 1003}
    assert gate.approve(BOB, None).message == "the gate is already approved"


def test_approver_must_satisfy_every_set() -> None:
    dba = rule("dba signs off", approvers=("@dba", "root"))
    gate = tally(TWO_PEOPLE, dba)
    assert gate.eligible(BOB) == "you are not root or in @dba (policy 'dba signs off')"
    only_sre = rule("sre only", approvers=("@sre",))
    assert tally(only_sre).eligible(BOB) == "you are not in @sre (policy 'sre only')"
    assert tally(TWO_PEOPLE).eligible(DAVE) == (
        "you are not in @sre or @release (policy 'prod needs two people')"
    )
    assert tally(TWO_PEOPLE).eligible(BOB) is None


def test_reason_required() -> None:
    gate = tally(rule("audited", reason_required=True))
    assert gate.approve(BOB, "  ").message == (
        "policy 'audited' requires a reason to approve — give one (--reason TEXT)"
    )
    verdict = gate.approve(BOB, " ticket OPS-1 ")
    assert verdict.ok and gate.approvals[0].reason == "ticket OPS-1"


def test_deny_by_approver_or_initiator_with_a_reason() -> None:
    gate = tally(TWO_PEOPLE)
    refused = gate.deny(DAVE, "no")
    assert refused.message == (
        "only whoever started this run, an approver or an overrider can deny this step — "
        "you are not in @sre or @release (policy 'prod needs two people')"
    )
    assert gate.deny(ALICE, "").message == "a denial needs a reason — say why (--reason TEXT)"
    assert gate.deny(ALICE, "wrong version").message == "denied by alice: wrong version"
    assert gate.state == "denied" and not gate.satisfied
    assert gate.approve(BOB, None).message == (
        "the gate is closed: alice denied it (wrong version)"
    )
    by_approver = tally(TWO_PEOPLE)
    assert by_approver.deny(BOB, "not today").ok
    assert by_approver.progress == "denied by bob"


def test_soft_deny_overridden_by_override_by_only() -> None:
    gate = tally(FREEZE)
    assert gate.state == "open" and not gate.satisfied
    assert gate.progress == "denied by 'Friday freeze' (soft); needs an override by @release"
    assert gate.eligible(BOB) == (
        "the step is denied by policy 'Friday freeze' (soft); it needs an override by "
        "@release with a reason, not an approval"
    )
    assert gate.override(DAVE, "hotfix").message == (
        "you cannot override policy 'Friday freeze': only @release may"
    )
    assert gate.override(BOB, "").message == (
        "an override needs a reason — say why (--reason TEXT)"
    )
    accepted = gate.override(BOB, "hotfix for INC-42")
    assert accepted.ok
    assert accepted.message == "overridden by bob: 'Friday freeze' lifted — the step can run"
    assert gate.state == "overridden" and gate.satisfied
    assert gate.overridden_by is not None and gate.overridden_by.reason == "hotfix for INC-42"


def test_override_lifts_the_deny_but_not_the_approvals() -> None:
    gate = tally(TWO_PEOPLE, FREEZE)
    assert gate.override(BOB, "hotfix").message == (
        "overridden by bob: 'Friday freeze' lifted — it still needs 2 more approvals"
    )
    assert gate.approve(BOB, None).ok
    assert not gate.satisfied
    assert gate.approve(CAROL, None).message == (
        "approved by carol: 2 of 2 given — the step can run"
    )
    assert gate.state == "overridden"
    assert gate.override(BOB, "again").message == "the gate is already overridden"


def test_approvals_before_override_wait_for_it() -> None:
    gate = tally(TWO_PEOPLE, FREEZE)
    gate.approve(BOB, None)
    assert gate.approve(CAROL, None).message == (
        "approved by carol: 2 of 2 given — it still needs an override of 'Friday freeze'"
    )
    assert gate.eligible(DAVE) == (
        "all 2 approvals are given; the step waits for an override of 'Friday freeze'"
    )


def test_hard_deny_cannot_be_overridden_or_approved() -> None:
    gate = tally(FREEZE, HARD)
    assert gate.state == "denied"
    assert gate.override(BOB, "please").message == (
        "policy 'no deploys to the old region' is hard: it cannot be overridden"
    )
    assert gate.approve(BOB, "please").message == (
        "the step is denied by policy 'no deploys to the old region' (hard); no approval or "
        "override can change that"
    )


def test_nothing_to_override_when_not_denied() -> None:
    assert tally(TWO_PEOPLE).override(BOB, "x").message == (
        "there is nothing to override: the step is not denied "
        "(needs 2 approvals (@sre, @release))"
    )


def test_advisory_deny_only_warns_and_needs_no_gate() -> None:
    gate = tally(rule("heads up", "deny", "advisory"))
    assert gate.decision.effect == "allow"
    assert gate.decision.warnings == ("advisory 'heads up' would deny this step: "
                                      "step has tag 'prod'",)
    assert gate.satisfied
    assert gate.approve(BOB, None).message == "this step needs no approval"


def test_tally_from_a_decision_read_back_from_json() -> None:
    decision = Decision.from_json(json.loads(json.dumps(combine([TWO_PEOPLE]).to_json())))
    gate = GateTally(decision, ALICE.uid, BINDING)
    assert not gate.approve(ALICE, None).ok
    assert gate.approve(BOB, None).ok


def test_identity_comes_from_the_uid_not_user_or_logname() -> None:
    """A spoofed USER/LOGNAME changes nothing: the initiator is still refused."""
    code = (
        "import json, os\n"
        "from console.policy.approvals import GateTally\n"
        "from console.policy.decision import combine, RuleOutcome\n"
        "from console.policy.identity import current_identity\n"
        "me = current_identity()\n"
        "rule = RuleOutcome('two people', 'require_approval', 'hard', 'x', 2, (), True, False,"
        " None, (), 'w')\n"
        "gate = GateTally(combine([rule]), os.getuid(), {})\n"
        "v = gate.approve(me, 'it is fine')\n"
        "print(json.dumps({'user': me.user, 'uid': me.uid, 'ok': v.ok, 'message': v.message}))\n"
    )
    env = {**os.environ, "USER": "somebody-else", "LOGNAME": "somebody-else"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout)
    assert result["uid"] == os.getuid()
    assert result["user"] == identity_for_uid(os.getuid()).user != "somebody-else"
    assert not result["ok"]
    assert result["message"] == "you started this run; policy 'two people' requires someone else"


def test_uid_without_a_passwd_entry() -> None:
    unused = next(u for u in range(60000, 65000) if not _has_passwd_entry(u))
    assert identity_for_uid(unused) == Identity(f"uid:{unused}", unused, frozenset())
    assert current_identity().uid == os.getuid()


def _has_passwd_entry(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


@pytest.fixture
def temp_user_in_group(accounts: Accounts) -> tuple[str, str]:
    """A real user in a real group, made for the session and removed at its end."""
    group = accounts.group(f"{accounts.prefix}g")
    return accounts.user("member", groups=[group]).name, group


def test_group_approvers_resolved_from_the_system(temp_user_in_group: tuple[str, str]) -> None:
    import pwd

    user, group = temp_user_in_group
    uid = pwd.getpwnam(user).pw_uid
    member = identity_for_uid(uid)
    assert member.user == user and group in member.groups
    assert member.matches(f"@{group}") and member.matches(user)
    assert not member.matches("@nonexistent-group")
    gate = tally(rule("group gate", approvers=(f"@{group}",)))
    outsider = identity_for_uid(0)
    assert gate.approve(outsider, None).message == (
        f"you are not in @{group} (policy 'group gate')"
    )
    assert gate.approve(member, None).ok and gate.satisfied
