"""Marketing preferences per business and the per-user marketing limit on each dialect: the
latest choice wins in any order, 131050 stops per business, 131049 defers and frees a resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from connectors.vocabulary import LedgerState
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import (
    MarketingPreference,
    StatusEvent,
    marketing_limited_since,
    marketing_stopped,
    reconcile_campaign,
    write_events,
)
from connectors.warehouse.records import write_recipients
from connectors.warehouse.schema import deliveries, marketing_limited, recipients

CAMPAIGN = "autumn-sale"
BUSINESS = "102290129340398"
OTHER_BUSINESS = "998877665544"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PHONE = "+5511987654321"
WA_ID = "551187654321"  # Brazil: the wa_id drops the mobile 9, so the ledger's number counts


def choice(value: str, minutes: int, business: str | None = BUSINESS) -> MarketingPreference:
    return MarketingPreference(business, value, T0 + timedelta(minutes=minutes), PHONE[1:])


def add_sent(engine: Engine, message_id: str, *, outcome: str | None = "sent") -> None:
    """A ledger row `sent` with `message_id` under the number's wa_id, and its customer."""
    row = {
        "campaign_id": CAMPAIGN,
        "phone_e164": PHONE,
        "customer_id": "c-1",
        "wa_id": WA_ID,
        "state": LedgerState.SENT,
        "retryable": False,
        "message_id": message_id,
        "attempts": 1,
        "run_id": "run-1",
        "first_attempt_at": T0,
        "last_attempt_at": T0,
        "sent_at": T0,
    }
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [row])
        if outcome is not None:
            conn.execute(insert(recipients), [customer_row(outcome)])


def customer_row(outcome: str, **values: Any) -> dict[str, Any]:
    return {
        "campaign_id": CAMPAIGN,
        "customer_id": "c-1",
        "outcome": outcome,
        "reason": None,
        "phone_e164": PHONE,
        "run_id": "run-1",
        "updated_at": T0,
        **values,
    }


def failed(message_id: str, code: str, minutes: int = 5, **values: Any) -> StatusEvent:
    at = T0 + timedelta(minutes=minutes)
    return StatusEvent(message_id, "failed", WA_ID, at, code, **values)


def ledger(engine: Engine) -> tuple[Any, ...]:
    d = deliveries.c
    with engine.connect() as conn:
        return tuple(conn.execute(select(d.state, d.retryable, d.error_code, d.message_id)).one())


def customer(engine: Engine) -> tuple[Any, ...]:
    r = recipients.c
    with engine.connect() as conn:
        return tuple(conn.execute(select(r.outcome, r.reason, r.not_before)).one())


def limited_rows(engine: Engine) -> dict[str, tuple[str | None, datetime]]:
    m = marketing_limited.c
    with engine.connect() as conn:
        rows = conn.execute(select(m.phone_e164, m.message_id, m.limited_at))
        return {p: (message, at) for p, message, at in rows}


# Marketing preferences --------------------------------------------------------------------------


def test_a_resume_after_a_stop_lifts_it_and_the_latest_wins_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    write_events(engine, [], preferences=[choice("stop", 1)], now=T0)
    assert marketing_stopped(engine, [PHONE], BUSINESS) == {PHONE}
    write_events(engine, [], preferences=[choice("resume", 2)], now=T0)
    assert marketing_stopped(engine, [PHONE], BUSINESS) == set()

    # The resume arrives before the older stop: the stop must not overwrite it.
    late = PHONE.replace("1", "2")
    number = MarketingPreference(BUSINESS, "resume", T0 + timedelta(minutes=9), late[1:])
    older = MarketingPreference(BUSINESS, "stop", T0 + timedelta(minutes=3), late[1:])
    write_events(engine, [], preferences=[number], now=T0)
    result = write_events(engine, [], preferences=[older], now=T0)
    assert result.marketing_preferences == 1
    assert marketing_stopped(engine, [PHONE, late], None) == set()


def test_the_same_choice_twice_and_a_tie_are_settled_alike_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    for _ in range(2):
        write_events(engine, [], preferences=[choice("stop", 1), choice("stop", 1)], now=T0)
    assert marketing_stopped(engine, [PHONE], BUSINESS) == {PHONE}
    # At the same instant `stop` wins, whichever came first.
    write_events(engine, [], preferences=[choice("resume", 1)], now=T0)
    assert marketing_stopped(engine, [PHONE], BUSINESS) == {PHONE}


def test_a_131050_failure_stops_marketing_for_that_business_only(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_sent(engine, "m-1")
    stop = failed("m-1", "131050", business_id=BUSINESS)
    result = write_events(engine, [stop], now=T0)
    assert result.marketing_preferences == 1
    assert marketing_stopped(engine, [PHONE, "+4915100000001"], BUSINESS) == {PHONE}
    assert marketing_stopped(engine, [PHONE], OTHER_BUSINESS) == set()
    assert marketing_stopped(engine, [PHONE], None) == {PHONE}
    # The redelivered status is a duplicate; a later resume lifts the stop, an older one not.
    assert write_events(engine, [stop], now=T0).marketing_preferences == 0
    write_events(engine, [], preferences=[choice("resume", 4)], now=T0)
    assert marketing_stopped(engine, [PHONE], BUSINESS) == {PHONE}
    write_events(engine, [], preferences=[choice("resume", 6)], now=T0)
    assert marketing_stopped(engine, [PHONE], None) == set()


def test_a_131050_of_a_message_the_ledger_does_not_know_stops_its_recipient_id(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    write_events(engine, [failed("m-unknown", "131050")], now=T0)  # v1: no business
    assert marketing_stopped(engine, ["+" + WA_ID], None) == {"+" + WA_ID}
    assert marketing_stopped(engine, ["+" + WA_ID], BUSINESS) == set()


def test_marketing_stopped_answers_long_lists(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    write_events(engine, [], preferences=[choice("stop", 1)], now=T0)
    many = [f"+49151{i:07d}" for i in range(20_010)] + [PHONE]  # beyond the IN lists
    assert marketing_stopped(engine, many, BUSINESS) == {PHONE}


# The per-user marketing limit (131049) ---------------------------------------------------------


def test_131049_limits_the_number_frees_the_ledger_row_and_defers_the_customer(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_sent(engine, "m-1")
    at = T0 + timedelta(minutes=5)
    for _ in range(2):  # the redelivery changes nothing
        write_events(engine, [failed("m-1", "131049")], now=T0)
    assert limited_rows(engine) == {PHONE: ("m-1", at)}
    assert ledger(engine) == ("send_failed", True, "131049", "m-1")
    assert customer(engine) == ("deferred", "marketing_limited", at + timedelta(hours=24))
    # Reconciling the campaign after a record stage keeps the deferral.
    reconcile_campaign(engine, CAMPAIGN)
    assert customer(engine) == ("deferred", "marketing_limited", at + timedelta(hours=24))
    assert marketing_limited_since(engine, [PHONE, "+4915100000001"], at) == {PHONE: at}
    assert marketing_limited_since(engine, [PHONE], at + timedelta(seconds=1)) == {}
    # A re-run that sends again writes its outcome over the deferral.
    write_recipients(engine, [customer_row("sent", not_before=None)])
    assert customer(engine) == ("sent", None, None)


def test_131049_before_the_record_stage_defers_the_customer_once_it_is_written(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    add_sent(engine, "m-1", outcome=None)
    write_events(engine, [failed("m-1", "131049")], now=T0)
    assert ledger(engine) == ("send_failed", True, "131049", "m-1")
    write_recipients(engine, [customer_row("sent", not_before=None)])
    reconcile_campaign(engine, CAMPAIGN)
    at = T0 + timedelta(minutes=5)
    assert customer(engine) == ("deferred", "marketing_limited", at + timedelta(hours=24))


def test_a_delivery_after_131049_undoes_it_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_sent(engine, "m-1")
    write_events(engine, [failed("m-1", "131049")], now=T0)
    write_events(engine, [StatusEvent("m-1", "delivered", WA_ID, T0)], now=T0)
    assert limited_rows(engine) == {}
    assert ledger(engine) == ("sent", False, None, "m-1")
    assert customer(engine) == ("delivered", None, None)

    with engine.begin() as conn:  # the other order, on a fresh row
        conn.execute(deliveries.delete())
        conn.execute(recipients.delete())
    add_sent(engine, "m-2")
    write_events(engine, [StatusEvent("m-2", "read", WA_ID, T0)], now=T0)
    write_events(engine, [failed("m-2", "131049")], now=T0)
    assert limited_rows(engine) == {}
    assert ledger(engine) == ("sent", False, None, "m-2")
    assert customer(engine) == ("read", None, None)


def test_131049_never_touches_a_row_that_holds_another_message(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    add_sent(engine, "m-new")
    write_events(engine, [failed("m-old", "131049")], now=T0)
    assert ledger(engine) == ("sent", False, None, "m-new")
    assert customer(engine) == ("sent", None, None)
