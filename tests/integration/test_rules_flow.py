"""The rules through whole runs on the Cloud API (issue 16): a real Prefect API, the Cloud sandbox
and the receiver over HTTP, a SQLite CRM and a PostgreSQL warehouse.

The clock of a rule measured in hours is moved by ageing what the warehouse remembers (a send's
time, a 131049's time) by 25 hours, which is what a later run would see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, select, text

from connectors.warehouse.costs import campaign_costs
from connectors.warehouse.schema import marketing_opt_outs, recipients
from connectors.webhooks.server import start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    RunningCloudSandbox,
    start_cloud_sandbox,
)
from flows.broadcast import broadcast
from tasks.campaign import Campaign
from tests.helpers import cloud_env, statuses_stored

AUDIENCE = (
    "SELECT id AS customer_id, phone AS phone_raw, name AS param_first_name, "
    "optin AS opt_in_at FROM customers"
)


def _crm(path: Path, phones: list[str]) -> str:
    url = f"sqlite:///{path}/crm.sqlite"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER, phone TEXT, name TEXT, optin TEXT)"))
        conn.execute(
            text("INSERT INTO customers VALUES (:id, :phone, 'Ada', '2026-01-05T10:00:00')"),
            [{"id": n, "phone": p} for n, p in enumerate(phones, start=1)],
        )
    engine.dispose()
    return url


@pytest.fixture
def cloud_run(
    prefect_api: None, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Start a Cloud sandbox with the given config and point the run's env at it."""
    started: list[Any] = []

    def start(config: CloudSandboxConfig, crm_url: str) -> RunningCloudSandbox:
        receiver = ReceiverSettings(
            warehouse_url=SecretStr(postgres_url), app_secret=SecretStr(config.app_secret)
        )
        sandbox, rx = start_cloud_sandbox(config), start_receiver(receiver)
        started.extend([rx, sandbox])
        sandbox.state.webhook_url = rx.cloud_url
        for name, value in cloud_env(sandbox, crm_url, postgres_url).items():
            monkeypatch.setenv(name, value)
        return sandbox

    yield start
    for server in started:
        server.stop()


def _campaign(campaign_id: str, template: str, **values: Any) -> Campaign:
    params = {"name": template, "language": "en", "body_params": ["first_name"]}
    return Campaign.model_validate(
        {
            "campaign_id": campaign_id,
            "template": params,
            "audience": {"query": AUDIENCE},
            "default_region": "BR",
            "rate_limit_per_s": 500,
            "concurrency": 32,
        }
        | values
    )


def _outcomes(engine: Engine, campaign_id: str) -> dict[str, tuple[str, str | None]]:
    r = recipients.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.phone_e164, r.outcome, r.reason).where(r.campaign_id == campaign_id)
        ).all()
    return {phone: (outcome, reason) for phone, outcome, reason in rows}


def _age(engine: Engine, table: str, *columns: str) -> None:
    """Move what the (PostgreSQL) warehouse remembers 25 hours back: a later run's view of it."""
    moved = ", ".join(f"{c} = {c} - interval '25 hours'" for c in columns)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {moved}"))


def test_a_limit_of_250_sends_250_of_400_then_a_run_in_a_fresh_window_sends_the_150(
    cloud_run: Any, postgres_url: str, tmp_path: Path
) -> None:
    phones = [f"+55119{n:07d}{1 + n % 6}" for n in range(400)]  # last digits 1-6: delivered
    sandbox = cloud_run(
        CloudSandboxConfig(messaging_limit="TIER_250", throughput_per_s=None, pair_interval_s=0),
        _crm(tmp_path, phones),
    )
    engine = create_engine(postgres_url)

    dry = broadcast(_campaign("limit-250", "order_update", dry_run=True))
    assert dry["funnel"]["deferred: messaging limit (24 h)"] == 150
    assert dry["funnel"]["planned (dry run)"] == 250 and not sandbox.state.messages_sent()

    first = broadcast(_campaign("limit-250", "order_update"))

    assert first["funnel"]["sent in this run"] == 250
    assert first["funnel"]["deferred: messaging limit (24 h)"] == 150
    assert first["run_counts"]["deferred_messaging_limit"] == 150
    outcomes = _outcomes(engine, "limit-250")
    deferred = {p for p, (o, r) in outcomes.items() if (o, r) == ("deferred", "messaging_limit")}
    assert len(deferred) == 150
    with engine.connect() as conn:
        not_before = conn.execute(
            select(recipients.c.not_before).where(recipients.c.outcome == "deferred").distinct()
        ).scalar_one()
    assert isinstance(not_before, datetime) and not_before.tzinfo is not None

    again = broadcast(_campaign("limit-250", "order_update"))  # the same window: nobody new
    assert again["funnel"]["sent in this run"] == 0
    assert again["funnel"]["deferred: messaging limit (24 h)"] == 150

    _age(engine, "wa_deliveries", "sent_at", "last_attempt_at", "first_attempt_at")
    drained = broadcast(_campaign("limit-250", "order_update"))

    assert drained["funnel"]["sent in this run"] == 150
    assert drained["funnel"]["deferred: messaging limit (24 h)"] == 0
    received = Counter(m.to for m in sandbox.state.messages_sent())
    assert sorted(received) == sorted(p[1:] for p in phones)
    assert set(received.values()) == {1}
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT deferred_messaging_limit FROM wa_campaign_runs "
                "WHERE campaign_id = 'limit-250' AND NOT dry_run ORDER BY started_at"
            )
        ).scalars()
        assert list(runs) == [150, 150, 0]
    engine.dispose()


CARD = """market,category,usd,as_of
BR,marketing,0.1000,2026-01-01
CA,marketing,0.0500,2026-01-01
BR,utility,0.0100,2026-01-01
"""


def test_marketing_rules_across_campaigns_131049_131050_the_us_pause_and_utility_unaffected(
    cloud_run: Any, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "card.csv"
    card.write_text(CARD)
    monkeypatch.setenv("WA_RATE_CARD", str(card))
    limited, stopping, fine = "+5511987650009", "+5511987650018", "+5511987650021"
    us, canada = "+14155550123", "+14165550121"
    phones = [limited, stopping, fine, us, canada]
    sandbox = cloud_run(
        CloudSandboxConfig(throughput_per_s=None, pair_interval_s=0), _crm(tmp_path, phones)
    )
    engine = create_engine(postgres_url)

    dry = broadcast(_campaign("sale-1", "spring_sale", dry_run=True))
    # Three Brazilian numbers at 0.10 and one Canadian at 0.05; the US one is not sent.
    assert "| marketing | BR | 3 | 0.3000 | – | – |" in dry["costs"]
    assert "| marketing | CA | 1 | 0.0500 | – | – |" in dry["costs"]

    first = broadcast(_campaign("sale-1", "spring_sale"))
    statuses_stored(sandbox, postgres_url)
    billed = campaign_costs(engine, "sale-1")
    assert [
        (r.category, r.market, r.billable_messages, r.cost_usd) for r in billed.itertuples()
    ] == [("marketing", "BR", 1, Decimal("0.1")), ("marketing", "CA", 1, Decimal("0.05"))]

    assert first["funnel"]["excluded: marketing paused in the region"] == 1
    outcomes = _outcomes(engine, "sale-1")
    assert outcomes[us] == ("excluded_policy", "marketing_paused_in_region")
    assert outcomes[limited] == ("deferred", "marketing_limited")
    assert outcomes[stopping] == ("failed", "131050")
    assert outcomes[fine][0] in ("delivered", "read") and outcomes[canada][0] in (
        "delivered",
        "read",
    )
    with engine.connect() as conn:
        assert conn.execute(select(marketing_opt_outs.c.phone_e164)).scalars().all() == [stopping]

    # The same campaign an hour later: the 131049 number waits.
    soon = broadcast(_campaign("sale-1", "spring_sale"))
    assert soon["funnel"]["sent in this run"] == 0
    assert soon["funnel"]["deferred: Meta's per-user marketing limit"] == 1
    # Another marketing campaign: the stop holds, the limit still holds.
    broadcast(_campaign("sale-2", "spring_sale"))
    second = _outcomes(engine, "sale-2")
    assert second[stopping] == ("excluded_no_consent", "stopped_marketing")
    assert second[limited] == ("deferred", "marketing_limited")
    assert second[us] == ("excluded_policy", "marketing_paused_in_region")
    # A utility template is unaffected by all three.
    broadcast(_campaign("notice", "order_update"))
    notice = _outcomes(engine, "notice")
    assert {p for p, (o, _) in notice.items() if o in ("sent", "delivered", "read")} == set(phones)

    statuses_stored(sandbox, postgres_url)
    _age(engine, "wa_marketing_limited", "limited_at")
    retried = broadcast(_campaign("sale-1", "spring_sale"))  # a day later: sent again, once

    assert retried["funnel"]["sent in this run"] == 1
    sent = Counter((m.to, m.template) for m in sandbox.state.messages_sent())
    assert sent[(limited[1:], "spring_sale")] == 2  # sale-1, and a day later; sale-2 never
    assert sent[(stopping[1:], "spring_sale")] == 1
    assert sent[(us[1:], "spring_sale")] == 0
    assert all(sent[(p[1:], "order_update")] == 1 for p in phones)
    engine.dispose()
