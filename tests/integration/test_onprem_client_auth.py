"""Login against the sandbox over real HTTP: failing logins, short-lived and revoked tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.whatsapp import Template, errors
from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tests.helpers import sandbox_settings

WELCOME = Template("acme_ns", "welcome", "en")
USER = "+16315551001"
WA_ID = USER[1:]


def _config(**extra: Any) -> SandboxConfig:
    return SandboxConfig(
        rate_limit_messages=None, rate_limit_other=None, rate_limit_login=None, **extra
    )


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(_config(hang_s=5.0)) as running:
        asyncio.run(_check(running))
        yield running


async def _check(sandbox: RunningSandbox) -> None:
    """Make USER a known contact (messages to unchecked numbers are refused), with the API key:
    the record shows no login before the test's own."""
    key = {"username": None, "password": None, "api_key": sandbox.config.api_keys[0]}
    async with OnPremSender(settings=sandbox_settings(sandbox, **key)) as client:
        await client.check_contacts([USER])


def _send_with_a_fresh_login(sandbox: RunningSandbox, **extra: Any) -> str:
    """One send from a new client: its login happens on the way to /v1/messages."""

    async def go() -> str:
        async with OnPremSender(settings=sandbox_settings(sandbox, **extra)) as client:
            return (await client.send_template(WA_ID, WELCOME, [])).message_id

    return asyncio.run(go())


@pytest.mark.parametrize(("fault", "status"), [("503", 503), ("500", 500), ("reset", None)])
def test_a_login_that_fails_transiently_is_retried_and_the_send_goes_through(
    sandbox: RunningSandbox, fault: str, status: int | None
) -> None:
    sandbox.state.script("login", [fault])
    message_id = _send_with_a_fresh_login(sandbox)
    assert [r.status for r in sandbox.state.requests_to("login")] == [status, 200]
    assert [m.message_id for m in sandbox.state.messages_sent()] == [message_id]


def test_a_login_that_hangs_past_the_read_timeout_never_makes_the_send_outcome_unknown(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.script("login", ["hang", "hang"])
    with pytest.raises(errors.NetworkError, match="nothing was sent"):
        _send_with_a_fresh_login(sandbox, read_timeout_s=0.3, max_attempts=2)
    assert sandbox.state.requests_to("messages") == []

    sandbox.state.script("login", ["hang"])
    _send_with_a_fresh_login(sandbox, read_timeout_s=0.3)
    assert len(sandbox.state.messages_sent()) == 1


def test_a_wrong_password_stops_at_the_first_login_naming_the_settings() -> None:
    with start_sandbox(_config()) as sandbox:
        with pytest.raises(errors.AuthenticationError) as caught:
            _send_with_a_fresh_login(sandbox, password="wr0ng-pa55word")
        logins = sandbox.state.requests_to("login")
    assert "WHATSAPP_PASSWORD" in str(caught.value) and "wr0ng-pa55word" not in str(caught.value)
    assert len(logins) == 1  # refused credentials are not retried


def test_short_lived_tokens_cost_a_handful_of_logins_not_one_per_send() -> None:
    lifetime_s, sends = 4.0, 250
    with start_sandbox(_config(token_lifetime_s=lifetime_s)) as sandbox:
        asyncio.run(_check(sandbox))
        started = time.monotonic()

        async def go() -> list[str]:
            limits = SendLimits(rate_per_s=50, concurrency=8)  # ~4 s: a token or two expire
            async with OnPremSender(
                settings=sandbox_settings(sandbox), send_limits=limits
            ) as client:
                calls = [client.send_template(WA_ID, WELCOME, []) for _ in range(sends)]
                return [r.message_id for r in await asyncio.gather(*calls)]

        ids = asyncio.run(go())
        duration = time.monotonic() - started
        logins = len(sandbox.state.requests_to("login"))
        statuses = {r.status for r in sandbox.state.requests_to("messages")}
    assert len(set(ids)) == sends and statuses == {201}
    assert logins >= 2  # the run outlived a token
    # A token is used for at least its lifetime less a quarter of it, less the second that
    # expires_after (whole seconds) may cut off: 2 s here. Before: one login per send.
    assert logins <= 1 + duration // (lifetime_s * 0.75 - 1)


def test_a_revoked_token_costs_exactly_one_login_again_for_all_sends(
    sandbox: RunningSandbox,
) -> None:
    async def go() -> list[str]:
        limits = SendLimits(rate_per_s=1000, concurrency=8)
        async with OnPremSender(settings=sandbox_settings(sandbox), send_limits=limits) as client:
            first = (await client.send_template(WA_ID, WELCOME, [])).message_id
            assert sandbox.state.revoke_all_tokens() == 1
            calls = [client.send_template(WA_ID, WELCOME, []) for _ in range(20)]
            return [first, *(r.message_id for r in await asyncio.gather(*calls))]

    ids = asyncio.run(go())
    assert len(set(ids)) == 21
    assert len(sandbox.state.requests_to("login")) == 2
    assert 401 in {r.status for r in sandbox.state.requests_to("messages")}
