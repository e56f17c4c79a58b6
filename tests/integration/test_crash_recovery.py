"""Crashes and re-runs never message anyone twice: kill -9, a dropped warehouse, concurrent runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Connection, create_engine, select, text

from connectors.demo import DemoCustomer, demo_customers, seed_demo_crm
from connectors.vocabulary import LedgerState, Outcome
from connectors.warehouse.schema import deliveries, recipients
from connectors.webhooks.server import RunningReceiver, start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    RunningCloudSandbox,
    start_cloud_sandbox,
)
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from flows.broadcast import broadcast
from tasks.campaign import Campaign
from tests.helpers import cloud_env, statuses_stored, wait_until

ROOT = Path(__file__).parents[2]
CONCURRENCY = 8


@pytest.fixture
def slow_sandbox() -> Iterator[RunningSandbox]:
    """A sandbox answering sends after 20 ms, so a campaign is caught mid-send."""
    config = SandboxConfig(latency_s=0.02, rate_limit_messages=None, rate_limit_other=None)
    with start_sandbox(config) as running:
        yield running


def _seed(
    tmp_path: Path, n: int, *, seed: int = 21, crm_url: str | None = None
) -> tuple[list[DemoCustomer], str, Path]:
    """The demo customers in a CRM, and the demo campaign as a params file for the crash tests."""
    crm_url = crm_url or f"sqlite:///{tmp_path}/crm.sqlite"
    customers = demo_customers(n, seed=seed)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    params = json.loads((ROOT / "deployments" / "demo-campaign.json").read_text())
    # A killed run holds its lease until it expires: short here, so the re-run need not wait.
    params.update(
        campaign_id="crash", rate_limit_per_s=400, concurrency=CONCURRENCY, lease_seconds=3
    )
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(params))
    return customers, crm_url, path


def _setup(
    tmp_path: Path,
    warehouse_url: str,
    sandbox: RunningSandbox,
    n: int,
    *,
    seed: int = 21,
    crm_url: str | None = None,
) -> tuple[list[DemoCustomer], dict[str, str], Path]:
    customers, crm_url, path = _seed(tmp_path, n, seed=seed, crm_url=crm_url)
    env = {
        "CRM_DATABASE_URL": crm_url,
        "WAREHOUSE_DATABASE_URL": warehouse_url,
        "WHATSAPP_API_URL": sandbox.url,
        "WHATSAPP_USERNAME": sandbox.config.username,
        "WHATSAPP_PASSWORD": sandbox.config.password,
    }
    return customers, env, path


def _prefect_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


def _kill_9_after(params: Path, env: dict[str, str], sent: Callable[[], int], count: int) -> None:
    """Run the campaign in a child process and kill -9 it once `sent()` reaches `count`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.broadcast", "--params", str(params)],
        cwd=ROOT,
        env={**os.environ, **env, **_prefect_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: sent() >= count, 120, f"{count} sends")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _in_background(campaign: Campaign) -> tuple[threading.Thread, list[BaseException]]:
    """Run the campaign in a thread, as another worker would; its error lands in the list."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            broadcast(campaign)
        except BaseException as exc:  # the caller asserts on it
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _outcomes(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(recipients.c.customer_id, recipients.c.outcome)).all()
    engine.dispose()
    return dict((c, o) for c, o in rows)


def _assert_nobody_twice_and_everyone_accounted(
    sandbox: RunningSandbox, customers: list[DemoCustomer], warehouse_url: str
) -> Counter[str]:
    received = Counter(sandbox.state.sent_to())
    assert received and max(received.values()) == 1, received.most_common(3)
    outcomes = _outcomes(warehouse_url)
    assert len(outcomes) == len(customers)
    counts = Counter(outcomes.values())
    should_send = {str(c.id) for c in customers if c.expected_outcome == "sent"}
    assert {c for c, o in outcomes.items() if o in ("sent", "unknown")} == should_send
    assert counts["unknown"] <= CONCURRENCY
    return counts


def test_kill_9_mid_send_then_rerun_sends_nobody_twice(
    prefect_api: None,
    slow_sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """A reviewer varies the CRM and the crash point with CRASH_TEST_CRM (sqlite, postgresql,
    mariadb), CRASH_TEST_CUSTOMERS, CRASH_TEST_SEED and CRASH_TEST_KILL_AFTER (sends)."""
    crm_kind = os.environ.get("CRASH_TEST_CRM", "sqlite")
    crm_url = (
        None
        if crm_kind == "sqlite"
        else str(
            request.getfixturevalue({"postgresql": "postgres_url"}.get(crm_kind, "mariadb_url"))
        )
    )
    kill_after = int(os.environ.get("CRASH_TEST_KILL_AFTER", "300"))
    warehouse_url = f"sqlite:///{tmp_path}/warehouse.sqlite"
    customers, env, params = _setup(
        tmp_path,
        warehouse_url,
        slow_sandbox,
        int(os.environ.get("CRASH_TEST_CUSTOMERS", "1500")),
        seed=int(os.environ.get("CRASH_TEST_SEED", "21")),
        crm_url=crm_url,
    )
    _kill_9_after(params, env, lambda: len(slow_sandbox.state.messages_sent()), kill_after)
    sent_before_kill = len(slow_sandbox.state.messages_sent())
    should_send = sum(c.expected_outcome == "sent" for c in customers)
    assert sent_before_kill < should_send, "the run finished before it could be killed"

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = broadcast(Campaign.model_validate_json(params.read_text()))

    counts = _assert_nobody_twice_and_everyone_accounted(slow_sandbox, customers, warehouse_url)
    assert report["funnel"]["unknown (in doubt after a crash)"] == counts["unknown"]
    assert report["in_doubt_from_earlier_runs"] == counts["unknown"]


@pytest.fixture
def slow_cloud(postgres_url: str) -> Iterator[tuple[RunningCloudSandbox, RunningReceiver]]:
    """A Cloud sandbox answering sends after 20 ms, pushing its statuses to the receiver."""
    config = CloudSandboxConfig(latency_s=0.02, throughput_per_s=None, pair_interval_s=0)
    settings = ReceiverSettings(
        warehouse_url=SecretStr(postgres_url), app_secret=SecretStr(config.app_secret)
    )
    with start_cloud_sandbox(config) as sandbox, start_receiver(settings) as receiver:
        sandbox.state.webhook_url = receiver.cloud_url
        yield sandbox, receiver


def test_kill_9_mid_send_on_cloud_then_rerun_settles_the_sends_in_doubt_by_their_webhooks(
    prefect_api: None,
    slow_cloud: tuple[RunningCloudSandbox, RunningReceiver],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:
    """Sends the sandbox took while the killed run never recorded them carry their ledger key
    (`biz_opaque_callback_data`) in their statuses: they settle by it, never resent nor unknown."""
    sandbox, _ = slow_cloud
    customers, crm_url, params = _seed(tmp_path, 600, seed=23)
    env = cloud_env(sandbox, crm_url, postgres_url)
    _kill_9_after(params, env, lambda: len(sandbox.state.messages_sent()), 150)
    statuses_stored(sandbox, postgres_url)
    d = deliveries.c
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        # A row the send loop settled has the answer's message_status; one its statuses settled
        # by callback key has none.
        by_callback = set(
            conn.execute(
                select(d.phone_e164).where(d.state == LedgerState.SENT, d.message_status.is_(None))
            ).scalars()
        )
        in_doubt = set(
            conn.execute(select(d.phone_e164).where(d.state == LedgerState.SENDING)).scalars()
        )
    received = Counter(m.to for m in sandbox.state.messages_sent())
    addressed = {
        str(c.expected_e164): str(c.id)
        for c in customers
        if c.expected_outcome in (Outcome.SENT, Outcome.EXCLUDED_NOT_ON_WHATSAPP)
    }
    assert len(received) < len(addressed), "the run finished before it could be killed"
    assert by_callback, "no send was left unrecorded by the kill: nothing to settle by webhook"
    assert {p.lstrip("+") for p in by_callback} <= set(received)
    assert not {p.lstrip("+") for p in in_doubt} & set(received)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    report = broadcast(Campaign.model_validate_json(params.read_text()))

    received = Counter(m.to for m in sandbox.state.messages_sent())
    assert max(received.values()) == 1, received.most_common(3)
    assert set(received) == {p.lstrip("+") for p in set(addressed) - in_doubt}
    outcomes = _outcomes(postgres_url)
    assert len(outcomes) == len(customers)
    settled = (Outcome.DELIVERED, Outcome.READ, Outcome.FAILED)
    assert {outcomes[addressed[p]] for p in by_callback} <= set(settled)
    unknown = {c for c, o in outcomes.items() if o == Outcome.UNKNOWN}
    assert unknown == {addressed[p] for p in in_doubt}
    assert len(unknown) <= CONCURRENCY
    accounted = (Outcome.SENT, *settled, Outcome.UNKNOWN)
    assert {c for c, o in outcomes.items() if o in accounted} == set(addressed.values())
    assert report["funnel"]["unknown (in doubt after a crash)"] == len(unknown)
    with engine.connect() as conn:
        states = Counter(conn.execute(select(d.state)).scalars())
    engine.dispose()
    assert states[LedgerState.SENDING] + states[LedgerState.UNKNOWN] == len(unknown)


def test_warehouse_connections_killed_mid_send_recover_or_fail_cleanly_then_rerun_completes(
    prefect_api: None,
    slow_sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:
    customers, env, params = _setup(tmp_path, postgres_url, slow_sandbox, 1500)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    campaign = Campaign.model_validate_json(params.read_text())
    database = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    killed = []

    def killer() -> None:
        wait_until(lambda: len(slow_sandbox.state.messages_sent()) >= 200, 120, "200 sends")
        with admin.connect() as conn:
            killed.extend(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).scalars()
            )

    thread = threading.Thread(target=killer)
    thread.start()
    with contextlib.suppress(Exception):  # failing cleanly is allowed; the re-run finishes it
        broadcast(campaign)
    thread.join()
    assert killed, "no warehouse connection was terminated"
    broadcast(campaign)

    _assert_nobody_twice_and_everyone_accounted(slow_sandbox, customers, postgres_url)
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        states = Counter(conn.execute(select(deliveries.c.state)).scalars())
    engine.dispose()
    admin.dispose()
    assert states["sending"] == 0


def test_a_second_run_of_the_same_campaign_refuses_while_the_first_sends(
    prefect_api: None,
    slow_sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors.warehouse.lock import CampaignBusyError

    warehouse_url = f"sqlite:///{tmp_path}/warehouse.sqlite"
    customers, env, params = _setup(tmp_path, warehouse_url, slow_sandbox, 1200)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    slow = {**json.loads(params.read_text()), "rate_limit_per_s": 100}  # ~8 s of sending
    campaign = Campaign.model_validate(slow)
    thread, first_error = _in_background(campaign)
    wait_until(lambda: len(slow_sandbox.state.messages_sent()) >= 50, 120, "50 sends")
    with pytest.raises(CampaignBusyError, match="nothing was checked or sent"):
        broadcast(campaign)
    thread.join(timeout=300)
    assert not first_error
    _assert_nobody_twice_and_everyone_accounted(slow_sandbox, customers, warehouse_url)
    assert Counter(_outcomes(warehouse_url).values())["unknown"] == 0


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_second_run_cannot_get_in_when_the_warehouse_drops_the_first_runs_sessions(
    kind: str,
    prefect_api: None,
    slow_sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    kill_sessions: Callable[[Connection], int],
) -> None:
    """Failover, idle_session_timeout, pg_terminate_backend, KILL: the first run's advisory lock
    dies with its session while the run goes on; its lease does not."""
    from connectors.warehouse.lock import CampaignBusyError

    warehouse_url = str(
        request.getfixturevalue(f"{'postgres' if kind == 'postgresql' else kind}_url")
    )
    customers, env, params = _setup(tmp_path, warehouse_url, slow_sandbox, 1200)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    campaign = Campaign.model_validate({**json.loads(params.read_text()), "rate_limit_per_s": 100})
    thread, first_error = _in_background(campaign)
    wait_until(lambda: len(slow_sandbox.state.messages_sent()) >= 100, 120, "100 sends")
    admin = create_engine(warehouse_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert kill_sessions(conn) >= 1
    admin.dispose()
    with pytest.raises(CampaignBusyError, match="nothing was checked or sent"):
        broadcast(campaign)
    sends_when_refused = len(slow_sandbox.state.messages_sent())
    thread.join(timeout=300)

    assert not first_error, first_error
    assert sends_when_refused < sum(c.expected_outcome == "sent" for c in customers)
    counts = _assert_nobody_twice_and_everyone_accounted(slow_sandbox, customers, warehouse_url)
    assert counts["unknown"] == 0
