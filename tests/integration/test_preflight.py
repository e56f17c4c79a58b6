"""The preflight over real HTTP: the credentials of every auth mode proven before a run; on Cloud,
the token and the phone number id, whose facts it returns."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.preflight import UnreachableError, check_api
from connectors.whatsapp import PhoneFacts
from connectors.whatsapp.errors import AuthenticationError, TokenExpired, UnknownObject
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

STATIC_TOKEN = "operator-token"
# mode: (right credentials, wrong credentials, the setting a refusal must name, auth recorded)
MODES: dict[str, tuple[dict[str, str], dict[str, str], str, str]] = {
    "login": (
        {"username": "admin", "password": "sandbox-password"},
        {"username": "admin", "password": "wr0ng-pa55word"},
        "WHATSAPP_PASSWORD",
        "bearer",
    ),
    "api_key": (
        {"api_key": "sandbox-api-key"},
        {"api_key": "wr0ng-api-key"},
        "WHATSAPP_API_KEY",
        "api_key",
    ),
    "bearer": (
        {"token": STATIC_TOKEN},
        {"token": "wr0ng-bearer-token"},
        "WHATSAPP_TOKEN",
        "static",
    ),
}


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(static_tokens=(STATIC_TOKEN,))) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: RunningSandbox) -> RunningSandbox:
    running.state.reset()
    return running


def _settings(base_url: str, credentials: dict[str, str]) -> WhatsAppSettings:
    return WhatsAppSettings.model_validate({"base_url": base_url, **credentials})


@pytest.mark.parametrize("mode", MODES)
def test_the_preflight_proves_the_credentials_in_every_mode(
    sandbox: RunningSandbox, mode: str
) -> None:
    right, _, _, recorded = MODES[mode]
    assert check_api(_settings(sandbox.url, right)) is None  # v1 has no facts to tell
    assert [(r.auth, r.status) for r in sandbox.state.requests_to("health")] == [(recorded, 200)]


@pytest.mark.parametrize("mode", MODES)
def test_the_preflight_refuses_wrong_credentials_naming_the_setting_never_its_value(
    sandbox: RunningSandbox, mode: str
) -> None:
    _, wrong, setting, _ = MODES[mode]
    with pytest.raises(AuthenticationError) as caught:
        check_api(_settings(sandbox.url, wrong))
    secret = next(v for k, v in wrong.items() if k != "username")
    assert setting in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(caught.value.args)
    assert secret not in repr(sandbox.state.requests)
    assert sandbox.state.requests_to("contacts") == sandbox.state.requests_to("messages") == []


@pytest.fixture
def no_health_endpoint() -> Iterator[str]:
    """A real HTTP server that answers 404 to everything, as a provider without /v1/health."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_preflight_goes_on_when_the_api_has_no_health_endpoint(
    no_health_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.preflight"):
        check_api(_settings(no_health_endpoint, {"api_key": "some-key"}))
    assert "/v1/health" in caplog.text and "some-key" not in caplog.text


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_api_is_named_with_its_password_masked() -> None:
    url = f"http://etl:s3cret-in-url@127.0.0.1:{_closed_port()}/"
    with pytest.raises(UnreachableError, match="WhatsApp API unreachable") as caught:
        check_api(_settings(url, {"api_key": "k"}))
    assert "s3cret-in-url" not in str(caught.value)
    assert "http://etl:***@127.0.0.1:" in str(caught.value)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"
PHONE_ID = "106540352242922"
CLOUD_TOKEN = "EAAG-preflight-token"


@pytest.fixture(scope="module")
def graph() -> Iterator[str]:
    """A real HTTP server answering the phone number call as Graph does: 190 for another token,
    100 for another id."""

    class Graph(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            fields = parse_qs(url.query).get("fields", [""])[0]
            if self.headers.get("Authorization") != f"Bearer {CLOUD_TOKEN}":
                self._answer(401, "cloud_error_190")
            elif url.path != f"/v23.0/{PHONE_ID}" or "quality_rating" not in fields:
                self._answer(400, "cloud_error_100_unknown_id")
            else:
                self._answer(200, "cloud_phone_number")

        def _answer(self, status: int, fixture: str) -> None:
            body = (FIXTURES / f"{fixture}.json").read_bytes()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Graph)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _cloud(url: str, **extra: str) -> WhatsAppSettings:
    values = {
        "api": "cloud",
        "base_url": url,
        "phone_number_id": PHONE_ID,
        "waba_id": "102290129340398",
        "token": CLOUD_TOKEN,
        **extra,
    }
    return WhatsAppSettings.model_validate(values)


def test_the_cloud_preflight_returns_the_numbers_facts_for_the_run_log(graph: str) -> None:
    facts = check_api(_cloud(graph))
    assert isinstance(facts, PhoneFacts)
    assert (facts.display_phone_number, facts.quality_rating, facts.throughput_level) == (
        "+1 555-078-3881",
        "GREEN",
        "STANDARD",
    )
    assert (facts.messaging_limit, facts.limit_known) == (2000, True)


def test_the_cloud_preflight_refuses_an_expired_token_naming_the_variable(graph: str) -> None:
    with pytest.raises(TokenExpired) as caught:
        check_api(_cloud(graph, token="EAAG-expired-token"))
    assert "WHATSAPP_TOKEN" in str(caught.value) and "190" in str(caught.value)
    assert "EAAG-expired-token" not in str(caught.value) + repr(caught.value.args)


def test_the_cloud_preflight_refuses_an_unknown_phone_number_id_naming_it(graph: str) -> None:
    with pytest.raises(UnknownObject, match="WHATSAPP_PHONE_NUMBER_ID") as caught:
        check_api(_cloud(graph, phone_number_id="999999999"))
    assert caught.value.stops_at_once


def test_an_unreachable_graph_api_is_named() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    settings = _cloud(url).model_copy(update={"max_attempts": 1})
    with pytest.raises(UnreachableError, match="WhatsApp API unreachable"):
        check_api(settings)
