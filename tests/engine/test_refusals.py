"""Repeated refusals of one uid become a few records that count them (console/run/refusals.py).

Timers are the event loop's own; a short interval keeps the tests quick, and every wait is
on a condition. Where an interval must have passed without timers (after a flush), the
coalescer's clock is a counter the test moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from console.events import Actor, ApprovalRefused, RecordingSink, event_from_json
from console.policy.verdict import Verdict
from console.run.gates import Gates
from console.run.refusals import RefusalCoalescer

RUN = "20250101T000000Z-c0ffee"
MALLORY = Actor(user="mallory", uid=41001, via="socket")
EVE = Actor(user="eve", uid=41002, via="socket")


def refusal(actor: Actor = MALLORY, step: str = "deploy", n: int = 0) -> ApprovalRefused:
    return ApprovalRefused(run=RUN, step=step, actor=actor, action="cancel", why=f"no #{n}")


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def counts(sink: RecordingSink) -> list[int]:
    return [e.count for e in sink.of_type(ApprovalRefused) if isinstance(e, ApprovalRefused)]


async def test_the_first_refusal_is_recorded_at_once_and_the_rest_as_one_counted_record() -> None:
    sink = RecordingSink()
    coalescer = RefusalCoalescer(sink.publish, interval_s=0.05)
    for n in range(500):
        coalescer.refused(refusal(n=n))
    assert counts(sink) == [1]
    assert coalescer.pending == 499
    await until(lambda: len(sink.events) == 2)
    first, merged = sink.of_type(ApprovalRefused)
    assert isinstance(first, ApprovalRefused) and isinstance(merged, ApprovalRefused)
    assert first.why == "no #0"
    assert (merged.count, merged.why) == (499, "no #499")  # the last, standing for them all
    assert coalescer.pending == 0


async def test_each_uid_has_its_own_interval_and_a_quiet_one_ends_the_merging() -> None:
    sink = RecordingSink()
    coalescer = RefusalCoalescer(sink.publish, interval_s=0.05)
    coalescer.refused(refusal(MALLORY))
    coalescer.refused(refusal(EVE))
    coalescer.refused(refusal(MALLORY, n=1))
    assert [(e.actor.uid if e.actor else None) for e in sink.events] == [41001, 41002]
    await until(lambda: len(sink.events) == 3)  # mallory's second, at her interval's end
    await until(lambda: not coalescer.counting)  # then a quiet interval for both
    coalescer.refused(refusal(MALLORY, n=2))  # so this one is recorded at once again
    assert counts(sink) == [1, 1, 1, 1]
    last = sink.events[-1]
    assert isinstance(last, ApprovalRefused) and last.why == "no #2"


async def test_flush_records_what_is_pending_and_later_refusals_need_no_timer() -> None:
    now = [0.0]
    sink = RecordingSink()
    coalescer = RefusalCoalescer(sink.publish, interval_s=1.0, clock=lambda: now[0])
    for n in range(3):
        coalescer.refused(refusal(n=n))
    coalescer.flush()
    assert counts(sink) == [1, 2]
    # After the flush (the run winds down) no timer is set; an interval ends when the next
    # refusal finds it over, and that record counts it too.
    for n in range(3, 6):
        coalescer.refused(refusal(n=n))
    assert counts(sink) == [1, 2, 1]
    now[0] = 1.5
    coalescer.refused(refusal(n=6))
    assert counts(sink) == [1, 2, 1, 3]
    assert sum(counts(sink)) == 7


async def test_gates_answer_every_refusal_and_flush_them_when_timers_stop() -> None:
    sink = RecordingSink()
    gates = Gates(RUN, 0, {}, lambda: datetime.now(UTC), sink.publish,
                  on_passed=lambda step: None, on_denied=lambda *args: None)
    verdict = Verdict(False, "only root, who started this run, can cancel it")
    answers = [gates.refused("", MALLORY, "cancel", verdict) for _ in range(100)]
    assert answers == [verdict] * 100
    assert counts(sink) == [1]
    gates.stop_timers()
    assert counts(sink) == [1, 99]


def test_a_refusal_is_written_as_before_and_a_merged_one_carries_its_count() -> None:
    single = refusal().to_json()
    merged = ApprovalRefused(run=RUN, step="deploy", actor=MALLORY, action="cancel", why="no",
                             count=42).to_json()
    assert single["data"] == {"action": "cancel", "why": "no #0"}
    assert merged["data"] == {"action": "cancel", "why": "no", "count": 42}
    assert event_from_json(merged) == ApprovalRefused(
        run=RUN, ts=merged["ts"], step="deploy", actor=MALLORY, action="cancel", why="no",
        count=42,
    )


def test_an_audit_line_from_before_the_count_still_reads() -> None:
    old = {"run": RUN, "type": "approval.refused", "ts": "2025-01-01T00:00:00.000000Z",
           "step": "deploy", "actor": {"user": "mallory", "uid": 41001, "via": "socket"},
           "data": {"action": "approve", "why": "you started this run"},
           "seq": 7, "prev": "0" * 64, "hash": "f" * 64}
    event = event_from_json(old)
    assert isinstance(event, ApprovalRefused)
    assert (event.count, event.why) == (1, "you started this run")
