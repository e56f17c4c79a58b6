"""Batched upserts in each dialect's native form (ON CONFLICT, ON DUPLICATE KEY)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite

# Bound parameters per statement stay under SQLite's and drivers' limits.
_BATCH_ROWS = 2000


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: Sequence[str] | None = None,
) -> None:
    """Insert `rows`; where the key exists, update the `update` columns (default: all but key)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    columns = list(rows[0])
    to_update = list(update) if update is not None else [c for c in columns if c not in keys]
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(table)
        stmt = ins.on_conflict_do_update(
            index_elements=keys, set_={c: ins.excluded[c] for c in to_update}
        )
    elif dialect in ("mysql", "mariadb"):
        ins = mysql.insert(table)
        stmt = ins.on_duplicate_key_update({c: ins.inserted[c] for c in to_update})
    else:
        raise NotImplementedError(f"upsert on dialect {dialect!r}: use PostgreSQL, MySQL or SQLite")
    for start in range(0, len(rows), _BATCH_ROWS):
        conn.execute(stmt, list(rows[start : start + _BATCH_ROWS]))
