"""The exactly-once send ledger: one `wa_deliveries` row per (campaign, number).

A row is committed as `sending` before its message is attempted and becomes `sent` or
`send_failed` after the API answers. A row still `sending` when a run starts belongs to a run that
died mid-call: it becomes `unknown` and is resent only when the operator asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from connectors.warehouse.schema import deliveries
from connectors.warehouse.upsert import upsert

SENDING = "sending"
SENT = "sent"
SEND_FAILED = "send_failed"
UNKNOWN = "unknown"

LEDGER_COLUMNS = (
    "phone_e164",
    "state",
    "retryable",
    "message_id",
    "error_code",
    "attempts",
    "first_attempt_at",
)


@dataclass(frozen=True, slots=True)
class Claim:
    """A number about to be messaged: written as `sending` before the HTTP call."""

    phone_e164: str
    customer_id: str
    wa_id: str
    attempts: int
    first_attempt_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class Result:
    """What the API said about one claimed send."""

    phone_e164: str
    state: str
    at: datetime
    message_id: str | None = None
    wa_id: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    retryable: bool = False
    campaign_level: bool = False  # the failure would hit every send (template, credentials)


def mark_in_doubt(engine: Engine, campaign_id: str) -> int:
    """Turn rows left `sending` by a dead run into `unknown`; returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            update(deliveries)
            .where(deliveries.c.campaign_id == campaign_id, deliveries.c.state == SENDING)
            .values(state=UNKNOWN)
        )
    return int(result.rowcount or 0)


def load(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """The campaign's ledger rows, one per number."""
    stmt = select(*(deliveries.c[c] for c in LEDGER_COLUMNS)).where(
        deliveries.c.campaign_id == campaign_id
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame.from_records(rows, columns=list(LEDGER_COLUMNS))
    return frame.astype({"phone_e164": "str", "state": "str"})


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


# A dropped warehouse connection is retried on a fresh one; both writes are idempotent upserts.
@retry(
    retry=retry_if_exception(_connection_lost),
    stop=stop_after_attempt(5),
    wait=wait_random_exponential(multiplier=0.2, max=5),
    reraise=True,
)
def advance(
    engine: Engine,
    campaign_id: str,
    run_id: str,
    *,
    results: Sequence[Result],
    claims: Sequence[Claim],
) -> None:
    """Record finished sends and claim the next ones in one transaction."""
    result_rows = [
        {
            "campaign_id": campaign_id,
            "phone_e164": r.phone_e164,
            "customer_id": "",
            "state": r.state,
            "run_id": run_id,
            "message_id": r.message_id,
            "error_code": r.error_code,
            "error_title": r.error_title,
            "retryable": r.retryable,
            "last_attempt_at": r.at,
            "sent_at": r.at if r.state == SENT else None,
            "wa_id": r.wa_id,
        }
        for r in results
    ]
    claim_rows = [
        {
            "campaign_id": campaign_id,
            "phone_e164": c.phone_e164,
            "customer_id": c.customer_id,
            "wa_id": c.wa_id,
            "state": SENDING,
            "retryable": False,
            "attempts": c.attempts,
            "run_id": run_id,
            "first_attempt_at": c.first_attempt_at,
            "last_attempt_at": c.at,
            "message_id": None,
            "error_code": None,
            "error_title": None,
        }
        for c in claims
    ]
    with engine.begin() as conn:
        upsert(
            conn,
            deliveries,
            result_rows,
            update=[
                "state",
                "run_id",
                "message_id",
                "error_code",
                "error_title",
                "retryable",
                "last_attempt_at",
                "sent_at",
                "wa_id",
            ],
        )
        upsert(conn, deliveries, claim_rows)
