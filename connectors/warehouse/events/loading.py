"""Ledger rows with their customer's outcome and the statuses stored for their message: one query.

What applying statuses reads (`reconcile`), and what the facts a status carries besides its rank
(`details`: pricing and BSUID, `undeliverable`: 131026) are taken from.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, select, true

from connectors.vocabulary import DELIVERY_RANK, DeliveryStatus
from connectors.warehouse.schema import deliveries, recipients, status_events

IN_CHUNK = 500
"""Message ids per `IN (...)` list."""

DETAILS = ("user_id", "pricing_model", "pricing_category", "pricing_type", "billable")
"""The delivery's columns that statuses fill whatever their rank (see `details`)."""


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class Delivery:
    """A ledger row with its customer's outcome and the statuses stored for its message."""

    campaign_id: str
    phone_e164: str
    customer_id: str
    message_id: str
    state: str
    wa_id: str | None
    status: str | None
    error_code: str | None
    has_customer: bool
    outcome: str | None
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)
    """The delivery's current `DETAILS` values."""
    events: list[Any] = field(default_factory=list)
    """Stored statuses (rows with `status`, `event_at`, `received_at`, `error_code`, the
    `recipient_user_id` and the pricing columns)."""

    def failure(self, code: str) -> Any | None:
        """The stored `failed` status with this error code, if there is one."""
        return next(
            (e for e in self.events if e.status == DeliveryStatus.FAILED and e.error_code == code),
            None,
        )

    def furthest(self) -> str:
        """The highest-ranked stored status (a `delivered` after a `failed` overrules it)."""
        return str(max(self.events, key=lambda e: DELIVERY_RANK.get(e.status, 0)).status)


_EVENT_COLUMNS = (
    "status",
    "event_at",
    "received_at",
    "error_code",
    "recipient_user_id",
    "pricing_model",
    "pricing_category",
    "pricing_type",
    "billable",
)


@cache
def _select(lateral: bool) -> Select[Any]:
    """Deliveries with their customer and stored statuses, in key order (`load` adds `where`).

    `lateral` joins each delivery's customer and statuses by their indexes (PostgreSQL): a
    planner whose statistics predate the tables' growth would otherwise scan them whole. Their
    LIMITs (one customer, a row per status at most) also keep the planner from flattening them.
    """
    d, r, e = deliveries.c, recipients.c, status_events.c
    customer: Any = recipients
    statuses: Any = status_events
    on_customer = and_(r.campaign_id == d.campaign_id, r.customer_id == d.customer_id)
    on_statuses = and_(e.message_id == d.message_id, e.status.in_(list(DELIVERY_RANK)))
    if lateral:
        customer = (
            select(r.customer_id, r.outcome, r.reason).where(on_customer).limit(1).lateral("r")
        )
        statuses = (
            select(*(e[n] for n in _EVENT_COLUMNS))
            .where(on_statuses)
            .limit(len(DELIVERY_RANK))
            .lateral("e")
        )
        on_customer = on_statuses = true()
    joined = deliveries.outerjoin(customer, on_customer).outerjoin(statuses, on_statuses)
    return (
        select(
            d.campaign_id,
            d.phone_e164,
            d.customer_id,
            d.message_id,
            d.state,
            d.wa_id,
            d.delivery_status,
            d.delivery_error_code,
            *(d[name].label(f"d_{name}") for name in DETAILS),
            customer.c.customer_id.label("recipient"),
            customer.c.outcome,
            customer.c.reason,
            *(statuses.c[n] for n in _EVENT_COLUMNS),
        )
        .select_from(joined)
        .order_by(d.campaign_id, d.phone_e164)
    )


def load(conn: Connection, *where: ColumnElement[bool], few: bool = False) -> list[Delivery]:
    """Deliveries matching `where`, each with its customer row and stored statuses.

    `few`: `where` picks a few deliveries (a batch's messages), looked up by index.
    """
    postgresql = conn.dialect.name == "postgresql"
    stmt = _select(few and postgresql).where(*where)
    if postgresql:
        # Locked in key order before any update: concurrent writers queue instead of deadlocking.
        stmt = stmt.with_for_update(of=deliveries)
    found: dict[tuple[str, str], Delivery] = {}
    for row in conn.execute(stmt):
        key = (row.campaign_id, row.phone_e164)
        delivery = found.get(key)
        if delivery is None:
            delivery = found[key] = Delivery(
                row.campaign_id,
                row.phone_e164,
                row.customer_id,
                row.message_id,
                row.state,
                row.wa_id,
                row.delivery_status,
                row.delivery_error_code,
                row.recipient is not None,
                row.outcome,
                row.reason,
                {name: getattr(row, f"d_{name}") for name in DETAILS},
            )
        if row.status is not None:
            delivery.events.append(row)
    return list(found.values())
