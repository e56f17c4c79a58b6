"""Success statuses with bodies that are not the API's answer, through httpx.MockTransport (a real
server does not answer so on demand)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.whatsapp import Template, errors
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings

TEMPLATE = Template("acme_ns", "order_update", "en")
Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **extra: Any) -> OnPremSender:
    settings = WhatsAppSettings.model_validate(
        {
            "base_url": "http://wa.test",
            "api_key": "k3y-secret",
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.002,
            **extra,
        }
    )
    return OnPremSender(
        settings=settings, http=httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )


def _send(handler: Handler) -> str:
    async def run() -> str:
        async with _client(handler) as client:
            return (await client.send_template("16315551001", TEMPLATE, ["Asha"])).message_id

    return asyncio.run(run())


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(201, text="<html>502 Bad Gateway</html>"),
        httpx.Response(200, content=b"\xff\xfe{"),
    ],
)
def test_a_send_answered_success_but_not_json_is_outcome_unknown_and_not_resent(
    answer: httpx.Response,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answer

    with pytest.raises(errors.OutcomeUnknown, match="not JSON"):
        _send(handler)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"messages": []}, {"messages": [{"id": None}]}, {"messages": [{"id": ""}]}, [], "ok"],
)
def test_a_send_answered_json_without_a_message_id_is_outcome_unknown(body: Any) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201, json=body)

    with pytest.raises(errors.OutcomeUnknown, match="without a message id"):
        _send(handler)
    assert len(calls) == 1


def _contacts(answers: list[httpx.Response], numbers: list[str]) -> tuple[dict[str, Any], int]:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if answers:
            return answers.pop(0)
        inputs = json.loads(request.content)["contacts"]
        valid = [{"input": n, "status": "valid", "wa_id": n.lstrip("+")} for n in inputs]
        return httpx.Response(200, json={"contacts": valid})

    async def run() -> dict[str, Any]:
        async with _client(handler, max_attempts=3) as client:
            checks = await client.check_contacts(numbers)
        return {n: (c.status, c.wa_id) for n, c in checks.items()}

    return asyncio.run(run()), len(calls)


@pytest.mark.parametrize(
    "garbage",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"meta": {}}),
    ],
)
def test_a_contacts_check_answered_garbage_is_asked_again(garbage: httpx.Response) -> None:
    checks, calls = _contacts([garbage], ["+16315551001"])
    assert checks == {"+16315551001": ("valid", "16315551001")}
    assert calls == 2


def test_a_contacts_check_answered_garbage_every_time_is_failed_never_a_crash() -> None:
    garbage = [httpx.Response(200, text="not json") for _ in range(3)]
    checks, calls = _contacts(garbage, ["+16315551001", "+16315551002"])
    assert checks == {"+16315551001": ("failed", None), "+16315551002": ("failed", None)}
    assert calls == 3


def test_a_valid_contact_without_a_wa_id_is_a_failed_check() -> None:
    answer = {"contacts": [{"input": "+16315551001", "status": "valid"}, "junk"]}
    checks, _ = _contacts([httpx.Response(200, json=answer)], ["+16315551001"])
    assert checks == {"+16315551001": ("failed", None)}
