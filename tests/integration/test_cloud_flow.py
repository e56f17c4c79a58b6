"""The broadcast flow on the Cloud API end to end (issue 15): a real Prefect API, the Cloud sandbox
and the project's webhook receiver over HTTP, a SQLite CRM and a PostgreSQL warehouse.

Cloud has no contact check: numbers the sandbox cannot reach (ending in 0) are sent, then fail by
signed status webhook with 131026; the receiver keeps them in `wa_undeliverable` and the next
campaign leaves them out as `excluded_not_on_whatsapp` / `undeliverable`.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, select

from connectors.demo import DemoCustomer, demo_customers, seed_demo_crm
from connectors.vocabulary import Outcome, Reason
from connectors.warehouse.schema import campaign_runs, deliveries, recipients, undeliverable
from connectors.webhooks.server import RunningReceiver, start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    RunningCloudSandbox,
    bsuid_of,
    start_cloud_sandbox,
)
from connectors.whatsapp.cloud.sandbox.config import DEFAULT_DISPLAY_NUMBER, DEFAULT_PHONE_NUMBER_ID
from flows.broadcast import SendersStoppedError, broadcast
from tasks.campaign import Campaign
from tasks.send.senders import assign_senders
from tests.helpers import cloud_env, statuses_stored

DEMO_PARAMS = Path(__file__).parents[2] / "deployments" / "demo-campaign.json"
SECOND_NUMBER = "106540352242923"
CONFIG = CloudSandboxConfig(
    throughput_per_s=None,
    pair_interval_s=0,
    phone_numbers={DEFAULT_PHONE_NUMBER_ID: DEFAULT_DISPLAY_NUMBER, SECOND_NUMBER: "15550783882"},
)
"""Two numbers of one account: the campaign sends through both."""


@pytest.fixture
def cloud(
    prefect_api: None,
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RunningCloudSandbox, RunningReceiver, list[DemoCustomer], str]]:
    """A seeded CRM, the Cloud sandbox pushing to the receiver, the env pointing at both."""
    crm_url = f"sqlite:///{tmp_path}/crm.sqlite"
    customers = demo_customers(250, seed=15)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    settings = ReceiverSettings(
        warehouse_url=SecretStr(postgres_url),
        token=SecretStr("receiver-token"),
        app_secret=SecretStr(CONFIG.app_secret),
    )
    with start_cloud_sandbox(CONFIG) as sandbox, start_receiver(settings) as receiver:
        sandbox.state.webhook_url = receiver.cloud_url
        for name, value in cloud_env(sandbox, crm_url, postgres_url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", ",".join(CONFIG.phone_numbers))
        yield sandbox, receiver, customers, postgres_url


def _campaign(campaign_id: str) -> Campaign:
    values = json.loads(DEMO_PARAMS.read_text())
    values.update(campaign_id=campaign_id, rate_limit_per_s=500)
    return Campaign.model_validate(values)


def _rows(url: str, table: Any, **where: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        query = select(table).where(*(table.c[k] == v for k, v in where.items()))
        rows = [row._asdict() for row in conn.execute(query)]
    engine.dispose()
    return rows


def test_a_cloud_campaign_sends_once_learns_131026_and_the_next_leaves_those_numbers_out(
    cloud: tuple[RunningCloudSandbox, RunningReceiver, list[DemoCustomer], str],
) -> None:
    sandbox, _, customers, url = cloud
    reachable = [c for c in customers if c.expected_outcome == Outcome.SENT]
    unreachable = [c for c in customers if c.expected_outcome == Outcome.EXCLUDED_NOT_ON_WHATSAPP]
    assert reachable and unreachable

    report = broadcast(_campaign("it-cloud-1"))
    statuses_stored(sandbox, url)

    # Every number meant to be messaged got exactly one message, the unreachable ones too: Cloud
    # has no check, so they are learnt from their failed statuses.
    addressed = [*reachable, *unreachable]
    sent_to = Counter(sandbox.state.sent_to())
    assert set(sent_to.values()) == {1}
    assert sorted(sent_to) == sorted(str(c.expected_e164).lstrip("+") for c in addressed)
    assert report["funnel"]["sent in this run"] == len(addressed)
    assert not sandbox.state.requests_to("contacts")

    first = {r["customer_id"]: r for r in _rows(url, recipients, campaign_id="it-cloud-1")}
    assert len(first) == len(customers)
    wrong = [
        (c.id, first[str(c.id)]["outcome"], first[str(c.id)]["reason"])
        for c in unreachable
        if (first[str(c.id)]["outcome"], first[str(c.id)]["reason"]) != (Outcome.FAILED, "131026")
    ]
    assert not wrong, wrong[:5]
    assert {first[str(c.id)]["outcome"] for c in reachable} <= {Outcome.DELIVERED, Outcome.READ}

    suppressed = {r["phone_e164"]: r for r in _rows(url, undeliverable)}
    assert sorted(suppressed) == sorted(str(c.expected_e164) for c in unreachable)
    assert {r["error_code"] for r in suppressed.values()} == {"131026"}

    # What each delivered message cost and whom it reached, from the send and its statuses.
    by_phone = {r["phone_e164"]: r for r in _rows(url, deliveries, campaign_id="it-cloud-1")}
    senders = [f"cloud:{number}" for number in CONFIG.phone_numbers]
    owner = assign_senders(pd.Series(sorted(by_phone)), senders)
    assert dict(zip(sorted(by_phone), owner, strict=True)) == {
        p: r["sender"] for p, r in by_phone.items()
    }
    assert set(owner) == set(senders)  # both numbers sent their share
    for c in reachable:
        row = by_phone[str(c.expected_e164)]
        assert row["message_status"] == "accepted"
        assert row["user_id"] == bsuid_of(str(c.expected_e164), business=CONFIG.waba_id)
        assert (row["pricing_model"], row["pricing_category"], row["billable"]) == (
            "PMP",
            "utility",
            True,
        )
    for c in unreachable:
        row = by_phone[str(c.expected_e164)]
        assert (row["delivery_status"], row["delivery_error_code"]) == ("failed", "131026")
        assert row["billable"] is not True

    again = broadcast(_campaign("it-cloud-2"))

    second = {r["customer_id"]: r for r in _rows(url, recipients, campaign_id="it-cloud-2")}
    assert {(second[str(c.id)]["outcome"], second[str(c.id)]["reason"]) for c in unreachable} == {
        (Outcome.EXCLUDED_NOT_ON_WHATSAPP, Reason.UNDELIVERABLE)
    }
    after = Counter(sandbox.state.sent_to())
    assert all(after[str(c.expected_e164).lstrip("+")] == 1 for c in unreachable)
    assert all(after[str(c.expected_e164).lstrip("+")] == 2 for c in reachable)
    assert again["funnel"]["sent in this run"] == len(reachable)


def test_numbers_rated_red_send_nothing_and_the_run_fails_with_everyone_deferred(
    prefect_api: None, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm_url = f"sqlite:///{tmp_path}/crm.sqlite"
    engine = create_engine(crm_url)
    seed_demo_crm(engine, demo_customers(40, seed=3))
    engine.dispose()
    red = dataclasses.replace(CONFIG, quality_rating="RED")
    with start_cloud_sandbox(red) as sandbox:
        for name, value in cloud_env(sandbox, crm_url, postgres_url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", ",".join(CONFIG.phone_numbers))
        with pytest.raises(SendersStoppedError, match="2 of 2 senders stopped") as caught:
            broadcast(_campaign("it-cloud-red"))

    assert not sandbox.state.messages_sent()
    assert "quality rating RED" in str(caught.value)
    rows = _rows(postgres_url, recipients, campaign_id="it-cloud-red")
    deferred = [r for r in rows if r["outcome"] == Outcome.DEFERRED]
    assert deferred and {r["reason"] for r in deferred} == {Reason.SENDER_STOPPED}
    (run,) = _rows(postgres_url, campaign_runs, campaign_id="it-cloud-red")
    assert run["status"] == "failed" and run["deferred_sender_stopped"] == len(deferred)
    assert "quality rating RED" in run["error"]
