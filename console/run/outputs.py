"""A step's outputs: the file named by $CONSOLE_OUTPUT, read after the step succeeded.

The format is GitHub Actions' `$GITHUB_OUTPUT`: `key=value` lines, and multi-line values as

    key<<DELIM
    line one
    line two
    DELIM

Only declared keys; every declared key written; at most 1 MiB; UTF-8 text. Anything else
fails the step with a message naming the line, so a typo never hands on a wrong value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from console.exec.base import ExecResult
from console.workflow.spec import Step

if TYPE_CHECKING:  # prepare.py imports this module
    from console.run.prepare import StepPreparer

MAX_OUTPUT_BYTES = 1024 * 1024
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class OutputError(Exception):
    """The outputs file is wrong; the message says where and how."""


def prepare_output_file(path: Path) -> None:
    """An empty file the step may write (owner-only: outputs can be secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.close(fd)


def read_outputs(path: Path, declared: Mapping[str, bool]) -> dict[str, str]:
    """The outputs the step wrote, checked against what it declares."""
    try:
        size = path.stat().st_size
        if size > MAX_OUTPUT_BYTES:
            raise OutputError(f"$CONSOLE_OUTPUT holds {size / 1048576:.1f} MiB; the limit is "
                              "1 MiB — hand on a reference (a path, a URL), not the data")
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise OutputError(f"cannot read $CONSOLE_OUTPUT ({path}): {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise OutputError(f"$CONSOLE_OUTPUT line {line}: not UTF-8 text (byte "
                          f"0x{raw[exc.start]:02x}) — outputs are text; encode binary "
                          "data (base64) or hand on a path") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise OutputError(f"$CONSOLE_OUTPUT line {line}: a NUL byte — outputs are text")
    values = _parse(text, declared)
    missing = [name for name in declared if name not in values]
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        raise OutputError(f"declared output{'s' if len(missing) > 1 else ''} {names} "
                          "not written — write NAME=VALUE lines to the file $CONSOLE_OUTPUT "
                          "names")
    return values


def _parse(text: str, declared: Mapping[str, bool]) -> dict[str, str]:
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].removesuffix("\r")
        index += 1
        if not line.strip():
            continue
        key, delimiter, value = _split(line, number)
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise OutputError(f"$CONSOLE_OUTPUT line {number}: `{key}` is not a declared "
                              f"output (declared: {known}) — declare it in outputs, or fix "
                              "the name")
        if delimiter is not None:
            body: list[str] = []
            while index < len(lines) and lines[index].removesuffix("\r") != delimiter:
                body.append(lines[index].removesuffix("\r"))
                index += 1
            if index >= len(lines):
                raise OutputError(f"$CONSOLE_OUTPUT line {number}: `{key}<<{delimiter}` is "
                                  f"never closed — end the value with a line `{delimiter}`")
            index += 1
            value = "\n".join(body)
        values[key] = value
    return values


def _split(line: str, number: int) -> tuple[str, str | None, str]:
    """`key=value` -> (key, None, value); `key<<DELIM` -> (key, DELIM, "")."""
    heredoc = line.find("<<")
    equals = line.find("=")
    if heredoc > 0 and (equals < 0 or heredoc < equals):
        key, delimiter = line[:heredoc], line[heredoc + 2:]
        if _KEY.fullmatch(key) and delimiter.strip():
            return key, delimiter, ""
    elif equals > 0 and _KEY.fullmatch(line[:equals]):
        return line[:equals], None, line[equals + 1:]
    shown = line if len(line) <= 60 else line[:57] + "..."
    raise OutputError(f"$CONSOLE_OUTPUT line {number}: {shown!r} is not `NAME=value` or "
                      "`NAME<<DELIMITER` — write one output per line")


class OutputStore:
    """The outputs of a run's finished steps (and instances), as templates and policy
    conditions read them. Secret values stay here: records get `***` and a SHA-256."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, str]] = {}

    def record(self, unit: str, values: Mapping[str, str]) -> None:
        self._values[unit] = dict(values)

    def get(self, unit: str) -> dict[str, str] | None:
        return self._values.get(unit)

    def for_templates(self) -> dict[str, dict[str, str]]:
        """Step id -> its outputs (steps run once; instances are read through policy)."""
        return {unit: values for unit, values in self._values.items() if "[" not in unit}

    def for_conditions(self) -> dict[str, dict[str, object]]:
        """CEL's `steps`: `steps.build.outputs.image`; for a step run as instances,
        `steps.deploy["region=eu"].outputs.url` and `steps.deploy.outputs.url` (a list)."""
        view: dict[str, dict[str, object]] = {}
        for unit, values in self._values.items():
            step, bracket, key = unit.partition("[")
            if not bracket:
                view.setdefault(step, {})["outputs"] = dict(values)
                continue
            entry = view.setdefault(step, {})
            entry[key.removesuffix("]")] = {"outputs": dict(values)}
            collected = entry.setdefault("outputs", {})
            assert isinstance(collected, dict)
            for name, value in values.items():
                collected.setdefault(name, []).append(value)
        return view


def shown_outputs(values: Mapping[str, str], secret: Mapping[str, bool]
                  ) -> tuple[dict[str, str], dict[str, str]]:
    """What the audit records: secret values as `***`, with their SHA-256 beside."""
    shown = {k: ("***" if secret.get(k) else v) for k, v in values.items()}
    hashes = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in values.items()
              if secret.get(k)}
    return shown, hashes


def collect_outputs(
    store: OutputStore, preparer: StepPreparer, unit: str, attempt: int, step: Step,
    result: ExecResult,
) -> tuple[ExecResult, dict[str, str] | None, dict[str, str] | None]:
    """After an attempt: read what a succeeded step wrote, or fail it saying why. Returns
    the result and what the audit records (shown values, secret ones' SHA-256)."""
    if result.outcome != "succeeded" or step.outputs is None:
        return result, None, None
    try:
        values = read_outputs(preparer.output_path(unit, attempt), step.output_specs)
    except OutputError as exc:
        return dataclasses.replace(result, outcome="failed", error=str(exc)), None, None
    secret = step.output_specs
    preparer.add_secrets(v for k, v in values.items() if secret[k])
    store.record(unit, values)
    shown, hashes = shown_outputs(values, secret)
    return result, shown, hashes or None
