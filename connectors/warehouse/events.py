"""Webhook statuses and opt-out replies into the warehouse: stored once, applied never backwards.

Rules:
- Every status is stored in `wa_status_events` once per (message_id, status); a redelivery is
  ignored and not counted again. `deleted`, `warning` and unknown statuses are stored only.
- A delivery's `delivery_status` is the highest of the statuses stored for its message, ranked
  sent < failed < delivered < read. So `failed` applies only over nothing or `sent`, a `failed`
  after `delivered` or `read` stays in `wa_status_events` only, and a `delivered` seen after a
  `failed` wins (the phone got the message). The result depends on which statuses arrived, never
  on their order. `delivery_error_code` holds the failure's code while the status is `failed`.
- The delivery's customer in `wa_recipients` follows: an outcome of `sent`, `failed`,
  `delivered` or `read` is raised to the delivery's status (reason: the error code on `failed`,
  cleared when a later `delivered`/`read` overrules a failure); other outcomes are left alone.
- A status whose message_id the ledger does not know yet (the webhook can beat the ledger's
  write, which happens after the API answers), or whose customer row the record stage has not
  written yet, is stored and reported in `unmatched`; `apply_stored_statuses(engine, ids)`
  applies it later (the receiver retries such ids with growing delays for 15 minutes), and
  `reconcile_campaign` applies everything of a campaign (call it after a run's record stage).
- A text reply equal to an opt-out keyword (see `connectors.webhooks.keywords`) records
  "+<from digits>" in `wa_opt_outs`; the earliest opt-out of a number is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    and_,
    bindparam,
    case,
    cast,
    column,
    func,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from connectors.vocabulary import DELIVERY_RANK, DeliveryStatus
from connectors.warehouse.schema import (
    deliveries,
    opt_outs,
    recipients,
    status_events,
)
from connectors.webhooks.keywords import keyword_index, matched_keyword

RANK: Final = DELIVERY_RANK
FAILED: Final = DeliveryStatus.FAILED
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One entry of a webhook's `statuses`, validated to fit `wa_status_events`."""

    message_id: str
    status: str
    recipient_id: str | None = None
    event_at: datetime | None = None
    error_code: str | None = None
    error_title: str | None = None
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One entry of a webhook's `messages`: a customer wrote to the business number."""

    message_id: str
    wa_id: str
    event_at: datetime | None = None
    type: str = "text"
    text: str | None = None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one `record_events` (or `apply_stored_statuses`) call changed."""

    stored: int = 0
    """New rows in `wa_status_events`."""
    duplicates: int = 0
    """Statuses already stored (redeliveries), ignored."""
    deliveries_updated: int = 0
    recipients_updated: int = 0
    unmatched: tuple[str, ...] = ()
    """Message ids with new statuses whose delivery or customer row is not written yet."""
    opt_outs: int = 0
    """Numbers with an opt-out reply in the batch (kept unless an earlier opt-out is stored)."""


def best_status(current: str | None, statuses: Iterable[str]) -> str | None:
    """The delivery status after `statuses` arrive over `current`: the highest ranked one."""
    best = current
    for status in statuses:
        if RANK.get(status, 0) > RANK.get(best or "", 0):
            best = status
    return best


def record_events(
    engine: Engine | Connection,
    statuses: Sequence[StatusEvent],
    inbound: Sequence[InboundMessage],
    *,
    opt_out_keywords: Iterable[str],
    now: datetime | None = None,
) -> RecordResult:
    """Store statuses and opt-out replies and apply the new statuses, in one transaction.

    `engine` may also be a Connection outside a transaction (a long-lived writer's own).
    """
    now = now or datetime.now(UTC)
    unique: dict[tuple[str, str], StatusEvent] = {}
    for event in statuses:
        unique.setdefault((event.message_id, event.status), event)
    with _transaction(engine) as conn:
        new = _insert_new(conn, list(unique.values()), now)
        applied = _apply(conn, sorted({e.message_id for e in new}), now)
        opted = _record_opt_outs(conn, inbound, keyword_index(opt_out_keywords), now)
    return RecordResult(
        stored=len(new),
        duplicates=len(statuses) - len(new),
        deliveries_updated=applied.deliveries_updated,
        recipients_updated=applied.recipients_updated,
        unmatched=applied.unmatched,
        opt_outs=opted,
    )


def apply_stored_statuses(
    engine: Engine | Connection, message_ids: Sequence[str], *, now: datetime | None = None
) -> RecordResult:
    """Apply the stored statuses of these messages (e.g. ones the ledger did not know before)."""
    with _transaction(engine) as conn:
        return _apply(conn, sorted(set(message_ids)), now or datetime.now(UTC))


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


def opted_out_numbers(engine: Engine) -> set[str]:
    """Every E.164 number that replied with an opt-out keyword ("+" and the wa_id's digits)."""
    with engine.connect() as conn:
        return set(conn.execute(select(opt_outs.c.phone_e164)).scalars())


def opted_out_wa_ids(engine: Engine) -> set[str]:
    """The wa_ids that replied with an opt-out keyword (match these after the contact check)."""
    with engine.connect() as conn:
        rows = conn.execute(select(opt_outs.c.wa_id).where(opt_outs.c.wa_id.is_not(None)))
        return {str(v) for v in rows.scalars()}


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection inside a transaction committed on success, from an engine or a connection."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    else:
        with bind.begin():
            yield bind


# Statuses --------------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _event_row(event: StatusEvent, now: datetime) -> dict[str, Any]:
    return {
        "message_id": event.message_id,
        "status": event.status,
        "recipient_id": event.recipient_id,
        "error_code": event.error_code,
        "error_title": event.error_title,
        "event_at": event.event_at,
        "received_at": now,
        "raw": event.raw,
    }


def _insert_new(
    conn: Connection, events: Sequence[StatusEvent], now: datetime
) -> list[StatusEvent]:
    """Insert-or-ignore the events; return those that were not stored before."""
    if not events:
        return []
    # Sorted keys: concurrent writers then wait on each other's inserts without deadlocking.
    events = sorted(events, key=lambda e: (e.message_id, e.status))
    dialect = conn.dialect
    if dialect.name in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect.name == "postgresql" else sqlite
        stmt = module.insert(status_events).on_conflict_do_nothing(
            index_elements=["message_id", "status"]
        )
    elif dialect.name in ("mysql", "mariadb"):
        # Lengths are validated before, so IGNORE can only skip duplicate keys here.
        stmt = mysql.insert(status_events).prefix_with("IGNORE")
    else:
        raise NotImplementedError(f"status events on dialect {dialect.name!r}")
    if dialect.insert_executemany_returning:
        # The write comes first, so SQLite takes its write lock before anything is read.
        by_key = {(e.message_id, e.status): e for e in events}
        returning = stmt.returning(status_events.c.message_id, status_events.c.status)
        returned = conn.execute(returning, [_event_row(e, now) for e in events])
        return [by_key[(m, s)] for m, s in returned]
    stored: set[tuple[str, str]] = set()
    for chunk in _chunks(sorted({e.message_id for e in events})):
        found = conn.execute(
            select(status_events.c.message_id, status_events.c.status).where(
                status_events.c.message_id.in_(chunk)
            )
        )
        stored.update((m, s) for m, s in found)
    new = [e for e in events if (e.message_id, e.status) not in stored]
    if new:
        conn.execute(stmt, [_event_row(e, now) for e in new])
    return new


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
    ).outerjoin(status_events, and_(e.message_id == d.message_id, e.status.in_(list(RANK))))
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


def _apply(conn: Connection, message_ids: Sequence[str], now: datetime) -> RecordResult:
    """Raise the deliveries and customers of these messages to their stored statuses."""
    found: list[_Delivery] = []
    for chunk in _chunks(message_ids):
        found += _load(conn, deliveries.c.message_id.in_(chunk))
    moved, lifted = _raise(conn, found, now)
    # A delivery whose customer row is not written yet (the record stage comes after the sends)
    # stays unmatched too, so the receiver keeps retrying until the outcome can follow.
    settled = {f.message_id for f in found if f.has_customer}
    return RecordResult(
        deliveries_updated=moved,
        recipients_updated=lifted,
        unmatched=tuple(m for m in message_ids if m not in settled),
    )


def _raise(conn: Connection, found: Sequence[_Delivery], now: datetime) -> tuple[int, int]:
    """Move deliveries and their customers up to their best stored status: (moved, lifted)."""
    moves: list[dict[str, Any]] = []
    lifts: list[dict[str, Any]] = []
    for f in found:
        best = best_status(f.status, (ev.status for ev in f.events))
        if best is None:
            continue
        code = f.error_code
        if best != f.status:
            winner = next(ev for ev in f.events if ev.status == best)  # one per (message, status)
            code = winner.error_code if best == FAILED else None
            moves.append(
                {
                    "campaign_id": f.campaign_id,
                    "phone_e164": f.phone_e164,
                    "rank": RANK[best],
                    "delivery_status": best,
                    "delivery_error_code": code,
                    "delivery_updated_at": winner.event_at or winner.received_at,
                }
            )
        if RANK[best] > RANK.get(f.outcome or "", RANK[best]):  # other outcomes never move
            if best == FAILED:
                reason = code
            elif f.outcome == FAILED:
                reason = None  # the failure's code no longer describes a delivered message
            else:
                reason = f.reason
            lifts.append(
                {
                    "campaign_id": f.campaign_id,
                    "customer_id": f.customer_id,
                    "rank": RANK[best],
                    "outcome": best,
                    "reason": reason,
                    "updated_at": now,
                }
            )
    _raise_rows(conn, deliveries, "delivery_status", moves, lowest=0)
    _raise_rows(conn, recipients, "outcome", lifts, lowest=1)
    return len(moves), len(lifts)


def _rank_of(column: ColumnElement[Any]) -> ColumnElement[int]:
    return case(dict(RANK), value=column, else_=0)


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


# Opt-outs --------------------------------------------------------------------------------------


def _opt_out_rows(
    inbound: Sequence[InboundMessage], index: Mapping[str, str], now: datetime
) -> list[dict[str, Any]]:
    """One row per number that sent an opt-out keyword: its earliest such message."""
    earliest: dict[str, dict[str, Any]] = {}
    for message in inbound:
        if message.type != "text" or message.text is None or not message.wa_id.isdigit():
            continue
        keyword = matched_keyword(message.text, index)
        if keyword is None:
            continue
        phone = "+" + message.wa_id
        row: dict[str, Any] = {
            "phone_e164": phone,
            "wa_id": message.wa_id,
            "keyword": keyword,
            "message_id": message.message_id,
            "opted_out_at": message.event_at or now,
            "received_at": now,
        }
        kept = earliest.get(phone)
        if kept is None or row["opted_out_at"] < kept["opted_out_at"]:
            earliest[phone] = row
    return [earliest[phone] for phone in sorted(earliest)]


def _record_opt_outs(
    conn: Connection, inbound: Sequence[InboundMessage], index: Mapping[str, str], now: datetime
) -> int:
    rows = _opt_out_rows(inbound, index, now)
    if not rows:
        return 0
    o = opt_outs.c
    changing = ("wa_id", "keyword", "message_id", "received_at", "opted_out_at")
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(opt_outs)
        stmt = ins.on_conflict_do_update(
            index_elements=["phone_e164"],
            set_={c: ins.excluded[c] for c in changing},
            where=ins.excluded.opted_out_at < o.opted_out_at,
        )
    elif dialect in ("mysql", "mariadb"):
        ins = mysql.insert(opt_outs)
        earlier = ins.inserted.opted_out_at < o.opted_out_at
        # MySQL assigns left to right: opted_out_at last, so the others compare the old value.
        stmt = ins.on_duplicate_key_update(
            [(c, case((earlier, ins.inserted[c]), else_=o[c])) for c in changing]
        )
    else:
        raise NotImplementedError(f"opt-outs on dialect {dialect!r}")
    conn.execute(stmt, rows)
    return len(rows)
