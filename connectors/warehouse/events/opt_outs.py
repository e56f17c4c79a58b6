"""Opt-out replies in `wa_opt_outs`: one row per number, the earliest opt-out kept.

Which replies are opt-outs is the receiver's business (`connectors.webhooks.keywords`); this
module stores what it found and answers which numbers and wa_ids every later campaign excludes.
A reply that names its sender only by a business-scoped user id (BSUID: a WhatsApp user with a
username, whose number Meta withholds) is mapped to a number through the most recent delivery
that recorded that BSUID (`wa_deliveries.user_id`); a BSUID no delivery knows is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from connectors.warehouse.events.loading import chunks
from connectors.warehouse.phones import rows_for_phones
from connectors.warehouse.schema import deliveries, opt_outs
from connectors.warehouse.upsert import upsert_when

_CHANGING = ("wa_id", "keyword", "message_id", "received_at", "opted_out_at")
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OptOut:
    """A customer replied with an opt-out keyword: stored as "+<wa_id>"."""

    wa_id: str | None
    """The sender's digits, as the webhook's `from` holds them (None: only a BSUID is known)."""
    keyword: str
    """The keyword as configured that the reply amounts to."""
    message_id: str
    opted_out_at: datetime
    user_id: str | None = None
    """The sender's BSUID, mapped to a number by `numbered` when `wa_id` is None."""
    phone_e164: str | None = None
    """The number, when not "+" and `wa_id` (one mapped from a BSUID: the ledger's number)."""

    @property
    def number(self) -> str | None:
        """The E.164 number the opt-out holds for."""
        if self.phone_e164 is not None:
            return self.phone_e164
        return None if self.wa_id is None else "+" + self.wa_id


def numbered(conn: Connection, found: Sequence[OptOut]) -> tuple[list[OptOut], int]:
    """`found` with BSUID-only opt-outs given their number; those no delivery knows are left
    out and counted: (opt-outs with a number, BSUID-only ones dropped)."""
    user_ids = sorted({o.user_id for o in found if o.number is None and o.user_id is not None})
    known = numbers_of(conn, user_ids) if user_ids else {}
    kept: list[OptOut] = []
    for opt_out in found:
        if opt_out.number is not None:
            kept.append(opt_out)
        elif opt_out.user_id in known:
            phone, wa_id = known[opt_out.user_id]
            kept.append(replace(opt_out, wa_id=wa_id, phone_e164=phone))
    return kept, len(found) - len(kept)


def numbers_of(conn: Connection, user_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """BSUID -> (phone_e164, wa_id) of the most recent delivery that recorded it."""
    d = deliveries.c
    latest: dict[str, tuple[datetime, str, str | None]] = {}
    for chunk in chunks(user_ids):
        stmt = select(
            d.user_id, d.phone_e164, d.wa_id, func.coalesce(d.sent_at, d.last_attempt_at)
        ).where(d.user_id.in_(chunk))
        for user_id, phone, wa_id, at in conn.execute(stmt):
            at = at or _EARLIEST
            kept = latest.get(user_id)
            if kept is None or (at, phone) > kept[:2]:
                latest[user_id] = (at, phone, wa_id)
    return {u: (phone, wa_id) for u, (_, phone, wa_id) in latest.items()}


def store_opt_outs(conn: Connection, found: Sequence[OptOut], now: datetime) -> int:
    """Upsert one row per number in `found`, keeping the earliest opt-out; returns the numbers."""
    rows = _earliest_rows([o for o in found if o.number is not None], now)
    if not rows:
        return 0
    # opted_out_at last in _CHANGING: MySQL assigns left to right.
    stmt = upsert_when(
        conn,
        opt_outs,
        ["phone_e164"],
        _CHANGING,
        lambda new, kept: new.opted_out_at < kept.opted_out_at,
    )
    conn.execute(stmt, rows)
    return len(rows)


def opted_out_numbers(engine: Engine, phones: Sequence[str] | None = None) -> set[str]:
    """Every E.164 number that replied with an opt-out keyword ("+" and the wa_id's digits);
    of these `phones` only, when given."""
    stmt = select(opt_outs.c.phone_e164)
    with engine.connect() as conn:
        if phones is None:
            return set(conn.execute(stmt).scalars())
        return {
            row.phone_e164 for row in rows_for_phones(conn, stmt, opt_outs.c.phone_e164, phones)
        }


def opted_out_wa_ids(engine: Engine) -> set[str]:
    """The wa_ids that replied with an opt-out keyword (match these after the contact check)."""
    with engine.connect() as conn:
        rows = conn.execute(select(opt_outs.c.wa_id).where(opt_outs.c.wa_id.is_not(None)))
        return {str(v) for v in rows.scalars()}


def _earliest_rows(found: Sequence[OptOut], now: datetime) -> list[dict[str, Any]]:
    """One row per number, its earliest opt-out (one statement may not touch a key twice)."""
    earliest: dict[str, OptOut] = {}
    for opt_out in found:
        number = opt_out.number
        assert number is not None  # numbered ones only
        kept = earliest.get(number)
        if kept is None or opt_out.opted_out_at < kept.opted_out_at:
            earliest[number] = opt_out
    return [
        {
            "phone_e164": number,
            "wa_id": o.wa_id,
            "keyword": o.keyword,
            "message_id": o.message_id,
            "opted_out_at": o.opted_out_at,
            "received_at": now,
        }
        for number, o in sorted(earliest.items())
    ]
