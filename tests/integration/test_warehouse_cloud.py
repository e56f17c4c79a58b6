"""Cloud statuses in the warehouse on each dialect: pricing and BSUIDs on the delivery, in-doubt
rows resolved by their callback key, 131026 numbers kept for suppression, BSUID-only STOPs."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from connectors.vocabulary import LedgerState
from connectors.warehouse.callback import callback_key
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import (
    OptOut,
    StatusEvent,
    opted_out_numbers,
    reconcile_campaign,
    resolve_in_doubt,
    undeliverable_since,
    write_events,
)
from connectors.warehouse.records import write_recipients
from connectors.warehouse.schema import deliveries, recipients, status_events, undeliverable

CAMPAIGN = "spring-sale:2026"  # a campaign id holding ":" on purpose
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
BSUID = "DE.13491208655302741918"
PRICING = {
    "pricing_model": "PMP",
    "pricing_category": "marketing",
    "pricing_type": "regular",
    "billable": True,
}


def phone_of(customer_id: str) -> str:
    return f"+49151{int(customer_id):07d}1"


def add_row(
    engine: Engine,
    customer_id: str,
    state: str,
    message_id: str | None = None,
    *,
    outcome: str | None = None,
    campaign_id: str = CAMPAIGN,
    **values: Any,
) -> str:
    """A ledger row (and the customer's row, given an outcome) as a run leaves them."""
    phone = phone_of(customer_id)
    row = {
        "campaign_id": campaign_id,
        "phone_e164": phone,
        "customer_id": customer_id,
        "wa_id": phone[1:],
        "state": state,
        "retryable": False,
        "message_id": message_id,
        "attempts": 1,
        "run_id": "run-1",
        "first_attempt_at": T0,
        "last_attempt_at": T0,
        "sent_at": T0 if state == LedgerState.SENT else None,
        **values,
    }
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [row])
        if outcome is not None:
            customer = {
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "outcome": outcome,
                "reason": "send_in_doubt" if outcome == "unknown" else None,
                "phone_e164": phone,
                "run_id": "run-1",
                "updated_at": T0,
            }
            conn.execute(insert(recipients), [customer])
    return phone


def event(
    message_id: str, status: str, minutes: int, customer_id: str = "1", **values: Any
) -> StatusEvent:
    """A Cloud status of `customer_id`'s send, its callback key included."""
    fields: dict[str, Any] = {
        "recipient_id": phone_of(customer_id)[1:],
        "event_at": T0 + timedelta(minutes=minutes),
        "callback": callback_key(CAMPAIGN, phone_of(customer_id)),
        **values,
    }
    if status == "failed" and "error_code" not in fields:
        fields["error_code"] = "131026"
    return StatusEvent(message_id, status, **fields)


def delivery(engine: Engine, customer_id: str = "1", campaign_id: str = CAMPAIGN) -> Any:
    d = deliveries.c
    with engine.connect() as conn:
        return conn.execute(
            select(deliveries).where(
                d.campaign_id == campaign_id, d.phone_e164 == phone_of(customer_id)
            )
        ).one()


def outcome(engine: Engine, customer_id: str = "1") -> tuple[str, str | None]:
    r = recipients.c
    with engine.connect() as conn:
        found = conn.execute(select(r.outcome, r.reason).where(r.customer_id == customer_id)).one()
    return found.outcome, found.reason


def details(row: Any) -> tuple[Any, ...]:
    return (row.user_id, row.pricing_model, row.pricing_category, row.pricing_type, row.billable)


def undeliverable_rows(engine: Engine) -> dict[str, tuple[str | None, datetime]]:
    """phone_e164 -> (message_id, failed_at)."""
    u = undeliverable.c
    with engine.connect() as conn:
        rows = conn.execute(select(u.phone_e164, u.message_id, u.failed_at))
        return {p: (m, at) for p, m, at in rows}


# What a status carries besides its rank --------------------------------------------------------


def test_status_events_keep_their_bsuid_callback_and_pricing(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    write_events(engine, [event("m-1", "sent", 1, recipient_user_id=BSUID, **PRICING)], now=T0)
    with engine.connect() as conn:
        row = conn.execute(select(status_events)).one()
    assert (row.recipient_user_id, row.callback) == (BSUID, f"wa1:{CAMPAIGN}:+4915100000011")
    assert (row.pricing_model, row.pricing_category, row.pricing_type, row.billable) == (
        "PMP",
        "marketing",
        "regular",
        True,
    )


def test_pricing_and_bsuid_reach_the_delivery_whatever_the_rank_and_are_never_cleared(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    statuses = [
        event("m", "read", 3, recipient_user_id=BSUID),
        event("m", "delivered", 2, **PRICING),
        event("m", "sent", 1, pricing_category="utility", billable=False),
    ]
    orders = list(itertools.permutations(statuses))
    for i, order in enumerate(orders):
        customer = str(i + 1)
        add_row(engine, customer, LedgerState.SENT, f"m-{customer}", outcome="sent")
        for status in order:
            one = replace(status, message_id=f"m-{customer}", callback=None)
            result = write_events(engine, [one], now=T0)
            assert result.unmatched == ()
    for i in range(len(orders)):
        row = delivery(engine, str(i + 1))
        assert row.delivery_status == "read"
        # delivered's pricing outranks sent's; nothing later cleared the read's BSUID
        assert details(row) == (BSUID, "PMP", "marketing", "regular", True)


def test_a_value_no_status_carries_is_left_as_the_send_recorded_it(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENT, "m-1", outcome="sent", user_id="DE.1")
    write_events(engine, [event("m-1", "delivered", 2, **PRICING)], now=T0)
    assert details(delivery(engine)) == ("DE.1", "PMP", "marketing", "regular", True)


# Sends in doubt resolved by their callback -----------------------------------------------------


def test_an_unknown_row_takes_its_message_by_callback_and_its_customer_the_real_outcome(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.UNKNOWN, outcome="unknown")
    result = write_events(engine, [event("m-1", "sent", 1), event("m-1", "delivered", 2)], now=T0)
    assert (result.resolved, result.callbacks_ignored, result.unmatched) == (1, 0, ())
    row = delivery(engine)
    assert (row.state, row.message_id, row.delivery_status) == ("sent", "m-1", "delivered")
    assert row.sent_at == T0 + timedelta(minutes=1)  # its earliest status
    assert outcome(engine) == ("delivered", None)
    assert resolve_in_doubt(engine, CAMPAIGN) == 0  # nothing left in doubt


def test_a_sending_row_failed_by_its_status_is_sent_with_delivery_failed(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    phone = add_row(engine, "1", LedgerState.SENDING)  # the record stage has not run yet
    result = write_events(engine, [event("m-1", "failed", 1)], now=T0)
    assert (result.resolved, result.unmatched) == (1, ("m-1",))  # the customer comes later
    row = delivery(engine)
    assert (row.state, row.message_id) == ("sent", "m-1")
    assert (row.delivery_status, row.delivery_error_code) == ("failed", "131026")
    assert set(undeliverable_rows(engine)) == {phone}


def test_a_callback_naming_a_row_with_another_message_is_ignored_and_counted(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENT, "m-resent", outcome="sent")
    add_row(engine, "2", LedgerState.SEND_FAILED, outcome="send_failed", error_code="131008")
    statuses = [event("m-first", "delivered", 1), event("m-other", "sent", 1, customer_id="2")]
    result = write_events(engine, statuses, now=T0)
    assert (result.resolved, result.callbacks_ignored) == (0, 2)
    assert result.unmatched == ()  # they will never match: not retried
    assert delivery(engine).message_id == "m-resent"
    assert (delivery(engine, "2").state, delivery(engine, "2").message_id) == ("send_failed", None)
    assert outcome(engine) == ("sent", None)


def test_of_two_messages_naming_one_row_the_earliest_wins(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.UNKNOWN, outcome="unknown")
    statuses = [event("m-late", "sent", 5), event("m-early", "read", 2)]
    result = write_events(engine, statuses, now=T0)
    assert (result.resolved, result.callbacks_ignored) == (1, 1)
    assert (delivery(engine).message_id, delivery(engine).delivery_status) == ("m-early", "read")
    assert outcome(engine) == ("read", None)


def test_statuses_stored_before_a_row_fell_in_doubt_resolve_it_before_planning(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENDING)
    add_row(engine, "2", LedgerState.SEND_FAILED, retryable=True, error_code="131000")
    add_row(engine, "3", LedgerState.SEND_FAILED, error_code="131008")  # permanent: settled
    write_events(engine, [event("m-1", "delivered", 1)], now=T0)  # resolves row 1 at once
    # ... but the run, which had timed out on that send, then records it as unknown:
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.phone_e164 == phone_of("1"))
            .values(state=LedgerState.UNKNOWN, message_id=None, sent_at=None)
        )
    write_events(
        engine, [event("m-2", "read", 2, "2"), event("m-3", "sent", 3, "3")], now=T0
    )  # row 2 resolves at once; row 3 is settled, its status ignored
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.phone_e164 == phone_of("2"))
            .values(state=LedgerState.SEND_FAILED, retryable=True, message_id=None)
        )

    assert resolve_in_doubt(engine, CAMPAIGN) == 2
    one, two, three = (delivery(engine, c) for c in "123")
    assert (one.state, one.message_id, one.delivery_status) == ("sent", "m-1", "delivered")
    assert (two.state, two.message_id, two.retryable, two.error_code) == (
        "sent",
        "m-2",
        False,
        None,
    )
    assert (three.state, three.message_id) == ("send_failed", None)
    assert resolve_in_doubt(engine, CAMPAIGN) == 0


def test_reconcile_resolves_rows_in_doubt_and_lifts_their_customers(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENDING)
    write_events(engine, [event("m-1", "read", 1)], now=T0)
    with engine.begin() as conn:  # the dying run's row, and its record stage's `unknown`
        conn.execute(update(deliveries).values(state=LedgerState.UNKNOWN, message_id=None))
        conn.execute(
            insert(recipients),
            [
                {
                    "campaign_id": CAMPAIGN,
                    "customer_id": "1",
                    "outcome": "unknown",
                    "reason": "send_in_doubt",
                    "phone_e164": phone_of("1"),
                    "run_id": "run-1",
                    "updated_at": T0,
                }
            ],
        )
    assert reconcile_campaign(engine, CAMPAIGN) == 2  # the row resolved, its customer lifted
    assert (delivery(engine).state, delivery(engine).delivery_status) == ("sent", "read")
    assert outcome(engine) == ("read", None)
    assert reconcile_campaign(engine, CAMPAIGN) == 0


# Numbers a send showed undeliverable ----------------------------------------------------------


def test_131026_keeps_a_number_with_its_latest_failure_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    phone = add_row(engine, "1", LedgerState.SENT, "m-jan", outcome="sent")
    add_row(engine, "1", LedgerState.SENT, "m-mar", outcome=None, campaign_id="march")
    other = add_row(engine, "2", LedgerState.SENT, "m-470", outcome="sent")
    march = T0 + timedelta(days=60)
    write_events(engine, [StatusEvent("m-mar", "failed", event_at=march, error_code="131026")])
    write_events(engine, [StatusEvent("m-jan", "failed", event_at=T0, error_code="131026")])
    write_events(engine, [StatusEvent("m-470", "failed", event_at=T0, error_code="131049")])
    assert undeliverable_rows(engine) == {phone: ("m-mar", march)}
    assert undeliverable_since(engine, [phone, other, "+1555"], march) == {phone}
    assert undeliverable_since(engine, [phone], march + timedelta(seconds=1)) == set()
    many = [phone_of(str(i)) for i in range(3, 20_010)] + [phone]  # beyond the IN lists
    assert undeliverable_since(engine, many, T0) == {phone}


def test_a_delivery_after_131026_takes_the_number_out_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    first = add_row(engine, "1", LedgerState.SENT, "m-1", outcome="sent")
    add_row(engine, "2", LedgerState.SENT, "m-2", outcome="sent")
    write_events(engine, [StatusEvent("m-1", "failed", event_at=T0, error_code="131026")])
    assert set(undeliverable_rows(engine)) == {first}
    write_events(engine, [StatusEvent("m-1", "delivered", event_at=T0)])
    write_events(engine, [StatusEvent("m-2", "delivered", event_at=T0)])
    write_events(engine, [StatusEvent("m-2", "failed", event_at=T0, error_code="131026")])
    assert undeliverable_rows(engine) == {}
    assert reconcile_campaign(engine, CAMPAIGN) == 0


# STOP from a BSUID alone ----------------------------------------------------------------------


def test_a_bsuid_only_stop_holds_for_the_number_of_its_most_recent_delivery(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENT, "m-1", user_id=BSUID)
    newer = add_row(
        engine, "2", LedgerState.SENT, "m-2", user_id=BSUID, sent_at=T0 + timedelta(days=1)
    )
    add_row(engine, "3", LedgerState.SENT, "m-3", user_id="DE.other")
    stop = OptOut(None, "STOP", "in-1", T0 + timedelta(days=2), user_id=BSUID)
    stranger = OptOut(None, "STOP", "in-2", T0, user_id="DE.never-seen")
    result = write_events(engine, [], [stop, stranger], now=T0)
    assert (result.opt_outs, result.unknown_user_ids) == (1, 1)
    assert opted_out_numbers(engine) == {newer}


def test_a_record_stage_writing_unknown_never_undoes_what_the_statuses_proved(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_row(engine, "1", LedgerState.SENDING, outcome="sent")
    write_events(engine, [event("m-1", "delivered", 1)], now=T0)
    assert outcome(engine) == ("delivered", None)
    row = {
        "campaign_id": CAMPAIGN,
        "customer_id": "1",
        "outcome": "unknown",  # the run that died mid-call, as its next run records it
        "reason": "send_in_doubt",
        "phone_e164": phone_of("1"),
        "duplicate_of": None,
        "run_id": "run-2",
        "updated_at": T0,
    }
    write_recipients(engine, [row])
    assert outcome(engine) == ("delivered", None)
