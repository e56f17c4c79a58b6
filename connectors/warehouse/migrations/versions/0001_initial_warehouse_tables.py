"""initial warehouse tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wa_campaign_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=128), nullable=False),
        sa.Column("template_name", sa.String(length=256), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("contacts_checked", sa.Integer(), nullable=False),
        sa.Column("contacts_from_cache", sa.Integer(), nullable=False),
        sa.Column("messages_sent", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("excluded_no_consent", sa.Integer(), nullable=False),
        sa.Column("excluded_invalid_number", sa.Integer(), nullable=False),
        sa.Column("excluded_duplicate", sa.Integer(), nullable=False),
        sa.Column("excluded_not_on_whatsapp", sa.Integer(), nullable=False),
        sa.Column("check_failed", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("send_failed", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("wa_campaign_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wa_campaign_runs_campaign_id"), ["campaign_id"], unique=False
        )

    op.create_table(
        "wa_contact_checks",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )
    op.create_table(
        "wa_deliveries",
        sa.Column("campaign_id", sa.String(length=128), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_title", sa.String(length=256), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_status", sa.String(length=32), nullable=True),
        sa.Column("delivery_error_code", sa.String(length=32), nullable=True),
        sa.Column("delivery_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "phone_e164"),
    )
    with op.batch_alter_table("wa_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_wa_deliveries_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "wa_recipients",
        sa.Column("campaign_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("duplicate_of", sa.String(length=128), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "customer_id"),
    )
    op.create_table(
        "wa_status_events",
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.String(length=20), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_title", sa.String(length=256), nullable=True),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "status"),
    )
    op.execute(
        "CREATE VIEW wa_campaign_funnel AS "
        "SELECT campaign_id, outcome, COUNT(*) AS customers FROM wa_recipients "
        "GROUP BY campaign_id, outcome"
    )


def downgrade() -> None:
    op.execute("DROP VIEW wa_campaign_funnel")
    op.drop_table("wa_status_events")
    op.drop_table("wa_recipients")
    with op.batch_alter_table("wa_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wa_deliveries_message_id"))

    op.drop_table("wa_deliveries")
    op.drop_table("wa_contact_checks")
    with op.batch_alter_table("wa_campaign_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wa_campaign_runs_campaign_id"))

    op.drop_table("wa_campaign_runs")
