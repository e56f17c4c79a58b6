"""The sender as a dimension: which sender (the v1 server, or the Cloud API phone number id) sent
each ledger row and made each contact check, and which phone number id a webhook status came for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(length=128), nullable=True))
    with op.batch_alter_table("wa_contact_checks") as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(length=128), nullable=True))
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.add_column(sa.Column("phone_number_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wa_status_events") as batch_op:
        batch_op.drop_column("phone_number_id")
    with op.batch_alter_table("wa_contact_checks") as batch_op:
        batch_op.drop_column("sender")
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.drop_column("sender")
