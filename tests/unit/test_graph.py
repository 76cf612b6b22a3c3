"""The DAG functions: examples, then properties checked against graphlib."""

from __future__ import annotations

import graphlib
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.run.state import FINISHED
from console.workflow.graph import (
    FINISHED_STATUSES,
    CycleError,
    dependents,
    descendants,
    find_cycle,
    layers,
    ready_steps,
    topological_order,
)


@dataclass(frozen=True)
class Node:
    needs: tuple[str, ...] = ()


def dag(**needs: str) -> dict[str, Node]:
    """dag(b="a", c="a b") -> b needs a, c needs a and b; order of keywords is file order."""
    return {name.replace("_", "-"): Node(tuple(spec.split())) for name, spec in needs.items()}


DIAMOND = dag(checkout="", lint="checkout", test="checkout", package="lint test",
              deploy="package", notify="")


def test_topological_order_is_stable_in_file_order() -> None:
    assert topological_order(DIAMOND) == ["checkout", "lint", "test", "package", "deploy",
                                          "notify"]
    later_root = dag(b="a", a="", c="")
    assert topological_order(later_root) == ["a", "b", "c"]


def test_layers_are_longest_paths_from_the_roots() -> None:
    assert layers(DIAMOND) == [["checkout", "notify"], ["lint", "test"], ["package"],
                               ["deploy"]]
    skip = dag(a="", b="a", c="b", d="a c")
    assert layers(skip) == [["a"], ["b"], ["c"], ["d"]]
    assert layers({}) == []


def test_dependents_and_descendants() -> None:
    assert dependents(DIAMOND)["checkout"] == ["lint", "test"]
    assert dependents(DIAMOND)["deploy"] == []
    assert descendants(DIAMOND, "lint") == {"package", "deploy"}
    assert descendants(DIAMOND, "notify") == set()


def test_unknown_needs_are_ignored_here() -> None:
    steps = dag(a="ghost", b="a")
    assert topological_order(steps) == ["a", "b"]
    assert find_cycle(steps) is None


def test_find_cycle_gives_the_path_along_needs() -> None:
    steps = dag(alpha="gamma", beta="alpha", gamma="beta", delta="")
    assert find_cycle(steps) == ["alpha", "gamma", "beta", "alpha"]
    assert find_cycle(dag(solo="solo")) == ["solo", "solo"]
    with pytest.raises(CycleError) as caught:
        topological_order(steps)
    assert str(caught.value) == "cycle: alpha -> gamma -> beta -> alpha"


def test_ready_steps_wait_for_every_need_to_finish() -> None:
    assert ready_steps(DIAMOND, {}) == ["checkout", "notify"]
    statuses = {"checkout": "succeeded", "lint": "failed", "test": "running", "notify": "ready"}
    assert ready_steps(DIAMOND, statuses) == []
    statuses["test"] = "skipped"
    assert ready_steps(DIAMOND, statuses) == ["package"]


def test_finished_statuses_match_the_run_state() -> None:
    assert frozenset(FINISHED) == FINISHED_STATUSES


def test_a_thousand_steps_in_a_chain_and_a_fan() -> None:
    chain = {f"s{i}": Node((f"s{i - 1}",) if i else ()) for i in range(2000)}
    assert len(layers(chain)) == 2000
    assert find_cycle(chain) is None
    fan = {"root": Node(), **{f"leaf{i}": Node(("root",)) for i in range(2000)}}
    assert len(layers(fan)[1]) == 2000
    assert len(descendants(fan, "root")) == 2000


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool) -> dict[str, Node]:
    count = draw(st.integers(min_value=0, max_value=25))
    names = [f"n{i}" for i in range(count)]
    order = draw(st.permutations(names))  # file order differs from the DAG's order
    steps: dict[str, Node] = {}
    for index, name in enumerate(names):
        pool = names[:index] if acyclic else names
        needs = draw(st.lists(st.sampled_from(pool), max_size=4)) if pool else []
        steps[name] = Node(tuple(needs))
    return {name: steps[name] for name in order}


@settings(max_examples=100, deadline=None)
@given(graphs(acyclic=True))
def test_layers_and_order_respect_every_edge(steps: dict[str, Node]) -> None:
    depth = {s: i for i, layer in enumerate(layers(steps)) for s in layer}
    position = {s: i for i, s in enumerate(topological_order(steps))}
    assert sorted(depth) == sorted(steps) == sorted(position)
    for step_id, node in steps.items():
        for need in node.needs:
            assert depth[need] < depth[step_id]
            assert position[need] < position[step_id]
        if node.needs:
            assert depth[step_id] == 1 + max(depth[n] for n in node.needs)
        else:
            assert depth[step_id] == 0


@settings(max_examples=120, deadline=None)
@given(graphs(acyclic=False))
def test_find_cycle_agrees_with_graphlib(steps: dict[str, Node]) -> None:
    sorter = graphlib.TopologicalSorter({s: n.needs for s, n in steps.items()})
    try:
        sorter.prepare()
        has_cycle = False
    except graphlib.CycleError:
        has_cycle = True
    cycle = find_cycle(steps)
    assert (cycle is not None) == has_cycle
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        for current, following in itertools.pairwise(cycle):
            assert following in steps[current].needs
        with pytest.raises(CycleError):
            topological_order(steps)


@settings(max_examples=60, deadline=None)
@given(graphs(acyclic=True), st.data())
def test_ready_steps_are_pending_with_all_needs_finished(
    steps: dict[str, Node], data: st.DataObject
) -> None:
    statuses = {
        s: data.draw(st.sampled_from(["pending", "running", "succeeded", "failed", "skipped"]))
        for s in steps
    }
    ready = ready_steps(steps, statuses)
    for step_id in steps:
        expected = statuses[step_id] == "pending" and all(
            statuses[n] in FINISHED_STATUSES for n in steps[step_id].needs
        )
        assert (step_id in ready) == expected
    assert ready == [s for s in steps if s in ready]  # file order
