"""Numbers a send showed undeliverable (Cloud 131026) in `wa_undeliverable`, for suppression.

A message whose stored statuses end in `failed` with 131026 puts its number in the table with
the failure's time; the latest failure of a number is kept, so a later campaign suppresses it for
a period counted from then (`undeliverable_since`). A `delivered` or `read` of the same message
(the phone got it after all) takes its row out again, so the table does not depend on the order
the statuses arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, bindparam, delete, select

from connectors.vocabulary import UNDELIVERABLE_CODE, DeliveryStatus
from connectors.warehouse.events.loading import Delivery
from connectors.warehouse.phones import rows_for_phones
from connectors.warehouse.schema import undeliverable
from connectors.warehouse.upsert import upsert_when

# failed_at last: MySQL assigns left to right, so the others compare the old failed_at.
_CHANGING: Final = ("wa_id", "error_code", "message_id", "received_at", "failed_at")
_SCAN_ABOVE = 20_000


def note_undeliverable(conn: Connection, found: Sequence[Delivery], now: datetime) -> int:
    """Record the numbers of these messages that failed with 131026; returns rows written or
    removed."""
    latest: dict[str, dict[str, Any]] = {}
    overruled: list[dict[str, str]] = []
    for delivery in found:
        failure = delivery.failure(UNDELIVERABLE_CODE)
        if failure is None:
            continue
        if delivery.furthest() != DeliveryStatus.FAILED:
            overruled.append({"b_phone": delivery.phone_e164, "b_message": delivery.message_id})
            continue
        row = {
            "phone_e164": delivery.phone_e164,
            "wa_id": delivery.wa_id or delivery.phone_e164.lstrip("+"),
            "error_code": UNDELIVERABLE_CODE,
            "message_id": delivery.message_id,
            "failed_at": failure.event_at or failure.received_at,
            "received_at": now,
        }
        kept = latest.get(delivery.phone_e164)
        if kept is None or row["failed_at"] > kept["failed_at"]:
            latest[delivery.phone_e164] = row  # one statement may not touch a key twice
    if latest:
        conn.execute(_upsert(conn), [latest[p] for p in sorted(latest)])
    if overruled:
        u = undeliverable.c
        stmt = delete(undeliverable).where(
            u.phone_e164 == bindparam("b_phone"), u.message_id == bindparam("b_message")
        )
        conn.execute(stmt, overruled)
    return len(latest) + len(overruled)


def undeliverable_since(engine: Engine, phones: Iterable[str], since: datetime) -> set[str]:
    """Of these E.164 numbers, those a send showed undeliverable (131026) at `since` or later."""
    u = undeliverable.c
    stmt = select(u.phone_e164).where(u.failed_at >= since)
    with engine.connect() as conn:
        rows = rows_for_phones(conn, stmt, u.phone_e164, list(phones), scan_above=_SCAN_ABOVE)
    return {row.phone_e164 for row in rows}


def _upsert(conn: Connection) -> Any:
    """INSERT, or on an existing number, overwrite it only with a later failure."""
    return upsert_when(
        conn,
        undeliverable,
        ["phone_e164"],
        _CHANGING,
        lambda new, kept: new.failed_at > kept.failed_at,
    )
