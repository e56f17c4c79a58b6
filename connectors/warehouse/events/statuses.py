"""Webhook statuses into `wa_status_events`, once per (message_id, status), then applied.

A redelivered status is ignored and not counted again; only new ones are applied (see
`reconcile`). `write_events` stores a receiver's batch (statuses, opt-outs and marketing
preferences, a new 131050 failure among them, see `marketing`) in one transaction.
A new status of a message the ledger does not know is joined back to its row by its callback
key when that row is in doubt (`in_doubt`), then applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, cast, column, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.dml import ReturningInsert

from connectors.warehouse.events.in_doubt import attach_messages
from connectors.warehouse.events.loading import chunks
from connectors.warehouse.events.marketing import (
    MarketingPreference,
    note_stopped,
    store_preferences,
)
from connectors.warehouse.events.opt_outs import OptOut, numbered, store_opt_outs
from connectors.warehouse.events.reconcile import Applied, apply_statuses
from connectors.warehouse.schema import status_events


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
    phone_number_id: str | None = None
    """The Cloud API sender the status came for (`metadata.phone_number_id`); None on v1."""
    recipient_user_id: str | None = None
    """The recipient's business-scoped user id (BSUID), Cloud only."""
    callback: str | None = None
    """The echoed `biz_opaque_callback_data` (our ledger key, `connectors.warehouse.callback`)."""
    pricing_model: str | None = None
    pricing_category: str | None = None
    pricing_type: str | None = None
    billable: bool | None = None
    business_id: str | None = None
    """The Cloud webhook's WABA id (`entry[].id`), for a 131050 stop; None on v1. Not stored."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one `write_events` (or `apply_stored_statuses`) call changed."""

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
    resolved: int = 0
    """Ledger rows in doubt that took a message by its callback (now `sent`)."""
    callbacks_ignored: int = 0
    """Messages (new statuses) whose callback names a row with another message id, or settled."""
    unknown_user_ids: int = 0
    """Opt-out replies from a BSUID no delivery knows, dropped."""
    marketing_preferences: int = 0
    """Marketing stops and resumes written (`user_preferences` and new 131050 failures)."""
    unknown_preference_user_ids: int = 0
    """Marketing preferences from a BSUID no delivery knows, dropped."""


def write_events(
    bind: Engine | Connection,
    statuses: Sequence[StatusEvent],
    found_opt_outs: Sequence[OptOut] = (),
    *,
    preferences: Sequence[MarketingPreference] = (),
    now: datetime | None = None,
) -> RecordResult:
    """Store statuses, opt-outs and marketing preferences and apply the new statuses, in one
    transaction.

    `bind` may also be a Connection outside a transaction (a long-lived writer's own).
    """
    now = now or datetime.now(UTC)
    unique: dict[tuple[str, str], StatusEvent] = {}
    for event in statuses:
        unique.setdefault((event.message_id, event.status), event)
    with _transaction(bind) as conn:
        new = _insert_new(conn, list(unique.values()), now)
        result = _apply(conn, sorted({e.message_id for e in new}), now)
        found, unknown = numbered(conn, found_opt_outs)
        opted = store_opt_outs(conn, found, now)
        stopped = note_stopped(conn, new, now)
        chosen, unknown_choices = store_preferences(conn, preferences, now)
    return replace(
        result,
        stored=len(new),
        duplicates=len(statuses) - len(new),
        opt_outs=opted,
        unknown_user_ids=unknown,
        marketing_preferences=stopped + chosen,
        unknown_preference_user_ids=unknown_choices,
    )


def apply_stored_statuses(
    bind: Engine | Connection, message_ids: Sequence[str], *, now: datetime | None = None
) -> RecordResult:
    """Apply the stored statuses of these messages (e.g. ones the ledger did not know before)."""
    with _transaction(bind) as conn:
        return _apply(conn, sorted(set(message_ids)), now or datetime.now(UTC))


def _apply(conn: Connection, message_ids: Sequence[str], now: datetime) -> RecordResult:
    """Apply the messages' statuses; those the ledger does not know first try their callback."""
    applied = apply_statuses(conn, message_ids, now)
    attached = attach_messages(conn, applied.missing) if applied.missing else None
    if attached is None or not (attached.message_ids or attached.ignored):
        return _result(applied)
    again = apply_statuses(conn, attached.message_ids, now) if attached.message_ids else Applied()
    # Ignored messages will never match a row: retrying them would only count them again.
    done = set(attached.message_ids) | set(attached.ignored)
    return RecordResult(
        deliveries_updated=applied.deliveries_updated + again.deliveries_updated,
        recipients_updated=applied.recipients_updated + again.recipients_updated,
        unmatched=tuple(m for m in applied.unmatched if m not in done) + again.unmatched,
        resolved=len(attached.message_ids),
        callbacks_ignored=len(attached.ignored),
    )


def _result(applied: Applied) -> RecordResult:
    return RecordResult(
        deliveries_updated=applied.deliveries_updated,
        recipients_updated=applied.recipients_updated,
        unmatched=applied.unmatched,
    )


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection inside a transaction committed on success, from an engine or a connection."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    else:
        with bind.begin():
            yield bind


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
        "phone_number_id": event.phone_number_id,
        "recipient_user_id": event.recipient_user_id,
        "callback": event.callback,
        "pricing_model": event.pricing_model,
        "pricing_category": event.pricing_category,
        "pricing_type": event.pricing_type,
        "billable": event.billable,
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
    if dialect.name == "postgresql":
        # One INSERT ... SELECT FROM unnest(arrays): its text never changes, so the server
        # prepares it once, where a multi-row VALUES list is new text for every batch size.
        rows = [_event_row(e, now) for e in events]
        by_key = {(e.message_id, e.status): e for e in events}
        params = {f"a_{c.name}": [r[c.name] for r in rows] for c in status_events.columns}
        inserted = conn.execute(_pg_insert(), params)
        return [by_key[(row.message_id, row.status)] for row in inserted]
    stmt: Any
    if dialect.name == "sqlite":
        stmt = sqlite.insert(status_events).on_conflict_do_nothing(
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
    for chunk in chunks(sorted({e.message_id for e in events})):
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


@cache
def _pg_insert() -> ReturningInsert[Any]:
    """`_insert_new`'s statement for PostgreSQL: one array parameter `a_<column>` per column."""
    columns = list(status_events.columns)
    arrays = [cast(bindparam(f"a_{c.name}"), ARRAY(c.type)) for c in columns]
    data = (
        func.unnest(*arrays)
        .table_valued(*(column(c.name, c.type) for c in columns), name="v")
        .render_derived()
    )
    return (
        postgresql.insert(status_events)
        .from_select([c.name for c in columns], select(*data.c))
        .on_conflict_do_nothing(index_elements=["message_id", "status"])
        .returning(status_events.c.message_id, status_events.c.status)
    )
