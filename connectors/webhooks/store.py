"""The receiver's warehouse side: `record_events` and re-applies over long-lived connections.

`record_events` decides which inbound messages are opt-outs (`opt_outs_in`: a text from a
digits-only number, or from a BSUID, whose body amounts to a keyword, see `keywords`) and which
`user_preferences` entries stop or resume marketing messages (`marketing_choices`), and has the
warehouse store them with the batch's statuses in one transaction (a BSUID-only sender is mapped
to its number through the deliveries that recorded the BSUID; one never seen is dropped).

On SQLite its connections sync the log at every commit (`synchronous=FULL`): a batch is
answered 200 only once it would survive a power cut, as on PostgreSQL. On PostgreSQL they send
array parameters in binary.

Each writer thread keeps its connection between batches instead of checking one out of the pool
per batch: the pool's liveness ping and reset-on-return would add three or four round trips to
each transaction, which is what bounds a busy receiver. A connection whose batch failed is given
back to the pool (which drops it if it broke), so the next batch starts on a sound one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Connection, Engine

from connectors.warehouse.events import (
    MarketingPreference,
    OptOut,
    RecordResult,
    StatusEvent,
    apply_stored_statuses,
    write_events,
)
from connectors.warehouse.events.marketing import PREFERENCES
from connectors.webhooks.keywords import keyword_index, matched_keyword
from connectors.webhooks.payloads import InboundMessage, UserPreference

MARKETING_CATEGORY: Final = "marketing_messages"
"""The `user_preferences` category of marketing templates ("Stop promotions")."""


def record_events(
    bind: Engine | Connection,
    statuses: Sequence[StatusEvent],
    inbound: Sequence[InboundMessage],
    preferences: Sequence[UserPreference] = (),
    *,
    opt_out_keywords: Iterable[str],
    now: datetime | None = None,
) -> RecordResult:
    """Store statuses, opt-out replies and marketing preferences and apply the new statuses, in
    one transaction.

    `bind` may also be a Connection outside a transaction (a long-lived writer's own).
    """
    now = now or datetime.now(UTC)
    found = opt_outs_in(inbound, keyword_index(opt_out_keywords), now)
    chosen = marketing_choices(preferences, now)
    return write_events(bind, statuses, found, preferences=chosen, now=now)


def marketing_choices(
    preferences: Sequence[UserPreference], now: datetime
) -> list[MarketingPreference]:
    """The `user_preferences` entries that stop or resume marketing messages, from a digits-only
    number or a BSUID (timed `now` when the entry has no timestamp)."""
    found: list[MarketingPreference] = []
    for entry in preferences:
        wa_id = entry.wa_id if entry.wa_id is not None and entry.wa_id.isdigit() else None
        if entry.category != MARKETING_CATEGORY or entry.value not in PREFERENCES:
            continue
        if (wa_id or entry.user_id) is None:
            continue
        at = entry.event_at or now
        found.append(MarketingPreference(entry.business_id, entry.value, at, wa_id, entry.user_id))
    return found


def opt_outs_in(
    inbound: Sequence[InboundMessage], index: Mapping[str, str], now: datetime
) -> list[OptOut]:
    """The inbound texts that amount to a keyword of `index` (from `keyword_index`)."""
    found: list[OptOut] = []
    for message in inbound:
        wa_id = message.wa_id if message.wa_id is not None and message.wa_id.isdigit() else None
        if message.type != "text" or message.text is None or (wa_id or message.user_id) is None:
            continue
        keyword = matched_keyword(message.text, index)
        if keyword is not None:
            at = message.event_at or now
            found.append(OptOut(wa_id, keyword, message.message_id, at, user_id=message.user_id))
    return found


class WarehouseStore:
    """Writes webhook events to `engine`; thread-safe, one connection per concurrent caller."""

    def __init__(self, engine: Engine, *, opt_out_keywords: Sequence[str]) -> None:
        self._engine = engine
        self._keywords = tuple(opt_out_keywords)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def record(
        self,
        statuses: Sequence[StatusEvent],
        inbound: Sequence[InboundMessage],
        preferences: Sequence[UserPreference] = (),
    ) -> RecordResult:
        """Store and apply one batch in one transaction (see `record_events`)."""
        with self._connection() as conn:
            keywords = self._keywords
            return record_events(conn, statuses, inbound, preferences, opt_out_keywords=keywords)

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
            _tune(conn)
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._idle.append(conn)


def _tune(conn: Connection) -> None:
    """Make a new connection of the store durable (SQLite) and cheap to feed (PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        # WAL with synchronous=NORMAL (the warehouse's default) may lose the last commits to a
        # power cut, after they were answered 200: the provider would never resend them.
        conn.exec_driver_sql("PRAGMA synchronous=FULL")
        conn.commit()
    elif conn.dialect.name == "postgresql":
        # The batch's rows go as arrays (`UPDATE ... FROM unnest`): psycopg's text format escapes
        # every element with a regular expression, its binary format packs them (~40% of the
        # receiver's database CPU per event).
        driver = conn.connection.driver_connection
        assert driver is not None  # a connection just opened
        driver.adapters.register_dumper(list, ListBinaryDumper)
