"""The send budget: its bounds, and the pause a 429 puts on every send (injected clocks)."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from collections.abc import Awaitable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TypeVar

import httpx
import pytest

from connectors.whatsapp import Template
from connectors.whatsapp.limits import Pause, SendLimiter, SendLimits
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings

TEMPLATE = Template("acme_ns", "order_update", "en")
T = TypeVar("T")


class FakeTime:
    """A virtual clock for the wall, the monotonic timer and sleeps: `drive(work)` runs `work` and,
    whenever every task waits, moves the clock to the earliest sleeper's wake-up time."""

    def __init__(self, wall: float = 1_792_000_000.0) -> None:
        self.start = wall
        self.elapsed = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.someone_sleeps = asyncio.Event()

    def wall(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.someone_sleeps.set()
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.elapsed + seconds, next(self._order), woken))
        await woken

    async def drive(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        for _ in range(10_000):
            for _ in range(50):  # let every runnable task run until it waits
                await asyncio.sleep(0)
            if task.done():
                return task.result()
            if self._sleepers:
                wake_at, _, woken = heapq.heappop(self._sleepers)
                self.elapsed = max(self.elapsed, wake_at)
                woken.set_result(None)
        raise AssertionError("work neither finished nor slept")


@pytest.mark.parametrize("rate", [0.05, 0.0, -1.0, float("nan")])
def test_a_rate_below_a_tenth_per_second_is_refused_naming_rate_per_s(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s") as caught:
        SendLimits(rate_per_s=rate)
    assert repr(rate) in str(caught.value) and "0.1" in str(caught.value)


def test_a_tenth_per_second_is_the_slowest_rate_allowed() -> None:
    assert SendLimits(rate_per_s=0.1).bucket == 1


def test_a_pause_holds_every_slot_until_it_ends_and_is_only_ever_extended() -> None:
    time = FakeTime()
    limiter = SendLimiter(
        SendLimits(rate_per_s=1000, concurrency=4), clock=time.monotonic, sleep=time.sleep
    )
    entered: list[float] = []

    async def send() -> None:
        async with limiter.slot():
            entered.append(time.monotonic())

    async def run() -> None:
        limiter.pause.extend(5.0)
        limiter.pause.extend(2.0)  # shorter than what is left: no effect
        await asyncio.gather(*(send() for _ in range(3)))

    asyncio.run(time.drive(run()))
    assert entered == [5.0, 5.0, 5.0]
    assert limiter.pause.remaining_s == 0.0


def test_a_slot_that_waited_through_a_pause_takes_one_rate_token() -> None:
    async def run() -> float:
        limiter = SendLimiter(SendLimits(rate_per_s=2, concurrency=2, burst=2))
        loop = asyncio.get_running_loop()
        limiter.pause.extend(0.05)
        started = loop.time()

        async def send() -> None:
            async with limiter.slot():
                pass

        await asyncio.gather(send(), send())
        return loop.time() - started

    # Two tokens in the bucket, two sends: a send that took a second token after the pause would
    # wait half a second for the bucket to drain.
    assert asyncio.run(run()) < 0.4


def test_a_pause_extended_while_calls_wait_holds_them_until_its_new_end() -> None:
    time = FakeTime()
    pause = Pause(clock=time.monotonic, sleep=time.sleep)
    woke: list[float] = []

    async def call() -> None:
        await pause.wait()
        woke.append(time.monotonic())

    async def run() -> None:
        await pause.wait()  # not paused: returns at once, without sleeping
        assert time.slept == []
        pause.extend(3.0)
        waiting = asyncio.ensure_future(call())
        await time.sleep(1.0)
        pause.extend(4.0)  # at 1 s: now until 5 s
        await waiting

    asyncio.run(time.drive(run()))
    assert woke == [5.0]


def _client_answering_429(
    retry_after: str, time: FakeTime, sent: list[float], **extra: object
) -> OnPremSender:
    answers = [httpx.Response(429, headers={"Retry-After": retry_after})]

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        if answers:
            return answers.pop(0)
        return httpx.Response(201, json={"messages": [{"id": "gBEGmsg"}]})

    settings = WhatsAppSettings.model_validate(
        {
            "base_url": "http://wa.test",
            "api_key": "k",
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.001,
            **extra,
        }
    )
    return OnPremSender(
        settings=settings,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        send_limits=SendLimits(rate_per_s=1000, concurrency=4),
        clock=time.wall,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )


def _send_two_after_a_429(retry_after: str, time: FakeTime, **extra: object) -> list[float]:
    """One send earns a 429; a second starts while the first waits to retry. Returns the times
    the server saw requests."""
    sent: list[float] = []

    async def run() -> None:
        async with _client_answering_429(retry_after, time, sent, **extra) as client:
            first = asyncio.ensure_future(client.send_template("16315551001", TEMPLATE, []))
            await time.someone_sleeps.wait()  # the first has its 429 and waits to retry
            await client.send_template("16315551002", TEMPLATE, [])
            await first

    asyncio.run(time.drive(run()))
    return sent


def test_a_429_retry_after_given_as_an_http_date_pauses_every_send() -> None:
    time = FakeTime()
    date = format_datetime(datetime.fromtimestamp(time.wall() + 7, UTC), usegmt=True)
    sent = _send_two_after_a_429(date, time)
    # The 429 at 0 s; the retry and the other send both wait the 7 s the date asks for.
    assert sent == [0.0, 7.0, 7.0]


def test_a_huge_retry_after_is_capped_by_the_setting() -> None:
    time = FakeTime()
    sent = _send_two_after_a_429("3600", time, retry_after_max_s=60)
    assert sent == [0.0, 60.0, 60.0]


def test_without_retry_after_a_429_pauses_every_send_for_the_backoff() -> None:
    time = FakeTime()
    sent = _send_two_after_a_429("", time, backoff_initial_s=2.0, backoff_max_s=2.0)
    assert sent[0] == 0.0 and sent[1] == sent[2] == time.slept[0] <= 2.0


def test_default_burst_is_25_ms_of_messages() -> None:
    assert SendLimits(rate_per_s=1000).bucket == 25
    assert SendLimits(rate_per_s=80).bucket == 2
    assert SendLimits(rate_per_s=0.5).bucket == 1
    assert SendLimits(rate_per_s=250, burst=25).bucket == 25


def _starts(limits: SendLimits, sends: int, *, pause_at: int | None = None) -> list[float]:
    """The loop times at which `sends` calls through a limiter start (real time: the rate limit
    is aiolimiter's, on the loop's clock); with `pause_at`, the call that starts as number
    `pause_at` pauses every send for 0.2 s, as a 429 does."""

    async def run() -> list[float]:
        limiter = SendLimiter(limits)
        loop = asyncio.get_running_loop()
        started: list[float] = []

        async def send() -> None:
            async with limiter.slot():
                started.append(loop.time())
                if len(started) == pause_at:
                    limiter.pause.extend(0.2)
                await asyncio.sleep(0.01)  # the call's answer

        await asyncio.gather(*(send() for _ in range(sends)))
        return started

    return asyncio.run(run())


def _busiest(starts: list[float], window_s: float) -> int:
    """The most starts in any window [t, t + window_s)."""
    ordered = sorted(starts)
    return max(bisect.bisect_left(ordered, t + window_s) - i for i, t in enumerate(ordered))


def test_no_window_holds_more_than_the_rate_and_the_burst() -> None:
    # A stall of this busy machine can only spread the starts out: the bound holds regardless.
    limits = SendLimits(rate_per_s=1000, concurrency=50, burst=5)
    starts = _starts(limits, 300)
    assert _busiest(starts, 0.1) <= 100 + limits.bucket + 1
    assert starts[-1] - starts[0] >= (300 - limits.bucket - 1) / 1000


def test_no_send_starts_during_a_pause_and_they_resume_at_the_rate() -> None:
    limits = SendLimits(rate_per_s=500, concurrency=100, burst=5)
    starts = _starts(limits, 150, pause_at=20)
    paused_at = starts[19]
    after = [t for t in starts[20:] if t > paused_at]
    assert after and min(after) - paused_at >= 0.19  # what waited for a token waited out the pause
    assert _busiest(after, 0.05) <= 25 + limits.bucket + 1


def test_a_send_cancelled_while_waiting_for_its_turn_gives_it_up() -> None:
    started: list[str] = []

    async def run() -> None:
        limiter = SendLimiter(SendLimits(rate_per_s=20, concurrency=4, burst=1))

        async def send(name: str) -> None:
            async with limiter.slot():
                started.append(name)

        await send("first")
        second = asyncio.ensure_future(send("second"))
        third = asyncio.ensure_future(send("third"))
        await asyncio.sleep(0.01)  # both wait for their turn
        second.cancel()
        await third

    asyncio.run(run())
    assert started == ["first", "third"]
