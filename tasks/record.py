"""Record: each outcome into `wa_recipients`, the run's counts into `wa_campaign_runs`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.errors import StopRunError
from connectors.masking import masked_errors
from connectors.vocabulary import (
    CUSTOMER_ID,
    DUPLICATE_OF,
    NOT_BEFORE,
    OUTCOME,
    PHONE_E164,
    REASON,
    TEMPLATE_LANGUAGE,
)
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import reconcile_campaign
from connectors.warehouse.lease import Lease
from connectors.warehouse.ledger import sent_under
from connectors.warehouse.records import delivery_counts, finish_run, start_run
from tasks.frame import in_running


class UnfinishedCustomerError(StopRunError):
    """A customer left the pipeline without an outcome: a bug, never written as success."""


def _texts(values: pd.Series) -> list[str | None]:
    """A column as Python strings, missing values as None."""
    texts = values if pd.api.types.is_string_dtype(values) else values.astype("str")
    return texts.astype(object).where(texts.notna(), None).tolist()


def _instants(frame: pd.DataFrame) -> list[datetime | None]:
    """The deferred customers' `not_before` as aware datetimes, None elsewhere."""
    if NOT_BEFORE not in frame.columns:
        return [None] * len(frame)
    values = pd.to_datetime(frame[NOT_BEFORE], utc=True)
    return [None if pd.isna(v) else v.to_pydatetime() for v in values]


def recipient_rows(
    frame: pd.DataFrame, *, campaign_id: str, run_id: str, now: datetime
) -> list[dict[str, Any]]:
    """One `wa_recipients` row per customer of the chunk."""
    unfinished = int(in_running(frame).sum())
    if unfinished:
        raise UnfinishedCustomerError(f"{unfinished} customers reached record without an outcome")
    columns = {
        "customer_id": _texts(frame[CUSTOMER_ID]),
        "outcome": _texts(frame[OUTCOME]),
        "reason": _texts(frame[REASON]),
        "phone_e164": _texts(frame[PHONE_E164]),
        "duplicate_of": _texts(frame[DUPLICATE_OF]),
        "not_before": _instants(frame),
        "template_language": _texts(frame[TEMPLATE_LANGUAGE])
        if TEMPLATE_LANGUAGE in frame.columns
        else [None] * len(frame),
    }
    constant = {"campaign_id": campaign_id, "run_id": run_id, "updated_at": now}
    names = list(columns)
    return [
        {**constant, **dict(zip(names, values, strict=True))}
        for values in zip(*columns.values(), strict=True)
    ]


@task(name="start-run", cache_policy=NO_CACHE)
@masked_errors
def start_run_task(
    warehouse_url: SecretStr,
    run_id: str,
    attempt: int,
    campaign_id: str,
    template_name: str,
    dry_run: bool,
) -> None:
    """Prefect task: migrate the warehouse if needed and open the run attempt's row."""
    start_run(
        warehouse(warehouse_url.get_secret_value()),
        run_id=run_id,
        attempt=attempt,
        campaign_id=campaign_id,
        template_name=template_name,
        dry_run=dry_run,
        started_at=datetime.now(UTC),
    )


@task(name="finish-run", cache_policy=NO_CACHE)
@masked_errors
def finish_run_task(
    warehouse_url: SecretStr,
    run_id: str,
    attempt: int,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
) -> None:
    """Prefect task: close the run attempt's row with its counts (and the error that ended it)."""
    finish_run(
        warehouse(warehouse_url.get_secret_value()),
        run_id=run_id,
        attempt=attempt,
        status=status,
        finished_at=datetime.now(UTC),
        counts=counts,
        error=error,
    )


@task(name="sent-by-attempt", cache_policy=NO_CACHE)
@masked_errors
def sent_by_attempt(warehouse_url: SecretStr, lease: Lease) -> int:
    """Prefect task: messages this run attempt sent, from the ledger (for a failed attempt)."""
    return sent_under(warehouse(warehouse_url.get_secret_value()), lease)


@task(name="delivery-statuses", cache_policy=NO_CACHE)
@masked_errors
def reconcile_deliveries(warehouse_url: SecretStr, campaign_id: str) -> dict[str, int]:
    """Prefect task: apply webhook statuses stored so far to this campaign's customers (the
    record stage wrote `sent` again) and count messages per delivery status."""
    engine = warehouse(warehouse_url.get_secret_value())
    reconcile_campaign(engine, campaign_id)
    return delivery_counts(engine, campaign_id)
