"""One sender's send budget: messages per second as a ceiling, a cap on calls in flight, and
pauses that stop every send after the API said "too many requests"."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from aiolimiter import AsyncLimiter

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
        # A leaky bucket of `bucket` sends draining at the rate: no second holds more than the
        # rate plus the bucket, and waiters are served in the order they came.
        self._rate = AsyncLimiter(limits.bucket, limits.bucket / limits.rate_per_s)
        self.pause = Pause(clock=clock, sleep=sleep)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, the end of any pause and a rate token; hold the slot for the call.

        A token granted while a pause holds the sender is let go and a new one awaited after it:
        the sends that waited out a pause resume at the rate, not all at once.
        """
        async with self._in_flight:
            await self.pause.wait()
            await self._rate.acquire()
            while self.pause.remaining_s > 0:
                await self.pause.wait()
                await self._rate.acquire()
            yield
