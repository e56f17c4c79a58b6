"""The warehouse: tables, Alembic migrations, batched upserts, the send ledger and run records."""
