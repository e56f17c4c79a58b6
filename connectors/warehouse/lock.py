"""One run per campaign at a time: a lock that the database (or OS) frees when its holder dies.

PostgreSQL uses a session advisory lock, MySQL/MariaDB `GET_LOCK`, SQLite an OS file lock beside
the database file. All three vanish with the process that held them, so a run killed with -9
never blocks the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


class CampaignBusyError(RuntimeError):
    """Another run of the same campaign holds the lock: this run refuses to start."""


def _key(campaign_id: str) -> int:
    digest = hashlib.blake2b(f"wa-campaign:{campaign_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _busy(campaign_id: str) -> CampaignBusyError:
    return CampaignBusyError(
        f'campaign "{campaign_id}" is being run by another flow run right now; '
        "wait for it to finish (or fail) and run again: nothing was checked or sent"
    )


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
                raise _busy(campaign_id) from None
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
            raise _busy(campaign_id)
        conn.commit()
        try:
            yield
        finally:
            key = _key(campaign_id) if dialect == "postgresql" else f"wa:{_key(campaign_id)}"
            conn.execute(release, {"k": key})
            conn.commit()
