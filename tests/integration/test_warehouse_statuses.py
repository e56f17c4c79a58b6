"""Statuses into `wa_status_events` on each dialect: once per (message, status), with sender."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, text

from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import OptOut, StatusEvent, opted_out_numbers, write_events
from connectors.warehouse.events.loading import _select
from connectors.warehouse.schema import deliveries, recipients, status_events

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
CLOUD_SENDER = "106540352242922"


def rows(engine: Engine) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(message_id, status) -> (error_code, phone_number_id) as stored."""
    e = status_events.c
    with engine.connect() as conn:
        found = conn.execute(select(e.message_id, e.status, e.error_code, e.phone_number_id))
        return {(m, s): (c, p) for m, s, c, p in found}


def test_each_status_is_stored_once_with_its_phone_number_id(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    first = [
        StatusEvent("m-1", "sent", phone_number_id=CLOUD_SENDER),
        StatusEvent("m-1", "sent", phone_number_id=CLOUD_SENDER),
        StatusEvent("m-2", "failed", error_code="131026", phone_number_id="9" * 64),
        StatusEvent("m-3", "delivered"),  # a v1 status: no phone number id
    ]
    result = write_events(engine, first, now=T0)
    assert (result.stored, result.duplicates) == (3, 1)
    assert result.unmatched == ("m-1", "m-2", "m-3")  # the ledger knows none of them

    again = write_events(engine, [StatusEvent("m-1", "sent"), StatusEvent("m-1", "read")], now=T0)
    assert (again.stored, again.duplicates) == (1, 1)
    assert rows(engine) == {
        ("m-1", "sent"): (None, CLOUD_SENDER),  # the first delivery's copy is kept
        ("m-1", "read"): (None, None),
        ("m-2", "failed"): ("131026", "9" * 64),
        ("m-3", "delivered"): (None, None),
    }


def test_statuses_and_opt_outs_of_a_batch_are_written_together(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    opt_out = OptOut("4915100000013", "STOP", "in-1", T0)
    result = write_events(engine, [StatusEvent("m-1", "sent")], [opt_out], now=T0)
    assert (result.stored, result.opt_outs) == (1, 1)
    assert opted_out_numbers(engine) == {"+4915100000013"}


def test_a_batch_looks_its_deliveries_up_by_index_whatever_the_planner_statistics(
    postgres_url: str,
) -> None:
    engine = warehouse(postgres_url)
    # Tables that grew after their last ANALYZE: the planner believes them tiny.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        conn.execute(
            insert(status_events),
            [{"message_id": f"m-{i}", "status": "sent", "received_at": T0} for i in range(5000)],
        )
        customer = {"campaign_id": "c", "outcome": "sent", "run_id": "r", "updated_at": T0}
        conn.execute(insert(recipients), [{**customer, "customer_id": str(i)} for i in range(5000)])
    stmt = _select(True).where(deliveries.c.message_id.in_(["m-1", "m-2"]))
    with engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + sql)))
    assert "Seq Scan on wa_status_events" not in plan
    assert "Seq Scan on wa_recipients" not in plan
