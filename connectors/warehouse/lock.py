"""The polite first line against two runs of one campaign: a lock freed when its holder dies.

PostgreSQL uses a session advisory lock, MySQL/MariaDB `GET_LOCK`, SQLite an OS file lock beside
the database file. All three vanish with the process that held them, so a run killed with -9
never blocks the next one; but they also vanish with a session the database dropped while its
run goes on. Exactly-once therefore never rests on this lock: the campaign lease
(`connectors.warehouse.lease`) fences every claim in the ledger's own transactions.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from connectors.warehouse.lease import CampaignBusyError, busy

__all__ = ["CampaignBusyError", "campaign_lock"]

log = logging.getLogger(__name__)


def _key(campaign_id: str) -> int:
    digest = hashlib.blake2b(f"wa-campaign:{campaign_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def campaign_lock(engine: Engine, campaign_id: str) -> Iterator[None]:
    """Hold the campaign's lock for the body, or raise `CampaignBusyError` at once."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        path = Path(f"{database}.{_key(campaign_id) & 0xFFFFFFFF:08x}.lock")
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy(campaign_id) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        if dialect == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(campaign_id)})
            release = text("SELECT pg_advisory_unlock(:k)")
        elif dialect in ("mysql", "mariadb"):
            got = conn.execute(text("SELECT GET_LOCK(:k, 0)"), {"k": f"wa:{_key(campaign_id)}"})
            release = text("SELECT RELEASE_LOCK(:k)")
        else:
            raise NotImplementedError(f"campaign lock on dialect {dialect!r}")
        if not got.scalar():
            raise busy(campaign_id)
        conn.commit()
        try:
            yield
        finally:
            key = _key(campaign_id) if dialect == "postgresql" else f"wa:{_key(campaign_id)}"
            _release(conn, release, key)


def _release(conn: Connection, release: TextClause, key: int | str) -> None:
    """Release the lock; a session the database dropped already released it, and that must
    never turn a completed run into a failed one."""
    try:
        conn.execute(release, {"k": key})
        conn.commit()
    except SQLAlchemyError as exc:
        log.warning("campaign lock already gone with its session (%s)", type(exc).__name__)
