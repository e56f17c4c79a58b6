"""Whole templates through whole runs (issue 20): a multilingual audience, an image header and
a URL button filled per customer, on the Cloud API (a real Prefect API, the Cloud sandbox and
the receiver over HTTP, a SQLite CRM, a PostgreSQL warehouse) and on v1 (its sandbox).

The sandboxes' `order_shipped` is APPROVED in en and de (Cloud also lists a PENDING fr): the
Spanish speakers have no translation, the French one's is not approved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, select, text

from connectors.vocabulary import Outcome, Reason
from connectors.warehouse.schema import recipients
from connectors.webhooks.server import start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    RunningCloudSandbox,
    start_cloud_sandbox,
)
from connectors.whatsapp.onprem.sandbox import SandboxConfig, start_sandbox
from flows.broadcast import broadcast
from tasks.campaign import Campaign
from tasks.template import TemplateRefusedError
from tests.helpers import cloud_env

AUDIENCE = (
    "SELECT id AS customer_id, phone AS phone_raw, optin AS opt_in_at, lang AS language, "
    "name AS param_first_name, banner AS param_banner, track AS param_track FROM customers"
)
BANNER = "https://cdn.example.com/orders/{n}.jpg"
# (language as the CRM holds it, the language sent; None: not sent without a fallback)
SPEAKERS = [
    ("de", "de"),
    ("DE-de", "de"),
    ("de_AT", "de"),
    ("en", "en"),
    (None, "en"),
    ("en_GB", "en"),
    ("es", None),
    ("es-MX", None),
    ("fr", None),  # PENDING on Cloud, not declared on v1
    ("12", None),  # not a language: no translation either
]


def _crm(path: Path) -> tuple[str, dict[str, tuple[str | None, str | None]]]:
    """A CRM of the speakers plus a customer with an http:// banner and one with a bad suffix;
    its URL and each reachable number's (CRM language, language it should get)."""
    url = f"sqlite:///{path}/crm.sqlite"
    rows, expected = [], {}
    for n, (given, gets) in enumerate(SPEAKERS, start=1):
        phone = f"+55119{n:07d}{1 + n % 6}"
        expected[phone] = (given, gets)
        rows.append((n, phone, given, BANNER.format(n=n), f"A-{n}"))
    rows.append((50, "+5511900000501", "en", "http://cdn.example.com/x.jpg", "A-50"))
    rows.append((51, "+5511900000512", "en", BANNER.format(n=51), "A 51"))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE customers (id INTEGER, phone TEXT, optin TEXT, lang TEXT, "
                "name TEXT, banner TEXT, track TEXT)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customers VALUES (:id, :phone, '2026-01-05T10:00:00', :lang, "
                "'Ada', :banner, :track)"
            ),
            [
                {"id": i, "phone": p, "lang": lang, "banner": b, "track": t}
                for i, p, lang, b, t in rows
            ],
        )
    engine.dispose()
    return url, expected


def _campaign(campaign_id: str, *, fallback: bool, **template: Any) -> Campaign:
    return Campaign.model_validate(
        {
            "campaign_id": campaign_id,
            "template": {
                "name": "order_shipped",
                "language": "en",
                "language_fallback": fallback,
                "body_params": ["first_name"],
                "header": {"format": "IMAGE", "link_param": "banner"},
                "buttons": [
                    {"index": 0, "sub_type": "url", "param": "track"},
                    {"index": 1, "sub_type": "quick_reply", "value": "STOP_UPDATES"},
                ],
            }
            | template,
            "audience": {"query": AUDIENCE},
            "default_region": "BR",
            "rate_limit_per_s": 500,
        }
    )


def _recipients(url: str, campaign_id: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    r = recipients.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.phone_e164, r.outcome, r.reason, r.template_language).where(
                r.campaign_id == campaign_id
            )
        ).all()
    engine.dispose()
    return {row.phone_e164: row._asdict() for row in rows}


@pytest.fixture
def cloud(
    prefect_api: None, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningCloudSandbox, dict[str, tuple[str | None, str | None]]]]:
    """The Cloud sandbox pushing to the receiver, the env pointing at both and the CRM."""
    crm_url, expected = _crm(tmp_path)
    config = CloudSandboxConfig(throughput_per_s=None, pair_interval_s=0)
    receiver = ReceiverSettings(
        warehouse_url=SecretStr(postgres_url), app_secret=SecretStr(config.app_secret)
    )
    with start_cloud_sandbox(config) as sandbox, start_receiver(receiver) as rx:
        sandbox.state.webhook_url = rx.cloud_url
        for name, value in cloud_env(sandbox, crm_url, postgres_url).items():
            monkeypatch.setenv(name, value)
        yield sandbox, expected


def test_each_customer_gets_their_language_or_the_fallback_with_their_header_and_button(
    cloud: tuple[RunningCloudSandbox, dict[str, tuple[str | None, str | None]]],
    postgres_url: str,
) -> None:
    sandbox, expected = cloud
    report = broadcast(_campaign("it-template-1", fallback=True))

    sent = {m.to: m for m in sandbox.state.messages_sent()}
    languages = {f"+{to}": m.language for to, m in sent.items()}
    assert languages == {p: gets or "en" for p, (_, gets) in expected.items()}
    assert Counter(languages.values()) == {"de": 3, "en": 7}

    bodies = {
        f"+{r.body['to']}": r.body["template"]
        for r in sandbox.state.requests_to("messages")
        if r.status == 200
    }
    assert len(bodies) == len(expected)
    for phone, template in bodies.items():
        n = int(phone[-8:-1])
        header, body, url_button, reply = template["components"]
        assert header["parameters"] == [{"type": "image", "image": {"link": BANNER.format(n=n)}}]
        assert body["parameters"] == [{"type": "text", "text": "Ada"}]
        assert (url_button["sub_type"], url_button["index"]) == ("url", "0")
        assert url_button["parameters"] == [{"type": "text", "text": f"A-{n}"}]
        assert reply["parameters"] == [{"type": "payload", "payload": "STOP_UPDATES"}]

    rows = _recipients(postgres_url, "it-template-1")
    assert {p: rows[p]["template_language"] for p in expected} == languages
    bad = {p: (r["outcome"], r["reason"]) for p, r in rows.items() if p not in expected}
    assert bad == {
        "+5511900000501": (Outcome.SEND_FAILED, Reason.INVALID_PARAMETER),
        "+5511900000512": (Outcome.SEND_FAILED, Reason.INVALID_PARAMETER),
    }
    assert report["funnel"]["failed: template parameter invalid"] == 2

    # Without a fallback, those the template cannot speak to are left out, nobody else.
    broadcast(_campaign("it-template-2", fallback=False))
    rows = _recipients(postgres_url, "it-template-2")
    left_out = {p for p, r in rows.items() if r["reason"] == Reason.NO_TEMPLATE_LANGUAGE}
    assert left_out == {p for p, (_, gets) in expected.items() if gets is None}
    assert {rows[p]["outcome"] for p in left_out} == {Outcome.EXCLUDED_POLICY}
    second = Counter(m.to for m in sandbox.state.messages_sent())
    assert sum(second.values()) == len(sent) + len(expected) - len(left_out)


def test_a_campaign_whose_buttons_do_not_fit_the_template_is_refused_before_reading_anyone(
    cloud: tuple[RunningCloudSandbox, dict[str, tuple[str | None, str | None]]],
) -> None:
    sandbox, _ = cloud
    campaign = _campaign(
        "it-template-3", fallback=True, buttons=[{"index": 1, "sub_type": "url", "param": "track"}]
    )
    with pytest.raises(
        TemplateRefusedError, match=r"button 1 is QUICK_REPLY .*button 0 \(URL\) needs"
    ):
        broadcast(campaign)
    assert not sandbox.state.messages_sent()


def test_v1_sends_the_declared_languages(
    prefect_api: None, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm_url, expected = _crm(tmp_path)
    with start_sandbox(SandboxConfig(always_valid=True, rate_limit_messages=None)) as sandbox:
        for name, value in {
            "CRM_DATABASE_URL": crm_url,
            "WAREHOUSE_DATABASE_URL": postgres_url,
            "WHATSAPP_API_URL": sandbox.url,
            "WHATSAPP_USERNAME": sandbox.config.username,
            "WHATSAPP_PASSWORD": sandbox.config.password,
        }.items():
            monkeypatch.setenv(name, value)
        declared = {
            "namespace": "acme_ns",
            "languages": ["de"],
            "components": [  # v1 cannot be asked: the campaign declares the template
                {"type": "HEADER", "format": "IMAGE"},
                {"type": "BODY", "text": "Hi {{1}}, your order has shipped."},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "URL", "url": "https://shop.example.com/track/{{1}}"},
                        {"type": "QUICK_REPLY", "text": "Stop updates"},
                    ],
                },
            ],
        }
        broadcast(_campaign("it-template-v1", fallback=False, **declared))
        bodies = [r.body["template"] for r in sandbox.state.requests_to("messages")]
    rows = _recipients(postgres_url, "it-template-v1")
    sent = {p: r["template_language"] for p, r in rows.items() if r["outcome"] == Outcome.SENT}
    assert sent == {p: gets for p, (_, gets) in expected.items() if gets is not None}
    assert Counter(b["language"]["code"] for b in bodies) == {"de": 3, "en": 3}
