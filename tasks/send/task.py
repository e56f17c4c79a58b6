"""The send stage for Prefect: all chunks, one after another, through one sender and one loop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease
from connectors.whatsapp import SendLimits, Template, WhatsAppSettings, open_sender
from tasks.report import Progress
from tasks.send.loop import send_all
from tasks.send.messages import Past, apply_results, outgoing


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the collector off the objects alive before sending starts: with a campaign's heap,
    each full collection would stall the paced sends for a time the rate limiter cannot make
    up."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def send(
    frames: list[pd.DataFrame],
    *,
    lease: Lease,
    run_id: str,
    template: Template,
    param_columns: list[str],
    whatsapp: WhatsAppSettings,
    warehouse_url: str,
    rate_per_s: float,
    concurrency: int,
    breaker_threshold: int = 10,
    progress: Callable[[int], None] | None = None,
) -> list[pd.DataFrame]:
    """Send every chunk's messages, chunk after chunk, with one sender and one event loop,
    recording every attempt in the ledger. A chunk's messages are made as slots free up and its
    outcomes are written back as soon as it is done, so only one chunk's results are held; the
    pause between chunks is made up by the sender's one-second burst."""
    engine = warehouse(warehouse_url)
    past = Past.of(ledger.load(engine, lease.campaign_id))

    def write(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
        return ledger.advance(engine, lease, run_id, results=results, claims=claims)

    limits = SendLimits(rate_per_s=rate_per_s, concurrency=concurrency)

    async def run() -> list[pd.DataFrame]:
        sent: list[pd.DataFrame] = []
        done = 0
        async with open_sender(whatsapp, send_limits=limits) as client:
            for frame in frames:
                results = await send_all(
                    client,
                    outgoing(frame, param_columns, past),
                    template,
                    write=write,
                    concurrency=concurrency,
                    breaker_threshold=breaker_threshold,
                    progress=None if progress is None else _offset(progress, done),
                    campaign_id=lease.campaign_id,
                )
                sent.append(apply_results(frame, results))
                done += len(results)
        return sent

    with frozen_heap():
        return asyncio.run(run())


def _offset(progress: Callable[[int], None], before: int) -> Callable[[int], None]:
    """`progress` of the whole send for one chunk's count of sends done."""
    return lambda done: progress(before + done)


@task(name="send", cache_policy=NO_CACHE)
@masked_errors
def send_chunks(
    frames: list[pd.DataFrame],
    lease: Lease,
    run_id: str,
    template: Template,
    param_columns: list[str],
    whatsapp: WhatsAppSettings,
    warehouse_url: SecretStr,
    rate_per_s: float,
    concurrency: int,
    breaker_threshold: int = 10,
    progress: Progress | None = None,
) -> list[pd.DataFrame]:
    """Prefect task: send all chunks, one after another (one sender, one rate)."""
    return send(
        frames,
        lease=lease,
        run_id=run_id,
        template=template,
        param_columns=param_columns,
        whatsapp=whatsapp,
        warehouse_url=warehouse_url.get_secret_value(),
        rate_per_s=rate_per_s,
        concurrency=concurrency,
        breaker_threshold=breaker_threshold,
        progress=progress,
    )
