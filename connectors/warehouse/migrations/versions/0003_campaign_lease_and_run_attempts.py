"""The campaign lease with its fencing token, run attempts, and NULL-id customers counted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _primary_key_name(table: str) -> str | None:
    """The key's name to drop it by (MySQL calls every key PRIMARY; SQLite names none)."""
    bind = op.get_bind()
    if bind.dialect.name == "mysql":
        return "PRIMARY"
    return sa.inspect(bind).get_pk_constraint(table).get("name")


_COUNTS = (
    "customers",
    "contacts_checked",
    "contacts_from_cache",
    "messages_sent",
    "excluded_no_consent",
    "excluded_invalid_number",
    "excluded_duplicate",
    "excluded_not_on_whatsapp",
    "check_failed",
    "planned",
    "sent",
    "send_failed",
    "unknown",
)


def _runs_without_key(*, at_0003: bool = False) -> sa.Table | None:
    """wa_campaign_runs as revision 0002 (or 0003) left it, minus its key: SQLite's batch copy
    starts from it (a reflected key could not be replaced there)."""
    if op.get_bind().dialect.name != "sqlite":
        return None
    added = (
        [
            sa.Column("attempt", sa.Integer(), nullable=False),
            sa.Column("excluded_invalid_customer_id", sa.Integer(), nullable=False),
        ]
        if at_0003
        else []
    )
    return sa.Table(
        "wa_campaign_runs",
        sa.MetaData(),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=128), nullable=False, index=True),
        sa.Column("template_name", sa.String(length=256), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS),
        *added,
    )


def upgrade() -> None:
    op.create_table(
        "wa_campaign_leases",
        sa.Column("campaign_id", sa.String(length=128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.BigInteger(), nullable=True))
    old_key = _primary_key_name("wa_campaign_runs")
    copy = _runs_without_key()
    with op.batch_alter_table("wa_campaign_runs", copy_from=copy) as batch_op:
        batch_op.add_column(
            sa.Column("attempt", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column(
                "excluded_invalid_customer_id", sa.Integer(), nullable=False, server_default="0"
            )
        )
        if old_key and copy is None:
            batch_op.drop_constraint(old_key, type_="primary")
        batch_op.create_primary_key("pk_wa_campaign_runs", ["run_id", "attempt"])


def downgrade() -> None:
    old_key = _primary_key_name("wa_campaign_runs")
    op.execute("DELETE FROM wa_campaign_runs WHERE attempt > 1")
    copy = _runs_without_key(at_0003=True)
    with op.batch_alter_table("wa_campaign_runs", copy_from=copy) as batch_op:
        if old_key and copy is None:
            batch_op.drop_constraint(old_key, type_="primary")
        batch_op.create_primary_key("wa_campaign_runs_pkey", ["run_id"])
        batch_op.drop_column("excluded_invalid_customer_id")
        batch_op.drop_column("attempt")
    with op.batch_alter_table("wa_deliveries") as batch_op:
        batch_op.drop_column("lease_token")
    op.drop_table("wa_campaign_leases")
