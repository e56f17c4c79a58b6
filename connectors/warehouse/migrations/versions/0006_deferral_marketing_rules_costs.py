"""What a run learns for the next: deferred customers (`not_before`, counts per reason, the
`excluded_policy` outcome), marketing opt-outs per business (131050, user_preferences), numbers
held by Meta's per-user marketing limit (131049), the rate card, each run's cost estimate, each
delivery's market, and the view `wa_campaign_costs`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_RUN_COUNTS = (
    "excluded_policy",
    "deferred",
    "deferred_marketing_limited",
    "deferred_messaging_limit",
    "deferred_outside_send_window",
)

FUNNEL_VIEW = (
    "CREATE VIEW wa_campaign_funnel AS "
    "SELECT campaign_id, outcome, COUNT(*) AS customers FROM wa_recipients "
    "GROUP BY campaign_id, outcome"
)
COSTS_VIEW = (
    "CREATE VIEW wa_campaign_costs AS "
    "SELECT d.campaign_id AS campaign_id, d.pricing_category AS category, d.market AS market, "
    "COUNT(*) AS billable_messages, SUM(COALESCE(r.usd, rest.usd)) AS cost_usd "
    "FROM wa_deliveries d "
    "LEFT JOIN wa_rate_card r ON r.market = d.market AND r.category = d.pricing_category "
    "LEFT JOIN wa_rate_card rest ON rest.market = '*' AND rest.category = d.pricing_category "
    "WHERE d.pricing_category IS NOT NULL "
    "AND (d.pricing_type = 'regular' OR (d.pricing_type IS NULL AND d.billable = TRUE)) "
    "GROUP BY d.campaign_id, d.pricing_category, d.market"
)


def upgrade() -> None:
    with op.batch_alter_table("wa_campaign_runs") as batch_op:
        for name in _RUN_COUNTS:
            batch_op.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default="0")
            )
    with op.batch_alter_table("wa_recipients") as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.add_column(sa.Column("market", sa.String(length=8), nullable=True))
    op.create_table(
        "wa_marketing_opt_outs",
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("preference", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("business_id", "phone_e164"),
    )
    op.create_table(
        "wa_marketing_limited",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("limited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )
    op.create_table(
        "wa_rate_card",
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("usd", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("as_of", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("market", "category"),
    )
    op.create_table(
        "wa_cost_estimates",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("campaign_id", sa.String(length=128), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("estimated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "attempt", "category", "market"),
    )
    op.create_index(
        "ix_wa_cost_estimates_campaign_id", "wa_cost_estimates", ["campaign_id"], unique=False
    )
    op.execute(COSTS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW wa_campaign_costs")
    op.drop_index("ix_wa_cost_estimates_campaign_id", table_name="wa_cost_estimates")
    op.drop_table("wa_cost_estimates")
    op.drop_table("wa_rate_card")
    op.drop_table("wa_marketing_limited")
    op.drop_table("wa_marketing_opt_outs")
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.drop_column("market")
    # SQLite copies the table to drop a column, which a view on it forbids.
    op.execute("DROP VIEW wa_campaign_funnel")
    with op.batch_alter_table("wa_recipients") as batch_op:
        batch_op.drop_column("not_before")
    op.execute(FUNNEL_VIEW)
    with op.batch_alter_table("wa_campaign_runs") as batch_op:
        for name in reversed(_RUN_COUNTS):
            batch_op.drop_column(name)
