"""A count of the customers deferred because their sender stopped (several senders per
campaign: a number's spam limit, its quality RED or its credentials stop it alone).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wa_campaign_runs") as batch_op:
        batch_op.add_column(
            sa.Column("deferred_sender_stopped", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("wa_campaign_runs") as batch_op:
        batch_op.drop_column("deferred_sender_stopped")
