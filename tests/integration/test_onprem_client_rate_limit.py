"""A 429 from the sandbox over real HTTP slows the whole sender, not just the call that got it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from connectors.whatsapp import Template
from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import (
    RecordedRequest,
    RunningSandbox,
    SandboxConfig,
    start_sandbox,
)
from connectors.whatsapp.settings import WhatsAppSettings

WELCOME = Template("acme_ns", "welcome", "en")
USER = "+16315551001"
# The client sends evenly (no burst) at twice the sandbox's rate, so the sandbox answers 429.
CLIENT_LIMITS = SendLimits(rate_per_s=20, concurrency=4, burst=1)


def _send_all(sandbox: RunningSandbox, sends: int, **extra: Any) -> list[str]:
    settings = WhatsAppSettings.model_validate(
        {
            "base_url": sandbox.url,
            "api_key": sandbox.config.api_keys[0],
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            **extra,
        }
    )

    async def go() -> list[str]:
        async with OnPremSender(settings=settings, send_limits=CLIENT_LIMITS) as client:
            await client.check_contacts([USER])
            calls = [client.send_template(USER[1:], WELCOME, []) for _ in range(sends)]
            return list(await asyncio.gather(*calls))

    return asyncio.run(go())


def _quiet_after_the_first_429(record: list[RecordedRequest], until_s: float) -> list[float]:
    """Start times (s after the first 429) of the requests that came during its pause."""
    first = min(r.monotonic for r in record if r.status == 429)
    # Requests already under way when the 429 came may still arrive in the first 0.1 s.
    offsets = [r.monotonic - first for r in record]
    return [offset for offset in offsets if 0.1 < offset < until_s]


def test_a_429_pauses_every_send_for_its_retry_after() -> None:
    config = SandboxConfig(rate_limit_messages=(10.0, 5), rate_limit_other=None, retry_after_s=1)
    with start_sandbox(config) as sandbox:
        ids = _send_all(sandbox, 24)
        record = sandbox.state.requests_to("messages")
    assert len(set(ids)) == 24
    assert 429 in {r.status for r in record}
    # Without the pause the other sends went on at 20/s and met 429 after 429 meanwhile.
    assert _quiet_after_the_first_429(record, until_s=0.95) == []


def test_a_huge_retry_after_is_capped_by_the_setting() -> None:
    config = SandboxConfig(rate_limit_messages=(10.0, 3), rate_limit_other=None, retry_after_s=3600)
    with start_sandbox(config) as sandbox:
        started = time.monotonic()
        ids = _send_all(sandbox, 16, retry_after_max_s=0.5)
        took = time.monotonic() - started
        record = sandbox.state.requests_to("messages")
    assert len(set(ids)) == 16 and 429 in {r.status for r in record}
    assert took < 30  # not an hour
    assert _quiet_after_the_first_429(record, until_s=0.45) == []  # the capped pause, for all
