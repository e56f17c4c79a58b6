"""What a status says besides its rank, onto its delivery: the pricing and the recipient's BSUID.

Cloud statuses carry `pricing` (on `sent` and `delivered`) and `recipient_user_id`; they fill
`wa_deliveries.pricing_model`, `pricing_category`, `pricing_type`, `billable` and `user_id`
whatever the status's rank (a `delivered` after `read` still brings its pricing). Of several
statuses, the highest ranked one that carries a value gives it, so the result never depends on
arrival order; a value no status carries is left as it is (never overwritten with NULL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, Final

from sqlalchemy import Connection, Update, bindparam, cast, column, func, update
from sqlalchemy.dialects.postgresql import ARRAY

from connectors.vocabulary import DELIVERY_RANK
from connectors.warehouse.events.loading import DETAILS, Delivery
from connectors.warehouse.schema import deliveries

_FROM_EVENT: Final = {
    "user_id": "recipient_user_id",
    "pricing_model": "pricing_model",
    "pricing_category": "pricing_category",
    "pricing_type": "pricing_type",
    "billable": "billable",
}
_KEYS: Final = ("campaign_id", "phone_e164")


def changed_details(delivery: Delivery) -> dict[str, Any]:
    """Every `DETAILS` column: the value to set, or None to keep it; {} when nothing changes."""
    picked = carried(delivery.events)
    changed = {n: v for n, v in picked.items() if delivery.details.get(n) != v}
    return {name: changed.get(name) for name in DETAILS} if changed else {}


def fill_details(conn: Connection, changes: Sequence[tuple[Delivery, dict[str, Any]]]) -> None:
    """Set each delivery's changed details (from `changed_details`), keeping the others.

    The deliveries whose status also moves get theirs with that move (`reconcile`), one
    statement fewer on the busy path; this one serves the rest.
    """
    rows = [
        {"campaign_id": d.campaign_id, "phone_e164": d.phone_e164, **changed}
        for d, changed in changes
        if changed
    ]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        names = [*_KEYS, *DETAILS]
        conn.execute(_pg_fill(), {f"a_{n}": [r[n] for r in rows] for n in names})
        return
    stmt = _fill()
    params = [{f"b_{n}": v for n, v in r.items()} for r in rows]
    conn.execute(stmt, sorted(params, key=lambda p: (p["b_campaign_id"], p["b_phone_e164"])))


def carried(events: Iterable[Any]) -> dict[str, Any]:
    """The details these stored statuses carry, each from the highest ranked status that has it."""
    picked: dict[str, Any] = {}
    for event in sorted(events, key=lambda e: DELIVERY_RANK.get(e.status, 0), reverse=True):
        for name, source in _FROM_EVENT.items():
            value = getattr(event, source)
            if value is not None:
                picked.setdefault(name, value)
    return picked


@cache
def _fill() -> Update:
    """`fill_details`' statement elsewhere, for an executemany."""
    d = deliveries.c
    return (
        update(deliveries)
        .where(d.campaign_id == bindparam("b_campaign_id"))
        .where(d.phone_e164 == bindparam("b_phone_e164"))
        .values({n: func.coalesce(bindparam(f"b_{n}", type_=d[n].type), d[n]) for n in DETAILS})
    )


@cache
def _pg_fill() -> Update:
    """`fill_details`' statement for PostgreSQL: one UPDATE ... FROM unnest(arrays) per batch."""
    d = deliveries.c
    types: dict[str, Any] = {n: d[n].type for n in (*_KEYS, *DETAILS)}
    arrays = [cast(bindparam(f"a_{n}"), ARRAY(t)) for n, t in types.items()]
    data = (
        func.unnest(*arrays)
        .table_valued(*(column(n, t) for n, t in types.items()), name="v")
        .render_derived()
    )
    return (
        update(deliveries)
        .where(d.campaign_id == data.c.campaign_id, d.phone_e164 == data.c.phone_e164)
        .values({n: func.coalesce(data.c[n], d[n]) for n in DETAILS})
    )
