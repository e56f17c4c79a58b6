"""Marketing preferences per business and Meta's per-user marketing limit, from webhooks.

- `wa_marketing_opt_outs` holds a user's choice for one business (the WABA id, a Cloud
  webhook's `entry[].id`; "" where the webhook names none, as on v1): `stop` (a
  `user_preferences` stop, or a `failed` status with 131050) or `resume`. The latest
  `changed_at` wins whatever order the events arrive in; at the same instant `stop` wins, so
  the result never depends on the order. `marketing_stopped` answers who stopped.
- A message whose statuses end in `failed` with 131049 (the user got enough marketing lately)
  puts its number in `wa_marketing_limited` with the failure's time (the latest kept), makes
  its ledger row claimable again (`send_failed`, retryable, 131049) and defers its customer
  until 24 hours later. A `delivered` or `read` of the same message undoes all three.
  `marketing_limited_since` answers who is limited.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    literal,
    literal_column,
    or_,
    select,
    update,
)

from connectors.vocabulary import (
    MARKETING_LIMITED_CODE,
    MARKETING_STOPPED_CODE,
    DeliveryStatus,
    LedgerState,
    Outcome,
    Reason,
)
from connectors.warehouse.events.loading import Delivery, chunks
from connectors.warehouse.events.opt_outs import numbers_of
from connectors.warehouse.phones import rows_for_phones
from connectors.warehouse.schema import (
    deliveries,
    marketing_limited,
    marketing_opt_outs,
    recipients,
)
from connectors.warehouse.upsert import upsert_when

if TYPE_CHECKING:
    from connectors.warehouse.events.statuses import StatusEvent

STOP: Final = "stop"
RESUME: Final = "resume"
PREFERENCES: Final = (STOP, RESUME)
FROM_STATUS: Final = MARKETING_STOPPED_CODE
"""`source` of a stop learnt from a 131050 failure."""
FROM_PREFERENCES: Final = "user_preferences"
"""`source` of a choice learnt from a `user_preferences` webhook."""
NO_BUSINESS: Final = ""
"""`business_id` of a choice whose webhook names no business (v1)."""
LIMITED_FOR: Final = timedelta(hours=24)
"""How long after a 131049 failure the customer is deferred."""

# The deciding columns last: MySQL assigns left to right, so the others compare the old values.
_PREFERENCE_CHANGING: Final = ("wa_id", "user_id", "source", "received_at", "preference")
_LIMITED_CHANGING: Final = ("wa_id", "message_id", "received_at", "limited_at")
# A customer outcome a 131049 defers: the send's, or the failure reconcile lifted it to.
_DEFERRABLE: Final = (Outcome.SENT, Outcome.UNKNOWN, Outcome.SENDING)
_SCAN_ABOVE = 20_000


@dataclass(frozen=True, slots=True)
class MarketingPreference:
    """A user stopped (`stop`) or resumed (`resume`) one business's marketing messages."""

    business_id: str | None
    """The WABA id the choice holds for (None: the webhook names none)."""
    preference: str
    changed_at: datetime
    wa_id: str | None = None
    """The user's digits (None: only a BSUID is known, mapped through the deliveries)."""
    user_id: str | None = None


def store_preferences(
    conn: Connection, found: Sequence[MarketingPreference], now: datetime
) -> tuple[int, int]:
    """Upsert `user_preferences` choices, the latest per number winning: (numbers written,
    BSUID-only choices no delivery knows, dropped)."""
    user_ids = sorted({p.user_id for p in found if p.wa_id is None and p.user_id is not None})
    known = numbers_of(conn, user_ids) if user_ids else {}
    rows: list[dict[str, Any]] = []
    for choice in found:
        phone: str
        wa_id: str | None
        if choice.wa_id is not None:
            phone, wa_id = "+" + choice.wa_id, choice.wa_id
        elif choice.user_id in known:
            phone, wa_id = known[choice.user_id]
        else:
            continue
        rows.append(
            {
                "business_id": choice.business_id or NO_BUSINESS,
                "phone_e164": phone,
                "wa_id": wa_id,
                "user_id": choice.user_id,
                "preference": choice.preference,
                "source": FROM_PREFERENCES,
                "changed_at": choice.changed_at,
                "received_at": now,
            }
        )
    return _upsert_preferences(conn, rows), len(found) - len(rows)


def note_stopped(conn: Connection, events: Sequence[StatusEvent], now: datetime) -> int:
    """Record a marketing stop for each status `failed` with 131050; returns numbers written.

    The number is the message's delivery's, else "+" and the status's `recipient_id`.
    """
    stops = [
        e
        for e in events
        if e.status == DeliveryStatus.FAILED and e.error_code == MARKETING_STOPPED_CODE
    ]
    if not stops:
        return 0
    d = deliveries.c
    sent: dict[str, tuple[str, str | None, str | None]] = {}
    for chunk in chunks(sorted({e.message_id for e in stops})):
        stmt = select(d.message_id, d.phone_e164, d.wa_id, d.user_id).where(d.message_id.in_(chunk))
        sent.update((m, (p, w, u)) for m, p, w, u in conn.execute(stmt))
    rows: list[dict[str, Any]] = []
    for event in stops:
        phone, wa_id, user_id = sent.get(event.message_id, (None, None, None))
        recipient = event.recipient_id
        if phone is None and recipient and recipient.isdigit() and len(recipient) < 20:
            phone, wa_id = "+" + recipient, recipient
        if phone is None:
            continue
        rows.append(
            {
                "business_id": event.business_id or NO_BUSINESS,
                "phone_e164": phone,
                "wa_id": wa_id,
                "user_id": user_id or event.recipient_user_id,
                "preference": STOP,
                "source": FROM_STATUS,
                "changed_at": event.event_at or now,
                "received_at": now,
            }
        )
    return _upsert_preferences(conn, rows)


def note_limited(conn: Connection, found: Sequence[Delivery], now: datetime) -> int:
    """Apply the 131049 failures of these loaded deliveries (number limited, ledger row
    claimable, customer deferred), or undo them where the message arrived after all; returns
    the messages acted on."""
    latest: dict[str, dict[str, Any]] = {}
    held: list[tuple[Delivery, datetime]] = []
    overruled: list[tuple[Delivery, str]] = []
    for delivery in found:
        failure = delivery.failure(MARKETING_LIMITED_CODE)
        if failure is None:
            continue
        best = delivery.furthest()
        if best != DeliveryStatus.FAILED:
            overruled.append((delivery, best))
            continue
        limited_at = failure.event_at or failure.received_at
        row = {
            "phone_e164": delivery.phone_e164,
            "wa_id": delivery.wa_id or delivery.phone_e164.lstrip("+"),
            "message_id": delivery.message_id,
            "limited_at": limited_at,
            "received_at": now,
        }
        kept = latest.get(delivery.phone_e164)
        if kept is None or limited_at > kept["limited_at"]:
            latest[delivery.phone_e164] = row  # one statement may not touch a key twice
        held.append((delivery, limited_at))
    if latest:
        conn.execute(_limited_upsert(conn), [latest[p] for p in sorted(latest)])
    _hold(conn, held, now)
    _release(conn, overruled, now)
    return len(held) + len(overruled)


def marketing_stopped(engine: Engine, phones: Iterable[str], business_id: str | None) -> set[str]:
    """Of these E.164 numbers, those whose latest marketing choice for the business is `stop`
    (business_id None: for any business)."""
    m = marketing_opt_outs.c
    where = [m.preference == STOP]
    if business_id is not None:
        where.append(m.business_id == business_id)
    return {row.phone_e164 for row in _asked(engine, marketing_opt_outs, list(phones), where)}


def marketing_limited_since(
    engine: Engine, phones: Iterable[str], since: datetime
) -> dict[str, datetime]:
    """Of these E.164 numbers, those Meta's per-user marketing limit (131049) held back at
    `since` or later: number -> the latest such failure's time."""
    limited = marketing_limited.c
    rows = _asked(engine, marketing_limited, list(phones), [limited.limited_at >= since])
    return {row.phone_e164: row.limited_at for row in rows}


def _asked(
    engine: Engine, table: Table, wanted: list[str], where: list[ColumnElement[bool]]
) -> list[Row[Any]]:
    """The rows of `table` matching `where` whose `phone_e164` is one of `wanted`."""
    with engine.connect() as conn:
        stmt = select(table).where(*where)
        return rows_for_phones(conn, stmt, table.c.phone_e164, wanted, scan_above=_SCAN_ABOVE)


def _hold(conn: Connection, held: Sequence[tuple[Delivery, datetime]], now: datetime) -> None:
    """Make the ledger rows still on these messages claimable again and defer their customers."""
    d, r = deliveries.c, recipients.c
    ours = sorted(
        (
            (f, at)
            for f, at in held
            if f.state in (LedgerState.SENT, LedgerState.SEND_FAILED)  # not re-claimed since
        ),
        key=lambda pair: (pair[0].campaign_id, pair[0].phone_e164),
    )
    if not ours:
        return
    ledger = (
        update(deliveries)
        .where(
            d.campaign_id == bindparam("b_campaign"),
            d.phone_e164 == bindparam("b_phone"),
            d.message_id == bindparam("b_message"),
            d.state == literal(LedgerState.SENT),
        )
        .values(state=LedgerState.SEND_FAILED, retryable=True, error_code=MARKETING_LIMITED_CODE)
    )
    keys = [
        {"b_campaign": f.campaign_id, "b_phone": f.phone_e164, "b_message": f.message_id}
        for f, _ in ours
        if f.state == LedgerState.SENT
    ]
    if keys:
        conn.execute(ledger, keys)
    deferrable = or_(
        *(r.outcome == literal(o) for o in _DEFERRABLE),
        and_(r.outcome == literal(Outcome.FAILED), r.reason == literal(MARKETING_LIMITED_CODE)),
    )
    customers = [
        {
            "b_campaign": f.campaign_id,
            "b_customer": f.customer_id,
            "b_phone": f.phone_e164,
            "b_not_before": at + LIMITED_FOR,
            "b_now": now,
        }
        for f, at in ours
        if f.has_customer
    ]
    if customers:
        defer = (
            update(recipients)
            .where(
                r.campaign_id == bindparam("b_campaign"),
                r.customer_id == bindparam("b_customer"),
                r.phone_e164 == bindparam("b_phone"),
                deferrable,
            )
            .values(
                outcome=Outcome.DEFERRED,
                reason=Reason.MARKETING_LIMITED,
                not_before=bindparam("b_not_before", type_=r.not_before.type),
                updated_at=bindparam("b_now", type_=r.updated_at.type),
            )
        )
        conn.execute(defer, customers)


def _release(conn: Connection, overruled: Sequence[tuple[Delivery, str]], now: datetime) -> None:
    """Undo a 131049 failure whose message was delivered after all: the number's row of that
    message, the ledger row held for a resend, the customer's deferral."""
    if not overruled:
        return
    ml, d, r = marketing_limited.c, deliveries.c, recipients.c
    ordered = sorted(overruled, key=lambda pair: (pair[0].campaign_id, pair[0].phone_e164))
    conn.execute(
        delete(marketing_limited).where(
            ml.phone_e164 == bindparam("b_phone"), ml.message_id == bindparam("b_message")
        ),
        [{"b_phone": f.phone_e164, "b_message": f.message_id} for f, _ in ordered],
    )
    held = [(f, best) for f, best in ordered if f.state == LedgerState.SEND_FAILED]
    if not held:
        return
    conn.execute(
        update(deliveries)
        .where(
            d.campaign_id == bindparam("b_campaign"),
            d.phone_e164 == bindparam("b_phone"),
            d.message_id == bindparam("b_message"),
            d.state == literal(LedgerState.SEND_FAILED),
            d.error_code == literal(MARKETING_LIMITED_CODE),
        )
        .values(state=LedgerState.SENT, retryable=False, error_code=None),
        [
            {"b_campaign": f.campaign_id, "b_phone": f.phone_e164, "b_message": f.message_id}
            for f, _ in held
        ],
    )
    customers = [
        {"b_campaign": f.campaign_id, "b_customer": f.customer_id, "b_outcome": best, "b_now": now}
        for f, best in held
        if f.has_customer
    ]
    if customers:
        conn.execute(
            update(recipients)
            .where(
                r.campaign_id == bindparam("b_campaign"),
                r.customer_id == bindparam("b_customer"),
                r.outcome == literal(Outcome.DEFERRED),
                r.reason == literal(Reason.MARKETING_LIMITED),
            )
            .values(
                outcome=bindparam("b_outcome", type_=r.outcome.type),
                reason=None,
                not_before=None,
                updated_at=bindparam("b_now", type_=r.updated_at.type),
            ),
            customers,
        )


def _upsert_preferences(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert one row per (business, number), the latest choice winning (`stop` on a tie)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["business_id"], row["phone_e164"])
        kept = latest.get(key)
        if kept is None or _rank(row) > _rank(kept):
            latest[key] = row  # one statement may not touch a key twice
    if not latest:
        return 0
    conn.execute(_preferences_upsert(conn), [latest[k] for k in sorted(latest)])
    return len(latest)


def _rank(row: dict[str, Any]) -> tuple[datetime, bool]:
    return row["changed_at"], row["preference"] == STOP


def _preferences_upsert(conn: Connection) -> Any:
    """INSERT, or on an existing (business, number), overwrite it only with a later choice
    (`stop` on a tie, so arrival order never decides)."""
    # Inline constants: bound parameters do not mix with executemany upserts.
    stop: ColumnElement[str] = literal_column(f"'{STOP}'")

    def later(new: Any, kept: Any) -> ColumnElement[bool]:
        tie = and_(
            new.changed_at == kept.changed_at, new.preference == stop, kept.preference != stop
        )
        return or_(new.changed_at > kept.changed_at, tie)

    # changed_at last: MySQL assigns left to right, so the others compare the old one.
    changing = (*_PREFERENCE_CHANGING, "changed_at")
    return upsert_when(conn, marketing_opt_outs, ["business_id", "phone_e164"], changing, later)


def _limited_upsert(conn: Connection) -> Any:
    """INSERT, or on an existing number, overwrite it only with a later 131049 failure."""
    return upsert_when(
        conn,
        marketing_limited,
        ["phone_e164"],
        _LIMITED_CHANGING,
        lambda new, kept: new.limited_at > kept.limited_at,
    )
