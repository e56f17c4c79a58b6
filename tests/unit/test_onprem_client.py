"""Client behaviour that a real server cannot produce on demand, through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connectors.whatsapp import Template, errors
from connectors.whatsapp.onprem.auth import auth_for
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
TEMPLATE = Template("acme_ns", "order_update", "en")


def _settings(**extra: object) -> WhatsAppSettings:
    values: dict[str, object] = {
        "base_url": "http://wa.test",
        "username": "admin",
        "password": "s3cret-pw",
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
    }
    values.update(extra)
    return WhatsAppSettings.model_validate(values)


def _client(handler: Callable[[httpx.Request], httpx.Response], **extra: object) -> OnPremSender:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OnPremSender(settings=_settings(**extra), http=http)


def _api_error(name: str) -> object:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _login_ok(request: httpx.Request, token: str = "tok-1") -> httpx.Response:
    return httpx.Response(
        200, json={"users": [{"token": token, "expires_after": "2099-01-01 00:00:00+00:00"}]}
    )


def _sent(message_id: str = "gBEGmsg") -> httpx.Response:
    return httpx.Response(201, json={"messages": [{"id": message_id}]})


def test_transient_errors_are_retried_then_succeed() -> None:
    answers = iter([httpx.Response(503, json=_api_error("error_1016")), _sent()])

    def handler(request: httpx.Request) -> httpx.Response:
        return _login_ok(request) if request.url.path.endswith("login") else next(answers)

    async def run() -> str:
        async with _client(handler) as client:
            return (await client.send_template("16315551001", TEMPLATE, ["Asha"])).message_id

    assert asyncio.run(run()) == "gBEGmsg"


def test_retries_are_bounded() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            return _login_ok(request)
        calls.append(request)
        return httpx.Response(500, json=_api_error("error_1014"))

    async def run() -> None:
        async with _client(handler, max_attempts=3) as client:
            await client.send_template("16315551001", TEMPLATE, ["Asha"])

    with pytest.raises(errors.ServerError):
        asyncio.run(run())
    assert len(calls) == 3


def test_read_error_after_writing_a_send_is_outcome_unknown_and_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            return _login_ok(request)
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    async def run() -> None:
        async with _client(handler) as client:
            await client.send_template("16315551001", TEMPLATE, ["Asha"])

    with pytest.raises(errors.OutcomeUnknown):
        asyncio.run(run())
    assert len(calls) == 1


def test_connect_error_is_retried_because_nothing_was_sent() -> None:
    answers: list[httpx.Response | Exception] = [httpx.ConnectError("refused"), _sent()]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            return _login_ok(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run() -> str:
        async with _client(handler) as client:
            return (await client.send_template("16315551001", TEMPLATE, [])).message_id

    assert asyncio.run(run()) == "gBEGmsg"


def test_401_logs_in_again_once_then_gives_up() -> None:
    logins = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            logins.append(request)
            return _login_ok(request, token=f"tok-{len(logins)}")
        return httpx.Response(401, json=_api_error("error_1005"))

    async def run() -> None:
        async with _client(handler) as client:
            await client.send_template("16315551001", TEMPLATE, [])

    with pytest.raises(errors.AuthenticationError) as caught:
        asyncio.run(run())
    assert len(logins) == 2
    assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(caught.value)


def test_credentials_never_appear_in_reprs() -> None:
    client = _client(lambda r: _sent())
    settings = _settings()
    for text in (repr(client), repr(settings), str(settings), repr(auth_for(settings))):
        assert "s3cret-pw" not in text


def test_unknown_contact_is_checked_once_and_resent_once_to_the_new_wa_id() -> None:
    sent_to = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("login"):
            return _login_ok(request)
        body = json.loads(request.content)
        if path.endswith("contacts"):
            return httpx.Response(
                200,
                json={
                    "contacts": [{"input": body["contacts"][0], "status": "valid", "wa_id": "5511"}]
                },
            )
        sent_to.append(body["to"])
        if len(sent_to) == 1:
            return httpx.Response(404, json=_api_error("error_1006"))
        return _sent()

    async def run() -> str:
        async with _client(handler) as client:
            return (await client.send_template("5599", TEMPLATE, [], number="+5599")).message_id

    assert asyncio.run(run()) == "gBEGmsg"
    assert sent_to == ["5599", "5511"]


def test_contacts_answers_map_back_to_inputs_whatever_the_order() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            return _login_ok(request)
        inputs = json.loads(request.content)["contacts"]
        answers = [{"input": n, "status": "valid", "wa_id": n.strip("+")} for n in reversed(inputs)]
        return httpx.Response(200, json={"contacts": answers})

    async def run() -> dict[str, str | None]:
        async with _client(handler) as client:
            checks = await client.check_contacts(["+1", "+2", "+3"], batch_size=2)
            return {k: v.wa_id for k, v in checks.items()}

    assert asyncio.run(run()) == {"+1": "1", "+2": "2", "+3": "3"}


def test_contact_batches_go_two_at_a_time_and_a_failure_is_raised_as_itself() -> None:
    in_flight: list[int] = [0]
    most: list[int] = [0]

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("login"):
            return _login_ok(request)
        inputs = json.loads(request.content)["contacts"]
        if "+bad" in inputs:
            return httpx.Response(400, json=_api_error("error_1009"))
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.01)  # the server checking: lets the next call start meanwhile
        in_flight[0] -= 1
        return httpx.Response(
            200, json={"contacts": [{"input": n, "status": "invalid"} for n in inputs]}
        )

    def client() -> OnPremSender:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        return OnPremSender(settings=_settings(), http=http)

    async def check(numbers: list[str]) -> int:
        async with client() as whatsapp:
            return len(await whatsapp.check_contacts(numbers, batch_size=2))

    assert asyncio.run(check([f"+{i}" for i in range(10)])) == 10
    assert most[0] == 2
    with pytest.raises(errors.RecipientError, match="1009"):
        asyncio.run(check(["+1", "+2", "+bad", "+3"]))
