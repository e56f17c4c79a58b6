"""Cloud API facts: the send's message_status, the recipient's business-scoped user id (BSUID)
and the delivered message's pricing on each ledger row; BSUID, callback key and pricing on each
status event; numbers a send showed undeliverable (131026) in `wa_undeliverable`. Also restores
`ix_wa_campaign_runs_campaign_id` where 0003's table copy lost it (SQLite).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _pricing() -> list[sa.Column[object]]:
    return [
        sa.Column("pricing_model", sa.String(length=16), nullable=True),
        sa.Column("pricing_category", sa.String(length=32), nullable=True),
        sa.Column("pricing_type", sa.String(length=32), nullable=True),
        sa.Column("billable", sa.Boolean(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.add_column(sa.Column("message_status", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("user_id", sa.String(length=128), nullable=True))
        for column in _pricing():
            batch_op.add_column(column)
        batch_op.create_index("ix_wa_deliveries_user_id", ["user_id"], unique=False)
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.add_column(sa.Column("recipient_user_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("callback", sa.String(length=512), nullable=True))
        for column in _pricing():
            batch_op.add_column(column)
        batch_op.create_index("ix_wa_status_events_callback", ["callback"], unique=False)
    runs = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("wa_campaign_runs")}
    if "ix_wa_campaign_runs_campaign_id" not in runs:  # 0001's index, as schema.py declares it
        op.create_index("ix_wa_campaign_runs_campaign_id", "wa_campaign_runs", ["campaign_id"])
    op.create_table(
        "wa_undeliverable",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )


def downgrade() -> None:
    op.drop_table("wa_undeliverable")
    names = ["pricing_model", "pricing_category", "pricing_type", "billable"]
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.drop_index("ix_wa_status_events_callback")
        for name in ["recipient_user_id", "callback", *names]:
            batch_op.drop_column(name)
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.drop_index("ix_wa_deliveries_user_id")
        for name in ["message_status", "user_id", *names]:
            batch_op.drop_column(name)
