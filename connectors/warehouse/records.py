"""Writes of run records, per-customer outcomes and the 7-day contact-check cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Text,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from connectors.vocabulary import AFTER_SENT, Outcome, RunStatus
from connectors.warehouse.schema import campaign_runs, contact_checks, deliveries, recipients
from connectors.warehouse.upsert import upsert

_IN_CHUNK = 1000
_SCAN_ABOVE = 20_000
_ARRAY_CHUNK = 50_000


def start_run(
    engine: Engine,
    *,
    run_id: str,
    attempt: int = 1,
    campaign_id: str,
    template_name: str,
    dry_run: bool,
    started_at: datetime,
) -> None:
    """Record a run attempt as started (a retried flow run keeps its id: each attempt is a row
    of its own, so the first attempt's record survives the retry)."""
    row = {
        "run_id": run_id,
        "attempt": attempt,
        "campaign_id": campaign_id,
        "template_name": template_name,
        "dry_run": dry_run,
        "status": RunStatus.RUNNING,
        "started_at": started_at,
        "finished_at": None,
        "error": None,
    }
    with engine.begin() as conn:
        upsert(conn, campaign_runs, [row])


def finish_run(
    engine: Engine,
    *,
    run_id: str,
    attempt: int = 1,
    status: str,
    finished_at: datetime,
    counts: Mapping[str, int],
    error: str | None = None,
) -> None:
    """Record a run attempt's end with its counts per outcome."""
    known = {c.name for c in campaign_runs.columns}
    values = {k: v for k, v in counts.items() if k in known}
    with engine.begin() as conn:
        conn.execute(
            update(campaign_runs)
            .where(campaign_runs.c.run_id == run_id, campaign_runs.c.attempt == attempt)
            .values(status=status, finished_at=finished_at, error=error, **values)
        )


def _keeps_webhook_outcome(new: Any) -> ColumnElement[bool]:
    # Inline constants: bound or expanding parameters do not mix with executemany upserts.
    current = or_(*(recipients.c.outcome == literal_column(f"'{o}'") for o in AFTER_SENT))
    # `unknown` too: the statuses of a send in doubt prove it went out (events.in_doubt).
    written = or_(
        *(new.outcome == literal_column(f"'{o}'") for o in (Outcome.SENT, Outcome.UNKNOWN))
    )
    return and_(current, written)


def write_recipients(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Upsert one chunk of customer outcomes in a single transaction; never moves a customer's
    delivered/read/failed back to sent (or to unknown, which its statuses disproved)."""
    keep = {
        column: (
            lambda new, column=column: case(
                (_keeps_webhook_outcome(new), recipients.c[column]), else_=new[column]
            )
        )
        for column in ("reason", "outcome")
    }
    with engine.begin() as conn:
        upsert(conn, recipients, rows, expressions=keep)


def fresh_checks(
    engine: Engine, phones: Iterable[str], *, not_before: datetime, sender: str | None = None
) -> dict[str, tuple[str, str | None]]:
    """Cached checks younger than the cutoff: phone -> (status, wa_id). With a sender, only its
    own checks count (another server's check says nothing of this one's contacts), and those
    made before senders were recorded (NULL: there was only one)."""
    wanted = list(phones)
    columns = (contact_checks.c.phone_e164, contact_checks.c.status, contact_checks.c.wa_id)
    fresh = contact_checks.c.checked_at >= not_before
    if sender is not None:
        fresh = and_(
            fresh, or_(contact_checks.c.sender.is_(None), contact_checks.c.sender == sender)
        )
    found: dict[str, tuple[str, str | None]] = {}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # index lookups of an array: only the rows asked for
            asked = contact_checks.c.phone_e164 == any_(bindparam("phones", type_=ARRAY(Text)))
            stmt = select(*columns).where(asked, fresh)
            for start in range(0, len(wanted), _ARRAY_CHUNK):
                chunk = wanted[start : start + _ARRAY_CHUNK]
                found.update((p, (s, w)) for p, s, w in conn.execute(stmt, {"phones": chunk}))
            return found
        if len(wanted) > _SCAN_ABOVE:  # one scan beats hundreds of IN lists
            wanted_set = set(wanted)
            rows = conn.execute(select(*columns).where(fresh)).all()
            return {p: (s, w) for p, s, w in rows if p in wanted_set}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            stmt = select(*columns).where(contact_checks.c.phone_e164.in_(chunk), fresh)
            found.update((p, (s, w)) for p, s, w in conn.execute(stmt))
    return found


def save_checks(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store contact-check answers (phone_e164, status, wa_id, checked_at, sender)."""
    with engine.begin() as conn:
        upsert(conn, contact_checks, rows)


def delivery_counts(engine: Engine, campaign_id: str) -> dict[str, int]:
    """Messages of a campaign per delivery status reported by webhooks so far."""
    stmt = (
        select(deliveries.c.delivery_status, func.count())
        .where(deliveries.c.campaign_id == campaign_id, deliveries.c.delivery_status.is_not(None))
        .group_by(deliveries.c.delivery_status)
    )
    with engine.connect() as conn:
        return {str(status): int(n) for status, n in conn.execute(stmt)}
