"""The WhatsApp Cloud sandbox over real HTTP: auth, objects, templates, sends, limits, webhooks."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.http_server import RunningServer, quiet_config, serve_in_thread
from connectors.whatsapp.cloud.sandbox import (
    CloudSandboxConfig,
    CloudTemplate,
    RunningCloudSandbox,
    bsuid_of,
    start_cloud_sandbox,
)
from connectors.whatsapp.sandbox.__main__ import main as dispatch
from tests.helpers import wait_until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cloud"
TOKEN = "sandbox-cloud-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONE = "106540352242922"
WABA = "102290129340398"
SECRET = "sandbox-app-secret"
MESSAGES = f"/v23.0/{PHONE}/messages"
MARKETING = f"/v23.0/{PHONE}/marketing_messages"
TEMPLATES = f"/v23.0/{WABA}/message_templates"


def fixture(name: str) -> Any:
    """A JSON body from tests/fixtures/cloud, fresh for each use."""
    return json.loads((FIXTURES / name).read_text())


def named(to: str = "+4915112345671", **template: Any) -> dict[str, Any]:
    """The NAMED (spring_sale, MARKETING) send fixture, with `to` and template fields replaced."""
    body: dict[str, Any] = copy.deepcopy(fixture("send_named.json"))
    body["to"] = to
    body["template"].update(template)
    return body


def positional(to: str = "4915112345671", *texts: str, **template: Any) -> dict[str, Any]:
    """The POSITIONAL (order_update de, UTILITY) send fixture; `texts` replace its parameters."""
    body: dict[str, Any] = copy.deepcopy(fixture("send_positional.json"))
    body["to"] = to
    body["biz_opaque_callback_data"] = f"order-update:{to}"
    if texts:
        parameters = [{"type": "text", "text": t} for t in texts]
        body["template"]["components"] = [{"type": "body", "parameters": parameters}]
    body["template"].update(template)
    return body


def with_params(body: dict[str, Any], *parameters: dict[str, Any]) -> dict[str, Any]:
    """`body` with its body-component parameters replaced."""
    body["template"]["components"] = [{"type": "body", "parameters": list(parameters)}]
    return body


def code_of(response: httpx.Response) -> tuple[int, int]:
    """(HTTP status, Cloud error code) of an error answer."""
    return response.status_code, int(response.json()["error"]["code"])


def without_trace(body: dict[str, Any]) -> dict[str, Any]:
    body["error"]["fbtrace_id"] = "<trace>"
    return body


class FakeClock:
    """Injectable wall clock: the pair limit and webhook timestamps without waiting."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def running(clock: FakeClock) -> Iterator[RunningCloudSandbox]:
    config = CloudSandboxConfig(clock=clock, throughput_burst=100_000, hang_s=2.0)
    with start_cloud_sandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: RunningCloudSandbox) -> RunningCloudSandbox:
    state = running.state
    state.reset()
    state.faults.clear()
    state.webhook_url, state.app_secret, state.latency_s = None, SECRET, 0.0
    state.set_tokens([TOKEN])
    state.marketing_on_messages = True
    return running


@pytest.fixture
def client(sandbox: RunningCloudSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers=AUTH, timeout=5.0) as http:
        yield http


class Receiver(RunningServer):
    """A small real webhook endpoint: keeps each raw body and signature; answers `statuses`."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str | None]] = []
        self.statuses: deque[int] = deque()

        async def hook(request: Request) -> Response:
            self.received.append((await request.body(), request.headers.get("x-hub-signature-256")))
            return Response(status_code=self.statuses.popleft() if self.statuses else 200)

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        super().__init__(serve_in_thread(quiet_config(app, host="127.0.0.1", port=0), name="hook"))
        self.hook_url = f"{self.url}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        """The bodies received whose signature is valid under the sandbox's default secret."""
        valid = []
        for raw, header in list(self.received):
            expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            assert header is not None and hmac.compare_digest(header, expected)
            valid.append(json.loads(raw))
        return valid


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def receiver(receiver_server: Receiver, sandbox: RunningCloudSandbox) -> Receiver:
    receiver_server.received.clear()
    receiver_server.statuses.clear()
    sandbox.state.webhook_url = receiver_server.hook_url
    return receiver_server


def statuses(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every status object in the received envelopes, in arrival order."""
    return [
        status
        for body in bodies
        for change in body["entry"][0]["changes"]
        for status in change["value"].get("statuses", [])
    ]


# Authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/v23.0/{PHONE}"), ("GET", TEMPLATES), ("POST", MESSAGES), ("POST", MARKETING)],
    ids=["phone_number", "templates", "messages", "marketing_messages"],
)
@pytest.mark.parametrize(
    "auth",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["none", "wrong_token", "not_bearer"],
)
def test_every_call_without_a_valid_token_is_190_with_401(
    sandbox: RunningCloudSandbox, method: str, path: str, auth: dict[str, str]
) -> None:
    with httpx.Client(base_url=sandbox.url, headers=auth) as http:
        answer = http.request(method, path, json=positional() if method == "POST" else None)
    assert code_of(answer) == (401, 190)
    assert answer.json()["error"]["type"] == "OAuthException"
    assert sandbox.state.messages_sent() == []


def test_wrong_token_answer_matches_the_fixture(sandbox: RunningCloudSandbox) -> None:
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer x"}) as http:
        answer = http.get(f"/v23.0/{PHONE}")
    assert without_trace(answer.json()) == fixture("error_190.json")


def test_token_in_the_query_works_and_revoking_tokens_answers_190(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    with httpx.Client(base_url=sandbox.url) as bare:
        assert bare.get(f"/v23.0/{PHONE}", params={"access_token": TOKEN}).status_code == 200
        assert client.post("/sandbox/account", json={"tokens": ["rotated"]}).status_code == 200
        assert code_of(client.get(f"/v23.0/{PHONE}")) == (401, 190)
        rotated = {"Authorization": "Bearer rotated"}
        assert bare.get(f"/v23.0/{PHONE}", headers=rotated).status_code == 200
    assert [r.auth for r in sandbox.state.requests] == ["query", None, "bearer"]


# Phone number and WABA ------------------------------------------------------------------------


def test_phone_number_facts_answer_the_asked_fields(client: httpx.Client) -> None:
    fields = ["display_phone_number", "quality_rating", "throughput"]
    fields.append("whatsapp_business_manager_messaging_limit")
    answer = client.get(f"/v23.0/{PHONE}", params={"fields": ",".join(fields)})
    assert answer.status_code == 200
    assert answer.json() == fixture("phone_number.json")


def test_a_number_of_1000_per_second_reports_high_throughput() -> None:
    config = CloudSandboxConfig(throughput_per_s=1000.0, messaging_limit="TIER_UNLIMITED")
    with start_cloud_sandbox(config) as fast, httpx.Client(base_url=fast.url, headers=AUTH) as http:
        facts = http.get(f"/v23.0/{PHONE}").json()
    assert facts["throughput"] == {"level": "HIGH"}
    assert facts["whatsapp_business_manager_messaging_limit"] == "TIER_UNLIMITED"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v23.0/999000111"),
        ("GET", "/v23.0/999000111/message_templates"),
        ("GET", f"/v23.0/{PHONE}/message_templates"),
        ("POST", "/v23.0/999000111/messages"),
        ("POST", "/v23.0/999000111/marketing_messages"),
    ],
    ids=["phone_number", "templates", "templates_of_a_phone", "messages", "marketing_messages"],
)
def test_unknown_object_ids_are_error_100(client: httpx.Client, method: str, path: str) -> None:
    answer = client.request(method, path, json=positional() if method == "POST" else None)
    assert code_of(answer) == (400, 100)
    error = answer.json()["error"]
    assert error["type"] == "GraphMethodException"
    assert "does not exist" in error["error_data"]["details"]


def test_unknown_field_is_error_100_naming_it(client: httpx.Client) -> None:
    answer = client.get(f"/v23.0/{PHONE}", params={"fields": "quality_rating,colour"})
    assert code_of(answer) == (400, 100)
    assert "(colour)" in answer.json()["error"]["error_data"]["details"]


def test_any_graph_version_is_served_and_a_malformed_one_is_404(client: httpx.Client) -> None:
    assert client.get(f"/v21.0/{PHONE}").status_code == 200
    assert client.get(f"/v24.1/{WABA}").json() == {
        "name": "Sandbox Business",
        "currency": "USD",
        "timezone_id": "1",
        "id": WABA,
    }
    for path in (f"/latest/{PHONE}", f"/v23/{PHONE}", "/v23.0/a/b/c"):
        assert code_of(client.get(path)) == (404, 100)


# Templates ------------------------------------------------------------------------------------


def test_templates_page_with_limit_and_after_until_no_next(client: httpx.Client) -> None:
    seen: list[tuple[str, str, str, str]] = []
    params: dict[str, str] = {"limit": "2", "fields": "name,language,status,category"}
    pages = 0
    while True:
        answer = client.get(TEMPLATES, params=params).json()
        pages += 1
        seen += [(t["name"], t["language"], t["status"], t["category"]) for t in answer["data"]]
        assert len(answer["data"]) <= 2
        if "next" not in answer["paging"]:
            break
        params["after"] = answer["paging"]["cursors"]["after"]
        assert answer["paging"]["next"].startswith(f"{client.base_url}{TEMPLATES}?")
    assert pages == 6
    assert seen == [
        ("order_update", "en", "APPROVED", "UTILITY"),
        ("order_update", "de", "APPROVED", "UTILITY"),
        ("spring_sale", "en", "APPROVED", "MARKETING"),
        ("welcome", "en", "APPROVED", "UTILITY"),
        ("summer_promo", "en", "PAUSED", "MARKETING"),
        ("account_alert", "en", "APPROVED", "UTILITY"),
        ("order_shipped", "en", "APPROVED", "UTILITY"),
        ("order_shipped", "de", "APPROVED", "UTILITY"),
        ("order_shipped", "fr", "PENDING", "UTILITY"),
        ("spring_coupon", "en", "APPROVED", "MARKETING"),
        ("terms_update", "en", "APPROVED", "UTILITY"),
        ("product_video", "en", "APPROVED", "UTILITY"),
    ]


def test_template_lookup_by_name_gives_format_components_and_example(client: httpx.Client) -> None:
    fields = "name,language,status,category,parameter_format,components"
    answer = client.get(TEMPLATES, params={"name": "spring_sale", "fields": fields}).json()
    expected = fixture("template_spring_sale.json")
    expected["data"][0]["id"] = answer["data"][0]["id"]
    expected["paging"]["cursors"] = answer["paging"]["cursors"]
    assert answer == expected
    positional_one = client.get(TEMPLATES, params={"name": "order_update", "language": "de"})
    template = positional_one.json()["data"][0]
    assert (template["parameter_format"], template["language"]) == ("POSITIONAL", "de")
    assert template["components"][0]["text"].count("{{1}}") == 1
    empty = client.get(TEMPLATES, params={"name": "no_such_template"}).json()
    assert empty == {"data": []}


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "many"}, {"after": "not-a-cursor"}, {"fields": "name,colour"}],
    ids=["zero_limit", "text_limit", "bad_cursor", "unknown_field"],
)
def test_bad_paging_parameters_are_error_100(client: httpx.Client, params: dict[str, str]) -> None:
    assert code_of(client.get(TEMPLATES, params=params)) == (400, 100)


# Sends ----------------------------------------------------------------------------------------


def test_named_and_positional_sends_are_accepted_with_wamid_and_bsuid(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    marketing = client.post(MARKETING, json=named("+4915112345671"))
    utility = client.post(MESSAGES, json=positional("4915112345672"))
    assert (marketing.status_code, utility.status_code) == (200, 200)
    first, second = marketing.json(), utility.json()
    assert first["success"] is True and "success" not in second
    assert first["contacts"] == [
        {
            "input": "+4915112345671",
            "wa_id": "4915112345671",
            "user_id": bsuid_of("4915112345671", business=WABA),
        }
    ]
    ids = [first["messages"][0]["id"], second["messages"][0]["id"]]
    assert all(i.startswith("wamid.") for i in ids) and ids[0] != ids[1]
    assert [a["messages"][0]["message_status"] for a in (first, second)] == ["accepted"] * 2
    sent = sandbox.state.messages_sent()
    assert [(s.to, s.template, s.language, s.params, s.endpoint) for s in sent] == [
        ("4915112345671", "spring_sale", "en", ("Ada",), "marketing_messages"),
        ("4915112345672", "order_update", "de", ("A-7",), "messages"),
    ]
    assert [s.message_id for s in sent] == ids
    assert sent[0].callback_data == "spring-sale:4915112345671"


def test_marketing_templates_go_to_messages_too_unless_disabled(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    assert client.post(MESSAGES, json=named("4915112345671")).status_code == 200
    client.post("/sandbox/account", json={"marketing_on_messages": False})
    refused = client.post(MESSAGES, json=named("4915112345672"))
    assert code_of(refused) == (400, 131063)
    assert client.post(MARKETING, json=named("4915112345673")).status_code == 200
    assert client.post(MESSAGES, json=positional("4915112345674")).status_code == 200
    assert sandbox.state.stats()["messages.rejected.131063"] == 1


BAD_TEXT = "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body` without `key`."""
    return {k: v for k, v in body.items() if k != key}


PARAM = {"type": "text", "text": "Ada"}
FREE_FORM = {"messaging_product": "whatsapp", "to": "4915112345671", "type": "text", "text": {}}
REFUSALS: list[tuple[str, str, dict[str, Any], tuple[int, int], str]] = [
    # (id, endpoint, body, (HTTP status, code), a fragment of the details)
    ("no_product", MESSAGES, without(positional(), "messaging_product"), (400, 100), "product"),
    ("to_not_digits", MESSAGES, positional("call-me"), (400, 100), "to:"),
    ("free_form_text", MESSAGES, FREE_FORM, (400, 131047), "24 hours"),
    ("unknown_name", MESSAGES, positional(name="nope"), (404, 132001), "(nope)"),
    ("unknown_language", MESSAGES, positional(language={"code": "fr"}), (404, 132001), "in fr"),
    ("paused", MARKETING, named(name="summer_promo"), (400, 132015), "paused"),
    ("named_no_name", MARKETING, with_params(named(), PARAM), (400, 100), "Parameter name"),
    (
        "named_wrong_name",
        MARKETING,
        with_params(named(), {**PARAM, "parameter_name": "name"}),
        (400, 132000),
        "['name']",
    ),
    (
        "positional_with_name",
        MESSAGES,
        with_params(positional(), {**PARAM, "parameter_name": "first_name"}),
        (400, 132000),
        "POSITIONAL",
    ),
    ("positional_two", MESSAGES, positional("4915112345671", "a", "b"), (400, 132000), "(2)"),
    ("positional_none", MESSAGES, with_params(positional()), (400, 132000), "(0)"),
    (
        "welcome_with_param",
        MESSAGES,
        positional(name="welcome", language={"code": "en"}),
        (400, 132000),
        "(1) does not match the expected number of params (0)",
    ),
    ("newline", MESSAGES, positional("4915112345671", "A\n7"), (400, 100), BAD_TEXT),
    ("tab", MESSAGES, positional("4915112345671", "A\t7"), (400, 100), BAD_TEXT),
    ("five_spaces", MESSAGES, positional("4915112345671", "A     7"), (400, 100), BAD_TEXT),
    ("over_1024", MESSAGES, positional("4915112345671", "x" * 1025), (400, 132005), "1025"),
    ("empty_text", MESSAGES, positional("4915112345671", " "), (400, 131008), "missing"),
    ("utility_on_marketing", MARKETING, positional(), (400, 131064), "UTILITY"),
    (
        "currency_parameter",
        MESSAGES,
        with_params(positional(), {"type": "currency"}),
        (400, 131009),
        "text parameters",
    ),
    ("bad_policy", MARKETING, {**named(), "product_policy": "LAX"}, (400, 100), "product_policy"),
]


@pytest.mark.parametrize(
    ("endpoint", "body", "expected", "details"),
    [refusal[1:] for refusal in REFUSALS],
    ids=[refusal[0] for refusal in REFUSALS],
)
def test_send_problems_answer_their_cloud_code(
    client: httpx.Client,
    sandbox: RunningCloudSandbox,
    endpoint: str,
    body: dict[str, Any],
    expected: tuple[int, int],
    details: str,
) -> None:
    answer = client.post(endpoint, json=body)
    assert code_of(answer) == expected
    assert details in answer.json()["error"]["error_data"]["details"]
    assert sandbox.state.messages_sent() == []
    name = endpoint.rsplit("/", 1)[1]
    assert sandbox.state.stats()[f"{name}.rejected.{expected[1]}"] == 1


def test_count_mismatch_answer_matches_the_fixture(client: httpx.Client) -> None:
    answer = client.post(MESSAGES, json=with_params(positional()))
    assert without_trace(answer.json()) == fixture("error_132000.json")


def test_malformed_json_is_error_100_and_recorded_as_such(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    answer = client.post(MESSAGES, content=b"{not json", headers={"Content-Type": "text/plain"})
    assert code_of(answer) == (400, 100)
    assert sandbox.state.requests_to("messages")[0].body == "<malformed JSON>"


def test_disabled_and_pending_templates_and_format_code_are_configurable() -> None:
    templates = (
        CloudTemplate(name="old", language="en", category="UTILITY", body="x", status="DISABLED"),
        CloudTemplate(name="new", language="en", category="UTILITY", body="y", status="PENDING"),
        CloudTemplate(name="hi", language="en", category="UTILITY", body="{{1}}", examples=("A",)),
    )
    config = CloudSandboxConfig(templates=templates, text_format_code=132012)
    with start_cloud_sandbox(config) as own, httpx.Client(base_url=own.url, headers=AUTH) as http:
        old = with_params(positional(name="old", language={"code": "en"}))
        new = with_params(positional(name="new", language={"code": "en"}))
        tabbed = positional("4915112345671", "A\tB", name="hi", language={"code": "en"})
        assert code_of(http.post(MESSAGES, json=old)) == (400, 132016)
        assert code_of(http.post(MESSAGES, json=new)) == (404, 132001)
        assert code_of(http.post(MESSAGES, json=tabbed)) == (400, 132012)


# Throughput and the pair rate limit -----------------------------------------------------------


@pytest.mark.parametrize("status", [429, 400])
def test_sends_above_the_throughput_are_130429_without_retry_after(
    status: Literal[429, 400],
) -> None:
    config = CloudSandboxConfig(throughput_per_s=0.5, throughput_burst=2, throttle_status=status)
    with start_cloud_sandbox(config) as slow, httpx.Client(base_url=slow.url, headers=AUTH) as http:
        answers = [http.post(MESSAGES, json=positional(f"491511234567{n}")) for n in (1, 2, 3)]
        assert [a.status_code for a in answers] == [200, 200, status]
        assert code_of(answers[2]) == (status, 130429)
        assert "retry-after" not in answers[2].headers
        assert slow.state.stats()["messages.rejected.130429"] == 1
        other_calls = http.get(f"/v23.0/{PHONE}")
        assert other_calls.status_code == 200


def test_pair_rate_limit_is_131056_until_the_interval_passes(
    client: httpx.Client, clock: FakeClock
) -> None:
    assert client.post(MESSAGES, json=positional("4915112345671")).status_code == 200
    again = client.post(MARKETING, json=named("+4915112345671"))
    assert code_of(again) == (400, 131056)
    assert client.post(MESSAGES, json=positional("4915112345672")).status_code == 200
    clock.advance(5.9)
    assert code_of(client.post(MESSAGES, json=positional("4915112345671"))) == (400, 131056)
    clock.advance(0.2)
    assert client.post(MESSAGES, json=positional("4915112345671")).status_code == 200


def test_pair_interval_zero_turns_the_pair_limit_off() -> None:
    config = CloudSandboxConfig(pair_interval_s=0)
    with start_cloud_sandbox(config) as free, httpx.Client(base_url=free.url, headers=AUTH) as http:
        assert [http.post(MESSAGES, json=positional()).status_code for _ in range(3)] == [200] * 3
        assert free.state.stats()["recipients.unique"] == 1


# Asynchronous outcomes and signed webhooks ----------------------------------------------------


def test_delivered_send_pushes_signed_sent_delivered_read_with_pricing(
    client: httpx.Client, receiver: Receiver, clock: FakeClock
) -> None:
    answer = client.post(MESSAGES, json=positional("4915112345671")).json()
    wamid, bsuid = answer["messages"][0]["id"], answer["contacts"][0]["user_id"]

    wait_until(lambda: len(receiver.received) == 3, what="three status pushes")
    bodies = receiver.bodies()
    expected = fixture("status_sent.json")
    status = expected["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id=wamid, recipient_user_id=bsuid, timestamp=str(int(clock.now)))
    assert bodies[0] == expected
    pushed = statuses(bodies)
    assert [s["status"] for s in pushed] == ["sent", "delivered", "read"]
    assert [int(s["timestamp"]) for s in pushed] == [int(clock.now) + i for i in range(3)]
    assert "pricing" not in pushed[2] and pushed[1]["pricing"]["category"] == "utility"


def test_number_rule_failures_arrive_by_webhook_after_a_200(
    client: httpx.Client, receiver: Receiver, clock: FakeClock
) -> None:
    sends = [
        (MESSAGES, positional("4915112345670"), 131026),
        (MARKETING, named("4915112345679"), 131049),
        (MARKETING, named("4915112345678"), 131050),
    ]
    wamids = []
    for endpoint, body, _code in sends:
        answer = client.post(endpoint, json=body)
        assert answer.status_code == 200
        wamids.append(answer.json()["messages"][0]["id"])

    wait_until(lambda: len(receiver.received) == 3, what="three failed pushes")
    failed = {s["id"]: s for s in statuses(receiver.bodies())}
    assert [failed[w]["errors"][0]["code"] for w in wamids] == [code for *_, code in sends]
    assert all(s["status"] == "failed" and "pricing" not in s for s in failed.values())
    expected = fixture("status_failed_131026.json")
    status = expected["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id=wamids[0], timestamp=str(int(clock.now)))
    assert next(b for b in receiver.bodies() if wamids[0] in json.dumps(b)) == expected


def test_marketing_to_a_number_ending_7_is_held_then_released(
    client: httpx.Client, receiver: Receiver
) -> None:
    held = client.post(MARKETING, json=named("4915112345677")).json()
    assert held["messages"][0]["message_status"] == "held_for_quality_assessment"
    wait_until(lambda: len(receiver.received) == 2, what="sent and delivered")
    pushed = statuses(receiver.bodies())
    assert [s["status"] for s in pushed] == ["sent", "delivered"]
    assert {s["pricing"]["category"] for s in pushed} == {"marketing"}
    utility = client.post(MESSAGES, json=positional("4915112345687")).json()
    assert utility["messages"][0]["message_status"] == "accepted"


def test_user_preferences_stop_is_pushed_and_fails_later_marketing_until_resume(
    client: httpx.Client, receiver: Receiver, clock: FakeClock
) -> None:
    stop = {"wa_id": "4915112345671", "value": "stop"}
    assert client.post("/sandbox/user_preferences", json=stop).json() == {"delivered": True}
    expected = fixture("user_preferences_stop.json")
    value = expected["entry"][0]["changes"][0]["value"]
    bsuid = bsuid_of("4915112345671", business=WABA)
    value["contacts"][0]["user_id"] = value["user_preferences"][0]["user_id"] = bsuid
    value["user_preferences"][0]["timestamp"] = int(clock.now)
    assert receiver.bodies() == [expected]

    wamid = client.post(MARKETING, json=named("4915112345671")).json()["messages"][0]["id"]
    wait_until(lambda: len(receiver.received) == 2, what="the failed push")
    assert statuses(receiver.bodies())[0]["errors"][0]["code"] == 131050
    assert statuses(receiver.bodies())[0]["id"] == wamid
    client.post("/sandbox/user_preferences", json={**stop, "value": "resume"})
    clock.advance(10)
    client.post(MARKETING, json=named("4915112345671"))
    wait_until(lambda: len(receiver.received) == 6, what="resume, then sent/delivered/read")
    assert [s["status"] for s in statuses(receiver.bodies())][-3:] == ["sent", "delivered", "read"]


def test_inbound_stop_can_carry_only_a_bsuid(
    client: httpx.Client, receiver: Receiver, clock: FakeClock
) -> None:
    body = {"from": "4915112345671", "text": "STOP", "name": "Ada", "bsuid_only": True}
    answer = client.post("/sandbox/inbound", json=body).json()
    assert answer["delivered"] is True
    expected = fixture("inbound_stop_bsuid_only.json")
    value = expected["entry"][0]["changes"][0]["value"]
    bsuid = bsuid_of("4915112345671", business=WABA)
    value["contacts"][0]["user_id"] = value["messages"][0]["from_user_id"] = bsuid
    value["messages"][0]["id"] = answer["messages"][0]["id"]
    value["messages"][0]["timestamp"] = str(int(clock.now))
    assert receiver.bodies() == [expected]

    client.post("/sandbox/inbound", json={**body, "bsuid_only": False})
    message = receiver.bodies()[1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (message["from"], message["from_user_id"]) == ("4915112345671", bsuid)


def test_pushes_retry_non_200_then_count_the_outcome(
    client: httpx.Client, sandbox: RunningCloudSandbox, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 202])
    client.post(MESSAGES, json=positional("4915112345671"))
    wait_until(lambda: sandbox.state.stats().get("webhooks.delivered") == 3, what="3 delivered")
    assert len(receiver.received) == 5
    assert len(sandbox.state.pushed()) == 3

    sandbox.state.webhook_url = "http://127.0.0.1:9/nowhere"
    client.post(MESSAGES, json=positional("4915112345672"))
    wait_until(lambda: sandbox.state.stats().get("webhooks.failed") == 3, what="3 failed")


def test_no_webhook_url_means_no_push(client: httpx.Client, sandbox: RunningCloudSandbox) -> None:
    client.post(MESSAGES, json=positional())
    assert client.get("/sandbox/webhook").json() == {"url": None, "pushed": 0}
    refused = client.post("/sandbox/webhook", json={"url": "ftp://x"})
    assert code_of(refused) == (400, 100)
    stop = {"wa_id": "4915112345671", "value": "stop"}
    assert code_of(client.post("/sandbox/user_preferences", json=stop)) == (400, 100)
    assert code_of(client.post("/sandbox/inbound", json={"from": "1", "text": "x"})) == (400, 100)
    assert not sandbox.state.marketing_stopped("4915112345671")


def test_the_projects_receiver_verifies_and_stores_the_sandbox_pushes(
    client: httpx.Client, sandbox: RunningCloudSandbox, sqlite_url: str
) -> None:
    # Imported here: the receiver pulls in the warehouse, which the other tests do not need.
    from connectors.webhooks.server import start_receiver
    from connectors.webhooks.settings import ReceiverSettings

    settings = ReceiverSettings(warehouse_url=SecretStr(sqlite_url), app_secret=SecretStr(SECRET))
    with start_receiver(settings) as hooks:
        set_hook = {"url": hooks.cloud_url, "app_secret": SECRET}
        assert client.post("/sandbox/webhook", json=set_hook).status_code == 200
        client.post(MESSAGES, json=positional("4915112345671"))
        wait_until(lambda: sandbox.state.stats().get("webhooks.delivered") == 3, what="stored")
        assert hooks.stats.events == 3

        client.post("/sandbox/webhook", json={"app_secret": "another-secret"})
        client.post(MESSAGES, json=positional("4915112345672"))
        wait_until(lambda: sandbox.state.stats().get("webhooks.failed") == 3, what="refused")
        assert hooks.stats.events == 3


# Latency and faults ---------------------------------------------------------------------------


def test_scripted_faults_come_in_order_then_normal_service(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    sandbox.state.faults.script("messages", ["503", "500"])
    answers = [client.post(MESSAGES, json=positional(f"491511234567{n}")) for n in (1, 2, 3)]
    assert [a.status_code for a in answers] == [503, 500, 200]
    assert [a.json()["error"]["code"] for a in answers[:2]] == [2, 1]
    assert [r.fault for r in sandbox.state.requests_to("messages")] == ["503", "500", None]
    assert len(sandbox.state.messages_sent()) == 1


def test_garbage_and_reset_faults(client: httpx.Client, sandbox: RunningCloudSandbox) -> None:
    sandbox.state.faults.script("phone_number", ["garbage"])
    sandbox.state.faults.script("messages", ["reset"])
    garbage = client.get(f"/v23.0/{PHONE}")
    assert (garbage.status_code, garbage.content) == (200, b"not json")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(MESSAGES, json=positional())
    assert client.post(MESSAGES, json=positional()).status_code == 200
    record = sandbox.state.requests_to("messages")
    assert [(r.fault, r.status) for r in record] == [("reset", None), (None, 200)]


def test_hang_fault_outlasts_the_read_timeout_and_stop_releases_it() -> None:
    config = CloudSandboxConfig(hang_s=30.0, fault_script={"templates": ("hang", "hang")})
    sandbox = start_cloud_sandbox(config)
    answers: list[int] = []
    with httpx.Client(base_url=sandbox.url, headers=AUTH, timeout=30.0) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get(TEMPLATES, timeout=0.3)

        def call() -> None:
            answers.append(http.get(TEMPLATES).status_code)

        caller = threading.Thread(target=call)
        caller.start()
        wait_until(lambda: sandbox.state.stats().get("faults.hang") == 2)
        started = time.monotonic()
        sandbox.stop()
        caller.join(5.0)
    assert time.monotonic() - started < 5.0
    assert answers == [504]
    assert sandbox.state.requests[0].status is None


def test_a_request_its_client_gave_up_on_stays_in_flight_until_the_sandbox_answers_it() -> None:
    config = CloudSandboxConfig(hang_s=1.0, fault_script={"messages": ("hang",)})
    with start_cloud_sandbox(config) as sandbox:
        with httpx.Client(base_url=sandbox.url, headers=AUTH) as http:
            with pytest.raises(httpx.ReadTimeout):
                http.post(MESSAGES, json=positional(), timeout=0.2)
            assert sandbox.state.in_flight() == 1
            assert sandbox.state.requests == []
            wait_until(lambda: sandbox.state.in_flight() == 0, 10.0, "the hang to end")
            assert [r.fault for r in sandbox.state.requests] == ["hang"]
            assert http.post(MESSAGES, json=positional()).status_code == 200
        assert sandbox.state.in_flight() == 0
        assert sandbox.state.stats()["started.messages"] == 2


def test_random_faults_are_reproducible_and_steerable_over_http(client: httpx.Client) -> None:
    config = CloudSandboxConfig(fault_rates={"messages": {"500": 0.3, "reset": 0.2}}, fault_seed=7)
    plans = [config.fault_plan(), config.fault_plan()]
    draws = [[plan.next("messages") for _ in range(50)] for plan in plans]
    assert draws[0] == draws[1] and {"500", "reset", None} == set(draws[0])

    scripted = client.post("/sandbox/faults", json={"script": {"templates": ["503"]}})
    assert scripted.status_code == 200
    assert client.get(TEMPLATES).status_code == 503
    assert client.get(TEMPLATES).status_code == 200
    for bad in ({"script": {"templates": ["teapot"]}}, {"rates": {"contacts": {"500": 0.1}}}):
        assert code_of(client.post("/sandbox/faults", json=bad)) == (400, 100)


def test_latency_is_added_to_every_answer(client: httpx.Client) -> None:
    client.post("/sandbox/faults", json={"latency_s": 0.15})
    started = time.monotonic()
    assert code_of(client.get(f"/v23.0/{PHONE}", headers={"Authorization": "Bearer x"}))[1] == 190
    assert time.monotonic() - started >= 0.15


# The record -----------------------------------------------------------------------------------


def test_record_lists_every_request_without_secrets(
    client: httpx.Client, sandbox: RunningCloudSandbox
) -> None:
    with httpx.Client(base_url=sandbox.url) as bare:
        bare.get(TEMPLATES, params={"access_token": TOKEN, "name": "welcome"})
        bare.get(f"/v23.0/{PHONE}", headers={"Authorization": "Bearer leaked-guess"})
    client.post(MESSAGES, json=positional("4915112345670"))
    client.post(MESSAGES, json=positional("call-me"))

    record = sandbox.state.requests
    assert [(r.endpoint, r.method, r.auth, r.status) for r in record] == [
        ("templates", "GET", "query", 200),
        ("phone_number", "GET", None, 401),
        ("messages", "POST", "bearer", 200),
        ("messages", "POST", "bearer", 400),
    ]
    assert record[0].query == {"access_token": "***", "name": "welcome"}
    assert TOKEN not in repr(record) and "leaked-guess" not in repr(record)
    assert sandbox.state.sent_to() == ["4915112345670", "call-me"]
    served = client.get("/sandbox/requests", params={"endpoint": "messages"}).json()
    assert [r["status"] for r in served["requests"]] == [200, 400]
    arrivals = client.get("/sandbox/arrivals", params={"endpoint": "messages"}).json()
    assert arrivals == {"arrivals": [[r["monotonic"], r["status"]] for r in served["requests"]]}
    assert TOKEN not in json.dumps(client.get("/sandbox/requests").json())
    stats = client.get("/sandbox/stats").json()["stats"]
    assert stats["messages.accepted"] == 1 and stats["messages.rejected.100"] == 1

    assert client.post("/sandbox/reset").status_code == 200
    assert client.get("/sandbox/requests").json() == {"requests": []}
    assert client.get("/sandbox/stats").json() == {"stats": {}}


# The command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--api", "cloud"], "--throttle-status"), ([], "--api-key"), (["--api=onprem"], "--api-key")],
    ids=["cloud", "onprem_default", "onprem"],
)
def test_dispatcher_hands_the_arguments_to_the_chosen_sandbox(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        dispatch([*argv, "--help"])
    assert exited.value.code == 0
    assert flag in capsys.readouterr().out
