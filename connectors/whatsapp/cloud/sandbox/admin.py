"""Test-only endpoints under /sandbox/: the record and stats, reset, faults, account, webhooks.

| route | body | does |
|---|---|---|
| `GET /sandbox/requests[?endpoint=]` | | the recorded API requests (tokens masked) |
| `GET /sandbox/stats` | | the counters |
| `POST /sandbox/reset` | | forgets record, sends, pushes, counters, buckets, pair limits |
| `POST /sandbox/faults` | `script: {ep: [kind]}`, `rates: {ep: {kind: p}}`, `clear`, `hang_s`, | |
| | `latency_s`; a kind is `500`, `503`, `reset`, `hang`, `garbage` or `code:<n>` | steers faults |
| `POST /sandbox/account` | `tokens: [...]`, `marketing_on_messages` | revokes tokens, 131063 |
| `GET`/`POST /sandbox/webhook` | `url` (str or null), `app_secret` | where signed pushes go |
| `POST /sandbox/user_preferences` | `wa_id`, `value` (stop/resume), `phone_number_id`? | a push |
| `POST /sandbox/inbound` | `from`, `text`, `name`?, `bsuid_only`?, `phone_number_id`? | a push |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.whatsapp.cloud.sandbox.errors import CloudError
from connectors.whatsapp.cloud.sandbox.state import CloudSandboxState
from connectors.whatsapp.cloud.sandbox.webhooks import CloudWebhookPusher


def _ok() -> JSONResponse:
    return JSONResponse({"ok": True})


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _bad(details: str) -> CloudError:
    return CloudError(100, details)


class _Admin:
    """The handlers of the admin routes, over one sandbox's state and pusher."""

    def __init__(self, state: CloudSandboxState, pusher: CloudWebhookPusher) -> None:
        self.state = state
        self.pusher = pusher

    async def requests(self, request: Request) -> Response:
        endpoint = request.query_params.get("endpoint")
        entries = self.state.requests if endpoint is None else self.state.requests_to(endpoint)
        return JSONResponse({"requests": [dataclasses.asdict(e) for e in entries]})

    async def arrivals(self, request: Request) -> Response:
        """When each request came (the server's monotonic clock) and its status: the record
        without bodies, small enough for tens of thousands of sends."""
        endpoint = request.query_params.get("endpoint")
        entries = self.state.requests if endpoint is None else self.state.requests_to(endpoint)
        return JSONResponse({"arrivals": [[e.monotonic, e.status] for e in entries]})

    async def reset(self, _request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})

    async def stats(self, _request: Request) -> Response:
        return JSONResponse({"stats": self.state.stats()})

    async def faults(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        faults = self.state.faults
        try:
            if body.get("clear"):
                faults.clear()
            for endpoint, rates in dict(body.get("rates", {})).items():
                faults.set_rates(endpoint, dict(rates))
            for endpoint, kinds in dict(body.get("script", {})).items():
                faults.script(endpoint, list(kinds))
            if "hang_s" in body:
                self.state.hang_s = float(body["hang_s"])
            if "latency_s" in body:
                self.state.latency_s = float(body["latency_s"])
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return _ok()

    async def account(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        tokens, marketing = body.get("tokens"), body.get("marketing_on_messages")
        if tokens is not None and not (
            isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
        ):
            return _bad("tokens: must be a list of strings")
        if marketing is not None and not isinstance(marketing, bool):
            return _bad("marketing_on_messages: must be true or false")
        if tokens is not None:
            self.state.set_tokens(tokens)
        if marketing is not None:
            self.state.marketing_on_messages = marketing
        return _ok()

    async def webhook(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"url": self.state.webhook_url, "pushed": len(self.state.pushed())})
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        url, secret = body.get("url", self.state.webhook_url), body.get("app_secret")
        if url is not None and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            return _bad("url: must be an http(s) URL or null")
        if secret is not None and (not isinstance(secret, str) or not secret):
            return _bad("app_secret: must be a non-empty string")
        self.state.webhook_url = url or None
        if secret is not None:
            self.state.app_secret = secret
        return _ok()

    def _number(self, body: dict[str, Any]) -> str | None:
        """The business number a pushed event is about: the given one, else the first."""
        phone_number_id = body.get("phone_number_id", self.state.config.phone_number_id)
        known = (
            isinstance(phone_number_id, str) and phone_number_id in self.state.config.phone_numbers
        )
        return phone_number_id if known else None

    async def user_preferences(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        wa_id, value, number = body.get("wa_id"), body.get("value"), self._number(body)
        if not isinstance(wa_id, str) or not wa_id.isdigit():
            return _bad("wa_id: must be the user's digits")
        if value not in ("stop", "resume"):
            return _bad("value: use 'stop' or 'resume'")
        if number is None:
            return _bad("phone_number_id: not a number of this sandbox")
        url = self.state.webhook_url
        if not url:
            return _bad("no webhook URL is configured (POST /sandbox/webhook)")
        self.state.set_marketing_stopped(wa_id, value == "stop")
        payload = self.pusher.preference_body(wa_id, value, phone_number_id=number)
        delivered = await self.pusher.post(url, payload, counter="webhooks.user_preferences")
        return JSONResponse({"delivered": delivered})

    async def inbound(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        sender, text, number = body.get("from"), body.get("text"), self._number(body)
        name, bsuid_only = body.get("name", ""), body.get("bsuid_only", False)
        if not isinstance(sender, str) or not sender.isdigit():
            return _bad("from: must be the user's digits")
        if not isinstance(text, str) or not isinstance(name, str):
            return _bad("text and name: must be strings")
        if not isinstance(bsuid_only, bool) or (bsuid_only and not self.state.config.bsuids):
            return _bad("bsuid_only: true or false; true needs BSUIDs on")
        if number is None:
            return _bad("phone_number_id: not a number of this sandbox")
        url = self.state.webhook_url
        if not url:
            return _bad("no webhook URL is configured (POST /sandbox/webhook)")
        message_id, payload = self.pusher.inbound_body(
            sender, text, name=name, bsuid_only=bsuid_only, phone_number_id=number
        )
        delivered = await self.pusher.post(url, payload, counter="webhooks.inbound")
        return JSONResponse({"messages": [{"id": message_id}], "delivered": delivered})


def admin_routes(state: CloudSandboxState, pusher: CloudWebhookPusher) -> list[Route]:
    """Routes that read or steer `state`; unauthenticated, unrecorded and never rate-limited."""
    admin = _Admin(state, pusher)
    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/sandbox/requests", admin.requests, ["GET"]),
        ("/sandbox/arrivals", admin.arrivals, ["GET"]),
        ("/sandbox/reset", admin.reset, ["POST"]),
        ("/sandbox/stats", admin.stats, ["GET"]),
        ("/sandbox/faults", admin.faults, ["POST"]),
        ("/sandbox/account", admin.account, ["POST"]),
        ("/sandbox/webhook", admin.webhook, ["GET", "POST"]),
        ("/sandbox/user_preferences", admin.user_preferences, ["POST"]),
        ("/sandbox/inbound", admin.inbound, ["POST"]),
    ]
    return [Route(path, handler, methods=methods) for path, handler, methods in handlers]
