"""Login failures that a real server cannot produce on demand, through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.whatsapp import Template, errors
from connectors.whatsapp.onprem.auth import LoginAuth
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings

TEMPLATE = Template("acme_ns", "order_update", "en")
PASSWORD = "s3cret-pw"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
ACCESS_DENIED = json.loads((FIXTURES / "error_1005.json").read_text())
OVERLOADED = json.loads((FIXTURES / "error_1016.json").read_text())


def _login_ok(token: str = "tok", expires: str = "2099-01-01 00:00:00+00:00") -> httpx.Response:
    return httpx.Response(200, json={"users": [{"token": token, "expires_after": expires}]})


class Api:
    """A fake v1 server: login answers from a script (then success), messages always 201."""

    def __init__(self, logins: list[httpx.Response | Exception]) -> None:
        self.login_script = logins
        self.logins = 0
        self.messages = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            self.logins += 1
            answer = self.login_script.pop(0) if self.login_script else _login_ok()
            if isinstance(answer, Exception):
                raise answer
            return answer
        self.messages += 1
        assert request.headers["Authorization"] == "Bearer tok"
        return httpx.Response(201, json={"messages": [{"id": "gBEGmsg"}]})


def _send(api: Api, **extra: object) -> str:
    settings = WhatsAppSettings.model_validate(
        {
            "base_url": "http://wa.test",
            "username": "admin",
            "password": PASSWORD,
            "backoff_initial_s": 0.001,
            "backoff_max_s": 0.002,
            **extra,
        }
    )

    async def run() -> str:
        http = httpx.AsyncClient(transport=httpx.MockTransport(api))
        async with OnPremSender(settings=settings, http=http) as client:
            return (await client.send_template("16315551001", TEMPLATE, [])).message_id

    return asyncio.run(run())


def _timeout(kind: type[httpx.TransportError]) -> Exception:
    return kind("login", request=httpx.Request("POST", "http://wa.test/v1/users/login"))


@pytest.mark.parametrize(
    ("answer", "transient"),
    [
        (httpx.Response(429, headers={"Retry-After": "0"}), errors.RateLimited),
        (httpx.Response(500), errors.ServerError),
        (httpx.Response(502, text="<html>bad gateway</html>"), errors.ServerError),
        (httpx.Response(503, json=OVERLOADED), errors.Overloaded),
    ],
)
def test_a_login_answered_429_or_5xx_is_retried_not_bad_credentials(
    answer: httpx.Response, transient: type[errors.TransientError]
) -> None:
    api = Api([answer])
    assert _send(api) == "gBEGmsg"
    assert (api.logins, api.messages) == (2, 1)

    failing = Api([answer] * 3)
    with pytest.raises(transient):
        _send(failing, max_attempts=3)
    assert (failing.logins, failing.messages) == (3, 0)


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError]
)
def test_a_login_that_times_out_or_is_reset_never_makes_the_send_outcome_unknown(
    failure: type[httpx.TransportError],
) -> None:
    api = Api([_timeout(failure)])
    assert _send(api) == "gBEGmsg"
    assert (api.logins, api.messages) == (2, 1)

    failing = Api([_timeout(failure) for _ in range(3)])
    with pytest.raises(errors.NetworkError, match="nothing was sent"):
        _send(failing, max_attempts=3)
    assert failing.messages == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, ACCESS_DENIED),
        (403, None),
        (400, ACCESS_DENIED),
    ],
)
def test_a_login_refused_names_the_settings_never_the_password(status: int, body: object) -> None:
    api = Api([httpx.Response(status, json=body)])
    with pytest.raises(errors.AuthenticationError) as caught:
        _send(api)
    message = str(caught.value)
    assert "WHATSAPP_USERNAME" in message and "WHATSAPP_PASSWORD" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value)
    assert (api.logins, api.messages) == (1, 0)  # refused credentials: not retried


def test_a_login_answer_without_a_token_stops_the_run() -> None:
    api = Api([httpx.Response(200, json={"users": []})])
    with pytest.raises(errors.StopRunError, match="token"):
        _send(api)
    assert api.messages == 0


def _expiring(now: list[float], lifetime_s: float) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        expires = datetime.fromtimestamp(now[0] + lifetime_s, UTC).isoformat()
        return _login_ok(expires=expires)

    return handler


def _logins_over(lifetime_s: float, margin_s: float, step_s: float, steps: int) -> int:
    now = [1_800_000_000.0]
    calls = []
    handler = _expiring(now, lifetime_s)

    def counting(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return handler(request)

    auth = LoginAuth(
        base_url="http://wa.test",
        username="admin",
        password=SecretStr(PASSWORD),
        refresh_margin_s=margin_s,
        clock=lambda: now[0],
    )

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(counting)) as http:
            for _ in range(steps):
                await auth.ensure_token(http)
                now[0] += step_s

    asyncio.run(run())
    assert auth.logins == len(calls)
    return len(calls)


def test_the_refresh_margin_shrinks_to_a_quarter_of_a_short_token_lifetime() -> None:
    # A 4 s token with the 60 s margin: one login per call before; now one per 3 s of use.
    assert _logins_over(lifetime_s=4, margin_s=60, step_s=0.5, steps=60) == 10
    # Long-lived tokens keep the configured margin.
    assert _logins_over(lifetime_s=7 * 24 * 3600, margin_s=60, step_s=3600, steps=48) == 1


def test_a_token_already_expired_by_our_clock_is_used_until_the_server_says_401() -> None:
    assert _logins_over(lifetime_s=-30, margin_s=60, step_s=1, steps=20) == 1


def test_a_401_after_login_logs_in_again_once_for_all_concurrent_calls() -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    logins: list[str] = []
    sends = 10

    async def run() -> list[str]:
        all_in_flight = asyncio.Barrier(sends)

        async def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/login"):
                logins.append(next(tokens))
                return _login_ok(token=logins[-1])
            if request.headers["Authorization"] == "Bearer tok-1":
                await all_in_flight.wait()  # every send is refused with the first token
                return httpx.Response(401, json=ACCESS_DENIED)
            body = json.loads(request.content)
            return httpx.Response(201, json={"messages": [{"id": f"id-{body['to']}"}]})

        settings = WhatsAppSettings.model_validate(
            {"base_url": "http://wa.test", "username": "admin", "password": PASSWORD}
        )
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with OnPremSender(settings=settings, http=http) as client:
            calls = [client.send_template(str(n), TEMPLATE, []) for n in range(sends)]
            return [receipt.message_id for receipt in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == [f"id-{n}" for n in range(sends)]
    assert logins == ["tok-1", "tok-2"]


def test_login_token_is_refreshed_before_it_expires() -> None:
    now = [1_000_000.0]
    logins = []

    def handler(request: httpx.Request) -> httpx.Response:
        logins.append(request.headers["Authorization"])
        expires = "1970-01-12 14:00:00+00:00"  # 1,000,800 s: 800 s after the first call
        return httpx.Response(200, json={"users": [{"token": "t", "expires_after": expires}]})

    auth = LoginAuth(
        base_url="http://wa.test",
        username="admin",
        password=SecretStr("pw"),
        refresh_margin_s=60,
        clock=lambda: now[0],
    )

    async def call() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await auth.ensure_token(http)
            now[0] += 600  # still 200 s left: no new login
            await auth.ensure_token(http)
            now[0] += 150  # 50 s left, inside the 60 s margin: log in again first
            await auth.ensure_token(http)

    asyncio.run(call())
    assert len(logins) == 2 and logins[0].startswith("Basic ")
