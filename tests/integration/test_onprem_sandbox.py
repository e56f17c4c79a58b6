"""The WhatsApp v1 sandbox over real HTTP: auth, contacts, messages, limits, faults, webhooks."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.whatsapp.onprem.sandbox import (
    RunningSandbox,
    SandboxConfig,
    SandboxState,
    start_sandbox,
)
from tests.helpers import wait_until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sandbox"
API_KEY = {"D360-API-KEY": "sandbox-api-key"}
STATIC_TOKEN = "static-operator-token"
PROCESSING = "+1 631 555 2001"
FAILED = "+1 631 555 3001"
DAY = 24 * 3600


def fixture(name: str) -> Any:
    """A JSON payload from tests/fixtures/sandbox, fresh for each use."""
    return json.loads((FIXTURES / name).read_text())


def send_body(to: str = "16315551001", **template: Any) -> dict[str, Any]:
    """The fixture template send, with `to` and template fields replaced."""
    body: dict[str, Any] = copy.deepcopy(fixture("template_send.json"))
    body["to"] = to
    body["template"].update(template)
    return body


class FakeClock:
    """Injectable wall clock so token and cache expiry are tested without waiting."""

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
def running(clock: FakeClock) -> Iterator[RunningSandbox]:
    config = SandboxConfig(
        clock=clock,
        static_tokens=(STATIC_TOKEN,),
        rate_limit_messages=None,
        rate_limit_other=None,
        rate_limit_login=None,
        processing_numbers=(PROCESSING,),
        failed_numbers=(FAILED,),
        hang_s=2.0,
    )
    with start_sandbox(config, port=0) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: RunningSandbox) -> RunningSandbox:
    running.state.reset()
    running.state.clear_faults()
    running.state.webhook_url = None
    running.state.latency_s = 0.0
    return running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as http:
        yield http


def login(client: httpx.Client) -> dict[str, str]:
    """Log in as the default admin and return the bearer header."""
    response = client.post("/v1/users/login", auth=("admin", "sandbox-password"), json={})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['users'][0]['token']}"}


def check(client: httpx.Client, *numbers: str, **options: Any) -> dict[str, Any]:
    """Check numbers with the API key (blocking=wait unless overridden); return the answer."""
    body = {"blocking": "wait", "contacts": list(numbers), "force_check": False, **options}
    response = client.post("/v1/contacts", headers=API_KEY, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def send(client: httpx.Client, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return client.post("/v1/messages", headers=API_KEY, json=body, **kwargs)


def error_code(response: httpx.Response) -> int:
    return int(response.json()["errors"][0]["code"])


# Authentication -------------------------------------------------------------------------------


def test_login_token_authorises_calls_and_expires_after_seven_days(
    client: httpx.Client, clock: FakeClock
) -> None:
    response = client.post("/v1/users/login", auth=("admin", "sandbox-password"), json={})
    user = response.json()["users"][0]
    expected = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(clock.now + 7 * DAY))
    assert user["expires_after"] == expected
    headers = {"Authorization": f"Bearer {user['token']}"}
    body = {"contacts": ["+16315551001"], "blocking": "wait"}

    assert client.post("/v1/contacts", headers=headers, json=body).status_code == 200
    clock.advance(7 * DAY + 1)
    expired = client.post("/v1/contacts", headers=headers, json=body)

    assert expired.status_code == 401
    assert expired.json()["errors"][0]["code"] == 1005
    assert client.post("/v1/contacts", headers=login(client), json=body).status_code == 200


def test_wrong_password_is_401_with_errors_body(client: httpx.Client) -> None:
    response = client.post("/v1/users/login", auth=("admin", "wrong"), json={})
    assert response.status_code == 401
    assert response.json()["errors"][0] == {
        "code": 1005,
        "title": "Access denied",
        "details": "Invalid credentials.",
    }


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"D360-API-KEY": "wrong-key"}],
    ids=["none", "unknown_token", "wrong_api_key"],
)
def test_calls_without_valid_credentials_are_401(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.post("/v1/contacts", headers=headers, json={"contacts": ["+16315551001"]})
    assert response.status_code == 401
    assert error_code(response) == 1005


def test_logout_revokes_only_the_callers_token(client: httpx.Client) -> None:
    first, second = login(client), login(client)
    assert client.post("/v1/users/logout", headers=first, json={}).status_code == 200
    body = {"contacts": ["+16315551001"]}
    assert client.post("/v1/contacts", headers=first, json=body).status_code == 401
    assert client.post("/v1/contacts", headers=second, json=body).status_code == 200


def test_health_answers_like_the_v1_api_and_needs_credentials(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    for headers in (API_KEY, login(client), {"Authorization": f"Bearer {STATIC_TOKEN}"}):
        answer = client.get("/v1/health", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["health"] == {"gateway_status": "connected"}
        assert answer.json()["meta"]["api_status"] == "stable"
    for headers in ({}, {"D360-API-KEY": "wrong-key"}, {"Authorization": "Bearer wrong-token"}):
        denied = client.get("/v1/health", headers=headers)
        assert (denied.status_code, error_code(denied)) == (401, 1005)
    record = [(r.auth, r.status) for r in sandbox.state.requests_to("health")]
    assert record == [("api_key", 200), ("bearer", 200), ("static", 200)] + [(None, 401)] * 3
    assert "wrong-key" not in repr(sandbox.state.requests)


def test_api_key_and_static_token_need_no_login(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    static = {"Authorization": f"Bearer {STATIC_TOKEN}"}
    body = {"contacts": ["+16315551001"]}
    assert client.post("/v1/contacts", headers=API_KEY, json=body).status_code == 200
    assert client.post("/v1/contacts", headers=static, json=body).status_code == 200
    assert [r.auth for r in sandbox.state.requests] == ["api_key", "static"]


# Contacts -------------------------------------------------------------------------------------


def test_contacts_answer_each_input_as_sent_with_brazilian_wa_id(client: httpx.Client) -> None:
    request = fixture("contacts_request.json")
    response = client.post("/v1/contacts", headers=API_KEY, json=request)
    assert response.status_code == 200
    assert response.json() == fixture("contacts_response.json")


def test_processing_number_resolves_on_the_next_no_wait_ask(client: httpx.Client) -> None:
    first = check(client, PROCESSING, "+16315551001", blocking="no_wait")["contacts"]
    second = check(client, PROCESSING, blocking="no_wait")["contacts"]
    assert first == [
        {"input": PROCESSING, "status": "processing"},
        {"input": "+16315551001", "status": "valid", "wa_id": "16315551001"},
    ]
    assert second == [{"input": PROCESSING, "status": "valid", "wa_id": "16315552001"}]


def test_blocking_wait_resolves_processing_before_answering(client: httpx.Client) -> None:
    answer = check(client, PROCESSING, blocking="wait")["contacts"]
    assert answer == [{"input": PROCESSING, "status": "valid", "wa_id": "16315552001"}]


def test_failed_number_fails_every_time_and_is_never_cached(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    for _ in range(2):
        assert check(client, FAILED)["contacts"] == [{"input": FAILED, "status": "failed"}]
    assert sandbox.state.stats().get("contacts.cache_hits", 0) == 0


def test_numbers_set_at_run_time_change_the_answer(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    sandbox.state.set_failed_numbers(["+16315554441"])
    assert check(client, "+16315554441")["contacts"][0]["status"] == "failed"
    sandbox.state.set_failed_numbers([FAILED])


def test_cache_serves_repeat_checks_and_force_check_bypasses_it(
    client: httpx.Client, sandbox: RunningSandbox, clock: FakeClock
) -> None:
    check(client, "+16315551001")
    check(client, "16315551001")
    stats = sandbox.state.stats()
    assert (stats["contacts.cache_misses"], stats["contacts.cache_hits"]) == (1, 1)

    check(client, "+16315551001", force_check=True)
    clock.advance(7 * DAY + 1)
    check(client, "+16315551001")
    stats = sandbox.state.stats()
    assert (stats["contacts.cache_misses"], stats["contacts.cache_hits"]) == (3, 1)


@pytest.mark.parametrize("body", [{"blocking": "wait"}, {"contacts": []}], ids=["missing", "empty"])
def test_contacts_without_numbers_is_400_1008(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/v1/contacts", headers=API_KEY, json=body)
    assert (response.status_code, error_code(response)) == (400, 1008)


@pytest.fixture(scope="module")
def v243() -> Iterator[RunningSandbox]:
    config = SandboxConfig(always_valid=True, shuffle_contacts=True, success_status=200)
    with start_sandbox(config) as sandbox:
        yield sandbox


def test_always_valid_mode_answers_valid_for_every_number(v243: RunningSandbox) -> None:
    with httpx.Client(base_url=v243.url) as http:
        answer = check(http, "16315551000", "+55 11 91234 5678")
    assert answer["meta"]["version"] == "2.43.0"
    by_input = {c["input"]: c for c in answer["contacts"]}
    assert by_input["16315551000"] == {
        "input": "16315551000",
        "status": "valid",
        "wa_id": "16315551000",
    }
    assert by_input["+55 11 91234 5678"]["wa_id"] == "5511912345678"


def test_shuffle_mode_answers_in_another_order(v243: RunningSandbox) -> None:
    numbers = [f"+1631555{n:04d}" for n in range(1001, 1011)]
    with httpx.Client(base_url=v243.url) as http:
        answer = check(http, *numbers)
    inputs = [c["input"] for c in answer["contacts"]]
    assert inputs != numbers
    assert sorted(inputs) == sorted(numbers)


# Messages -------------------------------------------------------------------------------------


def test_send_to_checked_contact_is_201_with_unique_ids(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    check(client, "+1 631 555 1001")
    answers = [send(client, send_body(), timeout=5.0) for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201]
    ids = [a.json()["messages"][0]["id"] for a in answers]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"gBEG[A-Za-z0-9_-]{24}", i) for i in ids)
    assert sandbox.state.messages_sent() == [
        ("16315551001", "order_update", ("Asha",), ids[0]),
        ("16315551001", "order_update", ("Asha",), ids[1]),
    ]


def test_success_status_can_be_200(v243: RunningSandbox) -> None:
    with httpx.Client(base_url=v243.url) as http:
        check(http, "+16315551001")
        assert send(http, send_body()).status_code == 200


def test_send_to_unchecked_contact_or_to_the_input_instead_of_wa_id_is_404_1006(
    client: httpx.Client,
) -> None:
    check(client, "+55 11 91234 5678")
    for to in ("16315551009", "5511912345678"):
        response = send(client, send_body(to))
        assert (response.status_code, error_code(response)) == (404, 1006)
        assert response.json()["errors"][0]["details"] == "unknown contact"
    assert send(client, send_body("551112345678")).status_code == 201


@pytest.mark.parametrize(
    ("template", "code", "field"),
    [
        ({"name": "no_such_template"}, 2001, "acme_ns/no_such_template/en"),
        ({"language": {"policy": "deterministic", "code": "fr"}}, 2001, "order_update/fr"),
        ({"components": []}, 2000, "takes 1 body parameters, got 0"),
        ({"name": "welcome"}, 2000, "takes 0 body parameters, got 1"),
        (
            {"components": [{"type": "body", "parameters": [{"type": "text", "text": ""}]}]},
            1009,
            "template.components[0].parameters[0].text",
        ),
    ],
    ids=["unknown_name", "unknown_language", "too_few_params", "too_many_params", "empty_text"],
)
def test_template_problems_are_400_with_code(
    client: httpx.Client, template: dict[str, Any], code: int, field: str
) -> None:
    check(client, "+16315551001")
    response = send(client, send_body(**template))
    assert (response.status_code, error_code(response)) == (400, code)
    assert field in response.json()["errors"][0]["details"]


def test_malformed_sends_are_400_naming_the_field(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    without_to = send_body()
    del without_to["to"]
    text = {"to": "16315551001", "type": "text", "text": {"body": "hi"}}
    cases = [(without_to, 1008, "to"), (text, 1009, "type")]
    for body, code, field in cases:
        response = send(client, body)
        assert (response.status_code, error_code(response)) == (400, code)
        assert response.json()["errors"][0]["details"].startswith(field)
    broken = client.post("/v1/messages", headers=API_KEY, content=b"{not json")
    assert (broken.status_code, error_code(broken)) == (400, 1009)
    assert sandbox.state.sent_to() == ["16315551001"]
    assert sandbox.state.messages_sent() == []


# Rate limits and faults -----------------------------------------------------------------------


def test_over_the_rate_is_429_with_retry_after() -> None:
    config = SandboxConfig(rate_limit_messages=(1.0, 2))
    with start_sandbox(config) as limited, httpx.Client(base_url=limited.url) as http:
        check(http, "+16315551001")
        statuses = [send(http, send_body()) for _ in range(3)]
        assert [s.status_code for s in statuses] == [201, 201, 429]
        assert error_code(statuses[2]) == 1015
        assert int(statuses[2].headers["Retry-After"]) >= 1
        assert limited.state.stats()["rate_limited.messages"] == 1


def test_the_retry_after_of_a_429_can_be_fixed() -> None:
    config = SandboxConfig(rate_limit_messages=(1.0, 1), retry_after_s=3600)
    with start_sandbox(config) as limited, httpx.Client(base_url=limited.url) as http:
        check(http, "+16315551001")
        statuses = [send(http, send_body()) for _ in range(2)]
        assert [s.status_code for s in statuses] == [201, 429]
        assert statuses[1].headers["Retry-After"] == "3600"
        fixed = http.post("/sandbox/faults", json={"retry_after_s": 7})
        assert fixed.status_code == 200 and limited.state.retry_after_s == 7
        assert http.post("/sandbox/faults", json={"retry_after_s": -1}).status_code == 400
        assert send(http, send_body()).headers["Retry-After"] == "7"


def test_latency_is_added_to_every_answer(client: httpx.Client, sandbox: RunningSandbox) -> None:
    sandbox.state.latency_s = 0.15
    started = time.monotonic()
    denied = client.post("/v1/contacts", json={"contacts": ["+16315551001"]})
    assert denied.status_code == 401
    assert time.monotonic() - started >= 0.15


def test_scripted_faults_come_in_order_then_normal_service(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    check(client, "+16315551001")
    sandbox.state.script("messages", ["503", "500"])
    answers = [send(client, send_body()) for _ in range(3)]
    assert [(a.status_code, a.json().get("errors", [{}])[0].get("code")) for a in answers] == [
        (503, 1016),
        (500, 1014),
        (201, None),
    ]
    assert [r.fault for r in sandbox.state.requests_to("messages")] == ["503", "500", None]


def test_garbage_fault_answers_200_with_a_body_that_is_not_json(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    check(client, "+16315551001")
    sandbox.state.script("messages", ["garbage"])
    sandbox.state.script("contacts", ["garbage"])
    answer = send(client, send_body())
    assert (answer.status_code, answer.content) == (200, b"not json")
    refused = client.post("/v1/contacts", headers=API_KEY, json={"contacts": ["+16315551001"]})
    assert (refused.status_code, refused.content) == (200, b"not json")
    assert sandbox.state.messages_sent() == []
    assert [r.fault for r in sandbox.state.requests_to("messages")] == ["garbage"]


def test_reset_fault_closes_the_connection_without_an_answer(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    check(client, "+16315551001")
    sandbox.state.script("messages", ["reset"])
    with pytest.raises(httpx.RemoteProtocolError):
        send(client, send_body())
    assert send(client, send_body()).status_code == 201
    record = sandbox.state.requests_to("messages")
    assert [(r.fault, r.status) for r in record] == [("reset", None), (None, 201)]
    assert len(sandbox.state.messages_sent()) == 1


def test_hang_fault_outlasts_the_clients_read_timeout(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    sandbox.state.script("contacts", ["hang"])
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/v1/contacts", headers=API_KEY, json={"contacts": ["+16315551001"]}, timeout=0.3
        )
    assert time.monotonic() - started < sandbox.state.hang_s
    wait_until(lambda: len(sandbox.state.requests) == 1)
    assert (sandbox.state.requests[0].fault, sandbox.state.requests[0].status) == ("hang", None)


def test_stop_releases_a_hanging_request() -> None:
    config = SandboxConfig(hang_s=30.0, fault_script={"messages": ("hang",)})
    answers: list[int] = []
    sandbox = start_sandbox(config)
    with httpx.Client(base_url=sandbox.url, timeout=30.0) as http:

        def call() -> None:
            answers.append(send(http, send_body()).status_code)

        caller = threading.Thread(target=call)
        caller.start()
        wait_until(lambda: sandbox.state.stats().get("faults.hang") == 1)
        started = time.monotonic()
        sandbox.stop()
        caller.join(5.0)
    assert time.monotonic() - started < 5.0
    assert answers == [504]


def test_random_faults_are_reproducible_from_the_seed() -> None:
    config = SandboxConfig(fault_rates={"messages": {"500": 0.3, "reset": 0.2}}, fault_seed=7)
    first, second = SandboxState(config), SandboxState(config)
    draws = [[state.next_fault("messages") for _ in range(50)] for state in (first, second)]
    assert draws[0] == draws[1]
    assert {"500", "reset", None} == set(draws[0])


def test_admin_endpoint_scripts_faults(client: httpx.Client) -> None:
    body = {"script": {"contacts": ["503"]}}
    assert client.post("/sandbox/faults", json=body).status_code == 200
    refused = client.post("/v1/contacts", headers=API_KEY, json={"contacts": ["+16315551001"]})
    assert refused.status_code == 503
    assert check(client, "+16315551001")["contacts"][0]["status"] == "valid"
    bad = client.post("/sandbox/faults", json={"script": {"contacts": ["teapot"]}})
    assert bad.status_code == 400


# Webhooks -------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny real HTTP server collecting the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Collect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collect)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_accepted_message_gets_sent_delivered_read_pushed(
    client: httpx.Client, sandbox: RunningSandbox, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    patch = client.patch(
        "/v1/settings/application", headers=API_KEY, json={"webhooks": {"url": url}}
    )
    assert patch.status_code == 200
    settings = client.get("/v1/settings/application", headers=API_KEY).json()
    assert settings["settings"]["application"]["webhooks"]["url"] == url
    check(client, "+16315551001")
    message_id = send(client, send_body()).json()["messages"][0]["id"]

    wait_until(lambda: len(received) == 3)
    statuses = [body["statuses"][0] for body in received]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {(s["id"], s["recipient_id"]) for s in statuses} == {(message_id, "16315551001")}
    assert all(s["timestamp"].isdigit() for s in statuses)


def test_unreachable_webhook_is_counted_and_harmless(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    sandbox.state.webhook_url = "http://127.0.0.1:9/nowhere"
    check(client, "+16315551001")
    assert send(client, send_body()).status_code == 201
    wait_until(lambda: sandbox.state.stats().get("webhooks.failed") == 3)
    assert send(client, send_body()).status_code == 201


# The record -----------------------------------------------------------------------------------


def test_record_lists_every_request_without_secrets(
    client: httpx.Client, sandbox: RunningSandbox
) -> None:
    body = {"new_password": "n3w-secret"}
    client.post("/v1/users/login", auth=("admin", "sandbox-password"), json=body)
    client.post("/v1/users/login", auth=("admin", "nope"), json={})
    check(client, "+1 631 555 1001", "16315551000")
    send(client, send_body("16315559999"))
    send(client, send_body())

    record = sandbox.state.requests
    assert [(r.endpoint, r.method, r.path, r.auth, r.status) for r in record] == [
        ("login", "POST", "/v1/users/login", "basic", 200),
        ("login", "POST", "/v1/users/login", None, 401),
        ("contacts", "POST", "/v1/contacts", "api_key", 200),
        ("messages", "POST", "/v1/messages", "api_key", 404),
        ("messages", "POST", "/v1/messages", "api_key", 201),
    ]
    assert record[0].body == {"new_password": "***"}
    assert [r.monotonic for r in record] == sorted(r.monotonic for r in record)
    assert "n3w-secret" not in repr(record) and "sandbox-password" not in repr(record)
    assert sandbox.state.contacts_checked() == ["+1 631 555 1001", "16315551000"]
    assert sandbox.state.sent_to() == ["16315559999", "16315551001"]

    served = client.get("/sandbox/requests", params={"endpoint": "messages"}).json()
    assert [r["status"] for r in served["requests"]] == [404, 201]
    arrivals = client.get("/sandbox/arrivals", params={"endpoint": "messages"}).json()
    assert arrivals == {"arrivals": [[r["monotonic"], r["status"]] for r in served["requests"]]}


def test_reset_forgets_record_cache_and_known_contacts(client: httpx.Client) -> None:
    check(client, "+16315551001")
    assert client.post("/sandbox/reset").status_code == 200
    assert client.get("/sandbox/requests").json() == {"requests": []}
    response = send(client, send_body())
    assert (response.status_code, error_code(response)) == (404, 1006)
    stats = client.get("/sandbox/stats").json()["stats"]
    assert (stats["requests.messages"], "requests.contacts" in stats) == (1, False)


def test_unknown_path_is_404_with_errors_body(client: httpx.Client) -> None:
    response = client.post("/v1/nothing", headers=API_KEY, json={})
    assert (response.status_code, error_code(response)) == (404, 1006)
