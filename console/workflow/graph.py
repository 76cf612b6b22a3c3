"""The DAG of steps: order, layers, dependents, cycles and the ready set.

Pure functions over a mapping of step id -> anything with `needs` (a `Step`, or any object
with a `needs` sequence). The mapping's order is the file's order, and every function that
returns a sequence keeps it stable in that order. Needs that name no step are ignored here;
the loader reports them. Every function is linear (or n log n) in steps + edges, so 1000+
steps cost milliseconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

# The step statuses after which a step will not change again (console.run.state.FINISHED).
FINISHED_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "error", "denied", "skipped", "cancelled", "reused"}
)


class HasNeeds(Protocol):
    @property
    def needs(self) -> Sequence[str]: ...


class CycleError(ValueError):
    """The steps do not form a DAG; `cycle` is the path, first and last element equal."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("cycle: " + " -> ".join(cycle))


def _needs(steps: Mapping[str, HasNeeds]) -> dict[str, list[str]]:
    """Each step's needs that name a known step, without repeats, in written order."""
    return {
        step_id: list(dict.fromkeys(n for n in step.needs if n in steps))
        for step_id, step in steps.items()
    }


def dependents(steps: Mapping[str, HasNeeds]) -> dict[str, list[str]]:
    """Step id -> the steps that need it directly, in file order (every step is a key)."""
    out: dict[str, list[str]] = {step_id: [] for step_id in steps}
    for step_id, needs in _needs(steps).items():
        for need in needs:
            out[need].append(step_id)
    return out


def topological_order(steps: Mapping[str, HasNeeds]) -> list[str]:
    """Every step after the steps it needs; among steps free to go, the earliest in the file.

    Raises CycleError when there is none.
    """
    index = {step_id: i for i, step_id in enumerate(steps)}
    needs = _needs(steps)
    waiting = {step_id: len(n) for step_id, n in needs.items()}
    after = dependents(steps)
    free = [index[s] for s, count in waiting.items() if count == 0]
    heapq.heapify(free)
    order_ids = list(steps)
    order: list[str] = []
    while free:
        step_id = order_ids[heapq.heappop(free)]
        order.append(step_id)
        for follower in after[step_id]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                heapq.heappush(free, index[follower])
    if len(order) < len(steps):
        raise CycleError(find_cycle(steps) or [])
    return order


def layers(steps: Mapping[str, HasNeeds]) -> list[list[str]]:
    """Steps grouped by the longest path from a root (a step that needs nothing).

    Layer 0 holds the roots; a step sits one layer after the deepest step it needs, so
    every edge goes from a lower layer to a higher one. Each layer is in file order.
    """
    needs = _needs(steps)
    depth: dict[str, int] = {}
    for step_id in topological_order(steps):
        depth[step_id] = 1 + max((depth[n] for n in needs[step_id]), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for step_id in steps:
        grouped[depth[step_id]].append(step_id)
    return grouped


def descendants(steps: Mapping[str, HasNeeds], step_id: str) -> set[str]:
    """Every step that needs `step_id`, directly or through others (not the step itself)."""
    after = dependents(steps)
    seen: set[str] = set()
    stack = list(after.get(step_id, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(after[current])
    seen.discard(step_id)
    return seen


def find_cycle(steps: Mapping[str, HasNeeds]) -> list[str] | None:
    """A cycle as a path along `needs`, e.g. [alpha, gamma, beta, alpha], or None.

    `alpha -> gamma` reads "alpha needs gamma". A step needing itself is [alpha, alpha].
    The search starts from steps in file order, so the answer is deterministic.
    """
    needs = _needs(steps)
    state: dict[str, int] = {}  # 1: on the current path, 2: fully explored
    for root in steps:
        if root in state:
            continue
        path: list[str] = [root]
        iterators = [iter(needs[root])]
        state[root] = 1
        while iterators:
            following = next(iterators[-1], None)
            if following is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(following) == 1:
                start = path.index(following)
                return [*path[start:], following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                iterators.append(iter(needs[following]))
    return None


def ready_steps(
    steps: Mapping[str, HasNeeds],
    statuses: Mapping[str, str],
    finished: Collection[str] = FINISHED_STATUSES,
) -> list[str]:
    """Pending steps whose needs have all finished, in file order.

    "Finished" means any final status, success or not: whether a step whose need failed
    should then run or be skipped (`if = "success" | "failure" | "always"`) is the engine's
    decision, not the graph's. A step absent from `statuses` counts as pending.
    """
    needs = _needs(steps)
    return [
        step_id
        for step_id in steps
        if statuses.get(step_id, "pending") == "pending"
        and all(statuses.get(n) in finished for n in needs[step_id])
    ]
