"""The answer to something a person tried: accepted, or refused with a reason to act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The answer to an action: accepted, or refused with a reason a person can act on."""

    ok: bool
    message: str
