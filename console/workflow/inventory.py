"""The hosts a workflow may run steps on: its own `[hosts.NAME]` tables and a shared
inventory file, checked (console/workflow/fleet.py merges them); and each step's `on`,
checked against them.

Like the other checks these read the raw TOML data, so schema problems and these are
reported together, each at its place (FILE:LINE:COL) with a suggestion.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from console.workflow.problems import FileProblems
from console.workflow.spec import HOST_NAME_PATTERN
from console.workflow.suggest import did_you_mean

_NO_HOSTS_FIX = 'add [hosts.NAME] tables (address, groups) or [workflow] inventory = "hosts.toml"'


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def check_host_tables(data: dict[str, Any], out: FileProblems) -> None:
    """Every host belongs to a group: steps name hosts by group (`on = "@web"`)."""
    for name, host in _dict(data.get("hosts")).items():
        if isinstance(host, dict) and not host.get("groups"):
            out.add(("hosts", name), f"host `{name}` is in no group",
                    'add groups = ["web"] (steps take hosts by group: on = "@web")')


def check_duplicate_hosts(own: Mapping[str, Any], shared: Mapping[str, Any],
                          shared_file: FileProblems, out: FileProblems) -> None:
    for name in own:
        if name in shared:
            first = shared_file.source_map.position(("hosts", name))
            out.add(("hosts", name), f"host `{name}` is also defined in the inventory "
                    f"({shared_file.file}:{first.line})", "define each host once; remove "
                    "this table or the inventory's")


def check_targets(data: dict[str, Any], hosts: Mapping[str, Any],
                  groups: Mapping[str, list[str]], out: FileProblems) -> None:
    """Each step's `on` names known hosts or groups; `strategy` only goes with `on`."""
    for step_id, step in _dict(data.get("steps")).items():
        if not isinstance(step, dict):
            continue
        on = step.get("on")
        if on is None:
            if "strategy" in step and "matrix" not in step:
                out.add(("steps", step_id, "strategy"), "`strategy` without `on` or `matrix`",
                        'a strategy takes a step\'s instances in waves: add on = "@group" or '
                        "a matrix, or remove strategy")
            continue
        path = ("steps", step_id, "on")
        if not hosts:
            out.add(path, "this step runs on hosts, but no hosts are defined", _NO_HOSTS_FIX,
                    at_value=True)
            continue
        if isinstance(on, str):
            _check_target(on, path, hosts, groups, out)
        elif isinstance(on, list):
            if not on:
                out.add(path, "`on` is an empty list", 'name hosts, or a group: on = "@web"',
                        at_value=True)
            seen: set[str] = set()
            for index, name in enumerate(on):
                if not isinstance(name, str):
                    continue
                if name in seen:
                    out.add((*path, index), f"host `{name}` is listed twice",
                            "list each host once", at_value=True)
                seen.add(name)
                if name.startswith("@"):
                    out.add((*path, index), f"`{name}` is a group inside a list",
                            f'use on = "{name}" for the whole group, or list host names',
                            at_value=True)
                else:
                    _check_target(name, (*path, index), hosts, groups, out)


def _check_target(name: str, path: tuple[str | int, ...], hosts: Mapping[str, Any],
                  groups: Mapping[str, list[str]], out: FileProblems) -> None:
    if name.startswith("@"):
        group = name[1:]
        if group not in groups:
            known = [f"@{g}" for g in groups]
            out.add(path, f"no host group `{name}`",
                    did_you_mean(name, known, listing="groups") if known
                    else "no host has groups; add groups = [\"NAME\"] to hosts",
                    at_value=True)
        return
    if not re.fullmatch(HOST_NAME_PATTERN, name):
        return  # the schema reports it
    if name not in hosts:
        known_groups = [f"@{g}" for g in groups]
        fix = did_you_mean(name, list(hosts), listing="hosts")
        if name in groups:
            fix = f'`{name}` is a group: write on = "@{name}"'
        elif known_groups and not fix.startswith("did you mean"):
            fix += f" (or a group: {', '.join(known_groups[:6])})"
        out.add(path, f"no host named `{name}`", fix, at_value=True)


def raw_groups(*host_tables: Mapping[str, Any]) -> dict[str, list[str]]:
    """Group -> hosts from raw `[hosts]` tables (whatever the schema made of them)."""
    out: dict[str, list[str]] = {}
    for table in host_tables:
        for name, host in table.items():
            groups = host.get("groups") if isinstance(host, dict) else None
            for group in groups if isinstance(groups, list) else []:
                if isinstance(group, str):
                    out.setdefault(group, []).append(name)
    return out
