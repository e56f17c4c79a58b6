"""Verify and send against the sandbox over real HTTP, with the ledger in a real database."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from connectors.vocabulary import OUTCOME, REASON, WA_ID
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease, acquire
from connectors.warehouse.schema import contact_checks, deliveries
from connectors.whatsapp import Template
from connectors.whatsapp.components import ButtonFill, Extras, HeaderFill
from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tasks.report import Progress
from tasks.send.loop import CircuitOpenError, send_all
from tasks.send.messages import Outgoing
from tasks.send.senders import SenderPlan
from tasks.send.task import send
from tasks.template import Fill
from tasks.verify.contacts import verify
from tests.helpers import sandbox_settings

TEMPLATE = Template("acme_ns", "order_update", "en")
WELCOME = Template("acme_ns", "welcome", "en")

ChunkOf = Callable[..., pd.DataFrame]  # the `chunk_of` fixture (tests/conftest.py)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(rate_limit_messages=None, rate_limit_other=None)) as running:
        yield running


def _lease(url: str, campaign_id: str = "c") -> Lease:
    """The campaign's lease, as a run holds it while it sends."""
    return acquire(warehouse(url), campaign_id, "r", timedelta(minutes=5))


def _writer(url: str, campaign_id: str = "c") -> ledger.LedgerWrite:
    """The send loop's ledger writer for a run holding the campaign's lease."""
    engine, held = warehouse(url), _lease(url, campaign_id)
    return lambda results, claims: ledger.advance(engine, held, "r", results=results, claims=claims)


def test_verify_checks_once_then_uses_the_cache_for_seven_days(
    sandbox: RunningSandbox, sqlite_url: str, chunk_of: ChunkOf
) -> None:
    phones = ["+16315551001", "+16315551000", "+5511987654321"]
    now = datetime(2026, 11, 24, tzinfo=UTC)
    kwargs = {
        "whatsapp": sandbox_settings(sandbox),
        "warehouse_url": sqlite_url,
        "batch_size": 1000,
    }

    [out], stats = verify([chunk_of(phones)], now=now, **kwargs)  # type: ignore[arg-type]

    assert out[WA_ID].tolist()[::2] == ["16315551001", "551187654321"]
    assert (out[OUTCOME].iloc[1], out[REASON].iloc[1]) == (
        "excluded_not_on_whatsapp",
        "not_on_whatsapp",
    )
    assert (stats.checked, stats.from_cache) == (3, 0)
    assert len(sandbox.state.requests_to("contacts")) == 1
    _, again = verify([chunk_of(phones)], now=now + timedelta(days=6), **kwargs)  # type: ignore[arg-type]
    assert (again.checked, again.from_cache) == (0, 3)
    _, stale = verify([chunk_of(phones)], now=now + timedelta(days=8), **kwargs)  # type: ignore[arg-type]
    assert (stale.checked, stale.from_cache) == (3, 0)
    assert len(sandbox.state.requests_to("contacts")) == 2


def test_failed_checks_are_check_failed_never_invalid(
    sandbox: RunningSandbox, sqlite_url: str, chunk_of: ChunkOf
) -> None:
    sandbox.state.set_failed_numbers(["16315551001"])
    [out], _ = verify(
        [chunk_of(["+16315551001"])],
        whatsapp=sandbox_settings(sandbox),
        warehouse_url=sqlite_url,
        batch_size=10,
    )
    assert (out[OUTCOME].iloc[0], out[REASON].iloc[0]) == ("check_failed", "check_failed")


def test_send_records_every_outcome_and_the_ledger_says_the_same(
    sandbox: RunningSandbox, any_db_url: str, chunk_of: ChunkOf
) -> None:
    phones = [f"+1631555{1001 + i}" for i in range(40) if not str(1001 + i).endswith("0")]
    settings = sandbox_settings(sandbox)
    [checked], _ = verify(
        [chunk_of(phones)], whatsapp=settings, warehouse_url=any_db_url, batch_size=100
    )
    checked.loc[0, "param_first_name"] = "x" * 2000  # the sandbox accepts it: one plain success
    sandbox.state.script("messages", ["500"] * 10)  # first sends meet server errors, then retried

    chunks = [checked.iloc[:20].copy(), checked.iloc[20:].copy()]  # one client for both chunks
    logins_before = len(sandbox.state.requests_to("login"))
    outs = send(
        chunks,
        lease=_lease(any_db_url, "c1"),
        run_id="r1",
        fill=Fill.plain(TEMPLATE, ["first_name"]),
        senders=[SenderPlan(settings, rate_per_s=500, concurrency=8)],
        warehouse_url=any_db_url,
    ).frames

    out = pd.concat(outs)
    assert [len(o) for o in outs] == [20, len(phones) - 20]
    assert len(sandbox.state.requests_to("login")) - logins_before == 1
    assert out[OUTCOME].tolist() == ["sent"] * len(phones)
    assert sorted(m.to for m in sandbox.state.messages_sent()) == sorted(p[1:] for p in phones)
    with warehouse(any_db_url).connect() as conn:
        senders = set(conn.execute(select(deliveries.c.sender)).scalars())
        checked_by = set(conn.execute(select(contact_checks.c.sender)).scalars())
        rows = conn.execute(select(deliveries.c.state, deliveries.c.message_id)).all()
    assert senders == checked_by == {settings.sender_id}  # the sender is a dimension
    assert {state for state, _ in rows} == {"sent"} and len(rows) == len(phones)
    assert {mid for _, mid in rows} == set(out["message_id"])


def test_never_more_than_concurrency_rows_sending_at_once(
    sandbox: RunningSandbox, sqlite_url: str
) -> None:
    sandbox.state.latency_s = 0.02
    items = [Outgoing(f"+1631555{2001 + i}", str(i), f"1631555{2001 + i}", ()) for i in range(66)]
    items = [i for i in items if not i.wa_id.endswith("0")][:60]
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))
    engine = warehouse(sqlite_url)
    advance = _writer(sqlite_url)
    peak = 0

    def write(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
        nonlocal peak
        won = advance(results, claims)
        with engine.connect() as conn:
            sending = conn.execute(
                select(deliveries.c.phone_e164).where(deliveries.c.state == "sending")
            ).all()
        peak = max(peak, len(sending))
        return won

    async def run() -> dict[str, ledger.Result]:
        limits = SendLimits(rate_per_s=1000, concurrency=5)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            return await send_all(
                client, items, Template("acme_ns", "welcome", "en"), write=write, concurrency=5
            )

    results = asyncio.run(run())
    assert len(results) == 60 and {r.state for r in results.values()} == {"sent"}
    assert 1 <= peak <= 5


async def _check_all(sandbox: RunningSandbox, phones: list[str]) -> None:
    async with OnPremSender(settings=sandbox_settings(sandbox)) as client:
        await client.check_contacts(phones)


def test_progress_is_reported_off_the_event_loop_and_its_failures_do_not_stop_sends(
    sandbox: RunningSandbox,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [Outgoing(f"+1631557{4001 + i}", str(i), f"1631557{4001 + i}", ()) for i in range(44)]
    items = [i for i in items if not i.wa_id.endswith("0")][:40]
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))
    loop_thread = threading.get_ident()
    reports: list[tuple[int, int]] = []

    def failing_update(artifact_id: object, done: int, total: int) -> None:
        reports.append((threading.get_ident(), done))
        raise RuntimeError("Prefect API unreachable")

    progress = Progress(uuid.uuid4(), total=len(items), update=failing_update)
    write = _writer(sqlite_url)

    async def run(batch: list[Outgoing], every_s: float) -> dict[str, ledger.Result]:
        limits = SendLimits(rate_per_s=1000, concurrency=4)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            return await send_all(
                client,
                batch,
                WELCOME,
                write=write,
                concurrency=4,
                progress=lambda done, _failed: progress(done),
                progress_every_s=every_s,
            )

    results = asyncio.run(run(items[:20], 0.0))
    assert len(results) == 20 and {r.state for r in results.values()} == {"sent"}
    assert len(reports) > 1 and loop_thread not in {thread for thread, _ in reports}
    done = [n for _, n in reports]
    assert done == sorted(done) and done[-1] <= 20
    reports.clear()
    results = asyncio.run(run(items[20:], 3600.0))  # the default is once per second
    assert len(results) == 20 and {r.state for r in results.values()} == {"sent"}
    assert len(reports) == 1
    assert "progress artifact not updated: RuntimeError" in caplog.text


def test_rate_limiter_holds_two_hundred_concurrent_sends_at_a_hundred_per_second(
    sandbox: RunningSandbox,
) -> None:
    items = [Outgoing(f"+1631556{3001 + i}", str(i), f"1631556{3001 + i}", ()) for i in range(230)]
    items = [i for i in items if not i.wa_id.endswith("0")][:200]
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))

    async def run() -> float:
        limits = SendLimits(rate_per_s=100, concurrency=200, burst=10)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            started = time.monotonic()
            await asyncio.gather(*(client.send_template(i.wa_id, WELCOME, []) for i in items))
            return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert len(sandbox.state.messages_sent()) == 200
    # 200 sends at 100/s with a burst of 10: ideally 1.9 s; a noisy machine may add some.
    assert 1.7 <= elapsed <= 4.0, elapsed


def test_a_campaign_level_error_stops_the_run_after_the_threshold(
    sandbox: RunningSandbox, sqlite_url: str
) -> None:
    items = [Outgoing(f"+1631557{4001 + i}", str(i), f"1631557{4001 + i}", ()) for i in range(60)]
    items = [i for i in items if not i.wa_id.endswith("0")]
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))
    engine = warehouse(sqlite_url)
    write = _writer(sqlite_url)

    async def run() -> None:
        limits = SendLimits(rate_per_s=1000, concurrency=4)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            unknown_template = Template("acme_ns", "not_approved", "en")
            await send_all(
                client, items, unknown_template, write=write, concurrency=4, breaker_threshold=5
            )

    with pytest.raises(
        CircuitOpenError, match=r"stopped after \d+ sends in a row failed with 2001"
    ):
        asyncio.run(run())
    attempted = len(sandbox.state.requests_to("messages"))
    assert 5 <= attempted <= 5 + 4  # the threshold plus what was already in flight
    rows = ledger.load(engine, "c")
    assert len(rows) == attempted and rows["retryable"].all()  # resent once the template is fixed


SHIPPED = Template("acme_ns", "order_shipped", "en")
IMAGE = HeaderFill("IMAGE", link="https://cdn.example.com/parcel.jpg")


def _filled(items: list[Outgoing], extras: Extras) -> list[Outgoing]:
    return [dataclasses.replace(i, params=("Ada",), extras=extras) for i in items]


def test_a_mapping_the_template_refuses_before_any_send_succeeded_stops_and_is_retried(
    sandbox: RunningSandbox, sqlite_url: str
) -> None:
    # order_shipped needs its URL button's suffix: a campaign that does not fill it gets 1008
    # for everyone. Before any send succeeded that is the campaign's mapping, not the customers.
    items = [Outgoing(f"+1631558{5001 + i}", str(i), f"1631558{5001 + i}", ()) for i in range(60)]
    items = _filled([i for i in items if not i.wa_id.endswith("0")], Extras(IMAGE))
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))
    write = _writer(sqlite_url)

    async def run() -> None:
        limits = SendLimits(rate_per_s=1000, concurrency=4)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            await send_all(client, items, SHIPPED, write=write, concurrency=4, breaker_threshold=5)

    with pytest.raises(CircuitOpenError, match=r"failed with 1008 .*header, buttons or body"):
        asyncio.run(run())
    rows = ledger.load(warehouse(sqlite_url), "c")
    assert 5 <= len(rows) <= 9 and rows["retryable"].all()


def test_after_a_send_succeeded_a_refused_parameter_is_that_customers_alone(
    sandbox: RunningSandbox, sqlite_url: str
) -> None:
    items = [Outgoing(f"+1631559{6001 + i}", str(i), f"1631559{6001 + i}", ()) for i in range(14)]
    items = [i for i in items if not i.wa_id.endswith("0")][:12]
    good = _filled(items[:2], Extras(IMAGE, (ButtonFill(0, "url", "A-1"),)))
    bad = _filled(items[2:], Extras(IMAGE, (ButtonFill(0, "url", "A 1"),)))  # a space: 1009
    asyncio.run(_check_all(sandbox, [i.phone_e164 for i in items]))
    write = _writer(sqlite_url)

    async def run() -> dict[str, ledger.Result]:
        limits = SendLimits(rate_per_s=1000, concurrency=1)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            return await send_all(
                client, good + bad, SHIPPED, write=write, concurrency=1, breaker_threshold=5
            )

    results = asyncio.run(run())
    assert [results[i.phone_e164].state for i in good] == ["sent", "sent"]
    assert {(results[i.phone_e164].error_code, results[i.phone_e164].retryable) for i in bad} == {
        ("1009", False)
    }
