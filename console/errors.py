"""Errors a person can act on: each says what is wrong, where, and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence


class ConsoleError(Exception):
    """Base of every error the CLI prints as a message instead of a traceback."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ConsoleError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class WorkflowError(ConsoleError):
    """A workflow (or shared policy) file could not be loaded; carries every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class ParamError(ConsoleError):
    """A `-p key=value` (or a form value) does not fit the param's declaration."""


class SecretError(ConsoleError):
    """A `${secret:NAME}` reference cannot be resolved from the environment."""


class AuditError(ConsoleError):
    """The audit file cannot be read, verified or appended to."""


class LockError(ConsoleError):
    """The workflow's lock cannot be taken: a run or another process on this host holds it
    (the message says which, with its pid and owner), or its name is not a valid lock name."""


class ResumeError(ConsoleError):
    """A run cannot be resumed (unknown id, or the workflow or a policy changed since)."""


class ControlError(ConsoleError):
    """The control socket of a run cannot be reached or refused the request."""


class PolicyDenied(ConsoleError):
    """An action was refused by policy (exit 3)."""

    exit_code = 3
