"""The group-commit writer's batching, without a database: a recorder that only counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from connectors.warehouse.events import RecordResult, StatusEvent
from connectors.webhooks.payloads import Batch, InboundMessage, UserPreference
from connectors.webhooks.writer import GroupCommitWriter


class Counting:
    """Records nothing; keeps the size of every transaction."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(
        self,
        statuses: Sequence[StatusEvent],
        inbound: Sequence[InboundMessage],
        preferences: Sequence[UserPreference],
    ) -> RecordResult:
        self.sizes.append(len(statuses))
        return RecordResult(stored=len(statuses))


def batch(i: int) -> Batch:
    return Batch((StatusEvent(f"m-{i}", "sent"),))


def test_lingering_gathers_a_stream_of_requests_into_few_transactions() -> None:
    recorder = Counting()

    async def run() -> None:
        writer = GroupCommitWriter(recorder, linger_s=0.05, quiet_s=0.05)
        writer.start()
        first = await asyncio.wait_for(writer.submit(batch(-1)), 5)  # an idle writer: at once
        assert first is None
        requests = []
        for i in range(40):  # 40 requests over ~0.1 s: two or three lingers
            requests.append(asyncio.ensure_future(writer.submit(batch(i))))
            await asyncio.sleep(0.0025)
        await asyncio.wait_for(asyncio.gather(*requests), 5)
        await writer.close()

    asyncio.run(run())
    assert sum(recorder.sizes) == 41
    assert len(recorder.sizes) <= 5


def test_a_full_batch_does_not_wait_for_the_linger() -> None:
    recorder = Counting()

    async def run() -> float:
        writer = GroupCommitWriter(recorder, linger_s=30.0, quiet_s=30.0, max_batch_events=10)
        writer.start()
        await asyncio.wait_for(writer.submit(batch(-1)), 5)
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(writer.submit(batch(i)) for i in range(10))), 5)
        await writer.close()
        return time.monotonic() - started

    assert asyncio.run(run()) < 5
    assert recorder.sizes == [1, 10]


def test_a_pause_in_the_requests_ends_the_linger() -> None:
    recorder = Counting()

    async def run() -> None:
        # A provider whose every connection waits for its answer sends nothing more meanwhile.
        writer = GroupCommitWriter(recorder, linger_s=30.0, quiet_s=0.01)
        writer.start()
        await asyncio.wait_for(writer.submit(batch(-1)), 5)
        await asyncio.wait_for(asyncio.gather(*(writer.submit(batch(i)) for i in range(3))), 5)
        await writer.close()

    asyncio.run(run())
    assert recorder.sizes == [1, 3]


def test_closing_commits_what_lingers_without_waiting_out_the_linger() -> None:
    recorder = Counting()

    async def run() -> None:
        writer = GroupCommitWriter(recorder, linger_s=30.0, quiet_s=30.0)
        writer.start()
        await asyncio.wait_for(writer.submit(batch(-1)), 5)
        waiting = asyncio.ensure_future(writer.submit(batch(0)))
        await asyncio.sleep(0)  # queued
        await asyncio.wait_for(writer.close(), 5)
        await asyncio.wait_for(waiting, 5)

    asyncio.run(run())
    assert recorder.sizes == [1, 1]
