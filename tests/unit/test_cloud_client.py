"""The Cloud sender through httpx.MockTransport: what it sends, how it reads answers, which
failures it retries, pauses on or never repeats, and the number's facts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.whatsapp import (
    ContactChecker,
    PhoneFacts,
    Sender,
    SendReceipt,
    Template,
    TemplateDirectory,
    errors,
    open_sender,
)
from connectors.whatsapp.cloud.client import CloudSender
from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.settings import WhatsAppSettings
from tests.unit.test_whatsapp_limits import FakeTime

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
PHONE_ID = "106540352242922"
TOKEN = "EAAG-s3cret-system-user-token"
UTILITY = Template(None, "order_update", "en", category="UTILITY", parameter_format="POSITIONAL")
MARKETING = Template(
    None,
    "spring_sale",
    "en",
    category="MARKETING",
    parameter_format="NAMED",
    parameter_names=("first_name",),
)
Handler = Callable[[httpx.Request], httpx.Response]


def _json(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _settings(**extra: object) -> WhatsAppSettings:
    values: dict[str, object] = {
        "api": "cloud",
        "base_url": "https://graph.test",
        "phone_number_id": PHONE_ID,
        "waba_id": "102290129340398",
        "token": TOKEN,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
    }
    return WhatsAppSettings.model_validate({**values, **extra})


def _client(handler: Handler, time: FakeTime | None = None, **extra: object) -> CloudSender:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    if time is None:
        return CloudSender(settings=_settings(**extra), http=http)
    return CloudSender(
        settings=_settings(**extra),
        http=http,
        send_limits=SendLimits(rate_per_s=1000, concurrency=4),
        clock=time.wall,
        monotonic=time.monotonic,
        sleep=time.sleep,
    )


def _send(handler: Handler, template: Template = UTILITY, **extra: object) -> SendReceipt:
    async def run() -> SendReceipt:
        async with _client(handler, **extra) as client:
            return await client.send_template("+4915112345678", template, ["Ada"], callback="k1")

    return asyncio.run(run())


def test_the_factory_opens_a_cloud_sender_that_looks_templates_up_but_checks_no_contacts() -> None:
    sender = open_sender(_settings())
    assert isinstance(sender, CloudSender) and isinstance(sender, Sender)
    assert isinstance(sender, TemplateDirectory) and not isinstance(sender, ContactChecker)
    assert sender.sender_id == f"cloud:{PHONE_ID}"
    assert TOKEN not in repr(sender)
    asyncio.run(sender.aclose())


def test_a_send_posts_the_body_with_the_bearer_token_to_the_numbers_messages() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_json("cloud_send_accepted"))

    receipt = _send(handler)
    assert receipt == SendReceipt(
        message_id="wamid.HBgNNDkxNTExMjM0NTY3OBUCABEYEjQ2QjU3RkI2",
        message_status="accepted",
        user_id=None,
        wa_id="4915112345678",
    )
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"https://graph.test/v23.0/{PHONE_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body["to"] == "4915112345678" and body["biz_opaque_callback_data"] == "k1"
    assert body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Ada"}]


@pytest.mark.parametrize(
    ("route", "path"), [("auto", "marketing_messages"), ("messages", "messages")]
)
def test_a_marketing_template_is_routed_by_the_setting(route: str, path: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_json("cloud_send_marketing"))

    _send(handler, MARKETING, marketing_route=route)
    assert seen[0].url.path == f"/v23.0/{PHONE_ID}/{path}"
    parameter = json.loads(seen[0].content)["template"]["components"][0]["parameters"][0]
    assert parameter == {"type": "text", "text": "Ada", "parameter_name": "first_name"}


def test_a_held_message_and_a_bsuid_are_read_from_the_answer() -> None:
    receipt = _send(lambda r: httpx.Response(200, json=_json("cloud_send_held_bsuid")))
    assert receipt.message_status == "held_for_quality_assessment"
    assert receipt.user_id == "US.13491208655302741918" and receipt.wa_id is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json=_json("cloud_send_without_id")),
        httpx.Response(200, json={"messages": []}),
        httpx.Response(200, json=["not", "an", "answer"]),
        httpx.Response(200, text="<html>proxy says hello</html>"),
        httpx.Response(201, content=b'{"messages": [{"id": "wamid.cut'),
    ],
)
def test_a_success_without_a_message_id_is_outcome_unknown_and_never_resent(
    answer: httpx.Response,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answer

    with pytest.raises(errors.OutcomeUnknown, match="may have been sent"):
        _send(handler)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("failure", "expected", "calls"),
    [
        (httpx.ReadTimeout("timed out"), errors.OutcomeUnknown, 1),
        (httpx.RemoteProtocolError("reset"), errors.OutcomeUnknown, 1),
        (httpx.ConnectError("refused"), errors.NetworkError, 3),
        (httpx.ConnectTimeout("slow"), errors.NetworkError, 3),
    ],
)
def test_a_failure_after_writing_is_outcome_unknown_before_writing_retried(
    failure: Exception, expected: type[errors.WhatsAppError], calls: int
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise failure

    with pytest.raises(expected):
        _send(handler, max_attempts=3)
    assert len(seen) == calls


@pytest.mark.parametrize("code", [131000, 1, 2, 131057, 4, 80007, 130429])
def test_transient_codes_are_retried_then_succeed(code: int) -> None:
    answers = iter(
        [
            httpx.Response(500 if code in (1, 131000) else 400, json=_json(f"cloud_error_{code}")),
            httpx.Response(200, json=_json("cloud_send_accepted")),
        ]
    )
    assert _send(lambda r: next(answers)).message_status == "accepted"


@pytest.mark.parametrize("code", [132001, 132015, 132016, 131042, 131048, 131063, 131064, 368, 190])
def test_a_stop_at_once_code_is_raised_at_the_first_answer_and_not_retried(code: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json=_json(f"cloud_error_{code}"))

    with pytest.raises(errors.StopRunError) as caught:
        _send(handler)
    assert isinstance(caught.value, errors.WhatsAppError) and caught.value.stops_at_once
    assert f"code {code}" in str(caught.value) and len(calls) == 1


def test_an_expired_token_names_the_variable_and_never_the_token() -> None:
    with pytest.raises(errors.TokenExpired) as caught:
        _send(lambda r: httpx.Response(401, json=_json("cloud_error_190")))
    assert "WHATSAPP_TOKEN" in str(caught.value)
    assert TOKEN not in str(caught.value) + repr(caught.value.args)


@pytest.mark.parametrize("code", [100, 131008, 131009, 132012, 131026])
def test_a_recipient_code_is_that_recipients_and_not_retried(code: int) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json=_json(f"cloud_error_{code}"))

    with pytest.raises(errors.RecipientError):
        _send(handler)
    assert len(calls) == 1


def _two_sends_after_a_limit(code: int, time: FakeTime) -> list[tuple[str, float]]:
    """The first send earns `code` once; a second, to someone else, starts while the first waits.
    Returns (recipient, time) of every request the server saw."""
    seen: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        to = json.loads(request.content)["to"]
        seen.append((to, time.monotonic()))
        if len(seen) == 1:
            return httpx.Response(400, json=_json(f"cloud_error_{code}"))
        return httpx.Response(200, json=_json("cloud_send_accepted"))

    async def run() -> None:
        async with _client(handler, time, backoff_initial_s=2.0, backoff_max_s=2.0) as client:
            first = asyncio.ensure_future(client.send_template("4915100000001", UTILITY, ["A"]))
            await time.someone_sleeps.wait()  # the first got its answer and waits to retry
            await client.send_template("4915100000002", UTILITY, ["B"])
            await first

    asyncio.run(time.drive(run()))
    return seen


def test_a_throughput_limit_pauses_every_send_of_the_number() -> None:
    time = FakeTime()
    seen = _two_sends_after_a_limit(130429, time)
    wait = time.slept[0]
    assert 0 < wait <= 2.0
    assert sorted(seen) == [
        ("4915100000001", 0.0),
        ("4915100000001", wait),
        ("4915100000002", wait),
    ]


def test_a_pair_rate_limit_holds_only_that_recipient_for_the_pair_interval() -> None:
    time = FakeTime()
    seen = _two_sends_after_a_limit(131056, time)
    assert seen == [("4915100000001", 0.0), ("4915100000002", 0.0), ("4915100000001", 6.0)]


def test_a_pair_rate_limit_retries_are_bounded() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json=_json("cloud_error_131056"))

    time = FakeTime()

    async def run() -> None:
        async with _client(handler, time, max_attempts=3) as client:
            await client.send_template("4915100000001", UTILITY, ["A"])

    with pytest.raises(errors.RateLimited):
        asyncio.run(time.drive(run()))
    assert len(calls) == 3 and time.slept == [6.0, 6.0]


def _facts(answer: httpx.Response, method: str = "phone_facts") -> Any:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    async def run() -> Any:
        async with _client(handler) as client:
            return await getattr(client, method)()

    result = asyncio.run(run())
    assert seen[0].url.path == f"/v23.0/{PHONE_ID}"
    assert seen[0].url.params["fields"] == (
        "display_phone_number,quality_rating,throughput,whatsapp_business_manager_messaging_limit"
    )
    return result


def test_the_phone_facts_are_read_from_the_phone_number() -> None:
    facts = _facts(httpx.Response(200, json=_json("cloud_phone_number")))
    assert facts == PhoneFacts(
        phone_number_id=PHONE_ID,
        display_phone_number="+1 555-078-3881",
        quality_rating="GREEN",
        throughput_level="STANDARD",
        messaging_limit=2000,
        limit_known=True,
        messaging_limit_tier="TIER_2K",
    )


@pytest.mark.parametrize(
    ("answered", "limit", "known"),
    [
        ("TIER_250", 250, True),
        ("TIER_2K", 2_000, True),
        ("TIER_10K", 10_000, True),
        ("TIER_100K", 100_000, True),
        ("TIER_UNLIMITED", None, True),
        ("TIER_50", 50, True),
        ("TIER_1K", 1_000, True),
        (2000, 2_000, True),
        ("100000", 100_000, True),
        (-1, None, True),
        ({"max_daily_conversations_per_business": "TIER_10K"}, 10_000, True),
        ({"current_limit": "TIER_UNLIMITED"}, None, True),
        ("TIER_NOT_SET", None, False),
        ("TIER_9000X", None, False),
        (None, None, False),
    ],
)
def test_messaging_limit_tiers_become_a_number_or_none_for_unlimited(
    answered: object, limit: int | None, known: bool
) -> None:
    body = {"id": PHONE_ID, "whatsapp_business_manager_messaging_limit": answered}
    facts = _facts(httpx.Response(200, json=body))
    assert (facts.messaging_limit, facts.limit_known) == (limit, known)


def test_health_is_the_phone_facts_asked_once() -> None:
    facts = _facts(httpx.Response(200, json=_json("cloud_phone_number")), "health")
    assert facts["messaging_limit"] == 2000 and facts["quality_rating"] == "GREEN"


@pytest.mark.parametrize("method", ["health", "phone_facts"])
def test_an_unknown_phone_number_id_names_the_variable(method: str) -> None:
    with pytest.raises(errors.UnknownObject, match="WHATSAPP_PHONE_NUMBER_ID") as caught:
        _facts(httpx.Response(400, json=_json("cloud_error_100_unknown_id")), method)
    assert caught.value.stops_at_once and caught.value.code == 100


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(401, json=_json("cloud_error_190")), errors.TokenExpired),
        (httpx.Response(401), errors.AuthenticationError),
    ],
)
def test_health_refuses_a_bad_token_naming_the_variable(
    answer: httpx.Response, expected: type[errors.WhatsAppError]
) -> None:
    with pytest.raises(expected, match="WHATSAPP_TOKEN"):
        _facts(answer, "health")


def test_phone_facts_retry_a_transient_failure_and_a_garbled_answer() -> None:
    answers = iter(
        [
            httpx.Response(503, json=_json("cloud_error_2")),
            httpx.Response(200, text="<html>proxy</html>"),
            httpx.Response(200, json=_json("cloud_phone_number")),
        ]
    )

    async def run() -> PhoneFacts:
        async with _client(lambda r: next(answers)) as client:
            return await client.phone_facts()

    assert asyncio.run(run()).quality_rating == "GREEN"


def test_cloud_settings_are_required_to_build_a_cloud_sender() -> None:
    v1 = WhatsAppSettings(base_url="http://wa.test", api_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WHATSAPP_API=cloud"):
        CloudSender(settings=v1)
