"""`console graph FILE`: the DAG, layered top to bottom, with its gates marked.

Top-down reads better than left-to-right at 80 columns: each layer is a block of rows, each
step names what it needs, and gates are marked with a glyph and words (never colour alone).
Past LARGE_DAG steps (or with --compact) each layer becomes one line of counts and names.
The workflow's name, step ids and rule names are its author's text: all go through
`terminal_safe`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from console.commands.plan import fleet_line
from console.policy.rules import match_reason
from console.textsafe import terminal_safe
from console.workflow.graph import layers
from console.workflow.loaded import LoadedWorkflow
from console.workflow.loader import load_workflow
from console.workflow.spec import PolicyRule, Step

LARGE_DAG = 60
GATE = "◆"
DENY = "✖"


@dataclass
class StepMarks:
    """What stands in a step's way, found statically (a `when` or `during` may not apply)."""

    gates: list[str] = field(default_factory=list)
    denials: list[str] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        return bool(self.gates)

    @property
    def may_deny(self) -> bool:
        return bool(self.denials)


def static_marks(loaded: LoadedWorkflow, step_id: str, step: Step) -> StepMarks:
    """Gates and denials from the step's `approval` and the rules whose `match` selects it.

    Rules without a match table apply to every step; they are listed once, in the header.
    """
    marks = StepMarks()
    if step.approval is not None:
        marks.gates.append(f"step approval ×{step.approval.approvals}")
    for sourced in loaded.rules:
        rule = sourced.rule
        if rule.effect == "allow" or _applies_everywhere(rule):
            continue
        if match_reason(rule.match, step_id, step) is not None:
            _mark(marks, rule)
    return marks


def _applies_everywhere(rule: PolicyRule) -> bool:
    return rule.match is None or (not rule.match.tags and not rule.match.steps)


def _mark(marks: StepMarks, rule: PolicyRule) -> None:
    conditional = " (if…)" if rule.when is not None or rule.during is not None else ""
    if rule.effect == "require_approval":
        marks.gates.append(f"{rule.name} ×{rule.approvals}{conditional}")
    else:
        marks.denials.append(f"{rule.name}, {rule.level}{conditional}")


def workflow_wide(loaded: LoadedWorkflow) -> StepMarks:
    marks = StepMarks()
    for sourced in loaded.rules:
        if sourced.rule.effect != "allow" and _applies_everywhere(sourced.rule):
            _mark(marks, sourced.rule)
    return marks


def _step_notes(step: Step) -> str:
    notes = []
    if step.if_ != "success":
        notes.append(f"if {step.if_}")
    if step.retry.attempts > 1:
        notes.append(f"↻{step.retry.attempts}")
    return " ".join(notes)


def _wrap_needs(needs: list[str], width: int) -> list[str]:
    """`← a, b, c` split over lines of at most `width` characters, names kept whole."""
    lines: list[str] = []
    current = "← "
    for index, need in enumerate(needs):
        piece = need + ("," if index < len(needs) - 1 else "")
        if len(current) + len(piece) > width and current.strip() not in ("", "←"):
            lines.append(current.rstrip())
            current = "  "
        current += piece + " "
    lines.append(current.rstrip())
    return lines


def render_full(loaded: LoadedWorkflow, console: Console) -> None:
    rows: list[tuple[str, Text, Step, StepMarks]] = []
    for number, layer in enumerate(layers(loaded.steps), start=1):
        for position, step_id in enumerate(layer):
            step = loaded.steps[step_id]
            marks = static_marks(loaded, step_id, step)
            branch = "" if len(layer) == 1 else (
                "┬ " if position == 0 else "└ " if position == len(layer) - 1 else "├ "
            )
            name = Text(branch, style="dim")
            name.append(terminal_safe(step_id), style="bold")
            if marks.gated:
                name.append(f" {GATE}", style="yellow")
            if marks.may_deny:
                name.append(f" {DENY}", style="red")
            notes = _step_notes(step)
            if notes:
                name.append(f" {notes}", style="cyan")
            rows.append((f"L{number}" if position == 0 else "", name, step, marks))
    label_width = max(len(r[0]) for r in rows) + 1
    name_width = min(max(r[1].cell_len for r in rows), console.width // 2)
    needs_width = max(12, console.width - label_width - name_width - 2)
    for label, name, step, marks in rows:
        name.truncate(name_width, overflow="ellipsis", pad=True)
        shown_needs = [terminal_safe(need) for need in step.needs]
        needs = _wrap_needs(shown_needs, needs_width) if shown_needs else [""]
        for index, needs_line in enumerate(needs):
            line = Text(label.ljust(label_width) if index == 0 else " " * label_width, "dim")
            line.append_text(name if index == 0 else Text(" " * name_width))
            line.append("  " + needs_line, style="dim")
            line.rstrip()
            console.print(line, no_wrap=True, overflow="ellipsis")
        indent = " " * (label_width + (2 if name.plain.startswith(("┬", "├", "└")) else 0))
        for gate in marks.gates:
            console.print(Text(f"{indent}  {GATE} needs approval: {terminal_safe(gate)}", "yellow"),
                          no_wrap=True, overflow="ellipsis")
        for denial in marks.denials:
            console.print(Text(f"{indent}  {DENY} may deny: {terminal_safe(denial)}", "red"),
                          no_wrap=True, overflow="ellipsis")


def render_compact(loaded: LoadedWorkflow, console: Console) -> None:
    """One line per layer; runs of single-step layers (a long chain) share one line."""
    chain: list[tuple[int, str]] = []

    def flush_chain() -> None:
        if len(chain) == 1:
            _compact_line(console, f"L{chain[0][0]}", [chain[0][1]], [StepMarks()])
        elif chain:
            label = f"L{chain[0][0]}–L{chain[-1][0]}"
            _compact_line(console, label, [step for _, step in chain], [StepMarks()] * len(chain),
                          f"{len(chain)} layers of 1 step")
        chain.clear()

    for number, layer in enumerate(layers(loaded.steps), start=1):
        marks = [static_marks(loaded, s, loaded.steps[s]) for s in layer]
        if len(layer) == 1 and not marks[0].gated and not marks[0].may_deny:
            chain.append((number, layer[0]))
            continue
        flush_chain()
        _compact_line(console, f"L{number}", layer, marks)
    flush_chain()


def _compact_line(console: Console, label: str, steps: list[str], marks: list[StepMarks],
                  count: str | None = None) -> None:
    gated = sum(m.gated for m in marks)
    denying = sum(m.may_deny for m in marks)
    line = Text(f"{label:<4}", style="dim")
    line.append(" " + (count or f"{len(steps):>4} step{'s' if len(steps) != 1 else ' '}"),
                style="bold")
    if gated:
        line.append(f"  {GATE} {gated} gated", style="yellow")
    if denying:
        line.append(f"  {DENY} {denying} may deny", style="red")
    line.append("  " + ", ".join(terminal_safe(step) for step in steps), style="dim")
    console.print(line, no_wrap=True, overflow="ellipsis")


def main(args: argparse.Namespace) -> int:
    loaded = load_workflow(args.file)
    console = Console(highlight=False)
    steps = loaded.steps
    count = len(layers(steps))
    compact = args.compact or len(steps) > LARGE_DAG
    header = Text(terminal_safe(loaded.name), style="bold")
    header.append(f" — {len(steps)} steps in {count} layer{'s' if count != 1 else ''}"
                  + (" (compact)" if compact else ""), style="dim")
    console.print(header)
    everywhere = workflow_wide(loaded)
    for gate in everywhere.gates:
        console.print(Text(f"every step {GATE} needs approval: {terminal_safe(gate)}", "yellow"))
    for denial in everywhere.denials:
        console.print(Text(f"every step {DENY} may deny: {terminal_safe(denial)}", "red"))
    for step_id in loaded.groups:
        line = fleet_line(loaded, step_id)
        if line:
            console.print(Text(terminal_safe(f"{step_id} on {line}"), style="cyan"))
    if compact:
        render_compact(loaded, console)
    else:
        render_full(loaded, console)
    console.print(Text(f"{GATE} approval  {DENY} may deny  ← needs  ↻ attempts  "
                       "L1 runs first", style="dim"))
    return 0
