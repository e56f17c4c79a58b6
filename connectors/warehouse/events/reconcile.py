"""Stored statuses applied to deliveries and their customers: forward only, whatever the order.

- A delivery's `delivery_status` is the highest of the statuses stored for its message, ranked
  sent < failed < delivered < read (`DELIVERY_RANK`). So `failed` applies only over nothing or
  `sent`, a `failed` after `delivered` or `read` stays in `wa_status_events` only, and a
  `delivered` seen after a `failed` wins (the phone got the message). The result depends on which
  statuses arrived, never on their order. `delivery_error_code` holds the failure's code while
  the status is `failed`. `deleted`, `warning` and unknown statuses move nothing.
- The delivery's customer in `wa_recipients` follows: an outcome of `sent`, `failed`,
  `delivered` or `read` is raised to the delivery's status (reason: the error code on `failed`,
  cleared when a later `delivered`/`read` overrules a failure); so is `unknown` or `sending` once
  the ledger row is `sent` (an in-doubt send its statuses resolved, see `in_doubt`); other
  outcomes are left alone.
- Whatever the rank, the statuses' pricing and BSUID fill the delivery (`details`), and a
  131026 failure records the number as undeliverable (`undeliverable`).
- A message ending in a 131049 failure (Meta's per-user marketing limit) makes its ledger row
  claimable again and defers its customer (`marketing`); raising statuses never moves a
  deferred customer.
- A message whose delivery (the webhook can beat the ledger's write, which happens after the API
  answers) or customer row (written by the record stage) is not there yet is `unmatched`: apply
  it again later, or let `reconcile_campaign` catch it after the run's record stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Table,
    Update,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from connectors.vocabulary import DELIVERY_RANK, DeliveryStatus, LedgerState, Outcome
from connectors.warehouse.events.details import changed_details, fill_details
from connectors.warehouse.events.in_doubt import attach_in_campaign
from connectors.warehouse.events.loading import DETAILS, Delivery, chunks, load
from connectors.warehouse.events.marketing import note_limited
from connectors.warehouse.events.undeliverable import note_undeliverable
from connectors.warehouse.schema import deliveries, recipients

# Customer outcomes of a send in doubt: raised once the ledger knows the message was sent.
_IN_DOUBT: Final = (Outcome.UNKNOWN, Outcome.SENDING)


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying stored statuses changed."""

    deliveries_updated: int = 0
    recipients_updated: int = 0
    unmatched: tuple[str, ...] = ()
    """Message ids whose delivery or customer row is not written yet."""
    missing: tuple[str, ...] = ()
    """Of `unmatched`, the message ids no delivery row has."""
    details_updated: int = 0
    """Deliveries given pricing or a BSUID."""


def best_status(current: str | None, statuses: Iterable[str]) -> str | None:
    """The delivery status after `statuses` arrive over `current`: the highest ranked one."""
    best = current
    for status in statuses:
        if DELIVERY_RANK.get(status, 0) > DELIVERY_RANK.get(best or "", 0):
            best = status
    return best


def apply_statuses(conn: Connection, message_ids: Sequence[str], now: datetime) -> Applied:
    """Raise the deliveries and customers of these messages to their stored statuses."""
    found: list[Delivery] = []
    for chunk in chunks(message_ids):
        found += load(conn, deliveries.c.message_id.in_(chunk), few=True)
    moved, lifted, filled = _apply_loaded(conn, found, now)
    # A delivery whose customer row is not written yet (the record stage comes after the sends)
    # stays unmatched too, so the receiver keeps retrying until the outcome can follow.
    settled = {f.message_id for f in found if f.has_customer}
    known = {f.message_id for f in found}
    return Applied(
        moved,
        lifted,
        tuple(m for m in message_ids if m not in settled),
        tuple(m for m in message_ids if m not in known),
        filled,
    )


def reconcile_campaign(engine: Engine, campaign_id: str, *, now: datetime | None = None) -> int:
    """Apply every stored status to a campaign's deliveries and customers; returns rows changed.

    Call it after a run's record stage: statuses that came before the ledger had their message
    ids get applied, outcomes the record stage wrote back to `sent` are raised again, and rows
    left in doubt take the messages whose statuses name them (`in_doubt`).
    """
    d = deliveries.c
    with engine.begin() as conn:
        attached = attach_in_campaign(conn, campaign_id)
        found = load(conn, d.campaign_id == campaign_id, d.message_id.is_not(None))
        moved, lifted, filled = _apply_loaded(conn, found, now or datetime.now(UTC))
    return len(attached.message_ids) + moved + lifted + filled


def resolve_in_doubt(engine: Engine, campaign_id: str, *, now: datetime | None = None) -> int:
    """Give the campaign's in-doubt rows (`sending`, `unknown`, retryable `send_failed`, no
    message id) the messages whose stored statuses name them, then apply those statuses;
    returns the rows resolved (now `sent`, never to be resent). Call it before planning."""
    with engine.begin() as conn:
        attached = attach_in_campaign(conn, campaign_id)
        if attached.message_ids:
            apply_statuses(conn, attached.message_ids, now or datetime.now(UTC))
    return len(attached.message_ids)


def _apply_loaded(
    conn: Connection, found: Sequence[Delivery], now: datetime
) -> tuple[int, int, int]:
    """Statuses onto loaded deliveries: (moved, lifted, deliveries given details)."""
    changes = [(f, changed_details(f)) for f in found]
    moved, lifted = _raise(conn, changes, now)
    fill_details(conn, [(f, c) for f, c in changes if (f.campaign_id, f.phone_e164) not in moved])
    note_undeliverable(conn, found, now)
    note_limited(conn, found, now)  # after `_raise`: its deferral replaces the lifted failure
    return len(moved), lifted, sum(1 for _, c in changes if c)


def _raise(
    conn: Connection, found: Sequence[tuple[Delivery, dict[str, Any]]], now: datetime
) -> tuple[set[tuple[str, str]], int]:
    """Move deliveries (with their changed details) and their customers up to their best
    stored status: (the deliveries moved, the customers lifted)."""
    moves: list[dict[str, Any]] = []
    lifts: list[dict[str, Any]] = []
    for f, changed in found:
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
                    **(changed or dict.fromkeys(DETAILS)),
                }
            )
        if rank > _outcome_rank(f, rank):  # other outcomes never move
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
    _raise_rows(conn, deliveries, "delivery_status", moves, lowest=0, keep=DETAILS)
    _raise_rows(conn, recipients, "outcome", lifts, lowest=1, also=_IN_DOUBT)
    return {(m["campaign_id"], m["phone_e164"]) for m in moves}, len(lifts)


def _outcome_rank(delivery: Delivery, otherwise: int) -> int:
    """The customer's outcome's rank; `otherwise` for outcomes that statuses never move."""
    if delivery.outcome in _IN_DOUBT and delivery.state == LedgerState.SENT:
        return 0
    return DELIVERY_RANK.get(delivery.outcome or "", otherwise)


def _reason(delivery: Delivery, best: str, code: str | None) -> str | None:
    """The customer's reason once its outcome is raised to `best`."""
    if best == DeliveryStatus.FAILED:
        return code
    if delivery.outcome == Outcome.FAILED or delivery.outcome in _IN_DOUBT:
        return None  # the failure's code (or `send_in_doubt`) no longer describes the message
    return delivery.reason


def _rank_of(column: ColumnElement[Any]) -> ColumnElement[int]:
    return case(dict(DELIVERY_RANK), value=column, else_=0)


def _raise_rows(
    conn: Connection,
    table: Table,
    ranked: str,
    rows: Sequence[dict[str, Any]],
    *,
    lowest: int,
    also: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> None:
    """Update rows (key columns, `rank`, new values) whose `ranked` column ranks below `rank`.

    The guard, re-checked by the database on the locked row, keeps the rule under concurrent
    writers: a row only moves up, and only from a rank of at least `lowest` (1 leaves the
    outcomes outside the delivery chain alone) or from one of the values `also`. A None for a
    column of `keep` leaves its value as it is.
    """
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    names = [n for n in rows[0] if n != "rank"]
    if conn.dialect.name == "postgresql":
        # One UPDATE ... FROM unnest(arrays) rather than a pipeline of a statement per row: the
        # round trips per batch are what bound a busy receiver; the text never changes, so it
        # is compiled once and prepared by the server.
        stmt = _pg_update(table, ranked, tuple(names), lowest, also, keep)
        conn.execute(stmt, {f"a_{n}": [r[n] for r in rows] for n in [*names, "rank"]})
        return
    stmt = _update(table, ranked, tuple(names), lowest, also, keep)
    params = sorted(
        ({f"b_{n}": v for n, v in r.items()} for r in rows),
        key=lambda p: [p[f"b_{k}"] for k in keys],
    )
    conn.execute(stmt, params)


def _movable(table: Table, ranked: str, lowest: int, also: tuple[str, ...]) -> ColumnElement[bool]:
    """Rows whose `ranked` value may move: of a rank of at least `lowest`, or one of `also`."""
    value = table.c[ranked]
    # Literals, not an expanding IN: the statement also runs as an executemany.
    return or_(_rank_of(value) >= lowest, *(value == literal(v) for v in also))


@cache
def _update(
    table: Table,
    ranked: str,
    names: tuple[str, ...],
    lowest: int,
    also: tuple[str, ...],
    keep: tuple[str, ...],
) -> Update:
    """`_raise_rows`' statement elsewhere, for an executemany: one `b_<name>` per column."""
    keys = [c.name for c in table.primary_key.columns]
    return (
        update(table)
        .where(*(table.c[k] == bindparam(f"b_{k}") for k in keys))
        .where(_movable(table, ranked, lowest, also))
        .where(_rank_of(table.c[ranked]) < bindparam("b_rank"))
        .values(
            {
                n: _kept(table, n, bindparam(f"b_{n}", type_=table.c[n].type), keep)
                for n in names
                if n not in keys
            }
        )
    )


def _kept(table: Table, name: str, new: Any, keep: tuple[str, ...]) -> Any:
    """`new`, or for a column of `keep` the column's own value where `new` is None."""
    return func.coalesce(new, table.c[name]) if name in keep else new


@cache
def _pg_update(
    table: Table,
    ranked: str,
    names: tuple[str, ...],
    lowest: int,
    also: tuple[str, ...],
    keep: tuple[str, ...],
) -> Update:
    """`_raise_rows`' statement for PostgreSQL: one array parameter `a_<name>` per column."""
    types: dict[str, Any] = {n: table.c[n].type for n in names} | {"rank": Integer()}
    arrays = [cast(bindparam(f"a_{n}"), ARRAY(t)) for n, t in types.items()]
    data = (
        func.unnest(*arrays)
        .table_valued(*(column(n, t) for n, t in types.items()), name="v")
        .render_derived()
    )
    keys = [c.name for c in table.primary_key.columns]
    return (
        update(table)
        .where(*(table.c[k] == data.c[k] for k in keys), _movable(table, ranked, lowest, also))
        .where(_rank_of(table.c[ranked]) < data.c.rank)
        .values({n: _kept(table, n, data.c[n], keep) for n in names if n not in keys})
    )
