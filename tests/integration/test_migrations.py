"""Migrations: from empty, and from every earlier revision with data in it, losing nothing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from connectors.warehouse.migrate import alembic_config, upgrade
from connectors.warehouse.schema import metadata

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)

# Rows written at a revision, in tables that exist there (naive UTC literals work on every dialect).
ROWS_AT = {
    "0001": [
        "INSERT INTO wa_campaign_runs (run_id, campaign_id, template_name, dry_run, status, "
        "started_at, customers, contacts_checked, contacts_from_cache, messages_sent, "
        "excluded_no_consent, excluded_invalid_number, excluded_duplicate, "
        "excluded_not_on_whatsapp, check_failed, planned, sent, send_failed, unknown) VALUES "
        "('r1', 'c1', 'order_update', FALSE, 'completed', '2026-11-24 12:00:00', "
        "3, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0)",
        "INSERT INTO wa_recipients (campaign_id, customer_id, outcome, reason, phone_e164, "
        "duplicate_of, run_id, updated_at) VALUES ('c1', '1', 'sent', NULL, '+4915112345678', "
        "NULL, 'r1', '2026-11-24 12:00:00')",
        "INSERT INTO wa_deliveries (campaign_id, phone_e164, customer_id, wa_id, state, "
        "retryable, message_id, attempts, run_id) VALUES ('c1', '+4915112345678', '1', "
        "'4915112345678', 'sent', FALSE, 'gBEG1', 1, 'r1')",
        "INSERT INTO wa_contact_checks (phone_e164, wa_id, status, checked_at) VALUES "
        "('+4915112345678', '4915112345678', 'valid', '2026-11-24 12:00:00')",
        "INSERT INTO wa_status_events (message_id, status, recipient_id, received_at) VALUES "
        "('gBEG1', 'delivered', '4915112345678', '2026-11-24 12:00:05')",
    ],
    "0005": [
        "UPDATE wa_deliveries SET message_status = 'accepted', user_id = 'DE.1349120865530', "
        "pricing_model = 'PMP', pricing_category = 'marketing', pricing_type = 'regular', "
        "billable = TRUE",
        "INSERT INTO wa_status_events (message_id, status, recipient_id, received_at, "
        "recipient_user_id, callback, pricing_category, pricing_type, pricing_model, billable) "
        "VALUES ('gBEG1', 'sent', '4915112345678', '2026-11-24 12:00:04', 'DE.1349120865530', "
        "'wa1:c1:+4915112345678', 'marketing', 'regular', 'PMP', TRUE)",
        "INSERT INTO wa_undeliverable (phone_e164, wa_id, error_code, message_id, failed_at, "
        "received_at) VALUES ('+4915112345670', '4915112345670', '131026', 'gBEG0', "
        "'2026-11-24 12:00:01', '2026-11-24 12:00:02')",
    ],
}
COUNTS = {
    "wa_campaign_runs": 1,
    "wa_recipients": 1,
    "wa_deliveries": 1,
    "wa_contact_checks": 1,
    "wa_status_events": 1,
}
LATER_COUNTS = {"0005": {"wa_status_events": 2, "wa_undeliverable": 1}}
"""From a revision on (and after its rows went in): these counts instead."""


def _expected(revision: str) -> dict[str, int]:
    """What each table holds once every revision up to `revision` wrote its rows."""
    expected = dict(COUNTS)
    for since, counts in LATER_COUNTS.items():
        if since <= revision:
            expected |= counts
    return expected


def _counts(engine: Engine, tables: Iterable[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in tables}


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_revisions_form_one_line_with_data_fixtures_for_the_first() -> None:
    revisions = _revisions()
    assert revisions[0] == "0001" and len(set(revisions)) == len(revisions)
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [revisions[-1]]


def test_upgrade_from_every_revision_with_data_loses_nothing(any_db_url: str) -> None:
    engine = create_engine(any_db_url)
    revisions = _revisions()
    for i, revision in enumerate(revisions):
        upgrade(engine, revision)
        with engine.begin() as conn:
            for statement in ROWS_AT.get(revision, []):
                conn.execute(text(statement))
        if i == 0:
            continue
        expected = _expected(revision)
        assert _counts(engine, expected) == expected
    upgrade(engine, "head")
    names = set(inspect(engine).get_table_names())
    assert {"wa_opt_outs", "wa_undeliverable", *COUNTS} <= names
    with engine.connect() as conn:
        assert conn.execute(text("SELECT message_id FROM wa_deliveries")).scalar_one() == "gBEG1"
        funnel = conn.execute(text("SELECT outcome, customers FROM wa_campaign_funnel")).all()
    assert [tuple(r) for r in funnel] == [("sent", 1)]
    engine.dispose()


def test_every_downgrade_with_data_keeps_the_rows_and_upgrades_again(any_db_url: str) -> None:
    from alembic import command

    engine = create_engine(any_db_url)
    revisions = _revisions()
    for revision in revisions:
        upgrade(engine, revision)
        with engine.begin() as conn:
            for statement in ROWS_AT.get(revision, []):
                conn.execute(text(statement))
    kept = {t: n for t, n in _expected(revisions[-1]).items() if t in COUNTS}
    config = alembic_config()
    for target in reversed(revisions[:-1]):
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, target)
        assert _counts(engine, kept) == kept, target
    assert "wa_undeliverable" not in inspect(engine).get_table_names()
    upgrade(engine, "head")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT message_id, user_id, billable FROM wa_deliveries")).one()
    assert tuple(row) == ("gBEG1", None, None)  # the columns came back, empty
    assert _counts(engine, kept) == kept
    engine.dispose()


def test_the_migrated_schema_is_the_one_schema_py_declares(any_db_url: str) -> None:
    engine = create_engine(any_db_url)
    upgrade(engine, "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_downgrade_to_the_first_revision_and_back(any_db_url: str) -> None:
    from alembic import command

    engine = create_engine(any_db_url)
    upgrade(engine, "head")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "wa_opt_outs" not in inspect(engine).get_table_names()
    upgrade(engine, "head")
    assert "wa_opt_outs" in inspect(engine).get_table_names()
    engine.dispose()
