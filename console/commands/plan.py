"""`console plan FILE`: each step in order, what it would run and the policy decision now.

Nothing runs and no secret is read: `${secret:NAME}` is shown as `***` with its name, and
secret params are masked. Decisions are taken as of now, for the person running the plan
as the run's initiator; `--as USER` adds, for each gate, whether USER could approve or
override it and, if not, why. Names, commands, params, reasons and paths are the
workflow author's text: each is shown through `terminal_safe`.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.text import Text

from console.policy.approvals import GateTally
from console.policy.decision import Decision
from console.policy.explain import describe_rule, what_they_could_do
from console.policy.identity import Identity, current_identity, identity_for_user
from console.policy.rules import EvalContext, PolicySet, output_dependencies
from console.textsafe import terminal_safe
from console.workflow.fleet import describe_strategy
from console.workflow.graph import topological_order
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow
from console.workflow.params import resolve_params
from console.workflow.spec import SECRET_REFERENCE
from console.workflow.templating import render_argv, render_value

MASK = "***"
PLAN_RUN_ID = "plan"
EFFECT_STYLES = {"allow": "green", "require_approval": "yellow", "deny": "bold red"}


@dataclass(frozen=True)
class PlannedStep:
    id: str
    needs: tuple[str, ...]
    command: tuple[str, ...] | str  # argv with params filled in (secrets masked), or a script
    env: tuple[tuple[str, str], ...]  # name, value as shown (secrets masked)
    cwd: str | None
    tags: tuple[str, ...]
    decision: Decision
    fleet: str | None = None  # a step on many hosts: which, and its waves
    deferred: tuple[str, ...] = ()  # rules judged only once the steps they read have run


def main(args: argparse.Namespace) -> int:
    loaded = load_workflow(args.file)
    params = resolve_params(loaded.model, dict(args.params))
    initiator = current_identity()
    viewer = identity_for_user(args.as_user) if args.as_user else None
    now = datetime.now(UTC)
    steps = plan_steps(loaded, params, initiator, now)
    console = Console(highlight=False)
    label_width = max(len("inventory" if loaded.inventory.shared_file else "warning"),
                      len(terminal_safe(f"as {viewer.user}")) if viewer else 0)
    _print_header(console, loaded, params, initiator, now, steps, label_width)
    for number, step in enumerate(steps, start=1):
        _print_step(console, number, step, str(loaded.path), initiator, viewer, label_width)
    return 0


def plan_steps(
    loaded: LoadedWorkflow,
    params: Mapping[str, str | int | bool],
    initiator: Identity,
    now: datetime,
) -> list[PlannedStep]:
    policy = PolicySet(loaded)
    ctx = EvalContext(params=params, run_id=PLAN_RUN_ID, initiator=initiator, now=now,
                      workflow=loaded.name, without_outputs=True)
    shown = masked_params(loaded, params)
    planned: list[PlannedStep] = []
    for step_id in topological_order(loaded.steps):
        step = loaded.steps[step_id]
        command: tuple[str, ...] | str = (
            step.run if isinstance(step.run, str)
            else render_argv(step.run, shown, where=f"steps.{step_id}.run", params_only=True)
        )
        planned.append(PlannedStep(
            id=step_id,
            needs=tuple(step.needs),
            command=command,
            env=tuple((name, mask_secret_references(value)) for name, value in step.env.items()),
            cwd=step.cwd,
            tags=tuple(step.tags),
            decision=policy.decide(step_id, ctx),
            fleet=fleet_line(loaded, step_id),
            deferred=tuple(
                f"decided after step{'s' if len(names) > 1 else ''} {', '.join(names)}: "
                f"{name!r} reads {'their' if len(names) > 1 else 'its'} outputs"
                for name, names in output_dependencies(loaded, step_id)
            ),
        ))
    return planned


def fleet_line(loaded: LoadedWorkflow, step_id: str) -> str | None:
    """"@web: 20 hosts (web-01 … web-20); waves 1, 5, 14; up to 2 may fail"."""
    combos = loaded.matrices.get(step_id)
    if combos:
        listed = ", ".join(combos) if len(combos) <= 3 else f"{combos[0]} … {combos[-1]}"
        strategy = describe_strategy(loaded.strategy(step_id), len(combos))
        return f"matrix: {len(combos)} combinations ({listed}); {strategy}"
    hosts = loaded.targets.get(step_id)
    if not hosts:
        return None
    on = loaded.steps[step_id].on
    named = on if isinstance(on, str) else "listed"
    shown = ", ".join(hosts) if len(hosts) <= 4 else f"{hosts[0]} … {hosts[-1]}"
    count = f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"
    return f"{named}: {count} ({shown}); {describe_strategy(loaded.strategy(step_id), len(hosts))}"


def masked_params(
    loaded: LoadedWorkflow, params: Mapping[str, str | int | bool]
) -> dict[str, str | int | bool]:
    declared = loaded.model.params
    return {
        name: MASK if name in declared and declared[name].secret else value
        for name, value in params.items()
    }


def mask_secret_references(value: str) -> str:
    """"postgres://u:${secret:PW}@db" -> "postgres://u:***@db  (secret PW)"."""
    names = [m.group(1) for m in SECRET_REFERENCE.finditer(value)]
    if not names:
        return value
    return f"{SECRET_REFERENCE.sub(MASK, value)}  (secret {', '.join(names)})"


Row = tuple[str, Text, int]  # label, value, hanging indent of wrapped lines


def _print_header(
    console: Console,
    loaded: LoadedWorkflow,
    params: Mapping[str, str | int | bool],
    initiator: Identity,
    now: datetime,
    steps: list[PlannedStep],
    label_width: int,
) -> None:
    console.print(Text.assemble((terminal_safe(loaded.name), "bold"), " — plan as of ",
                                now.strftime("%Y-%m-%d %H:%M UTC")))
    rows: list[Row] = [("file", _safe(_shown_path(loaded.path)), 0)]
    inventory = loaded.inventory.shared_file
    rows += [("inventory" if inventory is not None and Path(p) == inventory else "policy",
              _safe(_shown_path(Path(p))), 0) for p in list(loaded.file_hashes)[1:]]
    rows.append(("started", _safe(f"by {initiator.user} (uid {initiator.uid}), as if now"), 0))
    shown = masked_params(loaded, params)
    listed = ", ".join(f"{k}={render_value(v)}" for k, v in shown.items())
    rows.append(("params", _safe(listed or "none"), 0))
    counts = {"allow": 0, "require_approval": 0, "deny": 0}
    for step in steps:
        counts[step.decision.effect] += 1
    rows.append(("steps", Text(f"{len(steps)}: {counts['allow']} allowed, "
                               f"{counts['require_approval']} need approval, "
                               f"{counts['deny']} denied"), 0))
    _print_rows(console, rows, label_width, indent=0)


def _print_step(
    console: Console,
    number: int,
    step: PlannedStep,
    workflow_file: str,
    initiator: Identity,
    viewer: Identity | None,
    label_width: int,
) -> None:
    console.print()
    title = Text.assemble((f"{number}. ", "dim"), (terminal_safe(step.id), "bold"))
    if step.needs:
        title.append(terminal_safe(f"  after {', '.join(step.needs)}"), style="dim")
    console.print(title)
    rows: list[Row] = []
    if isinstance(step.command, str):
        rows += [("script" if i == 0 else "", _safe(line), 2)
                 for i, line in enumerate(step.command.strip("\n").splitlines())]
    else:
        rows.append(("runs", _safe(shlex.join(step.command)), 2))
    rows += [("env" if i == 0 else "", _safe(f"{name}={value}"), 2)
             for i, (name, value) in enumerate(step.env)]
    if step.fleet:
        rows.append(("matrix" if step.fleet.startswith("matrix: ") else "hosts",
                     _safe(step.fleet.removeprefix("matrix: ")), 2))
    if step.cwd:
        rows.append(("cwd", _safe(step.cwd), 0))
    if step.tags:
        rows.append(("tags", _safe(", ".join(step.tags)), 0))
    decision = step.decision
    rows.append(("gate", _safe(decision.summary, EFFECT_STYLES[decision.effect]), 0))
    rows += [("", _safe(f"• {line}", "yellow"), 2) for line in step.deferred]
    for rule in decision.rules:
        rows.append(("", _safe(f"• {describe_rule(rule)}"), 2))
        rows.append(("", _safe(f"  why: {rule.reason}", "dim"), 7))
        if rule.origin != workflow_file:
            rows.append(("", _safe(f"  from {_shown_path(Path(rule.origin))}", "dim"), 7))
    rows += [("warning", _safe(w, "yellow"), 2) for w in decision.warnings]
    if viewer is not None and decision.effect != "allow":
        tally = GateTally(decision, initiator.uid, {})
        label = terminal_safe(f"as {viewer.user}")
        rows += [(label if i == 0 else "", _safe(line), 2)
                 for i, line in enumerate(what_they_could_do(tally, viewer))]
    _print_rows(console, rows, label_width, indent=3)


def _print_rows(console: Console, rows: list[Row], label_width: int, indent: int) -> None:
    """Label, then the value word-wrapped to the terminal, wrapped lines hanging under it."""
    left = indent + label_width + 2
    width = max(20, console.width - left)
    for label, value, hang in rows:
        for index, line in enumerate(value.wrap(console, width - hang)):
            line.rstrip()
            if index == 0:
                prefix = Text(" " * indent + label.ljust(label_width + 2), style="dim")
            else:
                prefix = Text(" " * (left + hang))
            console.print(Text.assemble(prefix, line), no_wrap=True, crop=False)


def _safe(text: str, style: str = "") -> Text:
    """Someone else's text, as rich Text a terminal only shows."""
    return Text(terminal_safe(text), style=style)


def _shown_path(path: Path) -> str:
    """Relative to the current directory when below it, else absolute."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative
