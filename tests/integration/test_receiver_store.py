"""The receiver's store on PostgreSQL: its binary array parameters store what text ones store."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import StatusEvent, write_events
from connectors.warehouse.schema import status_events
from connectors.webhooks.store import WarehouseStore

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def batches() -> list[list[StatusEvent]]:
    """Batches whose columns hold strings, timestamps, booleans, NULLs, and only NULLs."""
    priced = {"pricing_model": "PMP", "pricing_category": "marketing", "billable": True}
    return [
        [StatusEvent(f"m-{i}", "sent", recipient_id="4915100000011") for i in range(3)],
        [
            StatusEvent("m-0", "delivered", event_at=T0, raw='{"a":"ü \\\\ \\" {x,y}"}', **priced),
            StatusEvent("m-1", "failed", error_code="131026", error_title='a "quoted", {title}'),
            StatusEvent("m-2", "read", billable=False, recipient_user_id="DE.1"),
            StatusEvent("m-0", "delivered"),  # a redelivery: ignored
        ],
    ]


def stored(engine: Engine) -> list[tuple[object, ...]]:
    e = status_events.c
    columns = [c for c in status_events.columns if c.name != "received_at"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(e.message_id, e.status))]


def test_the_stores_binary_arrays_write_what_text_arrays_write(postgres_url: str) -> None:
    engine = warehouse(postgres_url)
    for batch in batches():
        write_events(engine, batch, now=T0)
    expected = stored(engine)
    with engine.begin() as conn:
        conn.execute(status_events.delete())
    store = WarehouseStore(engine, opt_out_keywords=["STOP"])
    try:
        results = [store.record(batch, []) for batch in batches()]
    finally:
        store.close()
    assert [(r.stored, r.duplicates) for r in results] == [(3, 0), (3, 1)]
    assert stored(engine) == expected
