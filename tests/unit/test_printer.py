"""The --no-tui printer: one line per event, written once per pass of the loop, at once for
a durable event; a stream that fails is reported to the fan-out, which drops the printer."""

from __future__ import annotations

import asyncio
import io

import pytest

from console.commands.printer import PlainPrinter
from console.events import RunFinished, StepSkipped


class CountingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def skipped(step: str) -> StepSkipped:
    return StepSkipped(run="r-1", step=step, reason="why", ts="2026-11-30T05:00:01.000001Z")


def finished() -> RunFinished:
    return RunFinished(run="r-1", outcome="succeeded", counts={"succeeded": 2}, duration_s=1.0)


def test_the_lines_of_a_pass_are_written_together_at_its_end() -> None:
    out = CountingOut()
    printer = PlainPrinter(out)

    async def one_pass() -> str:
        printer.publish(skipped("a"))
        printer.publish(skipped("b"))
        during = out.getvalue()
        await asyncio.sleep(0)
        return during

    during = asyncio.run(one_pass())
    assert during == ""
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["a: skipped: why", "b: skipped: why"]
    assert out.writes == 1


def test_a_durable_event_is_written_at_once_after_what_waits() -> None:
    out = CountingOut()
    printer = PlainPrinter(out)

    async def one_pass() -> list[str]:
        printer.publish(skipped("a"))
        printer.publish(finished())
        return out.getvalue().splitlines()

    lines = asyncio.run(one_pass())
    assert len(lines) == 2
    assert lines[0].endswith("a: skipped: why") and "run r-1 succeeded" in lines[1]


def test_without_a_loop_each_line_is_written_at_once() -> None:
    out = CountingOut()
    PlainPrinter(out).publish(skipped("a"))
    assert out.getvalue().endswith("a: skipped: why\n")


def test_a_write_that_failed_at_the_end_of_a_pass_fails_the_next_publish() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError("gone")

    printer = PlainPrinter(Gone())

    async def two_passes() -> None:
        printer.publish(skipped("a"))
        await asyncio.sleep(0)
        printer.publish(skipped("b"))

    with pytest.raises(BrokenPipeError):
        asyncio.run(two_passes())
