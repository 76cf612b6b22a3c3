"""The engine-to-UI bridge delivers every event, in order, in few batches."""

from __future__ import annotations

import asyncio
import threading

from console.events import Event, StepOutput
from console.ui.bridge import EventBridge


def outputs(n: int) -> list[Event]:
    return [StepOutput(run="r", step="s", attempt=1, log_size=i) for i in range(n)]


async def test_a_burst_becomes_one_batch_in_order() -> None:
    batches: list[list[Event]] = []
    bridge = EventBridge(batches.append)
    events = outputs(10_000)
    for event in events:
        bridge.publish(event)
    assert batches == []  # publish never delivers inline: the engine never waits on the UI
    await asyncio.sleep(0.1)
    assert [e for batch in batches for e in batch] == events
    assert bridge.batches == 1


async def test_deliveries_are_spaced_at_the_frame_rate() -> None:
    batches: list[list[Event]] = []
    bridge = EventBridge(batches.append, max_rate=10.0)
    bridge.publish(outputs(1)[0])
    await asyncio.sleep(0.01)
    assert len(batches) == 1
    for event in outputs(5):
        bridge.publish(event)
        await asyncio.sleep(0)
    assert len(batches) == 1  # the next delivery waits for the next frame
    await asyncio.sleep(0.2)
    assert len(batches) == 2 and len(batches[1]) == 5


async def test_events_from_another_thread_arrive_on_the_loop() -> None:
    seen: list[tuple[int, bool]] = []
    loop_thread = threading.get_ident()
    def deliver(batch: list[Event]) -> None:
        seen.append((len(batch), threading.get_ident() == loop_thread))

    bridge = EventBridge(deliver)
    worker = threading.Thread(target=lambda: [bridge.publish(e) for e in outputs(100)])
    worker.start()
    worker.join()
    await asyncio.sleep(0.1)
    assert sum(n for n, _ in seen) == 100 and all(on_loop for _, on_loop in seen)


async def test_close_flushes_then_drops_later_events() -> None:
    batches: list[list[Event]] = []
    bridge = EventBridge(batches.append)
    bridge.publish(outputs(1)[0])
    bridge.close()
    assert len(batches) == 1
    bridge.publish(outputs(1)[0])
    await asyncio.sleep(0.05)
    assert len(batches) == 1
