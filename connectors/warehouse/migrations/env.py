"""Alembic environment: runs on the connection handed in by `migrate.upgrade`, or on a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from connectors.warehouse.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn: object) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", hide_parameters=True)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
