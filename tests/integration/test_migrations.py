"""Migrations: from empty, and from every earlier revision with data in it, losing nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from connectors.warehouse.migrate import alembic_config, upgrade

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
}
COUNTS = {
    "wa_campaign_runs": 1,
    "wa_recipients": 1,
    "wa_deliveries": 1,
    "wa_contact_checks": 1,
    "wa_status_events": 1,
}


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
        with engine.connect() as conn:
            for table, count in COUNTS.items():
                assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == count
    upgrade(engine, "head")
    names = set(inspect(engine).get_table_names())
    assert {"wa_opt_outs", *COUNTS} <= names
    with engine.connect() as conn:
        assert conn.execute(text("SELECT message_id FROM wa_deliveries")).scalar_one() == "gBEG1"
        funnel = conn.execute(text("SELECT outcome, customers FROM wa_campaign_funnel")).all()
    assert [tuple(r) for r in funnel] == [("sent", 1)]
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
