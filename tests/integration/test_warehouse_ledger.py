"""Exactly once by the ledger's own writes: the campaign lease fences claims, claims are
conditional, and no lock or session is needed for either (three dialects)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, select

from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import CampaignBusyError, Heartbeat, LeaseLostError
from connectors.warehouse.lock import campaign_lock
from connectors.warehouse.schema import deliveries

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
TTL = timedelta(seconds=30)
PHONES = [f"+4915112345{i:03d}" for i in range(1, 6)]


def _claims(
    phones: list[str], attempt: int = 1, from_state: str | None = None
) -> list[ledger.Claim]:
    return [ledger.Claim(p, f"c{p[-3:]}", p[1:], attempt, NOW, NOW, from_state) for p in phones]


def _later(delta: timedelta) -> lease.Clock:
    """A clock running `delta` ahead: how a run sees a lease whose holder went silent."""
    return lambda: datetime.now(UTC) + delta


def _states(engine: Engine) -> dict[str, tuple[str, int, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                deliveries.c.phone_e164,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.lease_token,
            )
        ).all()
    return {p: (s, a, t) for p, s, a, t in rows}


def test_a_number_another_run_claimed_first_is_refused_by_the_ledger(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    first = lease.acquire(engine, "spring", "run-a#1", TTL)
    assert ledger.advance(engine, first, "run-a", results=[], claims=_claims(PHONES[:2]))
    # Run B takes the campaign over (A looked dead to it) and claims from the same empty plan.
    second = lease.acquire(engine, "spring", "run-b#1", TTL, clock=_later(2 * TTL))
    assert second.token == first.token + 1
    won = ledger.advance(engine, second, "run-b", results=[], claims=_claims(PHONES))
    assert won == set(PHONES[2:])
    states = _states(engine)
    assert {p: t for p, (_, _, t) in states.items()} == {
        **dict.fromkeys(PHONES[:2], first.token),
        **dict.fromkeys(PHONES[2:], second.token),
    }


def test_a_run_whose_lease_was_taken_over_records_its_results_but_claims_nothing(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    first = lease.acquire(engine, "spring", "run-a#1", TTL)
    ledger.advance(engine, first, "run-a", results=[], claims=_claims(PHONES[:1]))
    lease.acquire(engine, "spring", "run-b#1", TTL, clock=_later(2 * TTL))
    done = [ledger.Result(PHONES[0], LedgerState.SENT, NOW, message_id="wamid.1", wa_id="x")]

    with pytest.raises(LeaseLostError, match='lost the lease of campaign "spring"'):
        ledger.advance(engine, first, "run-a", results=done, claims=_claims(PHONES[1:]))

    assert _states(engine) == {PHONES[0]: ("sent", 1, first.token)}


def test_a_retry_is_claimed_only_from_the_state_and_attempt_it_was_planned_from(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    held = lease.acquire(engine, "spring", "run-a#1", TTL)
    ledger.advance(engine, held, "run-a", results=[], claims=_claims(PHONES[:2]))
    failed = [
        ledger.Result(p, LedgerState.SEND_FAILED, NOW, error_code="1014", retryable=True)
        for p in PHONES[:2]
    ]
    ledger.advance(engine, held, "run-a", results=failed, claims=[])

    stale = _claims(PHONES[:1], attempt=2, from_state="unknown")  # planned from another state
    fresh = _claims(PHONES[1:2], attempt=2, from_state="send_failed")
    assert ledger.advance(engine, held, "run-a", results=[], claims=stale + fresh) == {PHONES[1]}
    again = _claims(PHONES[1:2], attempt=2, from_state="send_failed")
    other = lease.acquire(engine, "spring", "run-b#1", TTL, clock=_later(2 * TTL))
    assert ledger.advance(engine, other, "run-b", results=[], claims=again) == frozenset()
    assert _states(engine)[PHONES[1]] == ("sending", 2, held.token)


def test_a_claim_repeated_after_a_dropped_connection_is_still_this_runs_own(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    held = lease.acquire(engine, "spring", "run-a#1", TTL)
    claims = _claims(PHONES)
    assert ledger.advance(engine, held, "run-a", results=[], claims=claims) == set(PHONES)
    # The commit reached the database but its answer did not: the retry sees its own rows.
    assert ledger.advance(engine, held, "run-a", results=[], claims=claims) == set(PHONES)


def test_a_live_holder_keeps_its_campaign_and_a_silent_one_is_taken_over(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    ttl = timedelta(seconds=3)
    live = lease.acquire(engine, "spring", "run-a#1", ttl)
    beat = Heartbeat(engine, live)
    beat.start()
    try:
        with pytest.raises(CampaignBusyError, match=r"run-a#1, lease until"):
            lease.acquire(engine, "spring", "run-b#1", ttl, poll_s=0.05)
    finally:
        beat.stop()
    # No renewal any more: from a clock past the lease's end it is free at once.
    taken = lease.acquire(engine, "spring", "run-b#1", ttl, clock=_later(2 * ttl))
    assert taken.token == live.token + 1
    beat.renew()
    with pytest.raises(LeaseLostError):
        beat.check()


def test_a_released_lease_is_free_for_the_next_run_at_once(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    with lease.held(engine, "spring", "run-a#1", TTL) as beat:
        assert beat.lease.token == 1
    assert lease.acquire(engine, "spring", "run-b#1", TTL, poll_s=0.01).token == 2


def test_of_runs_starting_together_one_takes_the_lease_and_the_others_refuse(
    any_db_url: str,
) -> None:
    engine = warehouse(any_db_url)
    outcomes: list[object] = []
    beats: list[Heartbeat] = []
    barrier = threading.Barrier(4)

    def take(name: str) -> None:
        barrier.wait()
        try:
            got = lease.acquire(engine, "race", name, timedelta(seconds=3), poll_s=0.05)
        except CampaignBusyError as exc:
            outcomes.append(exc)
            return
        outcomes.append(got)
        beats.append(Heartbeat(engine, got))  # the winner keeps renewing, as a run does
        beats[-1].start()

    threads = [threading.Thread(target=take, args=(f"run-{i}#1",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for beat in beats:
        beat.stop()
    held = [o for o in outcomes if isinstance(o, lease.Lease)]
    assert len(held) == 1 and len(outcomes) == 4


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_releasing_a_lock_whose_session_the_database_killed_does_not_fail_the_run(
    kind: str, request: pytest.FixtureRequest, kill_sessions: Callable[[Connection], int]
) -> None:
    url = str(request.getfixturevalue("postgres_url" if kind == "postgresql" else "mariadb_url"))
    engine = warehouse(url)
    with campaign_lock(engine, "spring"), engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        assert kill_sessions(conn) >= 1
    # Reaching here without an exception is the point; the lock is free again.
    with campaign_lock(engine, "spring"):
        pass


def test_a_send_in_doubt_never_undoes_what_its_status_webhook_settled(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    held = lease.acquire(engine, "spring", "run-a#1", TTL)
    ledger.advance(engine, held, "run-a", results=[], claims=_claims(PHONES[:2]))
    with engine.begin() as conn:  # the webhook, keyed by the send's callback, came first
        conn.execute(
            deliveries.update()
            .where(deliveries.c.phone_e164 == PHONES[0])
            .values(state="sent", message_id="wamid.first")
        )
    doubts = [ledger.Result(p, LedgerState.UNKNOWN, NOW) for p in PHONES[:2]]
    ledger.advance(engine, held, "run-a", results=doubts, claims=[])
    states = _states(engine)
    assert states[PHONES[0]][0] == "sent" and states[PHONES[1]][0] == "unknown"
