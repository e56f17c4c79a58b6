"""The campaign lease: which run attempt may claim sends of a campaign, fenced by a token.

One `wa_campaign_leases` row per campaign. A run attempt takes it before it plans, renews it
while it runs (a heartbeat, and every claim transaction of the ledger), and gives it back when it
ends. Each take raises the row's `token`; every ledger claim renews the lease *with its token*
in the same transaction that marks rows `sending`, so once another attempt has taken the lease
the old holder's next claim fails, whatever happened to its locks or sessions. A holder that
stops renewing (killed, cut off from the warehouse) keeps the lease until `expires_at`; only
then may another run take it over.

Times are the holders' own UTC clocks (injectable); the lease's length must dwarf their skew.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Connection, Engine, Update, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors.errors import StopRunError
from connectors.warehouse.schema import campaign_leases

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


class CampaignBusyError(StopRunError):
    """Another run of the same campaign holds it: this run refuses to start."""


class LeaseLostError(StopRunError):
    """This run no longer holds its campaign's lease: it must not claim another send."""


def busy(campaign_id: str, detail: str = "") -> CampaignBusyError:
    """The error a run gets when another run of its campaign is under way."""
    return CampaignBusyError(
        f'campaign "{campaign_id}" is being run by another flow run right now{detail}; '
        "wait for it to finish (or fail) and run again: nothing was checked or sent"
    )


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease held: the campaign, this attempt's name for itself and its fencing token."""

    campaign_id: str
    holder: str
    token: int
    ttl: timedelta


def _take(
    conn: Connection, campaign_id: str, holder: str, ttl: timedelta, now: datetime
) -> Lease | tuple[str | None, datetime, datetime]:
    """Take the lease if it is free or expired; else (holder, renewed_at, expires_at)."""
    row = conn.execute(
        select(
            campaign_leases.c.token,
            campaign_leases.c.holder,
            campaign_leases.c.renewed_at,
            campaign_leases.c.expires_at,
        ).where(campaign_leases.c.campaign_id == campaign_id)
    ).first()
    values = {"holder": holder, "acquired_at": now, "renewed_at": now, "expires_at": now + ttl}
    if row is None:
        conn.execute(insert(campaign_leases).values(campaign_id=campaign_id, token=1, **values))
        return Lease(campaign_id, holder, 1, ttl)
    token, current, renewed_at, expires_at = row
    if current is not None and expires_at > now:
        return current, renewed_at, expires_at
    taken = conn.execute(
        update(campaign_leases)
        .where(campaign_leases.c.campaign_id == campaign_id, campaign_leases.c.token == token)
        .values(token=token + 1, **values)
    )
    if taken.rowcount != 1:  # another run took it between our read and our write
        return current, renewed_at, expires_at
    return Lease(campaign_id, holder, int(token) + 1, ttl)


def acquire(
    engine: Engine,
    campaign_id: str,
    holder: str,
    ttl: timedelta,
    *,
    clock: Clock = utc_now,
    poll_s: float = 0.25,
) -> Lease:
    """Take the campaign's lease, waiting out a holder that has stopped renewing it.

    A free or expired lease is taken at once. A live holder renews its lease several times per
    `ttl`: seeing it renew (or a lease that will not expire within 1.5 x `ttl`) refuses at
    once with `CampaignBusyError`. A silent one (killed) is waited for until its lease expires.
    """
    deadline = time.monotonic() + 1.5 * ttl.total_seconds()
    first_renewal: datetime | None = None
    while True:
        try:
            with engine.begin() as conn:
                got = _take(conn, campaign_id, holder, ttl, clock())
        except IntegrityError:  # a concurrent first take inserted the row: read it again
            continue
        if isinstance(got, Lease):
            return got
        current, renewed_at, expires_at = got
        if first_renewal is None:
            first_renewal = renewed_at
            log.warning(
                'campaign "%s" is leased to %s until %s UTC; waiting to see whether it is alive '
                "(a live run renews its lease, a dead one lets it expire)",
                campaign_id,
                current,
                f"{expires_at:%H:%M:%S}",
            )
        if renewed_at != first_renewal or time.monotonic() > deadline:
            raise busy(campaign_id, f" ({current}, lease until {expires_at:%H:%M:%S} UTC)")
        time.sleep(poll_s)


def _renewal() -> Update:
    """The UPDATE that extends a lease, built once: every ledger turn runs it."""
    c = campaign_leases.c
    return (
        update(campaign_leases)
        .where(c.campaign_id == bindparam("l_campaign"), c.token == bindparam("l_token"))
        .values(
            renewed_at=bindparam("l_now", type_=c.renewed_at.type),
            expires_at=bindparam("l_expires", type_=c.expires_at.type),
        )
    )


_RENEWAL: Final = _renewal()


def renew_in(conn: Connection, lease: Lease, now: datetime) -> None:
    """Extend the lease inside the caller's transaction, or raise `LeaseLostError` when another
    attempt has taken it: the fence every claim passes in the transaction that claims."""
    params = {
        "l_campaign": lease.campaign_id,
        "l_token": lease.token,
        "l_now": now,
        "l_expires": now + lease.ttl,
    }
    if conn.execute(_RENEWAL, params).rowcount != 1:
        raise LeaseLostError(
            f'run {lease.holder} lost the lease of campaign "{lease.campaign_id}" to another '
            "run; it stopped claiming sends (nothing is sent twice: the other run owns the rest)"
        )


def release(engine: Engine, lease: Lease, *, clock: Clock = utc_now) -> None:
    """Give the lease back so the next run starts at once; never raises (a lease that cannot be
    released simply expires)."""
    try:
        with engine.begin() as conn:
            now = clock()
            conn.execute(
                update(campaign_leases)
                .where(
                    campaign_leases.c.campaign_id == lease.campaign_id,
                    campaign_leases.c.token == lease.token,
                )
                .values(holder=None, renewed_at=now, expires_at=now)
            )
    except SQLAlchemyError as exc:
        log.warning(
            'lease of campaign "%s" not released (%s); it expires by itself within %s s',
            lease.campaign_id,
            type(exc).__name__,
            int(lease.ttl.total_seconds()),
        )


class Heartbeat:
    """Renews a lease from a thread every quarter of its length; remembers a loss for `check`."""

    def __init__(self, engine: Engine, lease: Lease, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.lease = lease
        self.clock = clock
        self.lost: LeaseLostError | None = None
        self._last_renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaign-lease", daemon=True)

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease is released separately)."""
        self._stop.set()
        self._thread.join()

    def renew(self) -> None:
        """Renew once now; a lost lease is remembered, a database error only logged."""
        try:
            with self.engine.begin() as conn:
                renew_in(conn, self.lease, self.clock())
            self._last_renewed = time.monotonic()
        except LeaseLostError as exc:
            self.lost = exc
        except SQLAlchemyError as exc:
            log.warning("campaign lease not renewed (%s); retrying", type(exc).__name__)
            if time.monotonic() - self._last_renewed > self.lease.ttl.total_seconds():
                self.lost = LeaseLostError(
                    f"run {self.lease.holder} could not renew the lease of campaign "
                    f'"{self.lease.campaign_id}" for {int(self.lease.ttl.total_seconds())} s '
                    "(warehouse unreachable); another run may own it now: stopped claiming sends"
                )

    def check(self) -> None:
        """Raise the loss, if the lease was lost."""
        if self.lost is not None:
            raise self.lost

    def _run(self) -> None:
        interval = self.lease.ttl.total_seconds() / 4
        while not self._stop.wait(interval):
            self.renew()


@contextmanager
def held(
    engine: Engine,
    campaign_id: str,
    holder: str,
    ttl: timedelta,
    *,
    clock: Clock = utc_now,
) -> Iterator[Heartbeat]:
    """Hold the campaign's lease for the body, renewed in the background, released after."""
    lease = acquire(engine, campaign_id, holder, ttl, clock=clock)
    heartbeat = Heartbeat(engine, lease, clock=clock)
    heartbeat.start()
    try:
        yield heartbeat
    finally:
        heartbeat.stop()
        release(engine, lease, clock=clock)
