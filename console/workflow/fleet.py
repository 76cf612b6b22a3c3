"""Hosts and waves, as pure data: the inventory a workflow sees, the hosts a step runs on,
the waves a strategy makes of them and the failures it allows.

Wave sizes follow Ansible's `serial`: each entry is the size of one wave (a count, or a
share of the whole fleet, rounded up, at least 1), the last entry repeats until every host
has had its wave. The failure budget is for the whole fleet, never per wave (the surprise
in Ansible's #32255 and #15954): "10%" of 20 hosts allows 2 failed hosts; the third fails
the step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from console.workflow.spec import Host, InventoryFile, Strategy, Workflow, format_duration

DEFAULT_STRATEGY = Strategy()


@dataclass(frozen=True)
class InventoryHost:
    """A host with what connecting to it needs, paths made absolute."""

    name: str
    host: Host
    known_hosts: Path | None  # None: the user's ~/.ssh/known_hosts
    identity: Path | None
    connect_timeout_s: float
    defined_in: Path


@dataclass(frozen=True)
class Inventory:
    hosts: Mapping[str, InventoryHost] = field(default_factory=dict)
    shared_file: Path | None = None  # `[workflow] inventory`, when there is one

    def groups(self) -> dict[str, list[str]]:
        """Group name -> its hosts, in inventory order."""
        out: dict[str, list[str]] = {}
        for name, entry in self.hosts.items():
            for group in entry.host.groups:
                out.setdefault(group, []).append(name)
        return out

    def resolve(self, on: str | Sequence[str]) -> tuple[str, ...]:
        """The hosts `on` names ("@web", "web-01", ["web-01", "web-02"]), known ones only."""
        if isinstance(on, str):
            if on.startswith("@"):
                return tuple(self.groups().get(on[1:], ()))
            return (on,) if on in self.hosts else ()
        return tuple(dict.fromkeys(name for name in on if name in self.hosts))


def share_of(share: int | str, total: int) -> int:
    """A count as written, or a percentage of `total` rounded up."""
    if isinstance(share, int):
        return share
    return math.ceil(int(share.rstrip("%")) * total / 100)


def wave_sizes(strategy: Strategy, total: int) -> list[int]:
    """How many hosts each wave takes: [1, "25%", "100%"] of 20 -> [1, 5, 14]."""
    sizes: list[int] = []
    left = total
    while left > 0:
        spec = strategy.waves[min(len(sizes), len(strategy.waves) - 1)]
        size = min(max(1, share_of(spec, total)), left)
        sizes.append(size)
        left -= size
    return sizes


def waves_of(hosts: Sequence[str], strategy: Strategy) -> list[tuple[str, ...]]:
    """The hosts split into waves, in order."""
    out: list[tuple[str, ...]] = []
    at = 0
    for size in wave_sizes(strategy, len(hosts)):
        out.append(tuple(hosts[at:at + size]))
        at += size
    return out


def failures_allowed(strategy: Strategy, total: int) -> int:
    """How many hosts may fail before the step fails: a count, or a share rounded down."""
    budget = strategy.max_failures
    if isinstance(budget, int):
        return budget
    return int(budget.rstrip("%")) * total // 100


def describe_strategy(strategy: Strategy, total: int) -> str:
    """For `plan` and `graph`: "waves 1, 5, 14; up to 2 may fail; approve between"."""
    sizes = wave_sizes(strategy, total)
    text = "waves " + ", ".join(str(n) for n in sizes)
    allowed = failures_allowed(strategy, total)
    text += f"; up to {allowed} may fail" if allowed else "; none may fail"
    if strategy.pause:
        text += f"; pause {format_duration(strategy.pause)}"
    if strategy.approve_between and len(sizes) > 1:
        text += "; approval before each wave after the first"
    return text


def instance_id(step_id: str, key: str) -> str:
    """`deploy[web-03]`: one host's (or one combination's) run of a step."""
    return f"{step_id}[{key}]"


def split_instance(unit: str) -> tuple[str, str] | None:
    """`deploy[web-03]` -> ("deploy", "web-03"); a plain step id -> None."""
    if not unit.endswith("]"):
        return None
    step, bracket, key = unit[:-1].partition("[")
    return (step, key) if bracket else None


def merge_inventory(
    model: Workflow,
    workflow_path: Path,
    shared: InventoryFile | None,
    shared_path: Path | None,
) -> Inventory:
    """One Inventory: the inventory file's hosts, then the workflow's own; paths absolute."""
    meta = model.workflow
    hosts: dict[str, InventoryHost] = {}

    if shared is not None and shared_path is not None:
        # The inventory's known_hosts (relative to it) wins; else the workflow's.
        known_base, known = (
            (shared_path.parent, shared.known_hosts) if shared.known_hosts is not None
            else (workflow_path.parent, meta.known_hosts)
        )
        timeout = shared.connect_timeout or meta.connect_timeout
        for name, host in shared.hosts.items():
            hosts[name] = InventoryHost(
                name=name, host=host, known_hosts=_absolute(known_base, known),
                identity=_absolute(shared_path.parent, host.identity),
                connect_timeout_s=timeout, defined_in=shared_path.parent,
            )
    base = workflow_path.parent
    for name, host in model.hosts.items():
        hosts.setdefault(name, InventoryHost(
            name=name, host=host, known_hosts=_absolute(base, meta.known_hosts),
            identity=_absolute(base, host.identity), connect_timeout_s=meta.connect_timeout,
            defined_in=base,
        ))
    return Inventory(hosts, shared_path if shared is not None else None)


def _absolute(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    return Path(os.path.abspath(base / Path(value).expanduser()))
