"""The configured rate is a ceiling over real HTTP: no second at the sandbox holds more sends."""

from __future__ import annotations

import asyncio
import bisect
import time

from connectors.whatsapp import Template
from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import SandboxConfig, start_sandbox
from tests.helpers import sandbox_settings

WELCOME = Template("acme_ns", "welcome", "en")
RATE = 200.0
SENDS = 500
# What a noisy 2-core machine adds: a stalled event loop holds requests back and lets them go
# together, which shifts arrivals but cannot add sends to a second beyond the burst.
TOLERANCE = 1.1


def _busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any window [t, t + 1 s)."""
    ordered = sorted(arrivals)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


def test_no_second_at_the_sandbox_holds_more_than_the_rate_with_many_sends_in_flight() -> None:
    config = SandboxConfig(rate_limit_messages=None, rate_limit_other=None, latency_s=0.05)
    numbers = [f"+1631558{1001 + i:04d}" for i in range(SENDS + 60)]
    numbers = [n for n in numbers if not n.endswith("0")][:SENDS]
    # Twice the sends the rate needs in flight: the pacer, not the slots, holds them back.
    limits = SendLimits(rate_per_s=RATE, concurrency=2 * int(RATE * 0.05) + 2)
    with start_sandbox(config) as sandbox:

        async def run() -> float:
            settings = sandbox_settings(sandbox, verify_tls=False)
            async with OnPremSender(settings=settings, send_limits=limits) as client:
                checks = await client.check_contacts(numbers)
                started = time.monotonic()
                await asyncio.gather(
                    *(client.send_template(str(checks[n].wa_id), WELCOME, []) for n in numbers)
                )
                return time.monotonic() - started

        elapsed = asyncio.run(run())
        arrivals = [r.monotonic for r in sandbox.state.requests_to("messages")]
    assert len(arrivals) == SENDS
    assert _busiest_second(arrivals) <= TOLERANCE * RATE
    # Not slower than the rate either, beyond what a busy machine costs.
    assert elapsed <= 1.5 * (SENDS - limits.bucket) / RATE, elapsed
