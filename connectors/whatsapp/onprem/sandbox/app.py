"""The sandbox's Starlette app: the v1 endpoints of whatsapp-api.md behind faults and limits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectors.whatsapp.onprem.sandbox.admin import admin_routes
from connectors.whatsapp.onprem.sandbox.config import Endpoint, FaultKind, SandboxConfig
from connectors.whatsapp.onprem.sandbox.messages import Rejection, parse_send
from connectors.whatsapp.onprem.sandbox.state import AuthUsed, RecordedRequest, SandboxState
from connectors.whatsapp.onprem.sandbox.webhooks import WebhookPusher

TRANSPORT_SCOPE_KEY: Final = "sandbox.transport"
"""ASGI scope extension under which the server exposes the connection's transport (for resets)."""

_MALFORMED: Final = object()
Handler = Callable[[Request, Any], Awaitable[Response]]


def error(
    status: int, code: int, title: str, details: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A v1 error answer: `{"errors": [{code, title, details}]}` under an HTTP status."""
    body = {"errors": [{"code": code, "title": title, "details": details}]}
    return JSONResponse(body, status_code=status, headers=headers)


def _reject(rejection: Rejection) -> JSONResponse:
    return error(rejection.status, rejection.code, rejection.title, rejection.details)


def _access_denied() -> JSONResponse:
    # Clients key on the HTTP 401 (log in again once), not on code 1005, which real servers also
    # use for account problems; keep the status 401 whatever the code.
    return error(401, 1005, "Access denied", "Invalid credentials.")


class _NoAnswer(Response):
    """Closes the connection without sending a byte of HTTP, as a crashed peer or proxy would."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get("extensions", {}).get(TRANSPORT_SCOPE_KEY)
        if transport is None:
            # Served without our protocol (another ASGI server): promise a body, then stop; the
            # server closes the connection and the client still sees a broken response.
            headers = [(b"content-length", b"1")]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            return
        transport.abort()
        # Wait for the server to notice, so it does not answer a 500 on our behalf.
        with suppress(TimeoutError):
            await asyncio.wait_for(_until_disconnect(receive), timeout=1.0)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _MALFORMED


def _recordable(endpoint: Endpoint, body: Any) -> Any:
    if body is _MALFORMED:
        return "<malformed JSON>"
    if endpoint == "login" and isinstance(body, dict) and "new_password" in body:
        return {**body, "new_password": "***"}
    return body


class SandboxApp:
    """Owns the Starlette app, the state it serves and the background webhook pusher."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.config: SandboxConfig = state.config
        self.webhooks = WebhookPusher(state)
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        routes = [
            Route("/v1/users/login", self._api("login", self._login, auth=False), methods=["POST"]),
            Route("/v1/users/logout", self._api("logout", self._logout), methods=["POST"]),
            Route("/v1/contacts", self._api("contacts", self._contacts), methods=["POST"]),
            Route("/v1/messages", self._api("messages", self._messages), methods=["POST"]),
            Route("/v1/health", self._api("health", self._health), methods=["GET"]),
            Route(
                "/v1/settings/application",
                self._api("settings", self._settings),
                methods=["GET", "PATCH"],
            ),
            *admin_routes(state),
        ]
        self.asgi = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: self._http_error},
        )

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        yield
        await self.webhooks.aclose()

    def begin_shutdown(self) -> None:
        """Release hanging requests so the server can stop; callable from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._closing.set)

    async def _http_error(self, _request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error(404, 1006, "Resource not found", "no such path")
        return error(exc.status_code, 1009, "Invalid parameter", exc.detail, exc.headers)

    # The frame around every API call ---------------------------------------------------------

    def _api(
        self, endpoint: Endpoint, handler: Handler, *, auth: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        state = self.state

        async def serve(request: Request) -> Response:
            started, wall = time.monotonic(), time.time()
            body = _parse_body(await request.body())
            used: AuthUsed | None = None
            fault = state.next_fault(endpoint)
            response: Response | None = None
            try:
                if state.latency_s > 0:
                    await asyncio.sleep(state.latency_s)
                if fault is not None:
                    response = await self._fault(request, fault)
                    return response
                response = await self._over_rate(endpoint)
                if response is None:
                    used = self._authenticate(request) if auth else None
                    if auth and used is None:
                        response = _access_denied()
                    else:
                        response = await handler(request, body)
                        if endpoint == "login" and response.status_code == 200:
                            used = "basic"
                return response
            finally:
                dropped = response is None or isinstance(response, _NoAnswer)
                status = None if dropped or response is None else response.status_code
                recorded = _recordable(endpoint, body)
                path = request.scope["path"]
                state.record(
                    RecordedRequest(
                        endpoint, request.method, path, recorded, used, status, fault, started, wall
                    )
                )

        return serve

    async def _over_rate(self, endpoint: Endpoint) -> Response | None:
        """A 429 when the endpoint's bucket is empty; else take one request from it."""
        limiter = self.state.limiter(endpoint)
        if limiter is None:
            return None
        if limiter.has_capacity():
            await limiter.acquire()  # returns at once: there is capacity
            return None
        self.state.count(f"rate_limited.{endpoint}")
        rate = limiter.max_rate / limiter.time_period
        fixed = self.state.retry_after_s
        retry_after = str(max(1, math.ceil(1 / rate)) if fixed is None else fixed)
        details = f"over {rate:g} requests/s on {endpoint}; retry after {retry_after} s"
        return error(429, 1015, "Too many requests", details, {"Retry-After": retry_after})

    async def _fault(self, request: Request, fault: FaultKind) -> Response:
        self.state.count(f"faults.{fault}")
        if fault == "500":
            return error(500, 1014, "Internal error", "sandbox fault injection")
        if fault == "503":
            return error(503, 1016, "System overloaded", "sandbox fault injection")
        if fault == "reset":
            return _NoAnswer()
        if fault == "garbage":
            return Response(b"not json", status_code=200, media_type="application/json")
        client_left = asyncio.ensure_future(_until_disconnect(request.receive))
        closing = asyncio.ensure_future(self._closing.wait())
        done, _ = await asyncio.wait(
            {client_left, closing}, timeout=self.state.hang_s, return_when=asyncio.FIRST_COMPLETED
        )
        client_left.cancel()
        closing.cancel()
        if client_left in done:
            return _NoAnswer()
        return error(504, 1014, "Internal error", "sandbox hang fault: no answer in time")

    def _authenticate(self, request: Request) -> AuthUsed | None:
        headers = request.headers
        key = headers.get("d360-api-key")
        if key is not None:
            given = key.encode()
            ok = any(secrets.compare_digest(given, k.encode()) for k in self.config.api_keys)
            return "api_key" if ok else None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.state.bearer_mode(token.strip())

    # Endpoints -------------------------------------------------------------------------------

    async def _login(self, request: Request, body: Any) -> Response:
        if body is not None and not isinstance(body, dict):
            return error(400, 1009, "Invalid parameter", "body: must be a JSON object")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        ok_user = secrets.compare_digest(user.encode(), self.config.username.encode())
        ok_password = secrets.compare_digest(password.encode(), self.config.password.encode())
        if scheme.lower() != "basic" or not (ok_user and ok_password):
            return _access_denied()
        token, expires_at = self.state.issue_token()
        expires = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")
        return JSONResponse({"users": [{"token": token, "expires_after": expires}]})

    async def _logout(self, request: Request, _body: Any) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            self.state.revoke_token(token.strip())
        return JSONResponse({})

    async def _contacts(self, _request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            return error(400, 1009, "Invalid parameter", "body: must be a JSON object")
        contacts = body.get("contacts")
        if not contacts:
            return error(400, 1008, "Missing parameter", "contacts is required and non-empty")
        if not isinstance(contacts, list) or not all(isinstance(c, str) for c in contacts):
            return error(400, 1009, "Invalid parameter", "contacts: must be a list of strings")
        blocking = body.get("blocking", "no_wait")
        if blocking not in ("wait", "no_wait"):
            return error(400, 1009, "Invalid parameter", "blocking: use 'wait' or 'no_wait'")
        force = body.get("force_check", False)
        if not isinstance(force, bool):
            return error(400, 1009, "Invalid parameter", "force_check: must be true or false")
        check = self.state.check_contact
        answers = [check(c, wait=blocking == "wait", force=force) for c in contacts]
        if self.config.shuffle_contacts and len(answers) > 1:
            original = list(answers)
            self.state.shuffle(answers)
            if answers == original:
                answers.reverse()
        version = "2.43.0" if self.state.always_valid else "2.35.4"
        return JSONResponse(
            {"contacts": answers, "meta": {"api_status": "stable", "version": version}}
        )

    async def _messages(self, _request: Request, body: Any) -> Response:
        if isinstance(body, dict) and isinstance(body.get("to"), str):
            self.state.note_message_to(body["to"])
        parsed = parse_send(None if body is _MALFORMED else body, self.state.templates)
        if isinstance(parsed, Rejection):
            self.state.count(f"messages.rejected.{parsed.code}")
            return _reject(parsed)
        if not self.state.is_known(parsed.to):
            self.state.count("messages.rejected.1006")
            return error(404, 1006, "Resource not found", "unknown contact")
        message_id = self.state.accept_message(parsed.to, parsed.template[1], parsed.params)
        url = self.state.webhook_url
        if url:
            self.webhooks.push(url, message_id, parsed.to)
        status = self.config.success_status
        return JSONResponse({"messages": [{"id": message_id}]}, status_code=status)

    async def _health(self, _request: Request, _body: Any) -> Response:
        version = "2.43.0" if self.state.always_valid else "2.35.4"
        return JSONResponse(
            {
                "health": {"gateway_status": "connected"},
                "meta": {"api_status": "stable", "version": version},
            }
        )

    async def _settings(self, request: Request, body: Any) -> Response:
        if request.method == "GET":
            webhooks = {"url": self.state.webhook_url} if self.state.webhook_url else {}
            return JSONResponse({"settings": {"application": {"webhooks": webhooks}}})
        if not isinstance(body, dict) or not isinstance(body.get("webhooks"), dict):
            return error(400, 1008, "Missing parameter", "webhooks is required")
        url = body["webhooks"].get("url")
        if url not in (None, "") and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            return error(400, 1009, "Invalid parameter", "webhooks.url: must be an http(s) URL")
        self.state.webhook_url = url or None
        return JSONResponse({})


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """A sandbox app with fresh state; serve `.asgi` with any ASGI server."""
    return SandboxApp(SandboxState(config or SandboxConfig()))
