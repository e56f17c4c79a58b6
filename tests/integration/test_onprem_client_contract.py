"""The WhatsApp client against the sandbox over real HTTP: every error row and contacts status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from connectors.whatsapp import ContactCheck, Template, errors
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tests.helpers import sandbox_settings

T = TypeVar("T")
ORDER = Template("acme_ns", "order_update", "en")
WELCOME = Template("acme_ns", "welcome", "en")
USER = "+16315551001"


class Clock:
    """The sandbox's wall clock, moved by tests instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()  # starts in step with the client's clock

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> Iterator[RunningSandbox]:
    config = SandboxConfig(rate_limit_messages=None, rate_limit_other=None, clock=clock)
    with start_sandbox(config) as running:
        yield running


def run(
    sandbox: RunningSandbox,
    body: Callable[[OnPremSender], Awaitable[T]],
    **extra: Any,
) -> T:
    async def go() -> T:
        async with OnPremSender(settings=sandbox_settings(sandbox, **extra)) as client:
            return await body(client)

    return asyncio.run(go())


async def check_then_send(client: OnPremSender, template: Template = WELCOME) -> str:
    checks = await client.check_contacts([USER])
    wa_id = checks[USER].wa_id
    assert wa_id is not None
    return (await client.send_template(wa_id, template, [], number=USER)).message_id


def test_login_then_send_returns_the_message_id(sandbox: RunningSandbox) -> None:
    message_id = run(sandbox, check_then_send)
    assert [m.message_id for m in sandbox.state.messages_sent()] == [message_id]
    assert {r.auth for r in sandbox.state.requests_to("messages")} == {"bearer"}


def test_api_key_and_static_bearer_modes(clock: Clock) -> None:
    config = SandboxConfig(static_tokens=("operator-token",), clock=clock)
    with start_sandbox(config) as sandbox:
        for extra in ({"api_key": "sandbox-api-key"}, {"token": "operator-token"}):
            run(sandbox, check_then_send, username=None, password=None, **extra)
        assert [r.auth for r in sandbox.state.requests_to("messages")] == ["api_key", "static"]
        assert sandbox.state.requests_to("login") == []


def test_expired_token_is_refreshed_by_logging_in_again(
    sandbox: RunningSandbox, clock: Clock
) -> None:
    async def body(client: OnPremSender) -> None:
        await check_then_send(client)
        clock.now += 8 * 24 * 3600  # the server now answers 401 for the old token
        await client.send_template(USER[1:], WELCOME, [], number=USER)

    run(sandbox, body)
    assert len(sandbox.state.requests_to("login")) == 2
    assert len(sandbox.state.messages_sent()) == 2


def test_wrong_password_is_an_authentication_error_without_the_password(
    sandbox: RunningSandbox,
) -> None:
    with pytest.raises(errors.AuthenticationError) as caught:
        run(sandbox, check_then_send, password="not-the-password")
    assert "not-the-password" not in str(caught.value)


@pytest.mark.parametrize("fault", ["500", "503"])
def test_server_faults_are_retried_until_the_send_goes_through(
    sandbox: RunningSandbox, fault: str
) -> None:
    sandbox.state.script("messages", [fault, fault])
    run(sandbox, check_then_send)
    assert [r.status for r in sandbox.state.requests_to("messages")] == [int(fault)] * 2 + [201]


def test_rate_limited_sends_honour_retry_after_and_succeed(clock: Clock) -> None:
    with start_sandbox(SandboxConfig(rate_limit_messages=(2.0, 1), clock=clock)) as sandbox:

        async def body(client: OnPremSender) -> list[str]:
            await client.check_contacts([USER])
            return [
                (await client.send_template(USER[1:], WELCOME, [])).message_id for _ in range(2)
            ]

        ids = run(sandbox, body)
        statuses = [r.status for r in sandbox.state.requests_to("messages")]
    assert len(set(ids)) == 2
    assert 429 in statuses and statuses[-1] == 201


def test_retries_stop_after_max_attempts(sandbox: RunningSandbox) -> None:
    sandbox.state.script("messages", ["503"] * 5)
    with pytest.raises(errors.Overloaded) as caught:
        run(sandbox, check_then_send, max_attempts=3)
    assert (caught.value.status, caught.value.code) == (503, 1016)
    assert len(sandbox.state.requests_to("messages")) == 3


def test_reset_during_a_send_is_outcome_unknown_and_never_resent(sandbox: RunningSandbox) -> None:
    sandbox.state.script("messages", ["reset"])
    with pytest.raises(errors.OutcomeUnknown):
        run(sandbox, check_then_send)
    assert len(sandbox.state.requests_to("messages")) == 1


def test_hang_during_a_send_is_outcome_unknown_after_the_read_timeout(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.hang_s = 5.0
    sandbox.state.script("messages", ["hang"])
    with pytest.raises(errors.OutcomeUnknown):
        run(sandbox, check_then_send, read_timeout_s=0.3)
    deadline = time.monotonic() + 5
    while not sandbox.state.requests_to("messages") and time.monotonic() < deadline:
        time.sleep(0.01)  # the sandbox records a hung request once the client has left
    assert len(sandbox.state.requests_to("messages")) == 1


def test_reset_during_a_contacts_check_is_retried(sandbox: RunningSandbox) -> None:
    sandbox.state.script("contacts", ["reset"])
    checks = run(sandbox, lambda c: c.check_contacts([USER]))
    assert checks[USER].status == "valid"
    assert len(sandbox.state.requests_to("contacts")) == 2


def test_unknown_contact_is_checked_once_and_resent_once(sandbox: RunningSandbox) -> None:
    run(sandbox, lambda c: c.send_template(USER[1:], WELCOME, [], number=USER))
    assert [r.status for r in sandbox.state.requests_to("messages")] == [404, 201]
    assert sandbox.state.contacts_checked() == [USER]


def test_unknown_contact_without_a_number_to_check_is_permanent(sandbox: RunningSandbox) -> None:
    with pytest.raises(errors.UnknownContact) as caught:
        run(sandbox, lambda c: c.send_template(USER[1:], WELCOME, []))
    assert (caught.value.status, caught.value.code) == (404, 1006)


@pytest.mark.parametrize(
    ("template", "params", "error", "code"),
    [
        (Template("acme_ns", "no_such_template", "en"), [], errors.TemplateMismatch, 2001),
        (ORDER, [], errors.TemplateMismatch, 2000),
        (ORDER, ["  "], errors.InvalidRequest, 1009),
    ],
)
def test_bad_templates_are_permanent_errors_with_their_code(
    sandbox: RunningSandbox,
    template: Template,
    params: list[str],
    error: type[errors.WhatsAppError],
    code: int,
) -> None:
    async def body(client: OnPremSender) -> str:
        await client.check_contacts([USER])
        return (await client.send_template(USER[1:], template, params)).message_id

    with pytest.raises(error) as caught:
        run(sandbox, body)
    assert caught.value.code == code and caught.value.status == 400
    assert len(sandbox.state.requests_to("messages")) == 1  # permanent: not retried


def test_every_contacts_status(sandbox: RunningSandbox) -> None:
    sandbox.state.set_processing_numbers(["16315552001"], asks=2)
    sandbox.state.set_failed_numbers(["16315553001"])
    numbers = ["+1 631 555 1001", "+16315551000", "+16315552001", "+16315553001", "+5511987654321"]

    checks: dict[str, ContactCheck] = run(sandbox, lambda c: c.check_contacts(numbers))

    assert {n: (c.status, c.wa_id) for n, c in checks.items()} == {
        "+1 631 555 1001": ("valid", "16315551001"),
        "+16315551000": ("invalid", None),
        "+16315552001": ("valid", "16315552001"),  # resolved before answering (blocking: wait)
        "+16315553001": ("failed", None),
        "+5511987654321": ("valid", "551187654321"),
    }


def test_always_valid_server_answers_valid_for_all(clock: Clock) -> None:
    with start_sandbox(SandboxConfig(always_valid=True, clock=clock)) as sandbox:
        checks = run(sandbox, lambda c: c.check_contacts(["+16315551000"]))
    assert checks["+16315551000"].status == "valid"


def test_answers_in_another_order_map_back_to_their_inputs(clock: Clock) -> None:
    numbers = [f"+1631555{1001 + i}" for i in range(30)]
    with start_sandbox(SandboxConfig(shuffle_contacts=True, clock=clock)) as sandbox:
        checks = run(sandbox, lambda c: c.check_contacts(numbers, batch_size=7))
        calls = len(sandbox.state.requests_to("contacts"))
    assert calls == 5
    for number in numbers:
        expected = None if number.endswith("0") else number[1:]
        assert checks[number].wa_id == expected


def test_a_garbage_answer_to_a_send_is_outcome_unknown_and_never_resent(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.script("messages", ["garbage"])
    with pytest.raises(errors.OutcomeUnknown, match="not JSON"):
        run(sandbox, check_then_send)
    assert [r.fault for r in sandbox.state.requests_to("messages")] == ["garbage"]


def test_garbage_answers_to_a_contacts_check_are_asked_again_then_failed_never_a_crash(
    sandbox: RunningSandbox,
) -> None:
    sandbox.state.script("contacts", ["garbage"])
    assert run(sandbox, lambda c: c.check_contacts([USER]))[USER].status == "valid"
    assert len(sandbox.state.requests_to("contacts")) == 2

    sandbox.state.script("contacts", ["garbage"] * 3)
    checks = run(sandbox, lambda c: c.check_contacts([USER]), max_attempts=3)
    assert checks[USER] == ContactCheck(USER, "failed")
    assert len(sandbox.state.requests_to("contacts")) == 5
