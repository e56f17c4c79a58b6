"""Batched upserts in each dialect's native form (ON CONFLICT, ON DUPLICATE KEY)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

# Bound parameters per statement stay under SQLite's and drivers' limits.
_BATCH_ROWS = 2000

# Builds a column's new value from the incoming row (`excluded` / `inserted`) and the table's
# current one, e.g. to keep a value that must not move backwards.
Expression = Callable[[Any], ColumnElement[Any]]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    update: Sequence[str] | None = None,
    expressions: Mapping[str, Expression] | None = None,
) -> None:
    """Insert `rows`; where the key exists, update the `update` columns (default: all but key),
    each to the incoming value or to what its entry in `expressions` builds."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key.columns]
    columns = list(rows[0])
    to_update = list(update) if update is not None else [c for c in columns if c not in keys]
    built = dict(expressions or {})
    # MySQL assigns left to right and later expressions see earlier results: built ones first,
    # in the order given, so their conditions read the row as it was.
    ordered = [c for c in built if c in to_update] + [c for c in to_update if c not in built]

    def assignments(new: Any) -> list[tuple[str, Any]]:
        return [(c, built[c](new) if c in built else new[c]) for c in ordered]

    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(table)
        stmt = ins.on_conflict_do_update(index_elements=keys, set_=dict(assignments(ins.excluded)))
    elif dialect in ("mysql", "mariadb"):
        ins = mysql.insert(table)
        stmt = ins.on_duplicate_key_update(assignments(ins.inserted))
    else:
        raise NotImplementedError(f"upsert on dialect {dialect!r}: use PostgreSQL, MySQL or SQLite")
    for start in range(0, len(rows), _BATCH_ROWS):
        conn.execute(stmt, list(rows[start : start + _BATCH_ROWS]))
