"""Stored statuses applied to deliveries and their customers: forward only, whatever the order.

- A delivery's `delivery_status` is the highest of the statuses stored for its message, ranked
  sent < failed < delivered < read (`DELIVERY_RANK`). So `failed` applies only over nothing or
  `sent`, a `failed` after `delivered` or `read` stays in `wa_status_events` only, and a
  `delivered` seen after a `failed` wins (the phone got the message). The result depends on which
  statuses arrived, never on their order. `delivery_error_code` holds the failure's code while
  the status is `failed`. `deleted`, `warning` and unknown statuses move nothing.
- The delivery's customer in `wa_recipients` follows: an outcome of `sent`, `failed`,
  `delivered` or `read` is raised to the delivery's status (reason: the error code on `failed`,
  cleared when a later `delivered`/`read` overrules a failure); other outcomes are left alone.
- A message whose delivery (the webhook can beat the ledger's write, which happens after the API
  answers) or customer row (written by the record stage) is not there yet is `unmatched`: apply
  it again later, or let `reconcile_campaign` catch it after the run's record stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Table,
    Update,
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from connectors.vocabulary import DELIVERY_RANK, DeliveryStatus, Outcome
from connectors.warehouse.schema import deliveries, recipients, status_events

IN_CHUNK = 500
"""Message ids per `IN (...)` list."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying stored statuses changed."""

    deliveries_updated: int = 0
    recipients_updated: int = 0
    unmatched: tuple[str, ...] = ()
    """Message ids whose delivery or customer row is not written yet."""


def best_status(current: str | None, statuses: Iterable[str]) -> str | None:
    """The delivery status after `statuses` arrive over `current`: the highest ranked one."""
    best = current
    for status in statuses:
        if DELIVERY_RANK.get(status, 0) > DELIVERY_RANK.get(best or "", 0):
            best = status
    return best


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def apply_statuses(conn: Connection, message_ids: Sequence[str], now: datetime) -> Applied:
    """Raise the deliveries and customers of these messages to their stored statuses."""
    found: list[_Delivery] = []
    for chunk in chunks(message_ids):
        found += _load(conn, deliveries.c.message_id.in_(chunk))
    moved, lifted = _raise(conn, found, now)
    # A delivery whose customer row is not written yet (the record stage comes after the sends)
    # stays unmatched too, so the receiver keeps retrying until the outcome can follow.
    settled = {f.message_id for f in found if f.has_customer}
    return Applied(moved, lifted, tuple(m for m in message_ids if m not in settled))


def reconcile_campaign(engine: Engine, campaign_id: str, *, now: datetime | None = None) -> int:
    """Apply every stored status to a campaign's deliveries and customers; returns rows changed.

    Call it after a run's record stage: statuses that came before the ledger had their message
    ids get applied, and outcomes the record stage wrote back to `sent` are raised again.
    """
    d = deliveries.c
    with engine.begin() as conn:
        found = _load(conn, d.campaign_id == campaign_id, d.message_id.is_not(None))
        moved, lifted = _raise(conn, found, now or datetime.now(UTC))
    return moved + lifted


@dataclass(slots=True)
class _Delivery:
    """A ledger row with its customer's outcome and the statuses stored for its message."""

    campaign_id: str
    phone_e164: str
    customer_id: str
    message_id: str
    status: str | None
    error_code: str | None
    has_customer: bool
    outcome: str | None
    reason: str | None
    events: list[Any] = field(default_factory=list)


def _load(conn: Connection, *where: ColumnElement[bool]) -> list[_Delivery]:
    """Deliveries matching `where`, each with its customer row and stored statuses: one query."""
    d, r, e = deliveries.c, recipients.c, status_events.c
    joined = deliveries.outerjoin(
        recipients, and_(r.campaign_id == d.campaign_id, r.customer_id == d.customer_id)
    ).outerjoin(
        status_events, and_(e.message_id == d.message_id, e.status.in_(list(DELIVERY_RANK)))
    )
    stmt = (
        select(
            d.campaign_id,
            d.phone_e164,
            d.customer_id,
            d.message_id,
            d.delivery_status,
            d.delivery_error_code,
            r.customer_id.label("recipient"),
            r.outcome,
            r.reason,
            e.status,
            e.event_at,
            e.received_at,
            e.error_code,
        )
        .select_from(joined)
        .where(*where)
        .order_by(d.campaign_id, d.phone_e164)
    )
    if conn.dialect.name == "postgresql":
        # Locked in key order before any update: concurrent writers queue instead of deadlocking.
        stmt = stmt.with_for_update(of=deliveries)
    found: dict[tuple[str, str], _Delivery] = {}
    for row in conn.execute(stmt):
        key = (row.campaign_id, row.phone_e164)
        delivery = found.get(key)
        if delivery is None:
            delivery = found[key] = _Delivery(
                row.campaign_id,
                row.phone_e164,
                row.customer_id,
                row.message_id,
                row.delivery_status,
                row.delivery_error_code,
                row.recipient is not None,
                row.outcome,
                row.reason,
            )
        if row.status is not None:
            delivery.events.append(row)
    return list(found.values())


def _raise(conn: Connection, found: Sequence[_Delivery], now: datetime) -> tuple[int, int]:
    """Move deliveries and their customers up to their best stored status: (moved, lifted)."""
    moves: list[dict[str, Any]] = []
    lifts: list[dict[str, Any]] = []
    for f in found:
        best = best_status(f.status, (ev.status for ev in f.events))
        if best is None:
            continue
        rank = DELIVERY_RANK[best]
        code = f.error_code
        if best != f.status:
            winner = next(ev for ev in f.events if ev.status == best)  # one per (message, status)
            code = winner.error_code if best == DeliveryStatus.FAILED else None
            moves.append(
                {
                    "campaign_id": f.campaign_id,
                    "phone_e164": f.phone_e164,
                    "rank": rank,
                    "delivery_status": best,
                    "delivery_error_code": code,
                    "delivery_updated_at": winner.event_at or winner.received_at,
                }
            )
        if rank > DELIVERY_RANK.get(f.outcome or "", rank):  # other outcomes never move
            lifts.append(
                {
                    "campaign_id": f.campaign_id,
                    "customer_id": f.customer_id,
                    "rank": rank,
                    "outcome": best,
                    "reason": _reason(f, best, code),
                    "updated_at": now,
                }
            )
    _raise_rows(conn, deliveries, "delivery_status", moves, lowest=0)
    _raise_rows(conn, recipients, "outcome", lifts, lowest=1)
    return len(moves), len(lifts)


def _reason(delivery: _Delivery, best: str, code: str | None) -> str | None:
    """The customer's reason once its outcome is raised to `best`."""
    if best == DeliveryStatus.FAILED:
        return code
    if delivery.outcome == Outcome.FAILED:
        return None  # the failure's code no longer describes a delivered message
    return delivery.reason


def _rank_of(column: ColumnElement[Any]) -> ColumnElement[int]:
    return case(dict(DELIVERY_RANK), value=column, else_=0)


def _raise_rows(
    conn: Connection, table: Table, ranked: str, rows: Sequence[dict[str, Any]], *, lowest: int
) -> None:
    """Update rows (key columns, `rank`, new values) whose `ranked` column ranks below `rank`.

    The guard, re-checked by the database on the locked row, keeps the rule under concurrent
    writers: a row only moves up, and only from a rank of at least `lowest` (1 leaves the
    outcomes outside the delivery chain alone).
    """
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    names = [n for n in rows[0] if n != "rank"]
    current = _rank_of(table.c[ranked])
    if conn.dialect.name == "postgresql":
        # One UPDATE ... FROM unnest(arrays) rather than a pipeline of a statement per row: the
        # round trips per batch are what bound a busy receiver; the text never changes, so it
        # is compiled once and prepared by the server.
        stmt = _pg_update(table, ranked, tuple(names), lowest)
        conn.execute(stmt, {f"a_{n}": [r[n] for r in rows] for n in [*names, "rank"]})
        return
    stmt = (
        update(table)
        .where(*(table.c[k] == bindparam(f"b_{k}") for k in keys), current >= lowest)
        .where(current < bindparam("b_rank"))
        .values({n: bindparam(f"b_{n}", type_=table.c[n].type) for n in names if n not in keys})
    )
    params = sorted(
        ({f"b_{n}": v for n, v in r.items()} for r in rows),
        key=lambda p: [p[f"b_{k}"] for k in keys],
    )
    conn.execute(stmt, params)


@cache
def _pg_update(table: Table, ranked: str, names: tuple[str, ...], lowest: int) -> Update:
    """`_raise_rows`' statement for PostgreSQL: one array parameter `a_<name>` per column."""
    types: dict[str, Any] = {n: table.c[n].type for n in names} | {"rank": Integer()}
    arrays = [cast(bindparam(f"a_{n}"), ARRAY(t)) for n, t in types.items()]
    data = (
        func.unnest(*arrays)
        .table_valued(*(column(n, t) for n, t in types.items()), name="v")
        .render_derived()
    )
    keys = [c.name for c in table.primary_key.columns]
    current = _rank_of(table.c[ranked])
    return (
        update(table)
        .where(*(table.c[k] == data.c[k] for k in keys), current >= lowest)
        .where(current < data.c.rank)
        .values({n: data.c[n] for n in names if n not in keys})
    )
