"""What the campaign report reads from the warehouse: outcomes by reason, the messages' events
in time, and the campaign's runs."""

from __future__ import annotations

from typing import Any, Final

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    union_all,
)

from connectors.vocabulary import DeliveryStatus, LedgerState
from connectors.warehouse.schema import campaign_runs, deliveries, status_events

# The view of migration 0008 (not in schema.metadata: create_all must not make it a table).
outcome_reasons_view: Final = table(
    "wa_outcome_reasons",
    column("campaign_id", String),
    column("kind", String),
    column("outcome", String),
    column("reason", String),
    column("customers", Integer),
)
EVENTS: Final = ("sent", "delivered", "read", "failed", "send_failed")
RUN_COLUMNS: Final = (
    "run_id",
    "attempt",
    "started_at",
    "finished_at",
    "status",
    "dry_run",
    "customers",
    "messages_sent",
    "excluded",
    "deferred",
    "send_failed",
    "unknown",
)


def outcome_reasons(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """The campaign's customers per kind, outcome and reason (reason None where there is none)."""
    v = outcome_reasons_view.c
    stmt = select(v.kind, v.outcome, v.reason, v.customers).where(v.campaign_id == campaign_id)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    frame = pd.DataFrame.from_records(rows, columns=["kind", "outcome", "reason", "customers"])
    frame["customers"] = frame["customers"].astype("int64")
    return frame.sort_values(["kind", "outcome", "reason"], ignore_index=True, na_position="first")


def delivery_events(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """The campaign's message events counted per event and second, as (event, at UTC, messages):
    sent and refused sends from the ledger, delivered / read / failed from the stored statuses
    (what `wa_delivery_timeline` counts per hour). Counted in the database: a million messages
    are a few thousand rows here, not millions."""
    d, e = deliveries.c, status_events.c
    sent = select(literal("sent").label("event"), d.sent_at.label("at")).where(
        d.campaign_id == campaign_id, d.sent_at.is_not(None)
    )
    refused = select(
        literal(LedgerState.SEND_FAILED).label("event"),
        func.coalesce(d.last_attempt_at, d.first_attempt_at).label("at"),
    ).where(d.campaign_id == campaign_id, d.state == LedgerState.SEND_FAILED)
    statuses = (
        select(e.status.label("event"), func.coalesce(e.event_at, e.received_at).label("at"))
        .join_from(status_events, deliveries, d.message_id == e.message_id)
        .where(
            d.campaign_id == campaign_id,
            e.status.in_([DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED]),
        )
    )
    events = union_all(sent, refused, statuses).subquery("events")
    second = _epoch_seconds(engine.dialect.name, events.c.at).label("second")
    stmt = (
        select(events.c.event, second, func.count().label("messages"))
        .where(events.c.at.is_not(None))
        .group_by(events.c.event, literal_column("second"))
    )
    with engine.connect() as conn:
        rows = [(str(ev), int(sec), int(n)) for ev, sec, n in conn.execute(stmt)]
    frame = pd.DataFrame.from_records(rows, columns=["event", "second", "messages"])
    frame.insert(1, "at", pd.to_datetime(frame.pop("second"), unit="s", utc=True))
    frame["messages"] = frame["messages"].astype("int64")
    return frame.sort_values(["at", "event"], ignore_index=True)


def _epoch_seconds(dialect: str, at: ColumnElement[Any]) -> ColumnElement[Any]:
    """Whole seconds since 1970 of a UTC timestamp (naive UTC outside PostgreSQL)."""
    if dialect == "postgresql":
        return func.floor(func.extract("epoch", at))
    if dialect in ("mysql", "mariadb"):
        return func.timestampdiff(literal_column("SECOND"), literal_column("'1970-01-01'"), at)
    return cast(func.strftime("%s", at), Integer)


def runs(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """The campaign's run attempts, oldest first, with their counts (excluded: every reason)."""
    c = campaign_runs.c
    excluded = sum((col for col in campaign_runs.c if col.name.startswith("excluded_")), literal(0))
    stmt = (
        select(
            c.run_id,
            c.attempt,
            c.started_at,
            c.finished_at,
            c.status,
            c.dry_run,
            c.customers,
            c.messages_sent,
            excluded.label("excluded"),
            c.deferred,
            c.send_failed,
            c.unknown,
        )
        .where(c.campaign_id == campaign_id)
        .order_by(c.started_at, c.attempt)
    )
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    frame = pd.DataFrame.from_records(rows, columns=list(RUN_COLUMNS))
    for name in RUN_COLUMNS[6:]:
        frame[name] = frame[name].astype("int64")
    return frame
