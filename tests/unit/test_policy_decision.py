"""Combining rule outcomes: the precedence table, levels, and order independence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.policy.decision import Decision, RuleOutcome, combine


def outcome(name: str, effect: str = "allow", level: str = "hard", **kw: Any) -> RuleOutcome:
    fields: dict[str, Any] = {
        "reason": "matched", "approvals": 1 if effect == "require_approval" else 0,
        "approvers": (), "separation_of_duties": False, "reason_required": False,
        "timeout_s": None, "override_by": (), "origin": "/w/workflow.toml",
    }
    fields.update(kw)
    return RuleOutcome(name=name, effect=effect, level=level, **fields)  # type: ignore[arg-type]


ALLOW = outcome("a-allow")
NEED = outcome("b-need", "require_approval", approvals=2, approvers=("@sre",))
SOFT = outcome("c-soft", "deny", "soft", override_by=("@release",))
HARD = outcome("d-hard", "deny", "hard")
ADVISORY = outcome("e-advisory", "deny", "advisory")


@pytest.mark.parametrize(
    ("rules", "effect", "level", "summary"),
    [
        ([], "allow", None, "allowed"),
        ([ALLOW], "allow", None, "allowed"),
        ([ADVISORY], "allow", None, "allowed, 1 warning"),
        ([ALLOW, NEED], "require_approval", None, "needs 2 approvals (@sre)"),
        ([NEED, ADVISORY], "require_approval", None, "needs 2 approvals (@sre), 1 warning"),
        ([ALLOW, SOFT], "deny", "soft", "denied by 'c-soft' (soft)"),
        ([NEED, SOFT], "deny", "soft", "denied by 'c-soft' (soft)"),
        ([SOFT, HARD], "deny", "hard", "denied by 'd-hard' (hard) and 1 more"),
        ([ALLOW, NEED, SOFT, HARD, ADVISORY], "deny", "hard",
         "denied by 'd-hard' (hard) and 1 more, 1 warning"),
    ],
)
def test_precedence_table(
    rules: list[RuleOutcome], effect: str, level: str | None, summary: str
) -> None:
    decision = combine(rules)
    assert (decision.effect, decision.level, decision.summary) == (effect, level, summary)
    assert decision.rules == tuple(sorted(rules, key=lambda r: r.name))


def test_approvals_take_the_highest_count_and_every_approver_set() -> None:
    two = outcome("two people", "require_approval", approvals=2, approvers=("@sre", "@release"),
                  separation_of_duties=True, timeout_s=1800.0)
    dba = outcome("dba", "require_approval", approvals=1, approvers=("@dba",),
                  reason_required=True, timeout_s=600.0)
    anyone = outcome("anyone", "require_approval", approvals=3)
    decision = combine([two, dba, anyone])
    assert decision.approvals_required == 3
    assert decision.approver_sets == (("@dba",), ("@sre", "@release"))
    assert decision.approvers == ("@dba", "@sre", "@release")
    assert decision.separation_of_duties and decision.reason_required
    assert decision.timeout_s == 600.0
    assert decision.summary == "needs 3 approvals (@dba, @sre, @release)"


def test_one_approval_reads_singular_and_anyone_has_no_list() -> None:
    assert combine([outcome("x", "require_approval")]).summary == "needs 1 approval"


def test_soft_deny_keeps_the_approvals_an_override_does_not_lift() -> None:
    decision = combine([NEED, SOFT])
    assert decision.approvals_required == 2
    assert decision.override_by == ("@release",)
    assert decision.override_sets == (("c-soft", ("@release",)),)
    assert decision.gated


def test_hard_deny_offers_no_override() -> None:
    decision = combine([SOFT, HARD])
    assert decision.override_by == ()
    assert not decision.gated
    assert [r.name for r in decision.denying_rules] == ["d-hard", "c-soft"]


def test_advisory_rules_only_warn() -> None:
    advisory_need = outcome("f-adv-need", "require_approval", "advisory", approvals=2)
    decision = combine([ADVISORY, advisory_need])
    assert decision.effect == "allow"
    assert decision.approvals_required == 0
    assert decision.warnings == (
        "advisory 'e-advisory' would deny this step: matched",
        "advisory 'f-adv-need' would ask for 2 approvals: matched",
    )


def test_json_round_trip() -> None:
    decision = combine([ALLOW, NEED, SOFT, ADVISORY,
                        outcome("t", "require_approval", timeout_s=90.0, reason_required=True)])
    data = decision.to_json()
    assert Decision.from_json(data) == decision
    assert data["rules"][0]["name"] == "a-allow"
    assert data["summary"] == decision.summary


outcomes = st.builds(
    RuleOutcome,
    name=st.sampled_from(["freeze", "prod", "dba", "prod"]),
    effect=st.sampled_from(["allow", "require_approval", "deny"]),
    level=st.sampled_from(["advisory", "soft", "hard"]),
    reason=st.sampled_from(["tag prod", "glob deploy-*"]),
    approvals=st.integers(1, 4),
    approvers=st.lists(st.sampled_from(["@sre", "@release", "alice"]), max_size=2).map(tuple),
    separation_of_duties=st.booleans(),
    reason_required=st.booleans(),
    timeout_s=st.none() | st.sampled_from([60.0, 600.0]),
    override_by=st.lists(st.sampled_from(["@release", "bob"]), max_size=2).map(tuple),
    origin=st.sampled_from(["/a.toml", "/b.toml"]),
)


@given(st.lists(outcomes, max_size=8), st.randoms())
def test_rule_order_never_changes_the_decision(rules: list[RuleOutcome], rnd: Any) -> None:
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    assert combine(shuffled) == combine(rules)
    assert combine(reversed(rules)).to_json() == combine(rules).to_json()
