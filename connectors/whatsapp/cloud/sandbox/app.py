"""The Cloud sandbox's Starlette app: the Graph endpoints of cloud-api.md behind faults and limits.

Every API call passes one frame: latency, then a scripted or random fault (`faults.py`; a
`code:<n>` fault answers Cloud error `n` before the token is looked at), then the access token
(`Authorization: Bearer` or `?access_token=`; 190 otherwise), then the endpoint. Sends then meet
the number's throughput bucket (130429, no Retry-After unless `throttle_retry_after_s` is set:
Meta sends none), the body checks of `messages.py`, and the pair rate limit (131056); accepted
ones get their fate from `rules.py`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.whatsapp.cloud.sandbox import messages, objects, rules
from connectors.whatsapp.cloud.sandbox.admin import admin_routes
from connectors.whatsapp.cloud.sandbox.config import CloudSandboxConfig, Endpoint
from connectors.whatsapp.cloud.sandbox.errors import CloudError, Kind, UnknownObject, error_body
from connectors.whatsapp.cloud.sandbox.faults import CloudFault, fault_code
from connectors.whatsapp.cloud.sandbox.state import (
    AuthUsed,
    CloudRecordedRequest,
    CloudSandboxState,
    masked_query,
)
from connectors.whatsapp.cloud.sandbox.templates import PageError, page
from connectors.whatsapp.cloud.sandbox.webhooks import CloudWebhookPusher
from connectors.whatsapp.onprem.sandbox.app import _MALFORMED as MALFORMED
from connectors.whatsapp.onprem.sandbox.app import _NoAnswer as NoAnswer
from connectors.whatsapp.onprem.sandbox.app import _parse_body as parse_body
from connectors.whatsapp.onprem.sandbox.app import _until_disconnect as until_disconnect

VERSION: Final = re.compile(r"v\d+\.\d+")
THROUGHPUT_CODE: Final = 130429
Handler = Callable[[Request, Any], Awaitable[Response]]


class CloudSandboxApp:
    """Owns the Starlette app, the state it serves and the background webhook pusher."""

    def __init__(self, state: CloudSandboxState) -> None:
        self.state = state
        self.config: CloudSandboxConfig = state.config
        self.webhooks = CloudWebhookPusher(state)
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        node = "/{version}/{object_id}"
        routes = [
            *admin_routes(state, self.webhooks),
            Route(f"{node}/message_templates", self._api("templates", self._templates)),
            Route(f"{node}/messages", self._api("messages", self._send), methods=["POST"]),
            Route(
                f"{node}/marketing_messages",
                self._api("marketing_messages", self._send),
                methods=["POST"],
            ),
            Route(node, self._api("phone_number", self._object)),
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

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            kind = Kind(
                400, "GraphMethodException", f"Unsupported {request.method.lower()} request"
            )
            return JSONResponse(error_body(100, kind, request.url.path), status_code=400)
        kind = Kind(exc.status_code, "OAuthException", "Unknown path components")
        return JSONResponse(error_body(100, kind, request.url.path), status_code=exc.status_code)

    # The frame around every API call ---------------------------------------------------------

    def _api(
        self, endpoint: Endpoint, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        state = self.state

        async def serve(request: Request) -> Response:
            if not VERSION.fullmatch(request.path_params["version"]):
                raise HTTPException(404)
            started, wall = time.monotonic(), time.time()
            body = parse_body(await request.body())
            state.begin(endpoint)
            fault = state.faults.next(endpoint)
            used: AuthUsed | None = None
            response: Response | None = None
            try:
                if state.latency_s > 0:
                    await asyncio.sleep(state.latency_s)
                if fault is not None:
                    response = await self._fault(request, fault)
                    return response
                used = self._authenticate(request)
                if used is None:
                    response = CloudError(190, _token_problem(request))
                else:
                    response = await handler(request, body)
                return response
            finally:
                if fault is None and isinstance(response, CloudError):
                    state.count(f"{endpoint}.rejected.{response.code}")
                dropped = response is None or isinstance(response, NoAnswer)
                state.record(
                    CloudRecordedRequest(
                        endpoint,
                        request.method,
                        request.url.path,
                        masked_query(request.query_params),
                        "<malformed JSON>" if body is MALFORMED else body,
                        used,
                        None if dropped or response is None else response.status_code,
                        fault,
                        started,
                        wall,
                    )
                )

        return serve

    def _authenticate(self, request: Request) -> AuthUsed | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return "bearer" if self.state.token_valid(token.strip()) else None
        query_token = request.query_params.get("access_token")
        if query_token:
            return "query" if self.state.token_valid(query_token) else None
        return None

    async def _fault(self, request: Request, fault: CloudFault) -> Response:
        self.state.count(f"faults.{fault}")
        code = fault_code(fault)
        if code == THROUGHPUT_CODE:
            return self._throttled("sandbox fault injection")
        if code is not None:
            return CloudError(code, f"sandbox fault injection: code {code}")
        if fault == "500":
            return CloudError(1, "sandbox fault injection")
        if fault == "503":
            return CloudError(2, "sandbox fault injection")
        if fault == "reset":
            return NoAnswer()
        if fault == "garbage":
            return Response(b"not json", status_code=200, media_type="application/json")
        client_left = asyncio.ensure_future(until_disconnect(request.receive))
        closing = asyncio.ensure_future(self._closing.wait())
        done, _ = await asyncio.wait(
            {client_left, closing}, timeout=self.state.hang_s, return_when=asyncio.FIRST_COMPLETED
        )
        client_left.cancel()
        closing.cancel()
        if client_left in done:
            return NoAnswer()
        return CloudError(2, "sandbox hang fault: no answer in time", status=504)

    # Endpoints -------------------------------------------------------------------------------

    async def _object(self, request: Request, _body: Any) -> Response:
        object_id = request.path_params["object_id"]
        query = request.query_params
        try:
            if object_id in self.config.phone_numbers:
                return JSONResponse(objects.phone_number(self.config, object_id, query))
            if object_id == self.config.waba_id:
                return JSONResponse(objects.waba(self.config, query))
        except objects.UnknownField as exc:
            return CloudError(100, str(exc))
        return UnknownObject(request.method, object_id)

    async def _templates(self, request: Request, _body: Any) -> Response:
        object_id = request.path_params["object_id"]
        if object_id != self.config.waba_id:
            return UnknownObject(request.method, object_id)
        url = str(request.url.replace(query=""))
        try:
            return JSONResponse(page(self.config.templates, request.query_params, url))
        except PageError as exc:
            return CloudError(100, str(exc))

    async def _send(self, request: Request, body: Any) -> Response:
        phone_number_id = request.path_params["object_id"]
        if phone_number_id not in self.config.phone_numbers:
            return UnknownObject(request.method, phone_number_id)
        endpoint: Endpoint = (
            "marketing_messages" if request.url.path.endswith("/marketing_messages") else "messages"
        )
        if isinstance(body, dict) and isinstance(body.get("to"), str):
            self.state.note_send_to(body["to"])
        throttled = await self._over_throughput(phone_number_id)
        if throttled is not None:
            return throttled
        route = messages.Route(
            marketing_endpoint=endpoint == "marketing_messages",
            marketing_on_messages=self.state.marketing_on_messages,
            text_format_code=self.config.text_format_code,
        )
        parsed = messages.parse_send(
            None if body is MALFORMED else body, self.config.templates, route
        )
        if isinstance(parsed, messages.Rejection):
            return CloudError(parsed.code, parsed.details)
        wait = self.state.pair_wait(parsed.digits)
        if wait > 0:
            return CloudError(131056, f"another message to this recipient in {wait:.1f} s")
        category = parsed.template.category
        stopped = self.state.marketing_stopped(parsed.digits)
        outcome = rules.outcome(parsed.digits, category, marketing_stopped=stopped)
        sent = self.state.accept(endpoint, parsed, outcome.message_status)
        url = self.state.webhook_url
        if url:
            bodies = self.webhooks.status_bodies(
                sent, outcome, phone_number_id=phone_number_id, category=category
            )
            self.webhooks.queue(url, bodies)
        contact = {"input": parsed.to, "wa_id": parsed.digits}
        if self.config.bsuids:
            contact["user_id"] = rules.bsuid_of(parsed.digits, business=self.config.waba_id)
        answer: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [contact],
            "messages": [{"id": sent.message_id, "message_status": outcome.message_status}],
        }
        if endpoint == "marketing_messages":
            answer["success"] = True
        return JSONResponse(answer)

    async def _over_throughput(self, phone_number_id: str) -> Response | None:
        """130429 when the number's bucket is empty; else take one send from it."""
        bucket = self.state.bucket(phone_number_id)
        if bucket is None:
            return None
        if bucket.has_capacity():
            await bucket.acquire()  # returns at once: there is capacity
            return None
        return self._throttled("Cloud API message throughput has been reached.")

    def _throttled(self, details: str) -> CloudError:
        """A 130429 answer with the configured status and, if set, `Retry-After`."""
        answer = CloudError(THROUGHPUT_CODE, details, status=self.config.throttle_status)
        retry_after = self.config.throttle_retry_after_s
        if retry_after is not None:
            answer.headers["Retry-After"] = str(retry_after)
        return answer


def _token_problem(request: Request) -> str:
    if request.headers.get("authorization") or request.query_params.get("access_token"):
        return "Invalid OAuth access token - Cannot parse access token"
    return "An active access token must be used to query information about the current user."


def create_cloud_app(config: CloudSandboxConfig | None = None) -> CloudSandboxApp:
    """A Cloud sandbox app with fresh state; serve `.asgi` with any ASGI server."""
    return CloudSandboxApp(CloudSandboxState(config or CloudSandboxConfig()))
