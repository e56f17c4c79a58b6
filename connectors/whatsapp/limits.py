"""One sender's send budget: messages per second as a ceiling, a cap on calls in flight, and
pauses that stop every send after the API said "too many requests"."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

MIN_RATE_PER_S = 0.1
"""Slower than one message every 10 s is a unit mistake, not a campaign."""
BURST_S: Final = 0.025
"""The default burst, in seconds of messages: what a sender may catch up at once after a stall."""


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Messages per second, the burst allowed after a stall, and the sends in flight at most."""

    rate_per_s: float
    concurrency: int = 16
    burst: int | None = None

    def __post_init__(self) -> None:
        if not self.rate_per_s >= MIN_RATE_PER_S:
            raise ValueError(
                f"rate_per_s={self.rate_per_s!r} is below {MIN_RATE_PER_S} messages/s (one every "
                f"{1 / MIN_RATE_PER_S:g} s); set rate_per_s to {MIN_RATE_PER_S} or more"
            )
        if self.concurrency < 1 or (self.burst or 1) < 1:
            raise ValueError(f"send limits need concurrency >= 1 and burst >= 1; got {self}")

    @property
    def bucket(self) -> int:
        """Sends that may start at once after a stall: the burst, by default 25 ms of messages.

        Any one second then holds at most `rate_per_s + bucket` sends (1.025 times the rate by
        default): the rate is a ceiling, and a stall is made up by the sends kept waiting in
        line, not by a burst above the rate.
        """
        return self.burst or max(1, math.floor(self.rate_per_s * BURST_S))


class Pause:
    """A moment before which no call may start; `extend` only ever moves it later."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        """Hold every call for `seconds` from now, unless an earlier pause already ends later."""
        self._until = max(self._until, self._clock() + max(0.0, seconds))

    @property
    def remaining_s(self) -> float:
        """Seconds until calls may start again (0 when not paused)."""
        return max(0.0, self._until - self._clock())

    async def wait(self) -> None:
        """Return once the pause is over, however often it was extended meanwhile."""
        while (left := self._until - self._clock()) > 0:
            await self._sleep(left)


class Pacer:
    """Starts calls in order, `1 / rate` apart; after a stall up to `burst` at once (the generic
    cell rate algorithm), and none while `pause` holds."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        pause: Pause,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._pause = pause
        self._clock = clock
        self._sleep = sleep
        self._due = -math.inf  # when the next call is due, were calls spaced exactly
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._releaser: asyncio.Future[None] | None = None

    def _take(self, now: float) -> bool:
        """Start a call now if that keeps within the rate and the burst."""
        if now < self._due - self._tolerance:
            return False
        self._due = max(self._due, now) + self._interval
        return True

    async def acquire(self) -> None:
        """Return when this call may start; calls start in the order they asked."""
        if not self._waiting and self._pause.remaining_s <= 0 and self._take(self._clock()):
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.ensure_future(self._release())
        await turn

    async def _release(self) -> None:
        """Let the waiting calls start one after another, each when its turn is due."""
        waiting = self._waiting
        while waiting:
            if waiting[0].done():  # its caller was cancelled
                waiting.popleft()
                continue
            now = self._clock()
            wait = max(self._pause.remaining_s, self._due - self._tolerance - now)
            if wait > 0:
                await self._sleep(wait)
            elif self._take(now):
                waiting.popleft().set_result(None)


class SendLimiter:
    """Every message request of one sender passes here, retries and resends included."""

    def __init__(
        self,
        limits: SendLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self._in_flight = asyncio.Semaphore(limits.concurrency)
        self.pause = Pause(clock=clock, sleep=sleep)
        self._pacer = Pacer(limits.rate_per_s, limits.bucket, self.pause, clock=clock, sleep=sleep)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, then for this call's turn at the rate (never during a pause);
        hold the slot for the call.

        A pause that begins once a send has its turn holds that send too, turn in hand: it does
        not queue again.
        """
        async with self._in_flight:
            await self._pacer.acquire()
            await self.pause.wait()
            yield
