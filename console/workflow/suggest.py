"""Closest-name suggestions for typos: "did you mean `run`?"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Names people bring from other tools, mapped to ours.
_SYNONYMS = {
    "after": "needs",
    "depends": "needs",
    "depends_on": "needs",
    "dependencies": "needs",
    "requires": "needs",
    "command": "run",
    "cmd": "run",
    "script": "run",
    "shell": "run",
    "environment": "env",
    "retries": "retry",
    "working_directory": "cwd",
    "workdir": "cwd",
    "condition": "if",
    "step": "steps",
    "policies": "policy",
    "parameters": "params",
    "param": "params",
}


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a person most likely meant by `name`, or None if nothing is close."""
    options = list(candidates)
    if not options:
        return None
    by_lower = {option.lower(): option for option in options}
    lowered = name.lower()
    if lowered in by_lower:
        return by_lower[lowered]
    synonym = _SYNONYMS.get(lowered.replace("-", "_"))
    if synonym in options:
        return synonym
    found = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def did_you_mean(name: str, candidates: Iterable[str], *, listing: str = "allowed") -> str:
    """A fix: "did you mean `x`?", else the list of what is allowed."""
    options = list(candidates)
    guess = closest(name, options)
    if guess is not None:
        return f"did you mean `{guess}`?"
    if not options:
        return "remove it"
    shown = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
    return f"{listing}: {shown}"
