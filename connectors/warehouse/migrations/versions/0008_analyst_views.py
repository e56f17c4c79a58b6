"""Views for analysts: `wa_delivery_timeline` (a campaign's messages sent, delivered, read and
failed per hour, from the ledger and the stored statuses) and `wa_outcome_reasons` (customers
per campaign, outcome and reason, each outcome under its kind: excluded, deferred, failed, ...).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The hour a UTC timestamp falls in, per dialect (PostgreSQL: timestamptz; the others store
# naive UTC and get naive UTC back).
HOUR = {
    "postgresql": "date_trunc('hour', {0}, 'UTC')",
    "mysql": "DATE_ADD(DATE({0}), INTERVAL HOUR({0}) HOUR)",
    "mariadb": "DATE_ADD(DATE({0}), INTERVAL HOUR({0}) HOUR)",
    "sqlite": "strftime('%Y-%m-%d %H:00:00', {0})",
}

_FAILED_AT = "COALESCE(last_attempt_at, first_attempt_at)"
_STATUS_AT = "COALESCE(e.event_at, e.received_at)"


def timeline_view(dialect: str) -> str:
    """`CREATE VIEW wa_delivery_timeline` in the dialect's words."""
    hour = HOUR[dialect].format
    return (
        "CREATE VIEW wa_delivery_timeline AS "
        "SELECT campaign_id, hour_utc, "
        "SUM(CASE WHEN event = 'sent' THEN 1 ELSE 0 END) AS messages_sent, "
        "SUM(CASE WHEN event = 'delivered' THEN 1 ELSE 0 END) AS messages_delivered, "
        "SUM(CASE WHEN event = 'read' THEN 1 ELSE 0 END) AS messages_read, "
        "SUM(CASE WHEN event = 'failed' THEN 1 ELSE 0 END) AS messages_failed, "
        "SUM(CASE WHEN event = 'send_failed' THEN 1 ELSE 0 END) AS sends_failed "
        "FROM ("
        f"SELECT campaign_id, {hour('sent_at')} AS hour_utc, 'sent' AS event "
        "FROM wa_deliveries WHERE sent_at IS NOT NULL "
        "UNION ALL "
        f"SELECT campaign_id, {hour(_FAILED_AT)} AS hour_utc, 'send_failed' AS event "
        f"FROM wa_deliveries WHERE state = 'send_failed' AND {_FAILED_AT} IS NOT NULL "
        "UNION ALL "
        f"SELECT d.campaign_id, {hour(_STATUS_AT)} AS hour_utc, e.status AS event "
        "FROM wa_status_events e JOIN wa_deliveries d ON d.message_id = e.message_id "
        "WHERE e.status IN ('delivered', 'read', 'failed')"
        ") events GROUP BY campaign_id, hour_utc"
    )


REASONS_VIEW = (
    "CREATE VIEW wa_outcome_reasons AS "
    "SELECT campaign_id, "
    "CASE WHEN SUBSTR(outcome, 1, 8) = 'excluded' THEN 'excluded' "
    "WHEN outcome = 'deferred' THEN 'deferred' "
    "WHEN outcome IN ('check_failed', 'send_failed', 'failed', 'unknown') THEN 'failed' "
    "WHEN outcome IN ('sent', 'delivered', 'read') THEN 'sent' "
    "ELSE outcome END AS kind, "
    "outcome, reason, COUNT(*) AS customers FROM wa_recipients "
    "GROUP BY campaign_id, outcome, reason"
)


def upgrade() -> None:
    op.execute(timeline_view(op.get_bind().dialect.name))
    op.execute(REASONS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW wa_outcome_reasons")
    op.execute("DROP VIEW wa_delivery_timeline")
