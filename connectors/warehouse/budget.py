"""The numbers this warehouse messaged in a moving window, for the portfolio's messaging limit.

Meta limits the unique recipients of business-initiated messages in a moving 24 hours per
business portfolio, across all its numbers, and answers no error when a sender goes over: the
sender must budget it. Counted conservatively: every number a send was accepted for (`sent_at`),
and every number whose send is in doubt (`sending`, `unknown`), in any campaign and by any sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from connectors.vocabulary import LedgerState
from connectors.warehouse.phones import rows_for_phones
from connectors.warehouse.schema import deliveries


def messaged_since(
    engine: Engine, since: datetime, phones: Sequence[str] | None = None
) -> dict[str, datetime]:
    """Each number messaged at `since` or later (of these `phones`, when given), with its
    earliest message in the window."""
    d = deliveries.c
    at = func.coalesce(d.sent_at, d.last_attempt_at)
    accepted = d.sent_at >= since
    in_doubt = and_(
        d.state.in_([LedgerState.SENDING, LedgerState.UNKNOWN]), d.last_attempt_at >= since
    )
    query = (
        select(d.phone_e164, func.min(at).label("first"))
        .where(or_(accepted, in_doubt))
        .group_by(d.phone_e164)
    )
    with engine.connect() as conn:
        rows: Sequence[Any] = (
            conn.execute(query).all()
            if phones is None
            else rows_for_phones(conn, query, d.phone_e164, phones)
        )
    return {row.phone_e164: _aware(row.first) for row in rows}


def _aware(value: datetime) -> datetime:
    """MIN() of a UTC column comes back without the column's type on some dialects."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
