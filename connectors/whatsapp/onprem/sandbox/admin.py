"""Test-only endpoints under /sandbox/: the record and stats, reset, faults, webhook pushes."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.whatsapp.sandbox.config import check_retry_after
from connectors.whatsapp.sandbox.state import SandboxState
from connectors.whatsapp.sandbox.webhooks import PushPolicy, pusher_for


def _bad(details: str) -> JSONResponse:
    body = {"errors": [{"code": 1009, "title": "Invalid parameter", "details": details}]}
    return JSONResponse(body, status_code=400)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def admin_routes(state: SandboxState) -> list[Route]:
    """Routes that read or steer `state`; unauthenticated, unrecorded and never rate-limited."""

    async def requests(request: Request) -> Response:
        endpoint = request.query_params.get("endpoint")
        entries = state.requests if endpoint is None else state.requests_to(endpoint)
        return JSONResponse({"requests": [dataclasses.asdict(e) for e in entries]})

    async def reset(_request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def stats(_request: Request) -> Response:
        return JSONResponse({"stats": state.stats(), "known_contacts": len(state.known_contacts())})

    async def faults(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        try:
            if body.get("clear"):
                state.clear_faults()
            for endpoint, rates in dict(body.get("rates", {})).items():
                state.set_fault_rates(endpoint, dict(rates))
            for endpoint, kinds in dict(body.get("script", {})).items():
                state.script(endpoint, list(kinds))
            if "hang_s" in body:
                state.hang_s = float(body["hang_s"])
            if "retry_after_s" in body:
                check_retry_after(body["retry_after_s"])
                state.retry_after_s = body["retry_after_s"]
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def numbers(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        try:
            if "processing" in body:
                asks = body.get("processing_asks")
                state.set_processing_numbers(
                    [str(n) for n in body["processing"]], asks=None if asks is None else int(asks)
                )
            if "failed" in body:
                state.set_failed_numbers([str(n) for n in body["failed"]])
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def webhooks(request: Request) -> Response:
        pusher = pusher_for(state)
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
            given["failed_after"] = tuple(given.get("failed_after", ("sent",)))
            given["script"] = tuple(tuple(seq) for seq in given.get("script", ()))
            pusher.policy = PushPolicy(**given)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse({"ok": True})

    async def inbound(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad("body: must be a JSON object")
        sender, text = body.get("from"), body.get("text")
        if not isinstance(sender, str) or not sender.isdigit():
            return _bad("from: must be a wa_id (digits)")
        if not isinstance(text, str):
            return _bad("text: must be a string")
        url = state.webhook_url
        if not url:
            return _bad("no webhook URL is configured (PATCH /v1/settings/application)")
        name = body.get("name")
        message_id = await pusher_for(state).push_inbound(
            url, sender, text, name=name if isinstance(name, str) else ""
        )
        return JSONResponse({"messages": [{"id": message_id}]})

    handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
        ("/sandbox/requests", requests, "GET"),
        ("/sandbox/reset", reset, "POST"),
        ("/sandbox/stats", stats, "GET"),
        ("/sandbox/faults", faults, "POST"),
        ("/sandbox/numbers", numbers, "POST"),
        ("/sandbox/webhooks", webhooks, "GET"),
        ("/sandbox/webhooks", webhooks, "POST"),
        ("/sandbox/inbound", inbound, "POST"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in handlers]
