"""The send loop against answers a real server does not give on demand (httpx.MockTransport):
whatever one send meets, the others of its turn keep their results and nothing crashes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.warehouse import ledger
from connectors.whatsapp import Template
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings
from tasks.send.loop import CircuitOpenError, send_all
from tasks.send.messages import Outgoing

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
TEMPLATE = Template("acme_ns", "order_update", "en")
Handler = Callable[[httpx.Request], httpx.Response]


class Ledger:
    """An in-memory ledger writer that lets every claim through and keeps every result."""

    def __init__(self) -> None:
        self.results: dict[str, ledger.Result] = {}
        self.claimed: list[str] = []

    def __call__(
        self, results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]
    ) -> frozenset[str]:
        self.results.update((r.phone_e164, r) for r in results)
        self.claimed += [c.phone_e164 for c in claims]
        return frozenset(c.phone_e164 for c in claims)


def _body(name: str) -> Any:
    """An error body the API sends, from tests/fixtures/api/."""
    return json.loads((FIXTURES / name).read_text())


def _items(count: int) -> list[Outgoing]:
    return [Outgoing(f"+4915112{i:06d}", str(i), f"4915112{i:06d}", ("Ada",)) for i in range(count)]


def _run(handler: Handler, items: list[Outgoing], write: Ledger, threshold: int = 10) -> None:
    settings = WhatsAppSettings(
        base_url="http://wa.test",
        api_key="k3y-secret",  # type: ignore[arg-type]
        backoff_initial_s=0.001,
        backoff_max_s=0.002,
        max_attempts=2,
    )

    async def run() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with OnPremSender(settings=settings, http=http) as client:
            await send_all(
                client, items, TEMPLATE, write=write, concurrency=4, breaker_threshold=threshold
            )
        await http.aclose()

    asyncio.run(run())


def _to(request: httpx.Request) -> str:
    return str(json.loads(request.content)["to"])


def test_a_success_without_json_or_message_id_is_that_sends_unknown_and_the_rest_go_on() -> None:
    items = _items(12)
    odd = {
        items[3].wa_id: httpx.Response(200, text="not json"),
        items[7].wa_id: httpx.Response(201, json={"messages": []}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        to = _to(request)
        return odd.get(to) or httpx.Response(201, json={"messages": [{"id": f"gBE{to}"}]})

    write = Ledger()
    _run(handler, items, write)

    states = {phone: result.state for phone, result in write.results.items()}
    assert states.pop(items[3].phone_e164) == states.pop(items[7].phone_e164) == "unknown"
    assert set(states.values()) == {"sent"} and len(states) == 10


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(418, text="I'm a teapot"),
        httpx.Response(409, json=_body("error_99999.json")),
        httpx.Response(403, json={"errors": [{"title": "Forbidden"}]}),
    ],
    ids=["unknown-status", "unknown-code", "403-no-code"],
)
def test_an_answer_nobody_foresaw_opens_the_breaker_and_stays_retryable(
    answer: httpx.Response,
) -> None:
    write = Ledger()

    with pytest.raises(CircuitOpenError, match=r"\d+ sends in a row failed"):
        _run(lambda _request: answer, _items(40), write, threshold=5)

    assert 5 <= len(write.claimed) <= 5 + 4  # the threshold, plus what was in flight
    assert all(r.state == "send_failed" and r.retryable for r in write.results.values())
    assert all(r.campaign_level for r in write.results.values())


def test_a_recipients_own_failure_is_permanent_and_does_not_open_the_breaker() -> None:
    items = _items(20)
    refused = httpx.Response(400, json=_body("error_1013.json"))
    write = Ledger()

    _run(lambda _request: refused, items, write, threshold=5)

    assert len(write.results) == 20
    assert all(not r.retryable and not r.campaign_level for r in write.results.values())
    assert {r.error_code for r in write.results.values()} == {"1013"}


@pytest.mark.parametrize("code", [131048, 132015, 190])
def test_an_error_that_stops_a_run_by_itself_stops_it_at_the_first_send(code: int) -> None:
    answer = httpx.Response(400, json=_body(f"cloud_error_{code}.json"))
    write = Ledger()

    with pytest.raises(CircuitOpenError, match=rf"stopped at the first send .*{code}") as caught:
        _run(lambda _request: answer, _items(40), write, threshold=10)

    assert "what was sent stays recorded" in str(caught.value)
    assert len(write.claimed) <= 4  # the first failure, plus what was already in flight
    assert all(r.retryable and r.stops_at_once for r in write.results.values())
