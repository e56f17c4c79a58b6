"""Prefect tasks over chunks and partitions: thin wrappers of `tasks.partition.stages`, the item
(a chunk's store name or a partition number) first, so the flow maps them over the items."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from tasks.frame import Tally
from tasks.partition.stages import (
    Audience,
    Check,
    Finished,
    Limit,
    Plan,
    Recorded,
    Shaped,
    chunk_stage,
    finish_stage,
    record_stage,
    shape_stage,
)
from tasks.partition.store import Store


@task(name="chunk", cache_policy=NO_CACHE)
@masked_errors
def chunk_task(name: str, store: Store, audience: Audience) -> Tally:
    """Prefect task: consent, normalise and split one extracted chunk."""
    return chunk_stage(store, name, audience)


@task(name="shape", cache_policy=NO_CACHE)
@masked_errors
def shape_task(partition: int, store: Store, plan: Plan) -> Shaped:
    """Prefect task: opt-outs, dedupe, plan and rules over one partition."""
    return shape_stage(store, partition, plan)


@task(name="finish", cache_policy=NO_CACHE)
@masked_errors
def finish_task(partition: int, store: Store, limit: Limit | None, check: Check | None) -> Finished:
    """Prefect task: the messaging limit, then planned or checked, over one partition."""
    return finish_stage(store, partition, limit, check)


@task(name="record", cache_policy=NO_CACHE)
@masked_errors
def record_task(
    partition: int,
    store: Store,
    senders: int,
    campaign_id: str,
    run_id: str,
    warehouse_url: SecretStr,
    now: datetime,
) -> Recorded:
    """Prefect task: one partition's outcomes into `wa_recipients`."""
    return record_stage(
        store,
        partition,
        senders=senders,
        campaign_id=campaign_id,
        run_id=run_id,
        warehouse_url=warehouse_url,
        now=now,
    )
