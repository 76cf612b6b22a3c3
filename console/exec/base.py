"""What every executor shares: the command it is given, what it reports, its protocol.

The engine hands an Executor one StepCommand per attempt and gets an ExecResult back. It
never sees a pid: `on_started` receives a Started, an opaque description of where the
attempt runs ("pid 4242", "web-03 pid 881") that the engine copies into the audit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

ExecOutcome = Literal["succeeded", "failed", "error", "cancelled"]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class HostTarget:
    """A host of the inventory, as an executor needs it to connect."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    identity: str | None = None  # a private key file; else the agent's keys
    known_hosts: str | None = None  # else the user's ~/.ssh/known_hosts
    connect_timeout_s: float = 10.0


@dataclass(frozen=True)
class StepCommand:
    """One attempt of one step (or of one instance of it), fully resolved by the engine.

    `env` is the step's own environment: its `env`, the params and the CONSOLE_* variables.
    `machine_env` is this machine's environment, which only a local attempt inherits: an
    attempt on another host gets `env` alone.
    """

    step_id: str
    attempt: int
    argv: tuple[str, ...] | None
    script: str | None
    env: Mapping[str, str]
    cwd: Path
    timeout_s: float | None
    log_path: Path
    secrets: tuple[str, ...] = ()
    machine_env: Mapping[str, str] = field(default_factory=dict)
    host: HostTarget | None = None
    remote_cwd: str | None = None  # on a host: the step's `cwd` as written (else the home)

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.script is None):
            raise ValueError(f"step {self.step_id!r}: give exactly one of argv and script")
        if self.argv is not None and not self.argv:
            raise ValueError(f"step {self.step_id!r}: argv is empty")

    def program_argv(self) -> tuple[str, ...]:
        if self.argv is not None:
            return self.argv
        assert self.script is not None
        return ("/bin/sh", "-c", self.script)

    def local_env(self) -> dict[str, str]:
        return {**self.machine_env, **self.env}


@dataclass(frozen=True)
class Started:
    """Where an attempt runs, for people and the audit: the process id (on this machine,
    or on `host`), and for a remote host the SHA-256 fingerprint of the key it presented."""

    pid: int | None = None
    host: str | None = None
    host_key: str | None = None

    @property
    def ref(self) -> str:
        """"pid 4242", "web-03 pid 881"."""
        where = f"{self.host} " if self.host else ""
        return f"{where}pid {self.pid}" if self.pid is not None else f"{where}pid unknown"


@dataclass(frozen=True)
class ExecResult:
    """How an attempt ended. failed = non-zero exit; error = could not start, timed out,
    killed by a signal, lost its connection, or its log could not be written; cancelled =
    stopped on request."""

    outcome: ExecOutcome
    exit_code: int | None  # negative: killed by that signal number
    error: str | None
    pid: int | None
    duration_s: float
    log_path: Path
    log_size: int
    log_sha256: str


class Executor(Protocol):
    async def run(
        self, cmd: StepCommand, on_started: Callable[[Started], None] | None = None
    ) -> ExecResult: ...

    def cancel(self, step_id: str) -> None: ...

    async def shutdown(self) -> None: ...
