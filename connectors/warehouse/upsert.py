"""Batched upserts in each dialect's native form (ON CONFLICT, ON DUPLICATE KEY).

Large batches take each driver's fastest path: on PostgreSQL, COPY into a temporary table and one
INSERT ... SELECT ... ON CONFLICT; on SQLite, the driver's own executemany of plain tuples.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, case, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

# Bound parameters per statement stay under SQLite's and drivers' limits.
_BATCH_ROWS = 2000
# Bulk paths above this many rows only: a temporary table costs ~5 ms to create and drop, and the
# SQLite path compiles its statement per call (small batches, e.g. each ledger turn of the send
# loop, keep SQLAlchemy's cached statements).
_BULK_ABOVE = 1000

# Builds a column's new value from the incoming row (`excluded` / `inserted`) and the table's
# current one, e.g. to keep a value that must not move backwards.
Expression = Callable[[Any], ColumnElement[Any]]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
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

    def assignments(new: Any) -> dict[str, Any]:
        return {c: built[c](new) if c in built else new[c] for c in ordered}

    dialect = conn.dialect.name
    bulk = len(rows) > _BULK_ABOVE
    if dialect == "postgresql" and conn.dialect.driver == "psycopg" and bulk:
        _copy_upsert(conn, table, columns, rows, keys, assignments)
        return
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(table)
        stmt = ins.on_conflict_do_update(index_elements=keys, set_=assignments(ins.excluded))
    elif dialect in ("mysql", "mariadb"):
        ins = mysql.insert(table)
        stmt = ins.on_duplicate_key_update(list(assignments(ins.inserted).items()))
    else:
        raise NotImplementedError(f"upsert on dialect {dialect!r}: use PostgreSQL, MySQL or SQLite")
    if dialect == "sqlite" and bulk and _driver_executemany(conn, table, stmt, columns, rows):
        return
    for start in range(0, len(rows), _BATCH_ROWS):
        conn.execute(stmt, list(rows[start : start + _BATCH_ROWS]))


def _tuples(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """The rows as tuples in `columns` order, each value as its column type binds it (so e.g. a
    naive timestamp is refused here as in any other write)."""
    get = itemgetter(*columns)
    values = [get(row) for row in rows] if len(columns) > 1 else [(get(row),) for row in rows]
    processors: list[tuple[int, Callable[[Any], Any]]] = [
        (i, _repeat_aware(process))
        for i, name in enumerate(columns)
        if (process := table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
    ]
    if not processors:
        return values
    converted = []
    for row in values:
        out = list(row)
        for i, convert in processors:
            out[i] = convert(out[i])
        converted.append(tuple(out))
    return converted


def _repeat_aware(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, reusing its last answer for the same object: a batch's timestamps are mostly
    one value (a run's `now`), and converting it per row would dominate a large upsert."""
    last: list[Any] = [object(), None]

    def cached(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return cached


def _driver_executemany(
    conn: Connection,
    table: Table,
    stmt: Insert,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> bool:
    """One statement, compiled once, run by the DB-API's executemany over tuples (SQLAlchemy's
    per-row parameter handling is most of the cost of a large SQLite upsert); False, having done
    nothing, when the statement binds more than the rows hold (e.g. a column default)."""
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(columns))
    order = list(compiled.positiontup or ())
    if sorted(order) != sorted(columns):
        return False
    conn.exec_driver_sql(str(compiled), _tuples(conn, table, rows, order))
    return True


def _copy_upsert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    assignments: Callable[[Any], dict[str, Any]],
) -> None:
    """COPY the rows into a temporary table, then one INSERT ... SELECT ... ON CONFLICT."""
    staging = Table(
        f"_upsert_{uuid.uuid4().hex[:12]}",
        MetaData(),
        *(Column(name, table.c[name].type) for name in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    staging.create(conn)
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f'COPY "{staging.name}" ({names}) FROM STDIN') as copy:
        for row in _tuples(conn, table, rows, columns):
            copy.write_row(row)
    ins = postgresql.insert(table).from_select(list(columns), select(*staging.c))
    conn.execute(ins.on_conflict_do_update(index_elements=keys, set_=assignments(ins.excluded)))
    staging.drop(conn)


Replaces = Callable[[Any, Any], ColumnElement[bool]]
"""(incoming row, current row) -> whether the incoming one replaces the current one."""


def upsert_when(
    conn: Connection, table: Table, key: Sequence[str], changing: Sequence[str], replaces: Replaces
) -> Insert:
    """An INSERT that, on an existing key, overwrites `changing` only where `replaces` holds
    (e.g. a later event than the one kept); run it with executemany rows, one per key. MySQL
    assigns left to right: put the columns `replaces` reads last in `changing`."""
    current = table.c
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        ins = module.insert(table)
        return ins.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=list(key),
            set_={c: ins.excluded[c] for c in changing},
            where=replaces(ins.excluded, current),
        )
    if dialect in ("mysql", "mariadb"):
        ins = mysql.insert(table)
        when = replaces(ins.inserted, current)
        return ins.on_duplicate_key_update(
            [(c, case((when, ins.inserted[c]), else_=current[c])) for c in changing]
        )
    raise NotImplementedError(f"upserts of {table.name} on dialect {dialect!r}")
