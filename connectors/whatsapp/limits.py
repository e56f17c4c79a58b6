"""One sender's send budget: messages per second (with bursts) and a cap on calls in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiolimiter import AsyncLimiter


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Messages per second, the burst allowed above it, and the sends in flight at most."""

    rate_per_s: float
    concurrency: int = 16
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.concurrency < 1 or (self.burst or 1) < 1:
            raise ValueError(
                f"send limits need rate_per_s > 0, concurrency >= 1, burst >= 1; got {self}"
            )

    @property
    def bucket(self) -> int:
        """Tokens in the bucket: the burst, by default one second's worth of messages.

        A third of the API's own bucket (50/s with bursts of 150), so it never earns a 429, yet
        after a stall of up to a second (a busy shared core) the sender makes up the lost time.
        """
        return self.burst or max(1, int(self.rate_per_s))


class SendLimiter:
    """Every message request of one client passes here, retries and resends included."""

    def __init__(self, limits: SendLimits) -> None:
        self.limits = limits
        self._rate = AsyncLimiter(limits.bucket, limits.bucket / limits.rate_per_s)
        self._in_flight = asyncio.Semaphore(limits.concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot and a rate token, then hold the slot for the call."""
        async with self._in_flight:
            await self._rate.acquire()
            yield
