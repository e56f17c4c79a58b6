"""The Cloud client against the Cloud sandbox over real HTTP: every row of cloud-api.md's error
table (issue 15), the success answer, routes and bodies, look-ups, and answers in doubt.

Each error row is produced by the sandbox: by its natural trigger where it has one (an unknown or
paused template, a wrong token, a NAMED template sent without names, the text rules, the
throughput bucket, the pair rate limit, marketing on the wrong endpoint), else by the scripted
`code:<n>` fault, which answers that code with the sandbox's HTTP status for it.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.errors import Kind, kind_of
from connectors.http_server import RunningServer, quiet_config, serve_in_thread
from connectors.whatsapp import SendLimits, SendReceipt, Template, WhatsAppSettings, open_sender
from connectors.whatsapp.cloud.client import PAIR_INTERVAL_S, CloudSender
from connectors.whatsapp.cloud.codes import ADVICE, CODES
from connectors.whatsapp.cloud.sandbox import (
    DEFAULT_TEMPLATES,
    CloudRecordedRequest,
    CloudSandboxConfig,
    CloudTemplate,
    RunningCloudSandbox,
    bsuid_of,
    signature,
    start_cloud_sandbox,
)
from connectors.whatsapp.cloud.sandbox.config import (
    DEFAULT_APP_SECRET,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    DEFAULT_WABA_ID,
    MessagingLimit,
)
from connectors.whatsapp.cloud.sandbox.errors import CATALOGUE
from connectors.whatsapp.cloud.sandbox.webhooks import SIGNATURE_HEADER
from connectors.whatsapp.errors import (
    AccountBlocked,
    AccountRestricted,
    InvalidRequest,
    MarketingLimited,
    MarketingStopped,
    NumberBlocked,
    OutcomeUnknown,
    RateLimited,
    RecipientIncapable,
    ServerError,
    TemplateMismatch,
    TemplateUnavailable,
    TokenExpired,
    UnexpectedError,
    UnknownObject,
    WhatsAppError,
)
from connectors.whatsapp.protocol import PhoneFacts, TemplateInfo
from tests.helpers import wait_until

T = TypeVar("T")
FIXTURES = Path(__file__).parents[1] / "fixtures" / "cloud"
TOKEN, PHONE, WABA, SECRET = (
    DEFAULT_TOKEN,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_WABA_ID,
    DEFAULT_APP_SECRET,
)
WRONG_TOKEN = "expired-system-user-token"
ATTEMPTS = 3
STOPS_AT_ONCE = frozenset(
    {132001, 132015, 132016, 131042, 131048, 131063, 131064, 368, 131031, 190}
)
"""The codes issue 15 says stop the run at their first occurrence."""

ORDER = Template(None, "order_update", "en", "UTILITY", "POSITIONAL")
ALERT = Template(None, "account_alert", "en", "UTILITY", "NAMED", ("first_name",))
SALE = Template(None, "spring_sale", "en", "MARKETING", "NAMED", ("first_name",))
PAUSED = Template(None, "summer_promo", "en", "MARKETING", "NAMED", ("first_name",))
DISABLED = Template(None, "winter_notice", "en", "UTILITY", "POSITIONAL")
WINTER_NOTICE = CloudTemplate(
    name="winter_notice",
    language="en",
    category="UTILITY",
    body="Our winter opening hours start on {{1}}.",
    examples=("Monday",),
    status="DISABLED",
)
_serial = itertools.count(1)


def recipient(last: str = "1") -> str:
    """A number no other test sends to (the pair rate limit), ending in `last` (the number rule)."""
    return f"+4915{next(_serial):07d}{last}"


def fixture(name: str) -> Any:
    """A JSON body from tests/fixtures/cloud, fresh for each use."""
    return json.loads((FIXTURES / name).read_text())


# Sandboxes, settings, sends -------------------------------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[RunningCloudSandbox]:
    config = CloudSandboxConfig(
        templates=(*DEFAULT_TEMPLATES, WINTER_NOTICE),
        throughput_per_s=None,
        pair_interval_s=1.0,
        hang_s=5.0,
    )
    with start_cloud_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: RunningCloudSandbox) -> RunningCloudSandbox:
    state = running.state
    state.reset()
    state.faults.clear()
    state.set_tokens([TOKEN])
    state.marketing_on_messages = True
    state.webhook_url, state.app_secret, state.latency_s = None, SECRET, 0.0
    return running


def cloud_settings(sandbox: RunningCloudSandbox, **extra: Any) -> WhatsAppSettings:
    """Cloud settings for `sandbox`: quick backoff, `ATTEMPTS` attempts; `extra` overrides."""
    values: dict[str, Any] = {
        "api": "cloud",
        "base_url": sandbox.url,
        "phone_number_id": PHONE,
        "waba_id": WABA,
        "token": TOKEN,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "read_timeout_s": 2.0,
        "max_attempts": ATTEMPTS,
        # Plain HTTP to a local sandbox: no TLS to verify, and loading the CA store for each
        # sender's pools would cost about 0.1 s a sender.
        "verify_tls": False,
    }
    return WhatsAppSettings.model_validate(values | extra)


def run(
    settings: WhatsAppSettings,
    body: Callable[[CloudSender], Awaitable[T]],
    *,
    send_limits: SendLimits | None = None,
) -> T:
    """Run `body` with the sender `open_sender` gives for `settings`, then close it."""

    async def go() -> T:
        sender = open_sender(settings, send_limits=send_limits)
        assert isinstance(sender, CloudSender)
        async with sender:
            return await body(sender)

    return asyncio.run(go())


def send(
    sandbox: RunningCloudSandbox,
    template: Template,
    params: Sequence[str],
    *,
    to: str | None = None,
    callback: str | None = None,
    **extra: Any,
) -> SendReceipt:
    """One send through a fresh sender; `extra` goes to the settings."""
    number = to or recipient()

    async def go(sender: CloudSender) -> SendReceipt:
        return await sender.send_template(number, template, params, callback=callback)

    return run(cloud_settings(sandbox, **extra), go)


@dataclass(frozen=True)
class Failure:
    """What a failing send raised, and the requests the sandbox recorded for it."""

    error: WhatsAppError
    requests: list[CloudRecordedRequest]


def send_fails(
    sandbox: RunningCloudSandbox, template: Template, params: Sequence[str], **kwargs: Any
) -> Failure:
    """A send that must raise: the error and the sandbox's record of its requests."""
    before = len(sandbox.state.requests)
    with pytest.raises(WhatsAppError) as caught:
        send(sandbox, template, params, **kwargs)
    return Failure(caught.value, sandbox.state.requests[before:])


def assert_no_secret(error: BaseException) -> None:
    """Neither the right token nor the wrong one shows in the error, its repr or its fields."""
    shown = f"{error} {error!r} {getattr(error, 'title', '')} {getattr(error, 'details', '')}"
    assert TOKEN not in shown and WRONG_TOKEN not in shown


# The error table: one row per code ------------------------------------------------------------

Trigger = Callable[[RunningCloudSandbox], Failure]


def fault(kind: str) -> Trigger:
    """The scripted fault `kind` (`code:<n>`, or a v1 kind) on every attempt of a UTILITY send."""

    def trigger(sandbox: RunningCloudSandbox) -> Failure:
        sandbox.state.faults.script("messages", [kind] * ATTEMPTS)
        return send_fails(sandbox, ORDER, ["A-1042"])

    return trigger


def sends(template: Template, *params: str, **extra: Any) -> Trigger:
    """A send the sandbox refuses by its own rules (template registry, body checks, token)."""

    def trigger(sandbox: RunningCloudSandbox) -> Failure:
        return send_fails(sandbox, template, params, **extra)

    return trigger


def on_own_sandbox(
    config: CloudSandboxConfig, template: Template, *params: str, after_one_send: bool = False
) -> Trigger:
    """A send refused by a sandbox of its own with `config`; `after_one_send`: once a first send
    has taken what the config allows (the throughput bucket's only token)."""

    def trigger(_sandbox: RunningCloudSandbox) -> Failure:
        with start_cloud_sandbox(config) as own:
            if after_one_send:
                send(own, ORDER, ["A-1042"])
            return send_fails(own, template, params)

    return trigger


def same_recipient_twice(sandbox: RunningCloudSandbox) -> Failure:
    """131056: a second message to one recipient within the pair interval (1 s here). One
    attempt: a retry would wait the client's 6 s pair interval (see the dedicated test)."""
    to = recipient()
    send(sandbox, ORDER, ["A-1042"], to=to)
    return send_fails(sandbox, ORDER, ["A-1042"], to=to, max_attempts=1)


def marketing_on_messages_disabled(sandbox: RunningCloudSandbox) -> Failure:
    """131063: the account refuses MARKETING on /messages; the campaign forces that route."""
    sandbox.state.marketing_on_messages = False
    return send_fails(sandbox, SALE, ["Ada"], marketing_route="messages")


@dataclass(frozen=True)
class Row:
    """One row of the error table: the code, how the sandbox is made to answer it, and what the
    client must raise (class, kind); a transient code is tried `attempts` times."""

    code: int
    how: str
    trigger: Trigger
    cls: type[WhatsAppError]
    kind: Kind
    attempts: int = ATTEMPTS

    @property
    def id(self) -> str:
        return f"{self.code}-{self.how}"


ONE_TOKEN = CloudSandboxConfig(throughput_per_s=0.1, throughput_burst=1)
"""A throughput bucket of one send, refilled every 10 s."""
STRICT_TEXT = CloudSandboxConfig(text_format_code=132012)
"""Bad whitespace in a body text answers 132012 instead of 100."""
ROWS = [
    Row(
        130429,
        "throughput",
        on_own_sandbox(ONE_TOKEN, ORDER, "A-1042", after_one_send=True),
        RateLimited,
        "transient",
    ),
    Row(131056, "pair_limit", same_recipient_twice, RateLimited, "transient", attempts=1),
    Row(4, "fault", fault("code:4"), RateLimited, "transient"),
    Row(80007, "fault", fault("code:80007"), RateLimited, "transient"),
    Row(1, "fault_500", fault("500"), ServerError, "transient"),
    Row(2, "fault_503", fault("503"), ServerError, "transient"),
    Row(131000, "fault", fault("code:131000"), ServerError, "transient"),
    Row(131057, "fault", fault("code:131057"), ServerError, "transient"),
    Row(
        100,
        "named_without_names",
        sends(Template(None, "account_alert", "en", "UTILITY", "POSITIONAL"), "Ada"),
        InvalidRequest,
        "recipient",
    ),
    Row(100, "newline_in_text", sends(ORDER, "A-1042\nB"), InvalidRequest, "recipient"),
    Row(131008, "blank_text", sends(ORDER, "   "), InvalidRequest, "recipient"),
    Row(131009, "fault", fault("code:131009"), InvalidRequest, "recipient"),
    Row(132000, "count_mismatch", sends(ORDER, "A-1042", "extra"), TemplateMismatch, "stop_run"),
    Row(132005, "text_too_long", sends(ORDER, "x" * 1025), InvalidRequest, "recipient"),
    Row(
        132012,
        "tab_in_text",
        on_own_sandbox(STRICT_TEXT, ORDER, "A\t1042"),
        InvalidRequest,
        "recipient",
    ),
    Row(
        132001,
        "unknown_template",
        sends(Template(None, "no_such_template", "en", "UTILITY", "POSITIONAL"), "x"),
        TemplateUnavailable,
        "stop_run",
    ),
    Row(132015, "paused_template", sends(PAUSED, "Ada"), TemplateUnavailable, "stop_run"),
    Row(132016, "disabled_template", sends(DISABLED, "Monday"), TemplateUnavailable, "stop_run"),
    Row(
        131063, "marketing_on_messages", marketing_on_messages_disabled, AccountBlocked, "stop_run"
    ),
    Row(
        131064,
        "utility_on_marketing_messages",
        sends(Template(None, "order_update", "en", "MARKETING", "POSITIONAL"), "A-1042"),
        AccountBlocked,
        "stop_run",
    ),
    Row(131042, "fault", fault("code:131042"), AccountBlocked, "stop_run"),
    Row(131048, "fault", fault("code:131048"), NumberBlocked, "stop_run"),
    Row(368, "fault", fault("code:368"), AccountBlocked, "stop_run"),
    Row(131031, "fault", fault("code:131031"), AccountBlocked, "stop_run"),
    Row(130497, "fault", fault("code:130497"), AccountRestricted, "stop_run"),
    Row(190, "wrong_token", sends(ORDER, "A-1042", token=WRONG_TOKEN), TokenExpired, "stop_run"),
    # "Not for templates": a template send should never get it; if one does, stop and look.
    Row(131047, "fault", fault("code:131047"), UnexpectedError, "stop_run"),
]
WEBHOOK_ONLY = (131026, 131049, 131050)


def test_the_rows_cover_every_code_of_the_contracts_error_table() -> None:
    table = {130429, 131056, 4, 80007, 1, 2, 131000, 131057, 100, 131008, 131009, 132000}
    table |= {132005, 132012, 132001, 132015, 132016, 131063, 131064, 131042, 131048, 368}
    table |= {131031, 130497, 190, 131026, 131049, 131050, 131047}
    assert {row.code for row in ROWS} | set(WEBHOOK_ONLY) == table


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_each_error_row_raises_its_class_and_kind_retried_only_if_transient(
    sandbox: RunningCloudSandbox, row: Row
) -> None:
    failure = row.trigger(sandbox)
    error, status = failure.error, CATALOGUE[row.code].status

    assert type(error) is row.cls
    assert kind_of(error) == row.kind
    assert error.stops_at_once is (row.code in STOPS_AT_ONCE)
    assert (error.status, error.code, error.reason) == (status, row.code, str(row.code))
    if isinstance(error, RateLimited):
        assert error.sender_wide is (row.code != 131056)
    assert f"code {row.code}" in str(error)
    assert_no_secret(error)
    tries = row.attempts if row.kind == "transient" else 1
    assert [r.status for r in failure.requests] == [status] * tries


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_each_error_message_says_what_to_do(sandbox: RunningCloudSandbox, row: Row) -> None:
    error = row.trigger(sandbox).error
    assert row.code in ADVICE, f"no advice for code {row.code}"
    assert ADVICE[row.code] in str(error)


# Transient rows: retried until the fault clears --------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (4, "code:4"),
        (80007, "code:80007"),
        (1, "500"),
        (2, "503"),
        (131000, "code:131000"),
        (131057, "code:131057"),
    ],
    ids=str,
)
def test_transient_codes_are_retried_then_succeed_when_the_fault_clears(
    sandbox: RunningCloudSandbox, code: int, kind: str
) -> None:
    sandbox.state.faults.script("messages", [kind] * (ATTEMPTS - 1))
    receipt = send(sandbox, ORDER, ["A-1042"])

    record = sandbox.state.requests_to("messages")
    status = CATALOGUE[code].status
    assert [(r.fault, r.status) for r in record] == [(kind, status)] * (ATTEMPTS - 1) + [
        (None, 200)
    ]
    assert [m.message_id for m in sandbox.state.messages_sent()] == [receipt.message_id]


def test_130429_is_retried_until_the_throughput_bucket_has_room() -> None:
    config = CloudSandboxConfig(throughput_per_s=5, throughput_burst=1, pair_interval_s=0)
    with start_cloud_sandbox(config) as slow:

        async def two(sender: CloudSender) -> list[SendReceipt]:
            return [await sender.send_template(recipient(), ORDER, ["A-1042"]) for _ in range(2)]

        patient = cloud_settings(slow, max_attempts=20, backoff_initial_s=0.05, backoff_max_s=0.1)
        first, second = run(patient, two)

    statuses = [r.status for r in slow.state.requests_to("messages")]
    assert statuses[0] == 200 and statuses[-1] == 200
    assert set(statuses[1:-1]) == {429} and len(statuses) >= 3
    assert [m.message_id for m in slow.state.messages_sent()] == [
        first.message_id,
        second.message_id,
    ]


def test_130429_pauses_every_send_of_the_sender_not_only_the_throttled_one() -> None:
    # Meta sends no Retry-After; the sandbox adds one here so that the pause has a known length.
    config = CloudSandboxConfig(
        throughput_per_s=2, throughput_burst=2, throttle_retry_after_s=1, pair_interval_s=0
    )
    with start_cloud_sandbox(config) as slow:

        async def four(sender: CloudSender) -> list[SendReceipt]:
            calls = [sender.send_template(recipient(), ORDER, ["A-1042"]) for _ in range(4)]
            return await asyncio.gather(*calls)

        limits = SendLimits(rate_per_s=1000, concurrency=1)
        receipts = run(cloud_settings(slow, max_attempts=5), four, send_limits=limits)

    record = slow.state.requests_to("messages")
    throttled = [r for r in record if r.status == 429]
    assert throttled, "the third send should have met the full bucket"
    for hit in throttled:
        later = [r.monotonic - hit.monotonic for r in record if r.monotonic > hit.monotonic]
        assert later and min(later) >= 1.0, f"requests during the pause: {later}"
    assert len(receipts) == 4 and len(slow.state.messages_sent()) == 4


def test_131056_holds_only_that_recipient_for_the_pair_interval(
    sandbox: RunningCloudSandbox,
) -> None:
    to = recipient()
    send(sandbox, ORDER, ["A-1042"], to=to)
    state = sandbox.state

    def refused_once() -> bool:
        return any(r.status == 400 for r in state.requests)

    async def body(sender: CloudSender) -> tuple[SendReceipt, list[SendReceipt]]:
        again = asyncio.ensure_future(sender.send_template(to, ORDER, ["A-1042"]))
        # The other sends start once the sandbox has refused this one.
        await asyncio.to_thread(wait_until, refused_once, 10.0, "the 131056 answer")
        others = asyncio.gather(
            *(sender.send_template(recipient(), ORDER, ["A-1042"]) for _ in range(2))
        )
        return await again, list(await others)

    again, others = run(cloud_settings(sandbox), body)

    record = state.requests_to("messages")
    refused = next(r for r in record if r.status == 400)
    retried = [r for r in record if r.body["to"] == to[1:] and r.monotonic > refused.monotonic]
    elsewhere = [r for r in record if r.body["to"] != to[1:]]
    assert [r.status for r in retried] == [200]
    assert retried[0].monotonic - refused.monotonic >= PAIR_INTERVAL_S
    assert len(elsewhere) == 2 and all(r.status == 200 for r in elsewhere)
    assert all(r.monotonic - refused.monotonic < PAIR_INTERVAL_S / 2 for r in elsewhere)
    sent = {m.message_id for m in state.messages_sent()}
    assert {again.message_id, *(o.message_id for o in others)} <= sent


# Webhook-only codes: a 200 now, a signed `failed` status later -----------------------------------


class Hooks(RunningServer):
    """A small real webhook endpoint that keeps each raw body with its signature header."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str | None]] = []

        async def hook(request: Request) -> Response:
            self.received.append((await request.body(), request.headers.get(SIGNATURE_HEADER)))
            return Response(status_code=200)

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        config = quiet_config(app, host="127.0.0.1", port=0)
        super().__init__(serve_in_thread(config, name="contract-hooks"))
        self.hook_url = f"{self.url}/hook"

    def statuses(self, message_id: str) -> list[dict[str, Any]]:
        """The statuses received for one message, each body's signature checked first."""
        found = []
        for raw, header in list(self.received):
            assert header is not None and hmac.compare_digest(header, signature(raw, SECRET))
            for entry in json.loads(raw)["entry"]:
                for change in entry["changes"]:
                    statuses = change["value"].get("statuses", [])
                    found += [s for s in statuses if s["id"] == message_id]
        return found


@pytest.fixture(scope="module")
def hook_server() -> Iterator[Hooks]:
    with Hooks() as server:
        yield server


@pytest.fixture
def hooks(hook_server: Hooks, sandbox: RunningCloudSandbox) -> Hooks:
    hook_server.received.clear()
    sandbox.state.webhook_url = hook_server.hook_url
    return hook_server


@pytest.mark.parametrize(
    ("code", "template", "params", "last", "cls"),
    [
        (131026, ORDER, ["A-1042"], "0", RecipientIncapable),
        (131049, SALE, ["Ada"], "9", MarketingLimited),
        (131050, SALE, ["Ada"], "8", MarketingStopped),
    ],
    ids=["131026", "131049", "131050"],
)
def test_webhook_only_codes_are_a_200_with_a_wamid_then_a_signed_failed_status(
    sandbox: RunningCloudSandbox,
    hooks: Hooks,
    code: int,
    template: Template,
    params: list[str],
    last: str,
    cls: type[WhatsAppError],
) -> None:
    to = recipient(last)
    receipt = send(sandbox, template, params, to=to, callback=f"campaign-7:{to}")

    assert receipt.message_id.startswith("wamid.")
    assert receipt.message_status == "accepted"
    wait_until(lambda: hooks.statuses(receipt.message_id) != [], what=f"the {code} status")
    [failed] = hooks.statuses(receipt.message_id)
    assert (failed["status"], failed["recipient_id"]) == ("failed", to[1:])
    assert [e["code"] for e in failed["errors"]] == [code]
    assert failed["biz_opaque_callback_data"] == f"campaign-7:{to}"
    assert CODES[code] is cls and kind_of(cls("x")) == "recipient"


# The success answer, routes and bodies -----------------------------------------------------------


def test_the_success_answer_becomes_the_receipt(sandbox: RunningCloudSandbox) -> None:
    to = recipient()
    receipt = send(sandbox, ORDER, ["A-1042"], to=to)
    [sent] = sandbox.state.messages_sent()
    assert receipt == SendReceipt(
        message_id=sent.message_id,
        message_status="accepted",
        user_id=bsuid_of(to, business=WABA),
        wa_id=to[1:],
    )
    assert receipt.user_id is not None and receipt.user_id.startswith("DE.")


def test_marketing_held_for_quality_assessment_is_the_receipts_status(
    sandbox: RunningCloudSandbox,
) -> None:
    receipt = send(sandbox, SALE, ["Ada"], to=recipient("7"))
    assert receipt.message_status == "held_for_quality_assessment"
    assert sandbox.state.messages_sent()[0].message_status == "held_for_quality_assessment"


def test_without_bsuids_the_receipt_has_only_the_wa_id() -> None:
    with start_cloud_sandbox(CloudSandboxConfig(bsuids=False)) as plain:
        to = recipient()
        receipt = send(plain, ORDER, ["A-1042"], to=to)
    assert (receipt.user_id, receipt.wa_id) == (None, to[1:])


@pytest.mark.parametrize(
    ("route", "template", "params", "endpoint"),
    [
        ("auto", SALE, ["Ada"], "marketing_messages"),
        ("auto", ORDER, ["A-1042"], "messages"),
        ("auto", ALERT, ["Ada"], "messages"),
        ("messages", SALE, ["Ada"], "messages"),
        ("messages", ORDER, ["A-1042"], "messages"),
    ],
    ids=["marketing", "utility", "utility_named", "forced_marketing", "forced_utility"],
)
def test_the_category_picks_the_endpoint(
    sandbox: RunningCloudSandbox,
    route: str,
    template: Template,
    params: list[str],
    endpoint: str,
) -> None:
    send(sandbox, template, params, marketing_route=route)
    assert [(r.endpoint, r.status) for r in sandbox.state.requests] == [(endpoint, 200)]
    assert sandbox.state.messages_sent()[0].endpoint == endpoint


@pytest.mark.parametrize(
    ("name", "template", "params"),
    [
        (
            "send_named.json",
            Template(None, "spring_sale", "en", "MARKETING", "NAMED", ("first_name",)),
            ["Ada"],
        ),
        (
            "send_positional.json",
            Template(None, "order_update", "de", "UTILITY", "POSITIONAL"),
            ["A-7"],
        ),
    ],
    ids=["named", "positional"],
)
def test_the_body_is_the_contracts_named_or_positional(
    sandbox: RunningCloudSandbox, name: str, template: Template, params: list[str]
) -> None:
    expected = fixture(name)
    to = recipient()
    expected["to"], expected["biz_opaque_callback_data"] = to[1:], f"campaign-7:{to}"
    send(sandbox, template, params, to=to, callback=f"campaign-7:{to}")

    [request] = sandbox.state.requests
    assert request.body == expected
    assert request.auth == "bearer"
    named = [p for c in request.body["template"]["components"] for p in c["parameters"]]
    assert all(("parameter_name" in p) is (template.parameter_format == "NAMED") for p in named)


def test_callback_data_is_sent_and_echoed_in_every_pushed_status(
    sandbox: RunningCloudSandbox, hooks: Hooks
) -> None:
    to = recipient()
    key = f"campaign-7:{to}"
    receipt = send(sandbox, ORDER, ["A-1042"], to=to, callback=key)

    assert sandbox.state.requests[0].body["biz_opaque_callback_data"] == key
    wait_until(lambda: len(hooks.statuses(receipt.message_id)) == 3, what="three statuses")
    pushed = hooks.statuses(receipt.message_id)
    assert [s["status"] for s in pushed] == ["sent", "delivered", "read"]
    assert {s["biz_opaque_callback_data"] for s in pushed} == {key}
    assert {s["recipient_user_id"] for s in pushed} == {receipt.user_id}


def test_a_looked_up_template_is_sent_on_its_route_with_its_names(
    sandbox: RunningCloudSandbox,
) -> None:
    async def body(sender: CloudSender) -> SendReceipt:
        info = await sender.lookup_template("spring_sale", "en")
        return await sender.send_template(recipient(), info.template(), ["Ada"])

    run(cloud_settings(sandbox), body)
    templates, sent = sandbox.state.requests
    assert (templates.endpoint, sent.endpoint) == ("templates", "marketing_messages")
    [parameter] = sent.body["template"]["components"][0]["parameters"]
    assert parameter["parameter_name"] == "first_name"


# Look-ups: templates and the number's facts -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        (
            "order_update",
            "de",
            TemplateInfo("order_update", "de", "APPROVED", "UTILITY", "POSITIONAL", (), 1),
        ),
        (
            "welcome",
            "en",
            TemplateInfo("welcome", "en", "APPROVED", "UTILITY", "POSITIONAL", (), 0),
        ),
        (
            "spring_sale",
            "en",
            TemplateInfo("spring_sale", "en", "APPROVED", "MARKETING", "NAMED", ("first_name",), 1),
        ),
        (
            "summer_promo",
            "en",
            TemplateInfo("summer_promo", "en", "PAUSED", "MARKETING", "NAMED", ("first_name",), 1),
        ),
        (
            "winter_notice",
            "en",
            TemplateInfo("winter_notice", "en", "DISABLED", "UTILITY", "POSITIONAL", (), 1),
        ),
    ],
    ids=["approved_positional", "no_parameters", "approved_named", "paused", "disabled"],
)
def test_template_lookup_describes_status_category_and_parameters(
    sandbox: RunningCloudSandbox, name: str, language: str, expected: TemplateInfo
) -> None:
    async def body(sender: CloudSender) -> TemplateInfo:
        return await sender.lookup_template(name, language)

    info = run(cloud_settings(sandbox), body)
    assert info == expected
    assert info.approved is (expected.status == "APPROVED")
    [request] = sandbox.state.requests
    assert (request.endpoint, request.query["name"]) == ("templates", name)


def test_an_unknown_template_is_refused_naming_it_and_its_language(
    sandbox: RunningCloudSandbox,
) -> None:
    async def body(sender: CloudSender) -> TemplateInfo:
        return await sender.lookup_template("order_update", "fr")

    with pytest.raises(TemplateUnavailable, match="'order_update' in language 'fr'") as refused:
        run(cloud_settings(sandbox), body)
    assert refused.value.stops_at_once
    assert_no_secret(refused.value)


def test_template_lookup_follows_the_pages_until_the_template_shows_up() -> None:
    # The client asks 100 a page; 230 templates whose names contain the one looked up (the API's
    # name filter matches substrings) put the exact one on the third page.
    crowd = tuple(
        CloudTemplate(name=f"bulk_notice_{n:03d}", language="en", category="UTILITY", body="Hi.")
        for n in range(230)
    )
    target = CloudTemplate(
        name="bulk_notice",
        language="en",
        category="MARKETING",
        body="Hi {{first_name}}.",
        examples=("Ada",),
    )
    with start_cloud_sandbox(CloudSandboxConfig(templates=(*crowd, target))) as many:

        async def body(sender: CloudSender) -> TemplateInfo:
            return await sender.lookup_template("bulk_notice", "en")

        info = run(cloud_settings(many), body)

    assert (info.name, info.category, info.parameter_names) == (
        "bulk_notice",
        "MARKETING",
        ("first_name",),
    )
    pages = many.state.requests_to("templates")
    assert [r.query.get("limit") for r in pages] == ["100"] * 3
    assert ["after" in r.query for r in pages] == [False, True, True]


@pytest.mark.parametrize(
    ("tier", "limit"),
    [
        ("TIER_250", 250),
        ("TIER_2K", 2_000),
        ("TIER_10K", 10_000),
        ("TIER_100K", 100_000),
        ("TIER_UNLIMITED", None),
    ],
)
def test_phone_facts_read_the_tier_into_a_messaging_limit(
    tier: MessagingLimit, limit: int | None
) -> None:
    with start_cloud_sandbox(
        CloudSandboxConfig(messaging_limit=tier, quality_rating="YELLOW")
    ) as own:

        async def body(sender: CloudSender) -> PhoneFacts:
            return await sender.phone_facts()

        facts = run(cloud_settings(own), body)
    assert facts == PhoneFacts(
        phone_number_id=PHONE,
        display_phone_number="+1 555-078-3881",
        quality_rating="YELLOW",
        throughput_level="STANDARD",
        messaging_limit=limit,
        limit_known=True,
        messaging_limit_tier=tier,
    )


def test_health_proves_the_token_and_a_wrong_one_stops_at_once(
    sandbox: RunningCloudSandbox,
) -> None:
    async def health(sender: CloudSender) -> Any:
        return await sender.health()

    assert run(cloud_settings(sandbox), health)["messaging_limit"] == 100_000
    with pytest.raises(TokenExpired, match="WHATSAPP_TOKEN") as refused:
        run(cloud_settings(sandbox, token=WRONG_TOKEN), health)
    assert refused.value.stops_at_once
    assert_no_secret(refused.value)


def test_an_unknown_phone_number_id_is_refused_naming_its_setting(
    sandbox: RunningCloudSandbox,
) -> None:
    async def facts(sender: CloudSender) -> PhoneFacts:
        return await sender.phone_facts()

    with pytest.raises(UnknownObject, match="WHATSAPP_PHONE_NUMBER_ID=999") as refused:
        run(cloud_settings(sandbox, phone_number_id="999"), facts)
    assert refused.value.stops_at_once
    assert len(sandbox.state.requests) == 1


# Answers in doubt: the message may have gone out, never resent ----------------------------------


@pytest.mark.parametrize("kind", ["garbage", "reset", "hang"])
def test_a_send_without_a_readable_answer_is_outcome_unknown_and_not_resent(
    sandbox: RunningCloudSandbox, kind: str
) -> None:
    sandbox.state.faults.script("messages", [kind])
    failure = send_fails(sandbox, ORDER, ["A-1042"], read_timeout_s=0.3)

    assert type(failure.error) is OutcomeUnknown
    assert kind_of(failure.error) == "outcome_unknown"
    assert not failure.error.stops_at_once
    assert_no_secret(failure.error)
    wait_until(lambda: len(sandbox.state.requests) == 1, what="the faulty request recorded")
    [request] = sandbox.state.requests
    assert (request.fault, request.status) == (kind, 200 if kind == "garbage" else None)


@pytest.mark.parametrize("kind", ["garbage", "reset", "hang"])
def test_a_lookup_without_a_readable_answer_is_asked_again(
    sandbox: RunningCloudSandbox, kind: str
) -> None:
    sandbox.state.faults.script("templates", [kind])

    async def body(sender: CloudSender) -> TemplateInfo:
        return await sender.lookup_template("order_update", "en")

    assert run(cloud_settings(sandbox, read_timeout_s=0.3), body).approved
    wait_until(lambda: len(sandbox.state.requests) == 2, what="both look-ups recorded")
    assert sorted(str(r.fault) for r in sandbox.state.requests) == sorted([kind, "None"])
