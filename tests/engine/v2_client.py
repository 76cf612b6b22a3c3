"""Helpers for protocol v2 tests: a raw JSON-lines client, and real runs to talk to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.host.run_host import RunHost

from .conftest import Runner, start_until

FRAME_LIMIT = 2 * 1024 * 1024
Frame = dict[str, Any]


class Raw:
    """One connection to a run's socket, spoken to line by line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: Path) -> Raw:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=FRAME_LIMIT)
        return cls(reader, writer)

    async def send(self, request: Frame | bytes) -> None:
        data = request if isinstance(request, bytes) else json.dumps(request).encode() + b"\n"
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = 30) -> bytes:
        """The next line, newline included; b"" once the run closed the connection."""
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def frame(self, timeout: float = 30) -> Frame | None:
        line = await self.line(timeout)
        if not line:
            return None
        frame: Frame = json.loads(line)
        return frame

    async def ask(self, request: Frame | bytes, timeout: float = 30) -> Frame:
        await self.send(request)
        frame = await self.frame(timeout)
        assert frame is not None, f"no answer to {request!r}"
        return frame

    async def until(self, last: Callable[[Frame], bool], timeout: float = 60) -> list[Frame]:
        """Frames up to and including the first that `last` accepts (or the close)."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            while (frame := await self.frame(timeout)) is not None:
                frames.append(frame)
                if last(frame):
                    break
        return frames

    async def closed(self, timeout: float = 30) -> bool:
        """True once the run has closed the connection (reading what is left on the way)."""
        async with asyncio.timeout(timeout):
            try:
                while await self.reader.read(65536):
                    pass
            except ConnectionError:
                pass
        return True

    def close(self) -> None:
        self.writer.close()


async def ask_when_free(path: Path, request: Frame, timeout: float = 30) -> Frame:
    """One request on a connection of its own, asked again while the run answers `busy`
    (this uid is at its connection limit until the run has let earlier ones go)."""
    async with asyncio.timeout(timeout):
        while True:
            client = await Raw.open(path)
            try:
                answer = await client.ask(request)
            except ConnectionError:  # busy: answered and closed before reading
                answer = {"error": "busy"}
            finally:
                client.close()
            if answer.get("error") != "busy":
                return answer
            await asyncio.sleep(0.05)


def is_end(frame: Frame) -> bool:
    return frame.get("type") == "end" or frame.get("ok") is False


def socket_of(host: RunHost) -> Path:
    return host.settings.runtime_dir / f"{host.run_id}.sock"


def run_records(host: RunHost) -> list[Frame]:
    """This run's records in its audit file, in order."""
    out = []
    for line in host.settings.audit_path.read_bytes().splitlines():
        record = json.loads(line)
        if record.get("run") == host.run_id:
            out.append(record)
    return out


def run_lines(host: RunHost) -> dict[int, bytes]:
    """This run's audit lines by seq, as the file holds them (without the newline)."""
    out = {}
    for line in host.settings.audit_path.read_bytes().splitlines():
        record = json.loads(line)
        if record.get("run") == host.run_id:
            out[record["seq"]] = line
    return out


async def at_gate(runner: Runner, text: str, step: str) -> tuple[RunHost, asyncio.Task[str]]:
    host, _ = runner.engine(text)
    task = await start_until(host, step, "awaiting_approval")
    return host, task


async def wait_until(what: str, check: Callable[[], object], timeout: float = 30) -> None:
    """Poll `check` (every 10 ms) until it is true."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)
    assert check(), what


def gated(steps: int = 1, command: str = "true", concurrency: int = 4) -> str:
    """`steps` steps, then `deploy` (needing them all) at a gate, then `verify`."""
    text = [f'[workflow]\nname = "v2"\nconcurrency = {concurrency}\n']
    names = [f"s{i:03d}" for i in range(steps)]
    for name in names:
        text.append(f"[steps.{name}]\nrun = {json.dumps(command)}\n")
    text.append(f"[steps.deploy]\nneeds = {json.dumps(names)}\nrun = \"true\"\n"
                "approval = { approvals = 1 }\n")
    text.append('[steps.verify]\nneeds = ["deploy"]\nrun = "true"\n')
    return "\n".join(text)
