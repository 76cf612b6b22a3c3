"""What validation accepted, kept for the next run of the same bytes.

Validating a workflow imports pydantic and builds its models (~80 ms, more than half of a
run's start-up). A run of a workflow whose every file is byte for byte one that passed
validation before, with the same validating code, needs none of it: `load_for_run` finds
the plan kept under the SHA-256 of the workflow's path and bytes, checks that every file it
was validated from (shared policies, inventory) still has the SHA-256 it had, and that
the console, Python and the validating modules (console.workflow.*, pydantic, the TOML
parser, the CEL engine: their files' size and mtime) are the ones that validated it; then
builds the LoadedWorkflow from it (console/workflow/loaded.py `assemble`, the same code a
fresh validation ends with). Anything else - new bytes, a changed file, a different
version - is validated in full, and what passes is kept; for a headless run, in a child
process while the run imports what it needs (console/workflow/validate_aside.py).

Params are never kept: every run checks its own (console/workflow/params.py); the time
zones of `during` windows, the one thing validation reads from the system rather than the
files, are looked up again. `console validate` always validates.

The plans live in the user's state dir (`plans/`, 0700), one file each, written whole to a
temporary name and renamed. A plan is used only if the directory and the file are the
user's own and no one else may write them, and if the file's first line, the SHA-256 of
the rest, matches: a plan that is corrupt, foreign, unreadable or of another format is
ignored, and the workflow validated again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console import __version__
from console.paths import make_private_dirs, state_home
from console.workflow.loaded import LoadedWorkflow, Validated, assemble

FORMAT = 1
MAX_PLAN_BYTES = 64 * 1024 * 1024
KEEP_PLANS = 64
STALE_TEMPORARY_S = 600.0
# Modules whose code decides what is valid; their files' (size, mtime) are part of a plan.
_VALIDATORS = ("console.workflow.", "pydantic", "pydantic_core", "tomli", "cel.cel")


def load_for_run(path: str | Path, meanwhile: Callable[[], object] | None = None,
                 ) -> LoadedWorkflow:
    """The workflow at `path`, for a run: from its kept plan if that still holds, else
    validated (raises WorkflowError as console/workflow/loader.py does) and kept.

    `meanwhile`: what the caller does next that needs no workflow (its imports). Given, and
    this process single-threaded, new bytes are validated in a child process while this
    one calls it (console/workflow/validate_aside.py); else it is not called."""
    absolute = Path(os.path.abspath(path))
    raw = _read(absolute)
    digest = None if raw is None else hashlib.sha256(raw).hexdigest()
    kept = None if digest is None else _kept(absolute, digest)
    if kept is not None:
        return kept
    if meanwhile is not None and digest is not None:
        from console.workflow.validate_aside import validate_aside

        body = validate_aside(path, meanwhile)  # raises WorkflowError as validation would
        loaded = None if body is None else from_body(body, absolute, digest)
        if loaded is not None:
            return loaded
    from console.workflow.loader import validate_workflow

    validated = validate_workflow(path)
    keep(validated)
    return assemble(validated)


def plan_body(validated: Validated) -> bytes:
    """What a kept plan holds (after its checksum line): `validated`, and what it was
    validated with."""
    return json.dumps({
        "format": FORMAT, "stamp": _stamp(), "validators": _validator_files(),
        "path": str(validated.path), "file_hashes": dict(validated.file_hashes),
        "workflow": validated.workflow,
        "policy_files": [[str(p), rules] for p, rules in validated.policy_files],
        "inventory": (None if validated.inventory is None
                      else [str(validated.inventory[0]), validated.inventory[1]]),
    }, separators=(",", ":")).encode()


def keep(validated: Validated, body: bytes | None = None) -> None:
    """Keep `validated` (whose `plan_body` is `body`, when already made) for later runs; a
    state dir that cannot take it is left alone."""
    directory = plans_dir()
    if body is None:
        body = plan_body(validated)
    digest = validated.file_hashes[str(validated.path)]
    name = _plan_name(validated.path, digest)
    temporary = directory / f".{name}.{os.getpid()}.tmp"
    try:
        make_private_dirs(directory)
        if not _private_dir(directory):
            return
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
        finally:
            os.close(fd)
        os.replace(temporary, directory / name)
        _prune(directory)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def plans_dir() -> Path:
    return state_home() / "plans"


def kept_plan(path: str | Path) -> LoadedWorkflow | None:
    """The workflow at `path` from its kept plan, if that still holds; else None (nothing
    is validated here)."""
    path = Path(os.path.abspath(path))
    raw = _read(path)
    return None if raw is None else _kept(path, hashlib.sha256(raw).hexdigest())


def _kept(path: Path, digest: str) -> LoadedWorkflow | None:
    """The plan kept for `path` (absolute) with bytes of SHA-256 `digest`, if it holds."""
    directory = plans_dir()
    if not _private_dir(directory):
        return None
    entry = _read(directory / _plan_name(path, digest), own=True)
    if entry is None:
        return None
    check, _, body = entry.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != check:
        return None
    return from_body(body, path, digest)


def from_body(body: bytes, path: Path, digest: str) -> LoadedWorkflow | None:
    """The workflow a plan's `body` describes, if the plan holds for `path` (absolute) whose
    bytes now have SHA-256 `digest`, and for the files, code and time zones as they are
    now; else None."""
    try:
        plan = json.loads(body)
        validated = _validated(plan, path, digest)
        loaded = None if validated is None else assemble(validated)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None  # not a plan this code wrote
    return loaded if loaded is not None and _zones_known(loaded) else None


def _zones_known(loaded: LoadedWorkflow) -> bool:
    """The one check that reads the system rather than the files: each `during` time
    zone is still known (the tz database can change between runs)."""
    zones = {r.rule.during.tz for r in loaded.rules if r.rule.during is not None}
    if not zones:
        return True
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        for zone in zones:
            ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _validated(plan: Any, path: Path, digest: str) -> Validated | None:
    if (plan.get("format") != FORMAT or plan["stamp"] != _stamp()
            or plan["path"] != str(path) or not _same_validators(plan["validators"])):
        return None
    hashes: dict[str, str] = plan["file_hashes"]
    if hashes.get(str(path)) != digest:
        return None
    for name, expected in hashes.items():
        if name == str(path):
            continue
        raw = _read(Path(name))
        if raw is None or hashlib.sha256(raw).hexdigest() != expected:
            return None
    inventory = plan["inventory"]
    return Validated(
        path=path, workflow=plan["workflow"],
        policy_files=tuple((Path(p), rules) for p, rules in plan["policy_files"]),
        inventory=None if inventory is None else (Path(inventory[0]), inventory[1]),
        file_hashes=hashes,
    )


def _plan_name(path: Path, digest: str) -> str:
    return hashlib.sha256(f"{path}\0{digest}".encode()).hexdigest() + ".json"


def _stamp() -> str:
    return f"console {__version__}; python {sys.version}; {sys.executable}"


def _validator_files() -> list[list[Any]]:
    """The files of the validating modules loaded now, with their size and mtime."""
    out: list[list[Any]] = []
    for name, module in sorted(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if filename and name.startswith(_VALIDATORS):
            try:
                info = os.stat(filename)
            except OSError:
                continue
            out.append([filename, info.st_size, info.st_mtime_ns])
    return out


def _same_validators(files: list[list[Any]]) -> bool:
    if not files:
        return False
    for filename, size, mtime_ns in files:
        try:
            info = os.stat(filename)
        except OSError:
            return False
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            return False
    return True


def _private_dir(directory: Path) -> bool:
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and not info.st_mode & 0o077)


def _read(path: Path, own: bool = False) -> bytes | None:
    """The file's bytes; None if it cannot be read, is not a regular file, is too large,
    or (`own`: a plan, never through a symlink) is not this user's or others may write it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if own else 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PLAN_BYTES:
            return None
        if own and (info.st_uid != os.geteuid() or info.st_mode & 0o022):
            return None
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _prune(directory: Path) -> None:
    """At most KEEP_PLANS plans: the least recently written go. A temporary file left by a
    writer that was killed mid-write (a plan is written in milliseconds) goes after
    STALE_TEMPORARY_S."""
    stale = time.time() - STALE_TEMPORARY_S
    entries = []
    for entry in os.scandir(directory):
        if entry.name.endswith(".json"):
            entries.append(entry)
        elif entry.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < stale:
                    os.unlink(entry.path)
    if len(entries) <= KEEP_PLANS:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[:-KEEP_PLANS]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
