"""The broadcast flow end to end: a real Prefect API, the sandbox over HTTP, real databases."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from connectors.demo import DemoCustomer, demo_customers, seed_demo_crm
from connectors.warehouse.schema import campaign_runs, deliveries, opt_outs, recipients
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from flows.broadcast import broadcast
from tasks.campaign import Campaign

DEMO_PARAMS = Path(__file__).parents[2] / "deployments" / "demo-campaign.json"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A sandbox allowing more than the campaign's rate, so no send meets a 429."""
    with start_sandbox(SandboxConfig(rate_limit_messages=(1000.0, 1000))) as running:
        yield running


def _campaign(campaign_id: str, **overrides: object) -> Campaign:
    values = json.loads(DEMO_PARAMS.read_text())
    values.update(campaign_id=campaign_id, rate_limit_per_s=500, **overrides)
    return Campaign.model_validate(values)


def _seeded(tmp_path: Path, count: int, *, seed: int) -> tuple[str, str, list[DemoCustomer]]:
    """A SQLite CRM seeded with demo customers beside an empty SQLite warehouse."""
    crm_url, warehouse_url = f"sqlite:///{tmp_path}/crm.sqlite", f"sqlite:///{tmp_path}/wh.sqlite"
    customers = demo_customers(count, seed=seed)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    return crm_url, warehouse_url, customers


def _point_at(
    monkeypatch: pytest.MonkeyPatch, crm_url: str, warehouse_url: str, sandbox: RunningSandbox
) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", crm_url)
    monkeypatch.setenv("WAREHOUSE_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("WHATSAPP_API_URL", sandbox.url)
    monkeypatch.setenv("WHATSAPP_USERNAME", sandbox.config.username)
    monkeypatch.setenv("WHATSAPP_PASSWORD", sandbox.config.password)


def _recipients(url: str, campaign_id: str) -> dict[str, dict[str, object]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(recipients).where(recipients.c.campaign_id == campaign_id))
        result = {row.customer_id: row._asdict() for row in rows}
    engine.dispose()
    return result


def _assert_every_customer_as_expected(
    got: dict[str, dict[str, object]], customers: list[DemoCustomer], *, rerun: bool = False
) -> None:
    assert len(got) == len(customers)
    wrong = []
    for c in customers:
        row = got[str(c.id)]
        reason = "already_sent" if rerun and c.expected_outcome == "sent" else c.expected_reason
        expected = (c.expected_outcome, reason, c.expected_duplicate_of)
        actual = (row["outcome"], row["reason"], row["duplicate_of"])
        if c.expected_outcome != "excluded_no_consent" and row["phone_e164"] != c.expected_e164:
            actual += (row["phone_e164"],)
            expected += (c.expected_e164,)
        if actual != expected:
            wrong.append((c.id, c.mobile, c.cc, expected, actual))
    assert not wrong, f"{len(wrong)} customers off, first: {wrong[:5]}"


@pytest.mark.parametrize(
    ("crm", "wh"),
    [
        ("sqlite_url", "sqlite_url"),
        ("postgres_url", "postgres_url"),
        ("mariadb_url", "mariadb_url"),
    ],
    ids=["sqlite", "postgresql", "mariadb"],
)
def test_demo_campaign_gives_every_customer_its_outcome_and_a_rerun_sends_nothing(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    crm: str,
    wh: str,
    tmp_path: Path,
) -> None:
    crm_url = str(request.getfixturevalue(crm))
    # Two fixtures of one kind give one database: the CRM gets its own SQLite file.
    crm_url = f"sqlite:///{tmp_path}/crm.sqlite" if crm == "sqlite_url" else crm_url
    warehouse_url = str(request.getfixturevalue(wh))
    customers = demo_customers(800, seed=11)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)

    report = broadcast(_campaign("it-demo"))

    _assert_every_customer_as_expected(_recipients(warehouse_url, "it-demo"), customers)
    to_send = [c for c in customers if c.expected_outcome == "sent"]
    sent = sandbox.state.messages_sent()
    assert sorted(m.to for m in sent) == sorted(str(c.expected_wa_id) for c in to_send)
    by_wa_id = {str(c.expected_wa_id): c for c in to_send}
    assert all(m.params == (str(by_wa_id[m.to].fname).strip(),) for m in sent)
    # Only numbers about to be messaged were checked, each once.
    checked = sandbox.state.contacts_checked()
    should_check = [
        c.expected_e164
        for c in customers
        if c.expected_outcome in ("sent", "excluded_not_on_whatsapp")
    ]
    assert sorted(checked) == sorted(should_check)
    assert report["funnel"]["sent in this run"] == len(to_send)

    again = broadcast(_campaign("it-demo"))

    assert len(sandbox.state.messages_sent()) == len(sent)
    assert sorted(sandbox.state.contacts_checked()) == sorted(should_check)  # the 7-day cache
    assert again["funnel"]["sent in this run"] == 0
    assert again["funnel"]["sent by an earlier run"] == len(to_send)
    _assert_every_customer_as_expected(_recipients(warehouse_url, "it-demo"), customers, rerun=True)
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        states = [r.state for r in conn.execute(select(deliveries.c.state))]
        runs = conn.execute(select(campaign_runs.c.status, campaign_runs.c.sent)).all()
    engine.dispose()
    assert states == ["sent"] * len(to_send)
    assert sorted(runs) == [("completed", len(to_send)), ("completed", len(to_send))]


def test_a_prefect_retry_keeps_the_first_attempts_record_and_sends_only_the_rest(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    crm_url, warehouse_url, customers = _seeded(tmp_path, 600, seed=5)
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)
    key = ("acme_ns", "order_update", "en")
    approved = sandbox.state.templates[key]

    def pull_the_template_then_restore_it() -> None:
        """Mid-send the template is withdrawn (attempt 1 stops), then approved again."""
        deadline = time.monotonic() + 60
        while len(sandbox.state.messages_sent()) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        del sandbox.state.templates[key]
        while not _failed_runs(warehouse_url) and time.monotonic() < deadline:
            time.sleep(0.01)
        sandbox.state.templates[key] = approved

    watcher = threading.Thread(target=pull_the_template_then_restore_it)
    watcher.start()
    retried = broadcast.with_options(retries=1, retry_delay_seconds=1)
    report = retried(_campaign("it-retry"))
    watcher.join()

    to_send = [c for c in customers if c.expected_outcome == "sent"]
    received = [m.to for m in sandbox.state.messages_sent()]
    assert sorted(received) == sorted(str(c.expected_wa_id) for c in to_send)
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        runs = conn.execute(
            select(
                campaign_runs.c.run_id,
                campaign_runs.c.attempt,
                campaign_runs.c.status,
                campaign_runs.c.messages_sent,
                campaign_runs.c.error,
            ).order_by(campaign_runs.c.attempt)
        ).all()
    engine.dispose()
    (first_id, one, failed, sent_first, error), (second_id, two, completed, sent_second, _) = runs
    assert (first_id, one, failed) == (second_id, 1, "failed") and (two, completed) == (
        2,
        "completed",
    )
    assert "CircuitOpenError" in str(error)
    assert sent_first >= 100 and sent_first + sent_second == len(to_send)
    assert report["attempt"] == 2
    assert report["funnel"]["sent in this run"] == sent_second
    assert report["funnel"]["sent by an earlier run"] == sent_first


def _failed_runs(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        stmt = select(func.count()).where(campaign_runs.c.status == "failed")
        found = int(conn.execute(stmt).scalar_one())
    engine.dispose()
    return found


def test_dry_run_plans_without_checking_or_sending(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    crm_url, warehouse_url, customers = _seeded(tmp_path, 300, seed=3)
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)

    report = broadcast(_campaign("it-dry", dry_run=True))

    # The preflight logs in (proving the credentials); nothing is checked and nothing sent.
    assert {r.endpoint for r in sandbox.state.requests} <= {"login", "health"}
    would_check = sum(c.expected_outcome in ("sent", "excluded_not_on_whatsapp") for c in customers)
    assert report["funnel"]["planned (dry run)"] == would_check
    outcomes = {r["outcome"] for r in _recipients(warehouse_url, "it-dry").values()}
    assert "sent" not in outcomes and "planned" in outcomes


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CRM_DATABASE_URL", "postgresql+psycopg://etl:hunter2@127.0.0.1:1/crm", "CRM unreachable"),
        (
            "WAREHOUSE_DATABASE_URL",
            "postgresql+psycopg://etl:hunter2@127.0.0.1:1/wh",
            "warehouse unreachable",
        ),
        ("WHATSAPP_API_URL", "http://127.0.0.1:1", "WhatsApp API unreachable"),
    ],
)
def test_an_unreachable_service_fails_the_run_at_once_naming_it(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    message: str,
) -> None:
    from connectors.preflight import UnreachableError

    crm_url, warehouse_url, _ = _seeded(tmp_path, 50, seed=3)
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)
    monkeypatch.setenv(variable, value)

    with pytest.raises(UnreachableError, match=message) as caught:
        broadcast(_campaign("it-unreachable"))

    assert "hunter2" not in str(caught.value)
    assert sandbox.state.requests_to("contacts") == sandbox.state.requests_to("messages") == []


def test_a_stop_reply_excludes_the_customer_from_the_next_campaign(
    prefect_api: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import asyncio
    import time

    from pydantic import SecretStr

    from connectors.webhooks.server import start_receiver
    from connectors.webhooks.settings import ReceiverSettings
    from connectors.whatsapp.onprem.sandbox.webhooks import pusher_for

    crm_url, warehouse_url, customers = _seeded(tmp_path, 200, seed=9)
    settings = ReceiverSettings(warehouse_url=SecretStr(warehouse_url), token=SecretStr("tok"))
    config = SandboxConfig(rate_limit_messages=None)
    with start_sandbox(config) as sandbox, start_receiver(settings) as receiver:
        sandbox.state.webhook_url = receiver.v1_url
        _point_at(monkeypatch, crm_url, warehouse_url, sandbox)
        broadcast(_campaign("it-first"))
        stopper = next(c for c in customers if c.expected_outcome == "sent")
        wa_id = str(stopper.expected_wa_id)
        asyncio.run(pusher_for(sandbox.state).push_inbound(receiver.v1_url, wa_id, " Stop! "))
        deadline = time.monotonic() + 10
        while not _opted_out(warehouse_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _opted_out(warehouse_url), "the STOP reply never reached wa_opt_outs"

        broadcast(_campaign("it-second"))

    second = _recipients(warehouse_url, "it-second")
    assert (second[str(stopper.id)]["outcome"], second[str(stopper.id)]["reason"]) == (
        "excluded_no_consent",
        "opted_out_via_whatsapp",
    )
    sent_second = [m.to for m in sandbox.state.messages_sent()]
    assert sent_second.count(wa_id) == 1  # the first campaign's message only
    others = [c for c in customers if c.expected_outcome == "sent" and c.id != stopper.id]
    assert all(second[str(c.id)]["outcome"] in ("sent", "delivered", "read") for c in others)


def _opted_out(url: str) -> bool:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(select(func.count()).select_from(opt_outs)).scalar_one() > 0
    engine.dispose()
    return found


def test_a_database_error_mid_send_reaches_logs_state_table_and_stderr_masked(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    postgres_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The ledger refuses German numbers (a CHECK constraint): PostgreSQL's error names the failing
    row, phone number included; the warehouse URL carries a password (trust auth ignores it)."""
    import re
    import subprocess
    import sys

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter
    from prefect.logging.handlers import APILogHandler
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from connectors.warehouse.connect import warehouse

    password = "hunter2-wh-secret"
    warehouse_url = make_url(postgres_url).set(password=password).render_as_string(False)
    with warehouse(warehouse_url).begin() as conn:
        conn.execute(
            text(
                "ALTER TABLE wa_deliveries ADD CONSTRAINT no_de CHECK (phone_e164 NOT LIKE '+49%')"
            )
        )
    crm_url = f"sqlite:///{tmp_path}/crm.sqlite"
    engine = create_engine(crm_url)
    seed_demo_crm(engine, demo_customers(300, seed=3))
    engine.dispose()
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)

    state = broadcast(_campaign("it-mask"), return_state=True)  # type: ignore[call-overload]

    assert state.is_failed()
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        run_id = state.state_details.flow_run_id
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}))
        final = client.read_flow_run(run_id).state
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        error = conn.execute(select(campaign_runs.c.error)).scalar_one()
    engine.dispose()
    params = tmp_path / "campaign.json"
    params.write_text(_campaign("it-mask-cli").model_dump_json())
    cli = subprocess.run(
        [sys.executable, "-m", "flows.broadcast", "--params", str(params)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 1
    texts = {
        "state": str(final.message if final else ""),
        "logs": "\n".join(log.message for log in logs),
        "wa_campaign_runs.error": str(error),
        "stderr": cli.stderr + capfd.readouterr().err,
    }
    assert "CheckViolation" in texts["wa_campaign_runs.error"]
    for where, found in texts.items():
        assert password not in found, where
        assert not re.search(r"\+?49\d{8,}", found), (where, re.findall(r"\+?49\d{8,}", found))


@pytest.mark.parametrize(
    ("variable", "wrong", "named"),
    [
        ("WHATSAPP_PASSWORD", "not-the-password", "WHATSAPP_PASSWORD"),
        ("WHATSAPP_API_KEY", "not-the-api-key", "WHATSAPP_API_KEY"),
    ],
)
def test_wrong_credentials_stop_the_run_before_the_audience_is_read(
    prefect_api: None,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    wrong: str,
    named: str,
) -> None:
    from connectors.whatsapp.errors import AuthenticationError

    crm_url, warehouse_url, _ = _seeded(tmp_path, 50, seed=3)
    _point_at(monkeypatch, crm_url, warehouse_url, sandbox)
    if variable == "WHATSAPP_API_KEY":
        monkeypatch.delenv("WHATSAPP_USERNAME")
        monkeypatch.delenv("WHATSAPP_PASSWORD")
    monkeypatch.setenv(variable, wrong)
    # An audience that would fail loudly if it were ever read.
    audience = {"query": "SELECT id AS customer_id, mobile AS phone_raw FROM no_such_table"}

    with pytest.raises(AuthenticationError, match=named) as caught:
        broadcast(_campaign("it-bad-credentials", audience=audience))

    assert wrong not in str(caught.value)
    assert {r.endpoint for r in sandbox.state.requests} <= {"login", "health"}
    assert (
        not create_engine(warehouse_url)
        .connect()
        .exec_driver_sql("SELECT name FROM sqlite_master WHERE name = 'wa_campaign_runs'")
        .all()
    )
