"""Reading an audience out of the CRM: a read-only, streamed query, in frames of chunk size."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import pandas as pd
from sqlalchemy import Connection, CursorResult, Engine, create_engine

from connectors.crm.audience import Audience, audience_statement
from connectors.crm.columns import check_columns
from connectors.crm.values import to_frame

# Type codes of single-precision float columns in the drivers' cursor descriptions.
_FLOAT4_TYPE_CODES: Final = {"postgresql": 700, "mysql": 4, "mariadb": 4}


def crm_engine(url: str) -> Engine:
    """An engine for the CRM; reads only."""
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def read_only(conn: Connection) -> Connection:
    """Make the connection's transaction read-only, so an audience can never write to the CRM."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return conn.execution_options(postgresql_readonly=True)
    if dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    return conn


def _tolerate_dates_out_of_range(conn: Connection) -> None:
    """Make psycopg return PostgreSQL dates it cannot hold (`infinity`, years beyond 9999 or
    before 1) as their text instead of failing the whole chunk."""
    driver: Any = conn.connection.driver_connection
    if conn.dialect.driver != "psycopg" or driver is None:
        return
    import psycopg
    from psycopg.adapt import Loader

    for name in ("timestamptz", "timestamp", "date"):
        info = driver.adapters.types[name]
        exact = driver.adapters.get_loader(info.oid, psycopg.pq.Format.TEXT)

        class Tolerant(Loader):
            """The driver's own loader, or the text where it cannot load a value."""

            inner = exact

            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._exact = self.inner(oid, context)

            def load(self, data: Any) -> Any:
                try:
                    return self._exact.load(data)
                except psycopg.DataError:
                    return bytes(data).decode("utf-8", "replace")

        driver.adapters.register_loader(name, Tolerant)


def _single_precision(result: CursorResult[Any], names: list[str]) -> frozenset[str]:
    """Result columns typed as single-precision floats (their digits beyond 2**24 are rounded)."""
    code = _FLOAT4_TYPE_CODES.get(result.dialect.name)
    description = result.cursor.description if code is not None and result.cursor else None
    if not description:
        return frozenset()
    return frozenset(
        name for name, column_ in zip(names, description, strict=True) if column_[1] == code
    )


def _discard(conn: Connection, result: CursorResult[Any]) -> None:
    """Close a streamed result left unread (PyMySQL reads it to its end first, or the connection
    could not roll back), or drop the connection where even that fails."""
    try:
        result.close()
    except Exception:
        conn.invalidate()


def read_audience(
    engine: Engine, audience: Audience, chunk_size: int, *, required_params: Sequence[str] = ()
) -> Iterator[pd.DataFrame]:
    """Stream the audience as frames of at most `chunk_size` rows with a server-side cursor;
    refuse it before any row is read when a column (or a `required_params` one) is missing."""
    stmt = audience_statement(audience)
    with engine.connect() as raw:
        conn = read_only(raw)
        _tolerate_dates_out_of_range(conn)
        result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(stmt)
        try:
            names = list(result.keys())
            check_columns(names, required_params)
            single = _single_precision(result, names)
            for part in result.partitions(chunk_size):
                yield to_frame([tuple(row) for row in part], names, single_precision=single)
        except BaseException:
            _discard(raw, result)
            raise
