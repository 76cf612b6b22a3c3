"""PolicySet.decide: which rules match a step, windows, CEL conditions, fail closed."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.policy.identity import Identity
from console.policy.rules import EvalContext, PolicySet
from console.workflow.expressions import compile_condition
from console.workflow.loaded import LoadedWorkflow, SourcedRule
from console.workflow.model import Workflow
from console.workflow.spec import workflow_from_dump

ALICE = Identity(user="alice", uid=1001, groups=frozenset({"dev", "sre"}))
FRIDAY_EVENING = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)  # 17:00 in Berlin
WEDNESDAY = datetime(2024, 1, 10, 10, 0, tzinfo=UTC)

DEPLOY = """
[workflow]
name = "payments-deploy"

[params]
version = { type = "string" }
env = { type = "choice", choices = ["staging", "prod"], default = "staging" }

[steps.build]
run = ["make", "build"]

[steps.migrate]
needs = ["build"]
run = "alembic upgrade head"
tags = ["prod", "db"]
approval = { approvers = ["@dba"], reason = true, timeout = "10m" }

[steps.deploy-eu]
needs = ["migrate"]
run = ["./deploy", "eu"]
tags = ["prod"]

[steps.deploy-us]
needs = ["migrate"]
run = ["./deploy", "us"]

[[policy]]
name = "prod needs two people"
match = { tags = ["prod"] }
effect = "require_approval"
approvals = 2
approvers = ["@sre", "@release"]
separation_of_duties = true
timeout = "30m"

[[policy]]
name = "Friday freeze"
match = { tags = ["prod"] }
effect = "deny"
during = { weekdays = ["Fri"], from = "15:00", to = "23:59", tz = "Europe/Berlin" }
level = "soft"
override_by = ["@release"]

[[policy]]
name = "only release builds reach prod"
effect = "deny"
when = 'params.env == "prod" && !params.version.matches("^[0-9]+[.][0-9]+[.][0-9]+$")'
"""


def load(tmp_path: Path, text: str, name: str = "workflow.toml") -> LoadedWorkflow:
    """A LoadedWorkflow built straight from the contract types (no loader needed)."""
    path = tmp_path / name
    path.write_text(text)
    model = workflow_from_dump(Workflow.model_validate(tomllib.loads(text)).model_dump())
    rules = tuple(
        SourcedRule(rule, path, compile_condition(rule.when) if rule.when else None)
        for rule in model.policy
    )
    return LoadedWorkflow(path=path, model=model, rules=rules, file_hashes={str(path): "0" * 64})


def ctx(now: datetime = WEDNESDAY, **params: object) -> EvalContext:
    return EvalContext(params=params or {"version": "1.4.2", "env": "prod"}, run_id="r1",
                       initiator=ALICE, now=now, workflow="payments-deploy")


def test_unmatched_step_is_allowed(tmp_path: Path) -> None:
    policy = PolicySet(load(tmp_path, DEPLOY))
    decision = policy.decide("deploy-us", ctx())
    assert decision.effect == "allow"
    assert decision.summary == "allowed"
    assert decision.rules == ()


def test_a_decision_that_cannot_change_is_known_without_a_context(tmp_path: Path) -> None:
    # deploy-us: no rule but the workflow-wide `when`; build, migrate: conditions or windows.
    plain = PolicySet(load(tmp_path, """
[workflow]
name = "plain"

[steps.a]
run = ["true"]

[steps.b]
run = ["true"]
approval = { approvers = ["@dba"] }
"""))
    allowed = plain.settled("a")
    assert allowed is not None and allowed == plain.decide("a", ctx())
    assert allowed.summary == "allowed"
    asked = plain.settled("b")
    assert asked is not None and asked.summary == "needs 1 approval (@dba)"
    policy = PolicySet(load(tmp_path, DEPLOY, name="deploy.toml"))
    assert [policy.settled(s) for s in ("build", "migrate", "deploy-eu", "deploy-us")] == [
        None, None, None, None,
    ]


def test_tagged_step_needs_two_approvers(tmp_path: Path) -> None:
    decision = PolicySet(load(tmp_path, DEPLOY)).decide("deploy-eu", ctx())
    assert decision.summary == "needs 2 approvals (@sre, @release)"
    assert decision.separation_of_duties
    assert decision.timeout_s == 1800.0
    (rule,) = decision.rules
    assert rule.reason == "step has tag 'prod'"
    assert rule.origin == str(tmp_path / "workflow.toml")


def test_step_approval_table_counts_as_a_rule(tmp_path: Path) -> None:
    decision = PolicySet(load(tmp_path, DEPLOY)).decide("migrate", ctx())
    assert [r.name for r in decision.rules] == ["prod needs two people", "step migrate approval"]
    assert decision.approvals_required == 2
    assert decision.approver_sets == (("@sre", "@release"), ("@dba",))
    assert decision.reason_required
    assert decision.timeout_s == 600.0
    assert decision.rules[1].reason == "[steps.migrate] has an approval table"


def test_window_applies_only_inside_it(tmp_path: Path) -> None:
    policy = PolicySet(load(tmp_path, DEPLOY))
    decision = policy.decide("deploy-eu", ctx(FRIDAY_EVENING))
    assert decision.summary == "denied by 'Friday freeze' (soft)"
    assert decision.override_by == ("@release",)
    freeze = next(r for r in decision.rules if r.name == "Friday freeze")
    assert freeze.reason == "step has tag 'prod'; now is within Fri 15:00–23:59 Europe/Berlin"
    assert policy.decide("deploy-eu", ctx(WEDNESDAY)).effect == "require_approval"


def test_when_condition_over_params(tmp_path: Path) -> None:
    policy = PolicySet(load(tmp_path, DEPLOY))
    bad = policy.decide("build", ctx(version="nightly", env="prod"))
    assert bad.summary == "denied by 'only release builds reach prod' (hard)"
    assert bad.rules[0].reason.startswith("applies to every step; `params.env == \"prod\"")
    assert policy.decide("build", ctx(version="1.4.2", env="prod")).effect == "allow"
    assert policy.decide("build", ctx(version="nightly", env="staging")).effect == "allow"


def test_condition_error_fails_closed_with_the_error(tmp_path: Path) -> None:
    policy = PolicySet(load(tmp_path, DEPLOY))
    decision = policy.decide("build", ctx(env="prod"))  # no `version` param
    assert (decision.effect, decision.level) == ("deny", "hard")
    # The condition reads neither `step` nor `now`: its (failed) result serves every step.
    assert policy.decide("deploy-us", ctx(env="prod")).rules == decision.rules
    assert policy.decide("build", ctx(env="prod", version="1.0.0")).effect == "allow"
    (rule,) = decision.rules
    assert rule.reason == (
        "its condition could not be evaluated, so the step is denied: "
        "`params.env == \"prod\" && !params.version.matches(\"^[0-9]+[.][0-9]+[.][0-9]+$\")` "
        "failed: no field 'version' in the context (a param not given?) — test for it first "
        "with has(...)"
    )


def test_type_error_in_condition_fails_closed_even_for_an_allow_rule(tmp_path: Path) -> None:
    text = """
[workflow]
name = "w"
[steps.a]
run = ["true"]
[[policy]]
name = "big batches are fine"
effect = "allow"
when = 'params.count > 3'
"""
    decision = PolicySet(load(tmp_path, text)).decide("a", ctx(count="many"))
    assert (decision.effect, decision.level) == ("deny", "hard")
    assert "No such overload" in decision.rules[0].reason
    assert PolicySet(load(tmp_path, text)).decide("a", ctx(count=5)).effect == "allow"


MATCHING = """
[workflow]
name = "w"
[steps.deploy-eu]
run = ["true"]
tags = ["prod", "eu"]
[steps.deploy-us]
run = ["true"]
tags = ["us"]
[steps.build]
run = ["true"]
tags = ["prod"]
[[policy]]
name = "globs"
match = { steps = ["deploy-*"] }
effect = "require_approval"
[[policy]]
name = "tags"
match = { tags = ["eu", "us"] }
effect = "require_approval"
[[policy]]
name = "both"
match = { tags = ["prod"], steps = ["deploy-*", "other"] }
effect = "require_approval"
[[policy]]
name = "empty match"
match = {}
effect = "allow"
[[policy]]
name = "exact id"
match = { steps = ["build"] }
effect = "allow"
"""


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("deploy-eu", {"globs": "step has id 'deploy-eu' matching 'deploy-*'",
                       "tags": "step has tag 'eu'",
                       "both": "step has tag 'prod' and id 'deploy-eu' matching 'deploy-*'",
                       "empty match": "applies to every step"}),
        ("deploy-us", {"globs": "step has id 'deploy-us' matching 'deploy-*'",
                       "tags": "step has tag 'us'", "empty match": "applies to every step"}),
        ("build", {"empty match": "applies to every step", "exact id": "step has id 'build'"}),
    ],
)
def test_match_tables(tmp_path: Path, step: str, expected: dict[str, str]) -> None:
    decision = PolicySet(load(tmp_path, MATCHING)).decide(step, ctx())
    assert {r.name: r.reason for r in decision.rules} == expected


def test_condition_context_has_step_run_user_and_now(tmp_path: Path) -> None:
    text = """
[workflow]
name = "w"
[steps.base]
run = ["true"]
[steps.a]
run = ["true"]
needs = ["base"]
tags = ["prod"]
description = "ship it"
[[policy]]
name = "everything visible"
effect = "deny"
when = '''step.id == "a" && "prod" in step.tags && step.needs == ["base"]
  && step.description == "ship it" && run.id == "r1" && run.workflow == "payments-deploy"
  && run.initiator == "alice" && user.name == "alice" && user.uid == 1001
  && "sre" in user.groups && now.getDayOfWeek() == 3 && now.getHours() == 10
  && params.env == "prod"'''
"""
    policy = PolicySet(load(tmp_path, text))
    assert policy.decide("a", ctx()).summary == "denied by 'everything visible' (hard)"
    assert policy.decide("base", ctx()).effect == "allow"


def test_unknown_step_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no step 'nope'"):
        PolicySet(load(tmp_path, DEPLOY)).decide("nope", ctx())


def _reordered(loaded: LoadedWorkflow, order: list[int]) -> LoadedWorkflow:
    return replace(loaded, rules=tuple(loaded.rules[i] for i in order))


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations(range(3)),
    now=st.sampled_from([WEDNESDAY, FRIDAY_EVENING]),
    version=st.sampled_from(["1.4.2", "nightly"]),
    step=st.sampled_from(["build", "migrate", "deploy-eu", "deploy-us"]),
)
def test_rule_order_in_the_file_never_changes_the_decision(
    loaded_deploy: LoadedWorkflow, order: list[int], now: datetime, version: str, step: str
) -> None:
    context = ctx(now, version=version, env="prod")
    expected = PolicySet(loaded_deploy).decide(step, context)
    assert PolicySet(_reordered(loaded_deploy, order)).decide(step, context) == expected


@pytest.fixture(scope="module")
def loaded_deploy(tmp_path_factory: Any) -> LoadedWorkflow:
    return load(tmp_path_factory.mktemp("deploy"), DEPLOY)


def test_conditions_on_now_are_judged_at_each_decision(tmp_path: Path) -> None:
    text = """
[workflow]
name = "w"
[steps.a]
run = ["true"]
[[policy]]
name = "afternoons need a second look"
effect = "require_approval"
when = 'now.getHours() >= 12'
"""
    policy = PolicySet(load(tmp_path, text))
    morning = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
    afternoon = datetime(2024, 1, 10, 13, 0, tzinfo=UTC)
    assert policy.decide("a", ctx(morning)).effect == "allow"
    assert policy.decide("a", ctx(afternoon)).effect == "require_approval"
    assert policy.decide("a", ctx(morning)).effect == "allow"
