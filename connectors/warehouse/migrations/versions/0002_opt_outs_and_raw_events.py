"""WhatsApp opt-outs (STOP replies) and the raw body of each status event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wa_opt_outs",
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("wa_id", sa.String(length=20), nullable=True),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_e164"),
    )
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.add_column(sa.Column("raw", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.drop_column("raw")
    op.drop_table("wa_opt_outs")
