"""The webhook receiver over real HTTP into real warehouses, fed by the sandbox and by hand."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from connectors.http_server import serve_in_thread
from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import (
    RecordResult,
    StatusEvent,
    marketing_stopped,
    opted_out_numbers,
    reconcile_campaign,
    undeliverable_since,
)
from connectors.warehouse.records import write_recipients
from connectors.warehouse.schema import deliveries, opt_outs, recipients, status_events
from connectors.webhooks.app import ReceiverApp
from connectors.webhooks.keywords import DEFAULT_OPT_OUT_KEYWORDS
from connectors.webhooks.payloads import InboundMessage, UserPreference
from connectors.webhooks.security import sign
from connectors.webhooks.server import RunningReceiver, start_receiver, uvicorn_config
from connectors.webhooks.settings import ReceiverSettings
from connectors.webhooks.store import WarehouseStore, record_events
from connectors.whatsapp import Template
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from connectors.whatsapp.onprem.sandbox.webhooks import PushPolicy, pusher_for
from connectors.whatsapp.settings import WhatsAppSettings
from tests.helpers import wait_until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
TOKEN = "hook-token-3f9a"
SECRET = "app-secret-77c1"
CAMPAIGN = "spring-sale"
RUN = "run-1"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ANSWERS = {
    b'{"status":"ok"}',
    b'{"error":"unauthorized"}',
    b'{"error":"bad_signature"}',
    b'{"error":"too_large"}',
    b'{"error":"bad_payload"}',
    b'{"error":"not_found"}',
}


def fixture(name: str) -> Any:
    """A webhook body from tests/fixtures/webhooks, parsed."""
    return json.loads((FIXTURES / name).read_text())


def settings_for(url: str, **overrides: Any) -> ReceiverSettings:
    """Receiver settings on `url` with the test token and app secret."""
    values: dict[str, Any] = {
        "warehouse_url": SecretStr(url),
        "token": SecretStr(TOKEN),
        "app_secret": SecretStr(SECRET),
        **overrides,
    }
    return ReceiverSettings(**values)


@pytest.fixture
def receiver(sqlite_url: str) -> Iterator[RunningReceiver]:
    """A receiver on an empty SQLite warehouse."""
    with start_receiver(settings_for(sqlite_url, max_body_bytes=4096)) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def engine_of(running: RunningReceiver) -> Engine:
    return warehouse(running.settings.warehouse_url.get_secret_value())


def seed(engine: Engine, sends: dict[str, str]) -> None:
    """Ledger and customer rows as a run writes them: customer id -> message id, all `sent`."""
    claims, results, rows = [], [], []
    for customer_id, message_id in sends.items():
        phone = f"+49151{int(customer_id):07d}1"
        wa_id = phone[1:]
        claims.append(ledger.Claim(phone, customer_id, wa_id, 1, T0, T0))
        results.append(
            ledger.Result(phone, LedgerState.SENT, T0, message_id=message_id, wa_id=wa_id)
        )
        rows.append(
            {
                "campaign_id": CAMPAIGN,
                "customer_id": customer_id,
                "outcome": "sent",
                "reason": None,
                "phone_e164": phone,
                "duplicate_of": None,
                "run_id": RUN,
                "updated_at": T0,
            }
        )
    held = lease.acquire(engine, CAMPAIGN, RUN, timedelta(minutes=5))
    ledger.advance(engine, held, RUN, results=[], claims=claims)
    ledger.advance(engine, held, RUN, results=results, claims=[])
    lease.release(engine, held)
    write_recipients(engine, rows)


def delivery_states(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    """message id -> (delivery_status, delivery_error_code)."""
    d = deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(select(d.message_id, d.delivery_status, d.delivery_error_code))
        return {m: (s, c) for m, s, c in rows}


def outcomes(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """customer id -> (outcome, reason)."""
    r = recipients.c
    with engine.connect() as conn:
        return {
            c: (o, why) for c, o, why in conn.execute(select(r.customer_id, r.outcome, r.reason))
        }


def stored(engine: Engine) -> list[tuple[str, str]]:
    """The (message_id, status) pairs in wa_status_events, sorted."""
    e = status_events.c
    with engine.connect() as conn:
        return sorted((m, s) for m, s in conn.execute(select(e.message_id, e.status)))


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def status(message_id: str, name: str, at: int = 1_780_000_000, code: int | None = None) -> dict:
    """One v1 status entry."""
    entry: dict[str, Any] = {
        "id": message_id,
        "recipient_id": "4915100000011",
        "status": name,
        "timestamp": str(at),
    }
    if code is not None:
        entry["errors"] = [{"code": code, "title": "Message failed"}]
    return entry


# Ordering, duplicates, never backwards ---------------------------------------------------------


def test_statuses_in_any_order_and_repeated_end_in_the_highest_state(any_db_url: str) -> None:
    with start_receiver(settings_for(any_db_url)) as running, httpx.Client() as client:
        engine = engine_of(running)
        seed(engine, {"1": "m-read", "2": "m-late-fail", "3": "m-fail", "4": "m-fail-then-ok"})
        arrivals = [
            [status("m-read", "read", 30)],
            [status("m-read", "delivered", 20), status("m-late-fail", "sent", 10)],
            [status("m-read", "sent", 10), status("m-read", "read", 30)],
            [status("m-read", "read", 30)],
            [status("m-late-fail", "delivered", 20), status("m-fail", "sent", 10)],
            [status("m-late-fail", "failed", 40, code=470), status("m-fail", "failed", 20, 470)],
            [status("m-fail-then-ok", "failed", 20, code=131026)],
            [status("m-read", "warning", 50), status("m-read", "deleted", 60)],
            [status("m-fail-then-ok", "delivered", 30), status("m-nobody", "delivered", 20)],
            [status("m-fail", "failed", 20, code=470)],
        ]
        for statuses in arrivals:
            answer = client.post(running.v1_url, json={"statuses": statuses})
            assert (answer.status_code, answer.content) == (200, b'{"status":"ok"}')

        unique = {(s["id"], s["status"]) for statuses in arrivals for s in statuses}
        assert stored(engine) == sorted(unique)
        assert delivery_states(engine) == {
            "m-read": ("read", None),
            "m-late-fail": ("delivered", None),
            "m-fail": ("failed", "470"),
            "m-fail-then-ok": ("delivered", None),
        }
        assert outcomes(engine) == {
            "1": ("read", None),
            "2": ("delivered", None),
            "3": ("failed", "470"),
            "4": ("delivered", None),
        }
        with engine.connect() as conn:
            kept = conn.execute(
                select(status_events.c.error_code, status_events.c.error_title).where(
                    status_events.c.message_id == "m-late-fail",
                    status_events.c.status == "failed",
                )
            ).one()
        assert tuple(kept) == ("470", "Message failed")


def test_a_status_that_beats_the_ledger_is_applied_once_the_ledger_knows_it(
    receiver: RunningReceiver, http: httpx.Client
) -> None:
    engine = engine_of(receiver)
    payload = {"statuses": [status("m-early", "sent", 10), status("m-early", "delivered", 20)]}
    assert http.post(receiver.v1_url, json=payload).status_code == 200
    assert stored(engine) == [("m-early", "delivered"), ("m-early", "sent")]
    assert receiver.unmatched == 1

    seed(engine, {"7": "m-early"})

    wait_until(lambda: delivery_states(engine) == {"m-early": ("delivered", None)})
    wait_until(lambda: outcomes(engine) == {"7": ("delivered", None)})
    wait_until(lambda: receiver.unmatched == 0)


def test_reconcile_raises_outcomes_a_later_record_stage_wrote_back(sqlite_url: str) -> None:
    engine = warehouse(sqlite_url)
    keywords = DEFAULT_OPT_OUT_KEYWORDS
    early = [StatusEvent("m-1", "read"), StatusEvent("m-2", "failed", error_code="471")]
    result = record_events(engine, early, [], opt_out_keywords=keywords)
    assert (result.stored, result.unmatched) == (2, ("m-1", "m-2"))

    seed(engine, {"1": "m-1", "2": "m-2", "3": "m-3"})  # the ledger and the record stage
    record_events(engine, [StatusEvent("m-3", "delivered")], [], opt_out_keywords=keywords)
    seed(engine, {"3": "m-3"})  # a re-run's record stage writes `sent` again ...
    assert outcomes(engine)["3"] == ("delivered", None)  # ... which never moves it back

    assert reconcile_campaign(engine, CAMPAIGN) == 4
    assert delivery_states(engine) == {
        "m-1": ("read", None),
        "m-2": ("failed", "471"),
        "m-3": ("delivered", None),
    }
    assert outcomes(engine) == {
        "1": ("read", None),
        "2": ("failed", "471"),
        "3": ("delivered", None),
    }
    assert reconcile_campaign(engine, CAMPAIGN) == 0


# Sandbox -> receiver -> warehouse ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def pipeline_db(request: pytest.FixtureRequest) -> str:
    """An empty SQLite or PostgreSQL warehouse."""
    name = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param]
    return str(request.getfixturevalue(name))


class FakeClock:
    """The sandbox's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def linked(pipeline_db: str) -> Iterator[tuple[RunningSandbox, RunningReceiver, FakeClock]]:
    """A sandbox whose webhooks go to a receiver on the warehouse."""
    clock = FakeClock()
    with start_receiver(settings_for(pipeline_db)) as running:
        config = SandboxConfig(
            webhook_url=running.v1_url,
            rate_limit_messages=None,
            rate_limit_other=None,
            clock=clock,
        )
        with start_sandbox(config) as sandbox:
            yield sandbox, running, clock


async def _send_all(sandbox: RunningSandbox, numbers: Sequence[str]) -> dict[str, str]:
    """Check and message the numbers with the project's client: number -> message id."""
    settings = WhatsAppSettings(base_url=sandbox.url, api_key=SecretStr("sandbox-api-key"))
    template = Template(namespace="acme_ns", name="order_update", language="en")
    async with OnPremSender(settings=settings) as client:
        checks = await client.check_contacts(list(numbers))
        sent = {}
        for number in numbers:
            wa_id = str(checks[number].wa_id)
            receipt = await client.send_template(wa_id, template, ["Ana"], number=number)
            sent[number] = receipt.message_id
        return sent


def test_sandbox_statuses_reach_the_warehouse_despite_failures_duplicates_and_shuffling(
    linked: tuple[RunningSandbox, RunningReceiver, FakeClock],
) -> None:
    sandbox, running, _clock = linked
    pusher_for(sandbox.state).policy = PushPolicy(
        failed_share=0.25, duplicates=True, shuffle=True, seed=3
    )
    numbers = [f"+49151{i:07d}1" for i in range(8)]
    message_ids = asyncio.run(_send_all(sandbox, numbers))
    engine = engine_of(running)
    seed(engine, {str(i): message_ids[n] for i, n in enumerate(numbers)})

    failed = {message_ids[numbers[3]], message_ids[numbers[7]]}  # the 4th and 8th of 8 at 25%
    expected = {
        m: ("failed", "470") if m in failed else ("read", None) for m in message_ids.values()
    }
    wait_until(lambda: delivery_states(engine) == expected)
    wait_until(lambda: sandbox.state.stats().get("webhooks.delivered") == 2 * (2 * 2 + 6 * 3))
    pushed = [p["statuses"][0] for p in list(pusher_for(sandbox.state).pushed)]
    assert {s["id"] for s in pushed if s["status"] == "failed"} == failed
    assert len(stored(engine)) == 2 * 2 + 6 * 3  # each status once, though pushed twice
    by_customer = {str(i): expected[message_ids[n]] for i, n in enumerate(numbers)}
    wait_until(lambda: outcomes(engine) == by_customer)
    assert sandbox.state.stats().get("webhooks.failed") is None


def test_stop_reply_through_the_sandbox_is_an_opt_out_and_the_earliest_is_kept(
    linked: tuple[RunningSandbox, RunningReceiver, FakeClock], http: httpx.Client
) -> None:
    sandbox, running, clock = linked
    engine = engine_of(running)
    first = http.post(
        f"{sandbox.url}/sandbox/inbound", json={"from": "4915100000021", "text": "Stop!"}
    )
    assert first.status_code == 200
    first_id = first.json()["messages"][0]["id"]
    http.post(f"{sandbox.url}/sandbox/inbound", json={"from": "4915100000031", "text": "Hello"})
    wait_until(lambda: opted_out_numbers(engine) == {"+4915100000021"})

    clock.now += 3600
    again = {"from": "4915100000021", "text": "СТОП"}
    assert http.post(f"{sandbox.url}/sandbox/inbound", json=again).status_code == 200
    wait_until(lambda: sandbox.state.stats().get("webhooks.inbound.delivered") == 3)
    with engine.connect() as conn:
        row = conn.execute(select(opt_outs)).one()
    assert (row.phone_e164, row.wa_id, row.keyword, row.message_id) == (
        "+4915100000021",
        "4915100000021",
        "STOP",
        first_id,
    )
    assert row.opted_out_at == datetime.fromtimestamp(1_780_000_000, UTC)

    earlier = fixture("v1_inbound_stop.json")
    earlier["messages"][0].update({"from": "4915100000021", "timestamp": "1779990000"})
    assert http.post(running.v1_url, json=earlier).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(select(opt_outs)).one()
    assert row.opted_out_at == datetime.fromtimestamp(1_779_990_000, UTC)


def test_sandbox_inbound_needs_a_webhook_url_and_a_wa_id(http: httpx.Client) -> None:
    with start_sandbox(SandboxConfig()) as sandbox:
        url = f"{sandbox.url}/sandbox/inbound"
        assert http.post(url, json={"from": "4915100000021", "text": "STOP"}).status_code == 400
        assert http.post(url, json={"from": "+49 151", "text": "STOP"}).status_code == 400
        policy = http.post(f"{sandbox.url}/sandbox/webhooks", json={"failed_share": 2})
        assert policy.status_code == 400
        ok = http.post(
            f"{sandbox.url}/sandbox/webhooks",
            json={"script": [["read", "sent"]], "duplicates": True},
        )
        assert ok.status_code == 200
        assert pusher_for(sandbox.state).policy.script == (("read", "sent"),)


# Values a database cannot store -------------------------------------------------------------


def raw_copies(engine: Engine) -> dict[str, Any]:
    """message id -> its stored raw copy, parsed."""
    e = status_events.c
    with engine.connect() as conn:
        return {m: json.loads(raw) for m, raw in conn.execute(select(e.message_id, e.raw))}


def test_items_with_nul_or_lone_surrogates_are_dropped_and_the_rest_stored(
    any_db_url: str, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    v1_body = (FIXTURES / "v1_statuses_unstorable.json").read_bytes()
    cloud_body = (FIXTURES / "cloud_statuses_unstorable.json").read_bytes()
    signed = {"X-Hub-Signature-256": sign(cloud_body, SecretStr(SECRET))}
    with start_receiver(settings_for(any_db_url)) as running:
        v1 = http.post(running.v1_url, content=v1_body)
        cloud = http.post(running.cloud_url, content=cloud_body, headers=signed)
        health = http.get(running.url + "/healthz").json()
        engine = engine_of(running)
        assert (v1.status_code, v1.content) == (200, b'{"status":"ok"}')
        assert (cloud.status_code, cloud.content) == (200, b'{"status":"ok"}')
        assert stored(engine) == [
            ("wamid.cloud-good-delivered", "delivered"),
            ("wamid.cloud-good-failed", "failed"),
            ("wamid.v1-good-delivered", "delivered"),
            ("wamid.v1-good-failed", "failed"),
            ("wamid.v1-good-sent", "sent"),
        ]
        raw = raw_copies(engine)
        assert raw["wamid.v1-good-failed"]["pricing"]["category"] == "mark\ufffdeting"
        assert opted_out_numbers(engine) == {"+16315551234"}
    assert health == {"status": "ok", "dropped_items": 5}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("statuses.id" in w and "statuses.status" in w for w in warnings)
    assert not any("wamid" in w or "\x00" in w for w in warnings)


# Refusals: nothing stored --------------------------------------------------------------------


def test_cloud_webhooks_need_a_valid_signature(
    receiver: RunningReceiver, http: httpx.Client
) -> None:
    engine = engine_of(receiver)
    body = json.dumps(fixture("cloud_statuses.json")).encode()
    forged = sign(body, SecretStr("not-the-secret"))
    tampered = sign(body, SecretStr(SECRET))
    for headers, content in [
        ({}, body),
        ({"X-Hub-Signature-256": forged}, body),
        ({"X-Hub-Signature-256": tampered}, body.replace(b"delivered", b"read")),
    ]:
        answer = http.post(receiver.cloud_url, content=content, headers=headers)
        assert (answer.status_code, answer.content) == (401, b'{"error":"bad_signature"}')
    assert count(engine, status_events) == 0

    signed = {"X-Hub-Signature-256": sign(body, SecretStr(SECRET))}
    assert http.post(receiver.cloud_url, content=body, headers=signed).status_code == 200
    assert sorted(s for _, s in stored(engine)) == ["delivered", "failed"]

    inbound = json.dumps(fixture("cloud_inbound.json")).encode()
    signed = {"X-Hub-Signature-256": sign(inbound, SecretStr(SECRET))}
    assert http.post(receiver.cloud_url, content=inbound, headers=signed).status_code == 200
    assert opted_out_numbers(engine) == {"+16505551234"}


def phone_number_ids(engine: Engine) -> dict[tuple[str, str], str | None]:
    """(message_id, status) -> the stored phone_number_id."""
    e = status_events.c
    with engine.connect() as conn:
        rows = conn.execute(select(e.message_id, e.status, e.phone_number_id))
        return {(m, s): p for m, s, p in rows}


def test_cloud_statuses_are_stored_with_the_phone_number_id_they_came_for(
    any_db_url: str, http: httpx.Client
) -> None:
    with start_receiver(settings_for(any_db_url)) as running:
        for name in ("cloud_statuses.json", "cloud_statuses_two_numbers.json"):
            body = (FIXTURES / name).read_bytes()
            signed = {"X-Hub-Signature-256": sign(body, SecretStr(SECRET))}
            assert http.post(running.cloud_url, content=body, headers=signed).status_code == 200
        v1 = (FIXTURES / "v1_statuses.json").read_bytes()
        assert http.post(running.v1_url, content=v1).status_code == 200
        found = phone_number_ids(engine_of(running))
    cloud = {
        (s["id"], s["status"]): change["value"]["metadata"]["phone_number_id"]
        for name in ("cloud_statuses.json", "cloud_statuses_two_numbers.json")
        for entry in fixture(name)["entry"]
        for change in entry["changes"]
        for s in change["value"]["statuses"]
    }
    v1_keys = {(s["id"], s["status"]) for s in fixture("v1_statuses.json")["statuses"]}
    assert found == cloud | dict.fromkeys(v1_keys)
    assert set(cloud.values()) == {"106540352242922", "106540352242923"}


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/webhooks/v1/wrong-token", None),
        ("/webhooks/v1/", None),
        ("/webhooks/v1", None),
        ("/webhooks/v1", ("provider", "wrong-token")),
        ("/webhooks/v1", ("provider", TOKEN.upper())),
    ],
)
def test_wrong_or_missing_tokens_are_401(
    receiver: RunningReceiver, http: httpx.Client, path: str, auth: tuple[str, str] | None
) -> None:
    body = fixture("v1_statuses.json")
    answer = http.post(receiver.url + path, json=body, auth=auth)
    assert answer.status_code in (401, 404)  # "/webhooks/v1/" is no route (and no redirect)
    assert count(engine_of(receiver), status_events) == 0


def test_basic_auth_carries_the_token_unless_configured_off(
    receiver: RunningReceiver, http: httpx.Client, tmp_path: Path
) -> None:
    body = fixture("v1_statuses.json")
    ok = http.post(receiver.url + "/webhooks/v1", json=body, auth=("provider", TOKEN))
    assert ok.status_code == 200
    assert count(engine_of(receiver), status_events) == 3
    path_only_url = f"sqlite:///{tmp_path}/path-only.sqlite"
    with start_receiver(settings_for(path_only_url, token_via="path")) as path_only:
        refused = http.post(path_only.url + "/webhooks/v1", json=body, auth=("provider", TOKEN))
        assert refused.status_code == 401
        assert http.post(path_only.v1_url, json=body).status_code == 200


def test_oversized_bodies_are_413_by_length_or_by_stream(
    receiver: RunningReceiver, http: httpx.Client
) -> None:
    statuses = [status(f"m-{i}", "delivered") for i in range(60)]
    big = json.dumps({"statuses": statuses}).encode()
    assert len(big) > receiver.settings.max_body_bytes
    declared = http.post(receiver.v1_url, content=big)
    assert (declared.status_code, declared.content) == (413, b'{"error":"too_large"}')

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    streamed = http.post(receiver.v1_url, content=chunks())
    assert streamed.status_code == 413
    assert count(engine_of(receiver), status_events) == 0
    small = {"statuses": statuses[:5]}
    assert http.post(receiver.v1_url, json=small).status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe\x00",
        b"[]",
        b'{"statuses": "gBGG"}',
        b'{"statuses": [{"id": "m1"}]}',
        b'{"statuses": [{"id": "m1", "status": "sent"}], "messages": [{"id": "x"}]}',
    ],
)
def test_malformed_or_misshapen_bodies_are_400_and_store_nothing(
    receiver: RunningReceiver, http: httpx.Client, content: bytes
) -> None:
    answer = http.post(receiver.v1_url, content=content)
    assert (answer.status_code, answer.content) == (400, b'{"error":"bad_payload"}')
    assert count(engine_of(receiver), status_events) == 0


def test_answers_never_echo_the_request(receiver: RunningReceiver, http: httpx.Client) -> None:
    marker = "<script>4915112345671</script>"
    requests = [
        (receiver.v1_url, {"statuses": [status(marker, "sent")]}),
        (receiver.v1_url, {"statuses": [{"id": marker}]}),
        (receiver.url + f"/webhooks/v1/{marker}", {"statuses": []}),
        (receiver.cloud_url, {"object": marker}),
    ]
    for url, body in requests:
        answer = http.post(url, json=body)
        assert answer.content in ANSWERS
        assert marker not in answer.text


def test_refusals_carry_their_headers_and_other_methods_or_paths_are_405_or_404(
    receiver: RunningReceiver, http: httpx.Client, tmp_path: Path
) -> None:
    body = fixture("v1_statuses.json")
    basic = http.post(receiver.url + "/webhooks/v1", json=body)
    assert (basic.status_code, basic.headers["www-authenticate"]) == (401, 'Basic realm="webhooks"')
    assert basic.headers["content-type"] == "application/json"
    wrong_method = http.get(receiver.v1_url)
    assert (wrong_method.status_code, wrong_method.content) == (
        405,
        b'{"error":"method_not_allowed"}',
    )
    nowhere = http.post(receiver.url + "/webhooks/v2", json=body)
    assert (nowhere.status_code, nowhere.content) == (404, b'{"error":"not_found"}')
    full_url = f"sqlite:///{tmp_path}/full.sqlite"
    with start_receiver(settings_for(full_url, max_queued_events=2)) as full:
        busy = http.post(full.v1_url, json=body)  # 3 statuses: more than may wait
        assert (busy.status_code, busy.content) == (503, b'{"error":"busy"}')
        assert busy.headers["retry-after"] == "1"


def test_meta_handshake_echoes_only_a_digit_challenge(
    receiver: RunningReceiver, http: httpx.Client
) -> None:
    def handshake(**params: str) -> httpx.Response:
        return http.get(receiver.cloud_url, params=params)

    ok = handshake(
        **{"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158201444"}
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad_token = handshake(
        **{"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    )
    assert bad_token.status_code == 403
    script = handshake(
        **{"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "<b>1</b>"}
    )
    assert (script.status_code, "<b>" in script.text) == (400, False)
    assert handshake(**{"hub.verify_token": TOKEN, "hub.challenge": "1"}).status_code == 400
    assert http.get(receiver.url + "/healthz").json() == {"status": "ok", "dropped_items": 0}


# Durability and throughput --------------------------------------------------------------------


class FlakyRecorder:
    """Fails the first `failures` writes and any write holding message id `poison`."""

    def __init__(self, engine: Engine, failures: int = 0, poison: str | None = None) -> None:
        self.engine = engine
        self.failures = failures
        self.poison = poison

    def __call__(
        self,
        statuses: Sequence[StatusEvent],
        inbound: Sequence[InboundMessage],
        preferences: Sequence[UserPreference],
    ) -> RecordResult:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("warehouse unavailable [parameters: '+4915100000011']")
        if any(s.message_id == self.poison for s in statuses):
            raise RuntimeError("poison")
        return record_events(self.engine, statuses, inbound, preferences, opt_out_keywords=["STOP"])


@pytest.fixture
def flaky(sqlite_url: str) -> Iterator[tuple[str, FlakyRecorder, Engine]]:
    """A receiver whose writes go through a FlakyRecorder; yields (v1 URL, recorder, engine)."""
    engine = warehouse(sqlite_url)
    recorder = FlakyRecorder(engine)
    app = ReceiverApp(settings_for(sqlite_url), record=recorder)
    serving = serve_in_thread(uvicorn_config(app, host="127.0.0.1", port=0), name="flaky")
    try:
        yield f"{serving.url}/webhooks/v1/{TOKEN}", recorder, engine
    finally:
        serving.stop()


def test_a_failed_write_answers_500_and_the_providers_retry_is_stored(
    flaky: tuple[str, FlakyRecorder, Engine],
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, recorder, engine = flaky
    recorder.failures = 1
    body = fixture("v1_statuses.json")
    failed = http.post(url, json=body)
    assert (failed.status_code, failed.content) == (500, b'{"error":"write_failed"}')
    assert count(engine, status_events) == 0
    assert http.post(url, json=body).status_code == 200
    assert count(engine, status_events) == 3
    assert "events failed: RuntimeError" in caplog.text
    assert "4915100000011" not in caplog.text  # error messages may quote SQL parameters


def test_one_bad_request_fails_alone_when_written_together(
    flaky: tuple[str, FlakyRecorder, Engine],
) -> None:
    url, recorder, engine = flaky
    recorder.poison = "m-poison"

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            bodies = [{"statuses": [status(f"m-{i}", "sent")]} for i in range(40)]
            bodies[17] = {"statuses": [status("m-poison", "sent")]}
            answers = await asyncio.gather(*(client.post(url, json=b) for b in bodies))
            return [a.status_code for a in answers]

    codes = asyncio.run(post_all())
    assert codes[17] == 500
    assert codes[:17] + codes[18:] == [200] * 39
    assert count(engine, status_events) == 39


def test_sqlite_commits_of_the_receiver_are_synced_before_they_are_answered(
    sqlite_url: str,
) -> None:
    store = WarehouseStore(warehouse(sqlite_url), opt_out_keywords=["STOP"])
    try:
        store.record([StatusEvent("m-1", "sent")], [])
        [conn] = store._idle
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        conn.rollback()
    finally:
        store.close()


def test_concurrent_requests_are_committed_together_and_none_is_lost(
    any_db_url: str,
) -> None:
    with start_receiver(settings_for(any_db_url)) as running:
        engine = engine_of(running)
        seed(engine, {str(i): f"m-{i}" for i in range(100)})

        async def post_all() -> list[int]:
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
                bodies = [
                    {"statuses": [status(f"m-{i}", s) for s in ("sent", "delivered", "read")]}
                    for i in range(100)
                ]
                answers = await asyncio.gather(
                    *(client.post(running.v1_url, json=b) for b in bodies)
                )
                return [a.status_code for a in answers]

        assert asyncio.run(post_all()) == [200] * 100
        assert count(engine, status_events) == 300
        assert set(delivery_states(engine).values()) == {("read", None)}
        stats = running.stats
        assert (stats.requests, stats.events) == (100, 300)
        assert stats.transactions < stats.requests


def test_logs_hold_no_phone_numbers_tokens_or_bodies(
    receiver: RunningReceiver, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inbound = fixture("v1_inbound_stop.json")
    assert http.post(receiver.v1_url, json=inbound).status_code == 200
    http.post(
        receiver.v1_url,
        json={"statuses": [{"id": "m1", "status": "sent", "x": "16315551234"}], "messages": 1},
    )
    http.post(receiver.url + "/webhooks/v1/guess", json=inbound)
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("connectors", "uvicorn"))
    )
    assert "recorded 1 opt-out" in ours
    for secret in ("16315551234", TOKEN, "guess", SECRET, "STOP", "Kerry"):
        assert secret not in ours
    assert opted_out_numbers(engine_of(receiver)) == {"+16315551234"}


def test_opt_outs_need_a_keyword_reply_from_a_number(sqlite_url: str) -> None:
    engine = warehouse(sqlite_url)
    at = T0 + timedelta(minutes=5)
    inbound = [
        InboundMessage("a", "4915100000011", at, "text", "please stop"),
        InboundMessage("b", "4915100000012", at, "image", None),
        InboundMessage("c", "not-digits", at, "text", "STOP"),
        InboundMessage("d", "4915100000013", at, "text", " Unsubscribe. "),
        InboundMessage("e", "4915100000013", at - timedelta(minutes=1), "text", "stop"),
    ]
    result = record_events(engine, [], inbound, opt_out_keywords=DEFAULT_OPT_OUT_KEYWORDS)
    assert result.opt_outs == 1
    with engine.connect() as conn:
        row = conn.execute(select(opt_outs)).one()
    assert (row.phone_e164, row.keyword, row.message_id) == ("+4915100000013", "STOP", "e")


# Cloud: in-doubt sends, pricing, BSUIDs, 131026 -------------------------------------------------

CLOUD_CAMPAIGN = "spring-sale:2026"


BUSINESS = "102290129340398"  # the WABA id of the Cloud fixtures' entries


def post_signed(http: httpx.Client, running: RunningReceiver, name: str) -> httpx.Response:
    """POST a Cloud fixture body as Meta signs it."""
    body = (FIXTURES / name).read_bytes()
    signed = {"X-Hub-Signature-256": sign(body, SecretStr(SECRET))}
    return http.post(running.cloud_url, content=body, headers=signed)


def cloud_rows(engine: Engine) -> None:
    """A run killed after sending to ...678 (unknown), and one that recorded its send to ...670."""
    rows = [
        ("1", "+4915112345678", LedgerState.UNKNOWN, None, "unknown"),
        ("2", "+4915112345670", LedgerState.SENT, fixture_id("cloud_failed_131026.json"), "sent"),
    ]
    with engine.begin() as conn:
        for customer_id, phone, state, message_id, outcome in rows:
            conn.execute(
                deliveries.insert(),
                [
                    {
                        "campaign_id": CLOUD_CAMPAIGN,
                        "phone_e164": phone,
                        "customer_id": customer_id,
                        "state": state,
                        "retryable": False,
                        "message_id": message_id,
                        "attempts": 1,
                        "run_id": RUN,
                    }
                ],
            )
            conn.execute(
                recipients.insert(),
                [
                    {
                        "campaign_id": CLOUD_CAMPAIGN,
                        "customer_id": customer_id,
                        "outcome": outcome,
                        "phone_e164": phone,
                        "run_id": RUN,
                        "updated_at": T0,
                    }
                ],
            )


def fixture_id(name: str) -> str:
    """The message id of a Cloud fixture's first status."""
    return str(fixture(name)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"])


def test_cloud_statuses_resolve_a_send_in_doubt_and_bring_pricing_bsuid_and_suppression(
    any_db_url: str, http: httpx.Client
) -> None:
    with start_receiver(settings_for(any_db_url)) as running:
        engine = engine_of(running)
        cloud_rows(engine)
        for name in ("cloud_statuses_pricing_bsuid.json", "cloud_failed_131026.json"):
            assert post_signed(http, running, name).status_code == 200
        d = deliveries.c
        with engine.connect() as conn:
            resolved = conn.execute(select(deliveries).where(d.customer_id == "1")).one()
        assert (resolved.state, resolved.delivery_status) == ("sent", "read")
        assert resolved.message_id == fixture_id("cloud_statuses_pricing_bsuid.json")
        assert resolved.user_id == "DE.13491208655302741918"
        pricing = (resolved.pricing_model, resolved.pricing_category, resolved.pricing_type)
        assert (pricing, resolved.billable) == (("PMP", "marketing", "regular"), True)
        assert outcomes(engine) == {"1": ("read", None), "2": ("failed", "131026")}
        numbers = ["+4915112345670", "+4915112345678"]
        failed_at = datetime.fromtimestamp(1780000010, UTC)  # the failure's timestamp
        assert undeliverable_since(engine, numbers, failed_at) == {"+4915112345670"}
        assert undeliverable_since(engine, numbers, failed_at + timedelta(seconds=1)) == set()
        assert running.stats.resolved == 1

        # The customer, whose number Meta now withholds, replies STOP under their BSUID alone.
        assert post_signed(http, running, "cloud_inbound_stop_bsuid.json").status_code == 200
        assert opted_out_numbers(engine) == {"+4915112345678"}
        # "Stop promotions" holds for the business of the webhook's entry.
        assert post_signed(http, running, "cloud_user_preferences.json").status_code == 200
        assert marketing_stopped(engine, ["+16505551234"], BUSINESS) == {"+16505551234"}


def test_a_signed_stop_promotions_then_resume_stop_and_lift_marketing_for_the_business(
    receiver: RunningReceiver, http: httpx.Client
) -> None:
    engine = engine_of(receiver)
    number = "+16505551234"
    assert post_signed(http, receiver, "cloud_user_preferences.json").status_code == 200
    assert marketing_stopped(engine, [number], BUSINESS) == {number}
    assert marketing_stopped(engine, [number], "998877665544") == set()
    assert post_signed(http, receiver, "cloud_user_preferences_resume.json").status_code == 200
    assert marketing_stopped(engine, [number], None) == set()
    # Meta redelivers the older stop: the resume, later, still holds.
    assert post_signed(http, receiver, "cloud_user_preferences.json").status_code == 200
    assert marketing_stopped(engine, [number], BUSINESS) == set()


def test_a_stop_from_a_bsuid_no_delivery_knows_is_dropped_counted_and_logged_without_it(
    receiver: RunningReceiver, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert post_signed(http, receiver, "cloud_inbound_stop_bsuid.json").status_code == 200
    assert opted_out_numbers(engine_of(receiver)) == set()
    assert receiver.stats.unknown_user_ids == 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("connectors"))
    assert "dropped 1 opt-out replies from business-scoped user ids" in ours
    assert "13491208655302741918" not in ours
