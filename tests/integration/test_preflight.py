"""The preflight over real HTTP: the credentials of every auth mode proven before a run."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.preflight import UnreachableError, check_api
from connectors.whatsapp.errors import AuthenticationError
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
    check_api(_settings(sandbox.url, right))
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
