"""Two runs sending one campaign at once split the work: no number is messaged twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from connectors.vocabulary import WA_ID
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import LeaseLostError
from connectors.warehouse.schema import deliveries
from connectors.whatsapp import Template
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tasks.frame import with_stage_columns
from tasks.plan import apply_ledger
from tasks.send.senders import SenderPlan
from tasks.send.task import send
from tasks.template import Fill
from tests.helpers import sandbox_settings

WELCOME = Template("acme_ns", "welcome", "en")
TTL = timedelta(seconds=30)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    config = SandboxConfig(latency_s=0.01, rate_limit_messages=None, rate_limit_other=None)
    with start_sandbox(config) as running:
        yield running


def _verified(sandbox: RunningSandbox, count: int) -> pd.DataFrame:
    phones = [f"+4915112{i:06d}" for i in range(1, count * 2) if i % 10][:count]

    async def check() -> None:
        async with OnPremSender(settings=sandbox_settings(sandbox)) as client:
            await client.check_contacts(phones)

    asyncio.run(check())
    frame = with_stage_columns(pd.DataFrame({"customer_id": [str(i) for i in range(count)]}))
    frame["phone_e164"] = pd.Series(phones, dtype="str")
    frame[WA_ID] = pd.Series([p[1:] for p in phones], dtype="str")
    return frame


def test_a_run_taken_over_mid_send_stops_and_the_new_run_sends_only_the_rest(
    sandbox: RunningSandbox, any_db_url: str
) -> None:
    engine = warehouse(any_db_url)
    frame = _verified(sandbox, 300)
    first = lease.acquire(engine, "spring", "run-a#1", TTL)
    settings = sandbox_settings(sandbox)
    kwargs = {"fill": Fill.plain(WELCOME), "warehouse_url": any_db_url}
    failure: list[BaseException] = []

    def run_a() -> None:
        try:
            slow = [SenderPlan(settings, rate_per_s=60, concurrency=4)]
            send([frame], lease=first, run_id="run-a", senders=slow, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:  # asserted below
            failure.append(exc)

    thread = threading.Thread(target=run_a)
    thread.start()
    deadline = time.monotonic() + 60
    while len(sandbox.state.messages_sent()) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    # Run B sees A's lease as expired (a clock ahead: A frozen, or skewed) and takes over.
    ahead = lease.acquire(engine, "spring", "run-b#1", TTL, clock=lambda: datetime.now(UTC) + TTL)
    ledger.mark_in_doubt(engine, ahead)  # B plans as the flow does
    planned = apply_ledger(frame, ledger.load(engine, "spring"), resend_unknown=False)
    fast = [SenderPlan(settings, rate_per_s=500, concurrency=4)]
    second = send([planned], lease=ahead, run_id="run-b", senders=fast, **kwargs).frames  # type: ignore[arg-type]
    thread.join(timeout=60)

    assert len(failure) == 1 and isinstance(failure[0], LeaseLostError)
    received = Counter(message.to for message in sandbox.state.messages_sent())
    assert max(received.values()) == 1
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.state, deliveries.c.run_id)).all()
    assert len(rows) == 300 and len(received) == 300
    assert {state for state, _ in rows} <= {"sent", "unknown"}
    by_run = Counter(run for _, run in rows)
    assert by_run["run-a"] >= 40 and by_run["run-b"] > 0
    assert second[0]["outcome"].notna().all()
