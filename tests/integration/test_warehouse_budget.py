"""The numbers messaged in the 24-hour window, on each dialect, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from connectors.vocabulary import LedgerState
from connectors.warehouse.budget import messaged_since
from connectors.warehouse.connect import warehouse
from connectors.warehouse.schema import deliveries

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)


def row(campaign: str, phone: str, state: str, **values: Any) -> dict[str, Any]:
    base = {
        "campaign_id": campaign,
        "phone_e164": phone,
        "customer_id": phone,
        "state": state,
        "attempts": 1,
        "run_id": "r",
        "sent_at": None,
        "last_attempt_at": None,
    }
    return base | values


def test_messaged_numbers_count_once_across_campaigns_with_their_first_message(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    hours = lambda h: NOW - timedelta(hours=h)  # noqa: E731
    rows = [
        row("a", "+1", LedgerState.SENT, sent_at=hours(20), last_attempt_at=hours(20)),
        row("b", "+1", LedgerState.SENT, sent_at=hours(2), last_attempt_at=hours(2)),
        row("a", "+2", LedgerState.SENT, sent_at=hours(30), last_attempt_at=hours(30)),
        row("a", "+3", LedgerState.UNKNOWN, last_attempt_at=hours(1)),
        row("a", "+4", LedgerState.SENDING, last_attempt_at=hours(25)),
        row("a", "+5", LedgerState.SEND_FAILED, last_attempt_at=hours(1)),
        # A message Meta held back (131049) was accepted: it counts.
        row("b", "+6", LedgerState.SEND_FAILED, sent_at=hours(3), last_attempt_at=hours(3)),
    ]
    with engine.begin() as conn:
        conn.execute(insert(deliveries), rows)

    found = messaged_since(engine, SINCE)

    assert found == {"+1": hours(20), "+3": hours(1), "+6": hours(3)}
    assert all(t.tzinfo is not None for t in found.values())
