"""Rows of a query for a list of numbers, asked the way each database answers fastest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import ARRAY, Connection, Row, Select, Text, any_, bindparam
from sqlalchemy.sql.elements import ColumnElement

IN_CHUNK: Final = 1000
"""Numbers per `IN (...)` list (SQLite, MariaDB)."""

ARRAY_CHUNK: Final = 50_000
"""Numbers per PostgreSQL array parameter."""


def rows_for_phones(
    conn: Connection,
    stmt: Select[Any],
    phone: ColumnElement[Any],
    wanted: Sequence[str],
    *,
    scan_above: int | None = None,
) -> list[Row[Any]]:
    """The rows of `stmt` whose `phone` is one of `wanted`: on PostgreSQL index lookups of an
    array; elsewhere `IN` lists, or one scan of `stmt` filtered here when more than
    `scan_above` numbers are asked (one scan beats hundreds of lists on a small table)."""
    found: list[Row[Any]] = []
    if not wanted:
        return found
    if conn.dialect.name == "postgresql":
        asked = stmt.where(phone == any_(bindparam("phones", type_=ARRAY(Text))))
        for start in range(0, len(wanted), ARRAY_CHUNK):
            found += conn.execute(asked, {"phones": list(wanted[start : start + ARRAY_CHUNK])})
        return found
    if scan_above is not None and len(wanted) > scan_above:
        wanted_set = set(wanted)
        return [row for row in conn.execute(stmt) if row._mapping[phone] in wanted_set]
    for start in range(0, len(wanted), IN_CHUNK):
        found += conn.execute(stmt.where(phone.in_(wanted[start : start + IN_CHUNK])))
    return found
