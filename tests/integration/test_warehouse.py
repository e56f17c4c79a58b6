"""Warehouse on real databases: migrations, native upserts, the ledger's transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, inspect, select, text

from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.migrate import alembic_config
from connectors.warehouse.records import fresh_checks, save_checks, write_recipients
from connectors.warehouse.schema import deliveries, recipients

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def test_migration_creates_every_table_and_the_funnel_view(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    names = set(inspect(engine).get_table_names())
    assert {
        "wa_campaign_runs",
        "wa_recipients",
        "wa_deliveries",
        "wa_contact_checks",
        "wa_status_events",
        "alembic_version",
    } <= names
    assert "wa_campaign_funnel" in inspect(engine).get_view_names()


def test_recipients_upsert_updates_in_place_and_the_view_counts(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    row = {
        "campaign_id": "c1",
        "customer_id": "7",
        "outcome": "sending",
        "reason": None,
        "phone_e164": "+4915112345678",
        "duplicate_of": None,
        "run_id": "r1",
        "updated_at": NOW,
    }
    write_recipients(engine, [row, {**row, "customer_id": "8"}])
    write_recipients(engine, [{**row, "outcome": "sent", "run_id": "r2"}])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(recipients)).scalar_one() == 2
        outcome, updated = conn.execute(
            select(recipients.c.outcome, recipients.c.updated_at).where(
                recipients.c.customer_id == "7"
            )
        ).one()
        funnel = dict(conn.execute(text("SELECT outcome, customers FROM wa_campaign_funnel")).all())
    assert outcome == "sent"
    assert updated == NOW and updated.tzinfo is not None
    assert funnel == {"sent": 1, "sending": 1}


def test_ledger_claims_then_records_and_in_doubt_rows_become_unknown(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    held = lease.acquire(engine, "c1", "r1#1", timedelta(minutes=5))
    claims = [
        ledger.Claim(f"+1631555100{i}", str(i), f"1631555100{i}", 1, NOW, NOW) for i in (1, 2)
    ]
    won = ledger.advance(engine, held, "r1", results=[], claims=claims)
    assert won == {"+16315551001", "+16315551002"}
    ledger.advance(
        engine,
        held,
        "r1",
        results=[ledger.Result("+16315551001", LedgerState.SENT, NOW, message_id="gBEG1")],
        claims=[],
    )
    lease.release(engine, held)
    assert ledger.mark_in_doubt(engine, lease.acquire(engine, "c1", "r2#1", LEASE)) == 1
    rows = ledger.load(engine, "c1").set_index("phone_e164")
    assert rows.at["+16315551001", "state"] == "sent"
    assert rows.at["+16315551001", "message_id"] == "gBEG1"
    assert rows.at["+16315551002", "state"] == "unknown"
    with engine.connect() as conn:
        customer = conn.execute(
            select(deliveries.c.customer_id).where(deliveries.c.phone_e164 == "+16315551001")
        ).scalar_one()
    assert customer == "1"  # the result write kept the claim's customer


def test_contact_check_cache_returns_only_checks_younger_than_the_cutoff(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    save_checks(
        engine,
        [
            {"phone_e164": "+1", "status": "valid", "wa_id": "1", "checked_at": NOW},
            {
                "phone_e164": "+2",
                "status": "invalid",
                "wa_id": None,
                "checked_at": NOW - timedelta(days=8),
            },
        ],
    )
    assert fresh_checks(engine, ["+1", "+2", "+3"], not_before=NOW - timedelta(days=7)) == {
        "+1": ("valid", "1")
    }


def test_a_contact_check_counts_only_for_the_sender_that_made_it(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    checked = {"status": "valid", "checked_at": NOW}
    save_checks(
        engine,
        [
            {"phone_e164": "+1", "wa_id": "1", "sender": "onprem:a", **checked},
            {"phone_e164": "+2", "wa_id": "2", "sender": "onprem:b", **checked},
            {"phone_e164": "+3", "wa_id": "3", "sender": None, **checked},  # before senders
        ],
    )
    cutoff = NOW - timedelta(days=7)
    assert set(fresh_checks(engine, ["+1", "+2", "+3"], not_before=cutoff, sender="onprem:a")) == {
        "+1",
        "+3",
    }
    assert len(fresh_checks(engine, ["+1", "+2", "+3"], not_before=cutoff)) == 3


def test_migrate_command_is_idempotent(sqlite_url: str) -> None:
    from connectors.warehouse.__main__ import main

    assert main(["migrate", "--url", sqlite_url]) == 0
    assert main(["migrate", "--url", sqlite_url]) == 0
    with create_engine(sqlite_url).connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_campaign_runs_once_at_a_time_and_other_campaigns_are_free(any_db_url: str) -> None:
    import pytest

    from connectors.warehouse.lock import CampaignBusyError, campaign_lock

    engine = warehouse(any_db_url)
    other = create_engine(any_db_url)  # a second "process": its own connections
    with campaign_lock(engine, "spring"):
        with (
            pytest.raises(CampaignBusyError, match='"spring" is being run'),
            campaign_lock(other, "spring"),
        ):
            pass
        with campaign_lock(other, "autumn"):
            pass
    with campaign_lock(other, "spring"):  # released at the end of the first holder's body
        pass
    other.dispose()


def test_a_rerun_writing_sent_never_moves_a_delivered_read_or_failed_customer_back(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    base = {
        "campaign_id": "c1",
        "phone_e164": "+4915112345678",
        "duplicate_of": None,
        "run_id": "r1",
        "updated_at": NOW,
    }
    settled = [("1", "delivered", None), ("2", "read", None), ("3", "failed", "470")]
    write_recipients(
        engine,
        [{**base, "customer_id": c, "outcome": o, "reason": r} for c, o, r in settled]
        + [{**base, "customer_id": "4", "outcome": "sending", "reason": None}],
    )
    rerun = [
        {**base, "customer_id": c, "outcome": "sent", "reason": "already_sent", "run_id": "r2"}
        for c in ("1", "2", "3", "4")
    ]
    write_recipients(engine, rerun)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                recipients.c.customer_id,
                recipients.c.outcome,
                recipients.c.reason,
                recipients.c.run_id,
            )
        ).all()
    got = {c: (o, r, run) for c, o, r, run in rows}
    assert got == {
        "1": ("delivered", None, "r2"),
        "2": ("read", None, "r2"),
        "3": ("failed", "470", "r2"),
        "4": ("sent", "already_sent", "r2"),
    }


def test_contact_check_cache_lookup_gives_the_same_answer_for_few_and_many_numbers(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    old = NOW - timedelta(days=8)
    rows = [
        {"phone_e164": f"+1631{i:07d}", "status": "valid", "wa_id": f"1631{i:07d}",
         "checked_at": old if i % 10 == 0 else NOW}
        for i in range(25_000)
    ]  # fmt: skip
    save_checks(engine, rows)
    wanted = [f"+1631{i:07d}" for i in range(0, 30_000, 2)]  # 15,000: IN lists (ANY on PostgreSQL)
    many = [f"+1631{i:07d}" for i in range(30_000)]  # 30,000: one scan (ANY on PostgreSQL)
    cutoff = NOW - timedelta(days=7)
    few_found = fresh_checks(engine, wanted, not_before=cutoff)
    many_found = fresh_checks(engine, many, not_before=cutoff)
    assert len(many_found) == 22_500 and "+16310000010" not in many_found
    assert few_found == {p: a for p, a in many_found.items() if p in set(wanted)}


def test_large_batches_take_the_bulk_path_with_the_same_rules(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    base = {"campaign_id": "c1", "duplicate_of": None, "reason": None, "updated_at": NOW}
    first = [
        {**base, "customer_id": str(i), "phone_e164": f"+1631{i:07d}", "run_id": "r1",
         "outcome": "delivered" if i % 3 == 0 else "sending"}
        for i in range(2_500)
    ]  # fmt: skip
    write_recipients(engine, first)
    write_recipients(
        engine, [{**row, "outcome": "sent", "reason": "x", "run_id": "r2"} for row in first]
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(recipients.c.customer_id, recipients.c.outcome, recipients.c.updated_at)
        ).all()
    outcomes = {c: o for c, o, _ in rows}
    assert len(outcomes) == 2_500
    assert outcomes["3"] == "delivered" and outcomes["4"] == "sent"
    assert {u for _, _, u in rows} == {NOW}
    naive = [{**row, "updated_at": NOW.replace(tzinfo=None)} for row in first]
    with pytest.raises(Exception, match="naive datetime"):
        write_recipients(engine, naive)
