"""Opt-out replies in `wa_opt_outs`: one row per number, the earliest opt-out kept.

Which replies are opt-outs is the receiver's business (`connectors.webhooks.keywords`); this
module stores what it found and answers which numbers and wa_ids every later campaign excludes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from connectors.warehouse.schema import opt_outs

_CHANGING = ("wa_id", "keyword", "message_id", "received_at", "opted_out_at")


@dataclass(frozen=True, slots=True)
class OptOut:
    """A customer replied with an opt-out keyword: stored as "+<wa_id>"."""

    wa_id: str
    """The sender's digits, as the webhook's `from` holds them."""
    keyword: str
    """The keyword as configured that the reply amounts to."""
    message_id: str
    opted_out_at: datetime


def store_opt_outs(conn: Connection, found: Sequence[OptOut], now: datetime) -> int:
    """Upsert one row per number in `found`, keeping the earliest opt-out; returns the numbers."""
    rows = _earliest_rows(found, now)
    if not rows:
        return 0
    o = opt_outs.c
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(opt_outs)
        stmt = ins.on_conflict_do_update(
            index_elements=["phone_e164"],
            set_={c: ins.excluded[c] for c in _CHANGING},
            where=ins.excluded.opted_out_at < o.opted_out_at,
        )
    elif dialect in ("mysql", "mariadb"):
        ins = mysql.insert(opt_outs)
        earlier = ins.inserted.opted_out_at < o.opted_out_at
        # MySQL assigns left to right: opted_out_at last, so the others compare the old value.
        stmt = ins.on_duplicate_key_update(
            [(c, case((earlier, ins.inserted[c]), else_=o[c])) for c in _CHANGING]
        )
    else:
        raise NotImplementedError(f"opt-outs on dialect {dialect!r}")
    conn.execute(stmt, rows)
    return len(rows)


def opted_out_numbers(engine: Engine) -> set[str]:
    """Every E.164 number that replied with an opt-out keyword ("+" and the wa_id's digits)."""
    with engine.connect() as conn:
        return set(conn.execute(select(opt_outs.c.phone_e164)).scalars())


def opted_out_wa_ids(engine: Engine) -> set[str]:
    """The wa_ids that replied with an opt-out keyword (match these after the contact check)."""
    with engine.connect() as conn:
        rows = conn.execute(select(opt_outs.c.wa_id).where(opt_outs.c.wa_id.is_not(None)))
        return {str(v) for v in rows.scalars()}


def _earliest_rows(found: Sequence[OptOut], now: datetime) -> list[dict[str, Any]]:
    """One row per number, its earliest opt-out (one statement may not touch a key twice)."""
    earliest: dict[str, OptOut] = {}
    for opt_out in found:
        kept = earliest.get(opt_out.wa_id)
        if kept is None or opt_out.opted_out_at < kept.opted_out_at:
            earliest[opt_out.wa_id] = opt_out
    return [
        {
            "phone_e164": "+" + o.wa_id,
            "wa_id": o.wa_id,
            "keyword": o.keyword,
            "message_id": o.message_id,
            "opted_out_at": o.opted_out_at,
            "received_at": now,
        }
        for o in (earliest[wa_id] for wa_id in sorted(earliest))
    ]
