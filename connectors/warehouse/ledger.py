"""The exactly-once send ledger: one `wa_deliveries` row per (campaign, number).

A row is committed as `sending` before its message is attempted and becomes `sent` or
`send_failed` after the API answers. A row still `sending` when a run starts belongs to a run that
died mid-call: it becomes `unknown` and is resent only when the operator asks for it.

Exactly once holds by the ledger's own writes: a claim is a conditional write (the row is absent,
or still in the state and at the attempt the run planned from) in a transaction that also renews
the campaign lease with the run's fencing token (`connectors.warehouse.lease`), and the claimed
rows carry that token. Two runs racing on one campaign can at worst split the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pandas as pd
from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Insert,
    Update,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from connectors.errors import StopRunError
from connectors.vocabulary import CLAIMABLE_STATES, LedgerState
from connectors.warehouse.lease import Lease, LeaseLostError, renew_in, utc_now
from connectors.warehouse.phones import rows_for_phones
from connectors.warehouse.schema import deliveries

LEDGER_COLUMNS = (
    "phone_e164",
    "state",
    "retryable",
    "message_id",
    "error_code",
    "attempts",
    "first_attempt_at",
)


@dataclass(frozen=True, slots=True)
class Claim:
    """A number about to be messaged: written as `sending` before the HTTP call.

    `from_state` is the ledger state the run planned from (None: the number had no row), and
    `attempts` the attempt this claim makes; the claim succeeds only if the row still is as
    planned (absent, or in `from_state` after `attempts - 1` attempts).
    """

    phone_e164: str
    customer_id: str
    wa_id: str
    attempts: int
    first_attempt_at: datetime
    at: datetime
    from_state: str | None = None
    sender: str | None = None  # the sender that will send it (its `sender_id`)
    market: str | None = None  # the number's ISO region, the rate card's market (None: none)


@dataclass(frozen=True, slots=True)
class Result:
    """What the API said about one claimed send."""

    phone_e164: str
    state: str
    at: datetime
    message_id: str | None = None
    wa_id: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    retryable: bool = False
    campaign_level: bool = False  # the failure would hit every send (template, credentials)
    stops_at_once: bool = False  # ... and so surely that the run stops at the first one
    message_status: str | None = None  # Cloud: accepted / held_for_quality_assessment / paused
    user_id: str | None = None  # Cloud: the recipient's business-scoped user id (BSUID)
    detail: str | None = None  # the error's whole message (code and what to do), not stored


def mark_in_doubt(engine: Engine, lease: Lease, *, now: datetime | None = None) -> int:
    """Turn rows left `sending` by a dead run into `unknown` (only the lease's holder may: a
    live run's rows are `sending` too); returns how many."""
    with engine.begin() as conn:
        renew_in(conn, lease, now or utc_now())
        result = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.campaign_id == lease.campaign_id,
                deliveries.c.state == LedgerState.SENDING,
            )
            .values(state=LedgerState.UNKNOWN)
        )
    return int(result.rowcount or 0)


def load(engine: Engine, campaign_id: str, phones: Sequence[str] | None = None) -> pd.DataFrame:
    """The campaign's ledger rows, one per number (only these `phones`' when given)."""
    stmt = select(*(deliveries.c[c] for c in LEDGER_COLUMNS)).where(
        deliveries.c.campaign_id == campaign_id
    )
    with engine.connect() as conn:
        if phones is None:
            rows = list(conn.execute(stmt).all())
        else:
            rows = rows_for_phones(conn, stmt, deliveries.c.phone_e164, phones)
    frame = pd.DataFrame.from_records(rows, columns=list(LEDGER_COLUMNS))
    return frame.astype({"phone_e164": "str", "state": "str"})


def has_rows(engine: Engine, campaign_id: str) -> bool:
    """Whether any number of the campaign has a ledger row (a first run has none)."""
    stmt = select(deliveries.c.phone_e164).where(deliveries.c.campaign_id == campaign_id).limit(1)
    with engine.connect() as conn:
        return conn.execute(stmt).first() is not None


# What a send loop calls each turn: record these results, claim these numbers; returns those won.
LedgerWrite = Callable[[Sequence[Result], Sequence[Claim]], frozenset[str]]


def sent_under(engine: Engine, lease: Lease) -> int:
    """Messages sent under this lease: what one run attempt sent, even when it failed later."""
    stmt = select(func.count()).where(
        deliveries.c.campaign_id == lease.campaign_id,
        deliveries.c.lease_token == lease.token,
        deliveries.c.state == LedgerState.SENT,
    )
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


class ClaimRefusedError(StopRunError):
    """The ledger refused claims: their rows changed since this run planned (another run)."""


# Transactions the database rolled back for another's sake: MySQL/MariaDB deadlock and lock wait
# timeout, PostgreSQL serialization failure and deadlock.
_MYSQL_CONFLICTS: Final = frozenset({1213, 1205})
_PG_CONFLICTS: Final = frozenset({"40001", "40P01"})


def write_conflict(exc: BaseException) -> bool:
    """Whether a warehouse error is a lost race between transactions: retry the transaction."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    return code in _MYSQL_CONFLICTS or getattr(orig, "sqlstate", None) in _PG_CONFLICTS


def _retried(exc: BaseException) -> bool:
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    return lost or write_conflict(exc)


# A dropped warehouse connection is retried on a fresh one, and a transaction the database rolled
# back in a conflict (two runs writing one campaign's rows) is run again: recording results is
# idempotent, and a claim that committed before the connection dropped is recognised as this
# run's own; a retry under a lease another run took raises LeaseLostError.
_RETRYING: Final = Retrying(
    retry=retry_if_exception(_retried),
    stop=stop_after_attempt(5),
    wait=wait_random_exponential(multiplier=0.2, max=5),
    reraise=True,
)


def advance(
    engine: Engine,
    lease: Lease,
    run_id: str,
    *,
    results: Sequence[Result],
    claims: Sequence[Claim],
    now: datetime | None = None,
) -> frozenset[str]:
    """Record finished sends and claim the next ones in one transaction fenced by the lease;
    returns the numbers claimed. A lost lease still records the results, then raises."""
    try:
        return _advance(engine, lease, run_id, results, claims, now)
    except Exception as exc:
        if not _retried(exc):
            raise
        failed: Exception | None = exc
    # Retried as _RETRYING says, the failure above counting as its first attempt.
    for attempt in _RETRYING.copy():
        with attempt:
            if failed is not None:
                first, failed = failed, None
                raise first
            return _advance(engine, lease, run_id, results, claims, now)
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def _advance(
    engine: Engine,
    lease: Lease,
    run_id: str,
    results: Sequence[Result],
    claims: Sequence[Claim],
    now: datetime | None,
) -> frozenset[str]:
    """One attempt of `advance`."""
    try:
        with engine.begin() as conn:
            renew_in(conn, lease, now or max((c.at for c in claims), default=utc_now()))
            _record(conn, lease, run_id, results)
            return _claim(conn, lease, run_id, claims)
    except LeaseLostError:
        if results:
            with engine.begin() as conn:
                _record(conn, lease, run_id, results)
        raise


def _record_statement() -> Update:
    """Each result onto its row, if this lease's claim made it (built once: a fixed statement
    skips SQLAlchemy's building and cache-key work on every turn)."""
    c = deliveries.c
    return (
        update(deliveries)
        .where(
            c.campaign_id == bindparam("b_campaign"),
            c.phone_e164 == bindparam("b_phone"),
            c.lease_token == bindparam("b_token"),
            # A send in doubt never undoes what its status webhook already settled (Cloud).
            or_(c.message_id.is_(None), bindparam("b_settles", type_=Boolean)),
        )
        .values(
            state=bindparam("b_state"),
            run_id=bindparam("b_run"),
            message_id=bindparam("b_message_id"),
            error_code=bindparam("b_error_code"),
            error_title=bindparam("b_error_title"),
            retryable=bindparam("b_retryable"),
            last_attempt_at=bindparam("b_at", type_=c.last_attempt_at.type),
            sent_at=bindparam("b_sent_at", type_=c.sent_at.type),
            wa_id=func.coalesce(bindparam("b_wa_id", type_=c.wa_id.type), c.wa_id),
            message_status=bindparam("b_message_status", type_=c.message_status.type),
            user_id=func.coalesce(bindparam("b_user_id", type_=c.user_id.type), c.user_id),
        )
    )


_RECORD: Final = _record_statement()


def _record(conn: Connection, lease: Lease, run_id: str, results: Sequence[Result]) -> None:
    """Each result onto the row this lease's claim made (a row since re-claimed is left alone)."""
    if not results:
        return
    conn.execute(
        _RECORD,
        [
            {
                "b_campaign": lease.campaign_id,
                "b_phone": r.phone_e164,
                "b_token": lease.token,
                "b_state": r.state,
                "b_run": run_id,
                "b_message_id": r.message_id,
                "b_error_code": r.error_code,
                "b_error_title": r.error_title,
                "b_retryable": r.retryable,
                "b_at": r.at,
                "b_sent_at": r.at if r.state == LedgerState.SENT else None,
                "b_wa_id": r.wa_id,
                "b_message_status": r.message_status,
                "b_user_id": r.user_id,
                "b_settles": r.state != LedgerState.UNKNOWN,
            }
            for r in results
        ],
    )


def _claim(conn: Connection, lease: Lease, run_id: str, claims: Sequence[Claim]) -> frozenset[str]:
    """Write the claims as `sending` where each row is still as planned; returns those won.

    Where the database says which rows a write touched (RETURNING), that answers; a claim it
    does not name (or every claim, without RETURNING) is looked up: a row with this lease's
    token, `sending` at the claimed attempt, is this run's own (e.g. written by an attempt whose
    commit reached the database though its answer did not). The lookup stays off the usual path
    on PostgreSQL, whose planner, with statistics from before the campaign, reads it as a scan
    of the campaign's rows.
    """
    if not claims:
        return frozenset()
    new = [
        {"campaign_id": lease.campaign_id, "phone_e164": c.phone_e164, **_claimed(lease, run_id, c)}
        for c in claims
        if c.from_state is None
    ]
    again = [c for c in claims if c.from_state is not None]
    won = _insert_new(conn, new) | _claim_again(conn, lease, run_id, again)
    expected = {c.phone_e164: c.attempts for c in claims if c.phone_e164 not in won}
    return won | _own_claims(conn, lease, expected) if expected else won


def _claimed(lease: Lease, run_id: str, claim: Claim) -> dict[str, Any]:
    """The columns a claim writes; a new row leaves every other column NULL."""
    return {
        "customer_id": claim.customer_id,
        "wa_id": claim.wa_id,
        "state": LedgerState.SENDING,
        "retryable": False,
        "attempts": claim.attempts,
        "run_id": run_id,
        "first_attempt_at": claim.first_attempt_at,
        "last_attempt_at": claim.at,
        "lease_token": lease.token,
        "sender": claim.sender,
        "market": claim.market,
    }


_INSERTS: dict[str, Insert] = {}


def _insert_statement(dialect: str) -> Insert:
    """INSERT of new claims that leaves a row another run wrote first as it is (built once per
    dialect); PostgreSQL and SQLite return the rows they inserted."""
    if dialect not in _INSERTS:
        if dialect == "postgresql":
            _INSERTS[dialect] = _postgres_insert()
        elif dialect == "sqlite":
            stmt = sqlite.insert(deliveries).on_conflict_do_nothing()
            _INSERTS[dialect] = stmt.returning(deliveries.c.phone_e164)
        elif dialect in ("mysql", "mariadb"):
            ins = mysql.insert(deliveries)
            _INSERTS[dialect] = ins.on_duplicate_key_update(phone_e164=deliveries.c.phone_e164)
        else:
            raise NotImplementedError(f"ledger claims on dialect {dialect!r}")
    return _INSERTS[dialect]


# A claim's columns that are the same for every claim of one transaction, and those per claim.
_SHARED_COLUMNS: Final = ("campaign_id", "state", "retryable", "run_id", "lease_token")
_PER_CLAIM_COLUMNS: Final = (
    "phone_e164",
    "customer_id",
    "wa_id",
    "attempts",
    "first_attempt_at",
    "last_attempt_at",
    "sender",
    "market",
)


def _postgres_insert() -> Insert:
    """The claims as one INSERT of a row per array element (`unnest`): one statement text for
    any number of claims, which psycopg parses once and the server prepares, where a multi-row
    VALUES list is a new text of hundreds of parameters for each count."""
    c = deliveries.c
    rows = select(
        *(bindparam(f"s_{name}", type_=c[name].type) for name in _SHARED_COLUMNS),
        *(
            func.unnest(bindparam(f"a_{name}", type_=postgresql.ARRAY(c[name].type)))
            for name in _PER_CLAIM_COLUMNS
        ),
    )
    stmt = postgresql.insert(deliveries).from_select([*_SHARED_COLUMNS, *_PER_CLAIM_COLUMNS], rows)
    return stmt.on_conflict_do_nothing().returning(c.phone_e164)


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> frozenset[str]:
    """INSERT the claims of numbers without a row; returns the numbers inserted where the
    database can say so."""
    if not rows:
        return frozenset()
    stmt = _insert_statement(conn.dialect.name)
    if conn.dialect.name == "postgresql":
        first = rows[0]
        arrays = {
            **{f"s_{name}": first[name] for name in _SHARED_COLUMNS},
            **{f"a_{name}": [row[name] for row in rows] for name in _PER_CLAIM_COLUMNS},
        }
        return frozenset(conn.execute(stmt, arrays).scalars())
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(stmt, rows)
        return frozenset()
    return frozenset(conn.execute(stmt, rows).scalars())


def _claim_again_statement() -> Update:
    """UPDATE to `sending` a row still in the state, and at the attempt, the run planned from,
    wiping what the last message left (built once)."""
    c = deliveries.c
    return (
        update(deliveries)
        .where(
            c.campaign_id == bindparam("b_campaign"),
            c.phone_e164 == bindparam("b_phone"),
            c.state == bindparam("b_from"),
            c.attempts == bindparam("b_before"),
            # Never a row that is done: sent, or failed for the recipient's own reason.
            or_(*(c.state == literal(state) for state in CLAIMABLE_STATES)),
            or_(c.state != literal(LedgerState.SEND_FAILED), c.retryable),
        )
        .values({name: bindparam(name, type_=c[name].type) for name in _CLAIMED_COLUMNS})
    )


def _claim_again(
    conn: Connection, lease: Lease, run_id: str, claims: list[Claim]
) -> frozenset[str]:
    """UPDATE to `sending` each row still in the state, and at the attempt, the run planned
    from; returns the numbers updated where the database can say so."""
    if not claims:
        return frozenset()
    params = [
        {
            **_claimed(lease, run_id, claim),
            # A new attempt is a new message: nothing of the last one's answer or statuses
            # (e.g. a 131049 `failed`) may rank against the new one's.
            **dict.fromkeys(_WIPED_COLUMNS),
            "b_campaign": lease.campaign_id,
            "b_phone": claim.phone_e164,
            "b_from": claim.from_state,
            "b_before": claim.attempts - 1,
        }
        for claim in claims
    ]
    if not conn.dialect.update_returning:
        conn.execute(_CLAIM_AGAIN, params)
        return frozenset()
    returning = _CLAIM_AGAIN_RETURNING
    return frozenset(phone for one in params for phone in conn.execute(returning, one).scalars())


def _own_claims(conn: Connection, lease: Lease, expected: dict[str, int]) -> frozenset[str]:
    """Of these numbers, those whose row this lease claimed at the expected attempt."""
    found = conn.execute(
        select(deliveries.c.phone_e164, deliveries.c.state, deliveries.c.attempts).where(
            deliveries.c.campaign_id == lease.campaign_id,
            deliveries.c.phone_e164.in_(list(expected)),
            deliveries.c.lease_token == lease.token,
        )
    ).all()
    return frozenset(
        p for p, state, tries in found if state == LedgerState.SENDING and tries == expected[p]
    )


_WIPED_COLUMNS: Final = (
    "message_id",
    "error_code",
    "error_title",
    "sent_at",
    "delivery_status",
    "delivery_error_code",
    "delivery_updated_at",
    "message_status",
    "pricing_model",
    "pricing_category",
    "pricing_type",
    "billable",
)

_CLAIMED_COLUMNS: Final = (
    "customer_id",
    "wa_id",
    "state",
    "retryable",
    "attempts",
    "run_id",
    "first_attempt_at",
    "last_attempt_at",
    "lease_token",
    "sender",
    "market",
    *_WIPED_COLUMNS,
)

_CLAIM_AGAIN: Final = _claim_again_statement()
_CLAIM_AGAIN_RETURNING: Final = _CLAIM_AGAIN.returning(deliveries.c.phone_e164)
