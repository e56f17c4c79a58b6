"""Engines for the warehouse, one per URL and process, with the schema migrated on first use."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, event

from connectors.warehouse.migrate import upgrade

_migrated: set[str] = set()
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@cache
def engine_for(url: str) -> Engine:
    """A pooled engine for `url`, shared by every task of this process."""
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def warehouse(url: str) -> Engine:
    """The engine for a warehouse URL, migrated to the newest revision once per process."""
    engine = engine_for(url)
    with _lock:
        if url not in _migrated:
            upgrade(engine)
            _migrated.add(url)
    return engine
