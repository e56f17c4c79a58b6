"""The template language each customer got (or would get): their own when the template is
approved in it, else the campaign's; NULL for customers excluded before a language was chosen.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Plain ALTER TABLE (SQLite >= 3.35 drops columns too): batch mode would copy the table, which
# SQLite refuses while the views of 0008 read it.
def upgrade() -> None:
    op.add_column("wa_recipients", sa.Column("template_language", sa.String(16)))


def downgrade() -> None:
    op.drop_column("wa_recipients", "template_language")
