"""What a run needs to know about this machine: where its files and sockets go, its grace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from console import paths


@dataclass(frozen=True)
class EngineSettings:
    audit_path: Path = field(default_factory=paths.default_audit_path)
    runs_dir: Path = field(default_factory=paths.runs_dir)
    runtime_dir: Path = field(default_factory=paths.runtime_dir)
    grace_s: float = 10.0
    fsync_always: bool = False
    resume_from: str | None = None
    control_socket: bool = True
    via: str = "cli"
