"""Test-only endpoints under /sandbox/: the record and stats, reset, faults, webhook pushes."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.vocabulary import DeliveryStatus
from connectors.whatsapp.onprem.sandbox.config import check_retry_after
from connectors.whatsapp.onprem.sandbox.state import SandboxState
from connectors.whatsapp.onprem.sandbox.webhooks import PushPolicy, pusher_for


def _bad(details: str) -> JSONResponse:
    body = {"errors": [{"code": 1009, "title": "Invalid parameter", "details": details}]}
    return JSONResponse(body, status_code=400)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class _Admin:
    """The handlers of the admin routes, over one sandbox's state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

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
        return JSONResponse(
            {"stats": self.state.stats(), "known_contacts": len(self.state.known_contacts())}
        )

    async def faults(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        try:
            if body.get("clear"):
                self.state.clear_faults()
            for endpoint, rates in dict(body.get("rates", {})).items():
                self.state.set_fault_rates(endpoint, dict(rates))
            for endpoint, kinds in dict(body.get("script", {})).items():
                self.state.script(endpoint, list(kinds))
            if "hang_s" in body:
                self.state.hang_s = float(body["hang_s"])
            if "retry_after_s" in body:
                check_retry_after(body["retry_after_s"])
                self.state.retry_after_s = body["retry_after_s"]
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def numbers(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        try:
            if "processing" in body:
                asks = body.get("processing_asks")
                self.state.set_processing_numbers(
                    [str(n) for n in body["processing"]], asks=None if asks is None else int(asks)
                )
            if "failed" in body:
                self.state.set_failed_numbers([str(n) for n in body["failed"]])
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def webhooks(self, request: Request) -> Response:
        pusher = pusher_for(self.state)
        if request.method == "GET":
            policy = dataclasses.asdict(pusher.policy)
            return JSONResponse({"policy": policy, "pushed": len(pusher.pushed)})
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        try:
            fields = {f.name for f in dataclasses.fields(PushPolicy)}
            unknown = set(body) - fields - {"clear"}
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}; use {sorted(fields)}")
            given = {} if body.get("clear") else dataclasses.asdict(pusher.policy)
            given.update({k: v for k, v in body.items() if k in fields})
            given["failed_after"] = tuple(given.get("failed_after", (DeliveryStatus.SENT,)))
            given["script"] = tuple(tuple(seq) for seq in given.get("script", ()))
            pusher.policy = PushPolicy(**given)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def inbound(self, request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        sender, text = body.get("from"), body.get("text")
        if not isinstance(sender, str) or not sender.isdigit():
            return _bad("from: must be a wa_id (digits)")
        if not isinstance(text, str):
            return _bad("text: must be a string")
        url = self.state.webhook_url
        if not url:
            return _bad("no webhook URL is configured (PATCH /v1/settings/application)")
        name = body.get("name")
        message_id = await pusher_for(self.state).push_inbound(
            url, sender, text, name=name if isinstance(name, str) else ""
        )
        return JSONResponse({"messages": [{"id": message_id}]})


def admin_routes(state: SandboxState) -> list[Route]:
    """Routes that read or steer `state`; unauthenticated, unrecorded and never rate-limited."""
    admin = _Admin(state)
    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
        ("/sandbox/requests", admin.requests, "GET"),
        ("/sandbox/arrivals", admin.arrivals, "GET"),
        ("/sandbox/reset", admin.reset, "POST"),
        ("/sandbox/stats", admin.stats, "GET"),
        ("/sandbox/faults", admin.faults, "POST"),
        ("/sandbox/numbers", admin.numbers, "POST"),
        ("/sandbox/webhooks", admin.webhooks, "GET"),
        ("/sandbox/webhooks", admin.webhooks, "POST"),
        ("/sandbox/inbound", admin.inbound, "POST"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in handlers]
