"""The receiver's warehouse side: `record_events` and re-applies over long-lived connections.

Each writer thread keeps its connection between batches instead of checking one out of the pool
per batch: the pool's liveness ping and reset-on-return would add three or four round trips to
each transaction, which is what bounds a busy receiver. A connection whose batch failed is given
back to the pool (which drops it if it broke), so the next batch starts on a sound one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from connectors.warehouse.events import (
    InboundMessage,
    RecordResult,
    StatusEvent,
    apply_stored_statuses,
    record_events,
)


class WarehouseStore:
    """Writes webhook events to `engine`; thread-safe, one connection per concurrent caller."""

    def __init__(self, engine: Engine, *, opt_out_keywords: Sequence[str]) -> None:
        self._engine = engine
        self._keywords = tuple(opt_out_keywords)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def record(
        self, statuses: Sequence[StatusEvent], inbound: Sequence[InboundMessage]
    ) -> RecordResult:
        """Store and apply one batch in one transaction (see `record_events`)."""
        with self._connection() as conn:
            return record_events(conn, statuses, inbound, opt_out_keywords=self._keywords)

    def reapply(self, message_ids: Sequence[str]) -> RecordResult:
        """Apply stored statuses of messages the ledger or record stage had not written yet."""
        with self._connection() as conn:
            return apply_stored_statuses(conn, message_ids)

    def close(self) -> None:
        """Give every kept connection back to the pool."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._engine.connect()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._idle.append(conn)
