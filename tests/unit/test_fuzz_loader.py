"""Whatever is in the file, loading gives a LoadedWorkflow or a WorkflowError — nothing else."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.errors import WorkflowError
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

step_ids = st.sampled_from(["build", "test", "deploy", "lint", "notify", "Bad Id", "x"])
durations = (st.sampled_from(["90s", "10m", "1h30m", "500ms", "soon", "", "5 min"])
             | st.integers(-5, 100))
names = st.text(min_size=0, max_size=12)
approvers = st.lists(st.sampled_from(["alice", "bob", "@sre", "@", "", "carol"]), max_size=3)
conditions = st.sampled_from([
    'params.env == "prod"', "step.tags.exists(t, t == 'prod')", "params.env ==", "foo.bar",
    "now.getDayOfWeek() == 5", ")",
])

approval = st.fixed_dictionaries({}, optional={
    "approvals": st.integers(0, 5), "approvers": approvers, "reason": st.booleans(),
    "timeout": durations, "separation_of_duties": st.booleans(),
})
step = st.fixed_dictionaries({"run": st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(["echo", "{{ params.version }}", "{{ params.nope }}", "{{ x }}",
                              "${secret:TOKEN}", "", "{{ steps.build.outputs.image }}",
                              "{{ matrix.region }}", "{{ steps.x.outputs }}"]), max_size=3),
)}, optional={
    "needs": st.lists(step_ids, max_size=3),
    "env": st.dictionaries(st.sampled_from(["A", "B", "1X"]),
                           st.sampled_from(["v", "${secret:TOKEN}", "${secret:bad-x}"])),
    "timeout": durations,
    "retry": st.fixed_dictionaries({}, optional={"attempts": st.integers(0, 5),
                                                 "delay": durations,
                                                 "backoff": st.floats(0, 20)}),
    "if": st.sampled_from(["success", "failure", "always", "alway"]),
    "tags": st.lists(st.sampled_from(["prod", "db"]), max_size=2),
    "approval": approval,
    "outputs": st.one_of(st.lists(st.sampled_from(["image", "1bad", "count"]), max_size=2),
                         st.dictionaries(st.sampled_from(["image", "x-y"]),
                                         st.fixed_dictionaries({}, optional={
                                             "secret": st.booleans(), "other": st.just(1)}))),
    "matrix": st.dictionaries(st.sampled_from(["region", "Tier", "exclude", "include"]),
                              st.lists(st.one_of(st.sampled_from(["eu", "us west", ""]),
                                                 st.integers(0, 3),
                                                 st.fixed_dictionaries({"region": st.just("eu")})),
                                       max_size=3), max_size=3),
})
param = st.fixed_dictionaries({"type": st.sampled_from(["string", "int", "bool", "choice", "x"])},
                              optional={"default": st.one_of(st.text(max_size=5), st.integers(),
                                                             st.booleans()),
                                        "choices": st.lists(st.text(max_size=4), max_size=3),
                                        "pattern": st.sampled_from(["^a", "(", r"^\d+$"]),
                                        "required": st.booleans()})
effects = st.sampled_from(["allow", "require_approval", "deny", "no"])
rule = st.fixed_dictionaries({"name": names, "effect": effects},
                             optional={
    "match": st.fixed_dictionaries({}, optional={"tags": st.lists(st.just("prod")),
                                                 "steps": st.lists(st.just("deploy-*"))}),
    "level": st.sampled_from(["advisory", "soft", "hard"]),
    "approvals": st.integers(0, 4), "approvers": approvers, "override_by": approvers,
    "separation_of_duties": st.booleans(), "when": conditions,
    "during": st.fixed_dictionaries({}, optional={
        "weekdays": st.lists(st.sampled_from(["Mon", "Fri", "Xyz"])),
        "from": st.sampled_from(["15:00", "25:00"]), "tz": st.sampled_from(["UTC", "Mars/X"])}),
})
documents = st.fixed_dictionaries({
    "workflow": st.fixed_dictionaries({"name": names}, optional={
        "description": names, "concurrency": st.integers(-1, 2000),
        "lock": st.sampled_from(["ok", "not ok"]),
        "policies": st.lists(st.sampled_from(["missing.toml", "../x.toml"]), max_size=1)}),
    "steps": st.dictionaries(step_ids, step, max_size=5),
}, optional={
    "params": st.dictionaries(st.sampled_from(["version", "env", "bad name"]), param, max_size=3),
    "policy": st.lists(rule, max_size=3),
})
good_durations = st.sampled_from(["90s", "10m", "1h30m", "500ms"])
good_runs = st.sampled_from(["echo hi", "true"]) | st.just(["echo", "x"])
good_step = st.fixed_dictionaries({"run": good_runs},
                                  optional={"timeout": good_durations,
                                            "tags": st.lists(st.sampled_from(["prod", "db"])),
                                            "if": st.sampled_from(["success", "always"]),
                                            "retry": st.fixed_dictionaries(
                                                {"attempts": st.integers(1, 3),
                                                 "delay": good_durations})})
good_effects = st.sampled_from(["allow", "require_approval", "deny"])
good_rule = st.fixed_dictionaries({"effect": good_effects},
                                  optional={"match": st.just({"tags": ["prod"]}),
                                            "approvers": st.just(["@sre", "alice"]),
                                            "when": st.just('params.env == "prod"')})


@st.composite
def valid_leaning(draw: st.DrawFn) -> dict[str, Any]:
    """Documents that are mostly valid: steps need only earlier steps, values fit the schema."""
    count = draw(st.integers(1, 6))
    steps: dict[str, Any] = {}
    for index in range(count):
        body = dict(draw(good_step))
        earlier = list(steps)
        if earlier:
            body["needs"] = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        steps[f"s{index}"] = body
    rules = [dict(draw(good_rule), name=f"rule {i}") for i in range(draw(st.integers(0, 3)))]
    return {"workflow": {"name": "fuzz"},
            "params": {"env": {"type": "choice", "choices": ["staging", "prod"],
                               "default": "staging"}},
            "steps": steps, "policy": rules}


wrong_values = st.one_of(st.integers(), st.text(max_size=5), st.booleans(),
                         st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                         st.just({"k": 1}))


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-shaped document with a few keys renamed, dropped or given wrong types."""
    document = copy.deepcopy(draw(documents | valid_leaning()))  # st.just values are shared
    for _ in range(draw(st.integers(0, 3))):
        tables: list[dict[str, Any]] = []
        stack: list[object] = [document]
        while stack:
            current = stack.pop()
            if isinstance(current, dict):
                tables.append(current)
                stack.extend(current.values())
            elif isinstance(current, list):
                stack.extend(current)
        table = draw(st.sampled_from(tables))
        if not table:
            continue
        key = draw(st.sampled_from(sorted(table)))
        action = draw(st.sampled_from(["rename", "drop", "retype"]))
        if action == "rename":
            table[key + draw(st.sampled_from(["s", "_", "x"]))] = table.pop(key)
        elif action == "drop":
            del table[key]
        else:
            table[key] = copy.deepcopy(draw(wrong_values))
    return document


def load_or_error(path: Path) -> None:
    try:
        loaded = load_workflow(path)
    except WorkflowError as exc:
        assert exc.problems
        assert all(line and "Traceback" not in line for line in exc.problems)
        return
    assert isinstance(loaded, LoadedWorkflow)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wf.toml"
        path.write_bytes(data)
        load_or_error(path)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list('[]{}="\'.#\n abc12,:\\')), max_size=200))
def test_toml_looking_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wf.toml"
        path.write_text(text)
        load_or_error(path)


@settings(FUZZ, max_examples=80)
@given(mutated())
def test_schema_shaped_documents_mutated(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wf.toml"
        path.write_text(tomli_w.dumps(document))
        load_or_error(path)
