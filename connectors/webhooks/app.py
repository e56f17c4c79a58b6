"""The receiver's ASGI app: authenticate, bound and parse a webhook, answer after commit.

The webhook POSTs run on bare ASGI (see `answers`), the handshake, health and errors on Starlette.

| request | answer |
|---|---|
| `POST /webhooks/v1/{token}`, `/webhooks/v1` (Basic) | 200 committed, 401, 413, 400, 500, 503 |
| `POST /webhooks/cloud` (`X-Hub-Signature-256`) | 200 committed, 401, 413, 400, 500, 503 |
| `GET /webhooks/cloud?hub.mode=subscribe&...` | 200 the challenge, 403 bad verify token, 400 |
| `GET /healthz` | 200 `{"status": "ok", "dropped_items": n}`, or 503 when the writer stopped |

Answers are fixed short JSON bodies: nothing of a request is ever echoed back, except Meta's
digits-only `hub.challenge`, which the handshake requires.

An item holding a string no database can store (see `payloads`) is dropped and the rest of its
body stored and answered 200, so the provider does not retry the body for a day. Each drop is
logged at WARNING with the count and the fields, never the values, and counted in
`ReceiverApp.dropped` (per field) and `dropped_items` of `/healthz` (since the start).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectors.settings import mask_url
from connectors.warehouse.connect import warehouse
from connectors.webhooks import answers
from connectors.webhooks.answers import route_path
from connectors.webhooks.payloads import Batch, PayloadError, load_json, parse_cloud, parse_v1
from connectors.webhooks.security import (
    SIGNATURE_HEADER,
    basic_password,
    signature_valid,
    token_matches,
)
from connectors.webhooks.settings import ReceiverSettings
from connectors.webhooks.store import WarehouseStore
from connectors.webhooks.writer import (
    BusyError,
    GroupCommitWriter,
    Reapply,
    Record,
    WriteFailedError,
)

log = logging.getLogger(__name__)

OK: Final = {"status": "ok"}
_V1: Final = "/webhooks/v1"
_V1_PREFIX: Final = "/webhooks/v1/"
_CLOUD: Final = "/webhooks/cloud"
_SIGNATURE: Final = SIGNATURE_HEADER.lower().encode()


def _error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status)


@dataclass(frozen=True, slots=True)
class _Raw:
    """A bare ASGI handler as an ASGI app object (Starlette would wrap a function in requests,
    uvicorn would take a bound method for ASGI 2)."""

    handle: Callable[[Scope, Receive, Send], Awaitable[None]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)


class ReceiverApp:
    """The ASGI app (`.asgi`) of one receiver, with its group-commit writer (`.writer`)."""

    def __init__(
        self,
        settings: ReceiverSettings,
        *,
        record: Record | None = None,
        reapply: Reapply | None = None,
    ) -> None:
        """`record`/`reapply` default to the warehouse functions on `settings.warehouse_url`."""
        self.settings = settings
        self._record = record
        self._reapply = reapply
        self.writer: GroupCommitWriter | None = None
        self.dropped: Counter[str] = Counter()
        """Items dropped as unstorable since the start, per field (`statuses.id`, ...)."""
        routes = [
            Route(_V1_PREFIX + "{token}", _Raw(self._v1_path), methods=["POST"]),
            Route(_V1, _Raw(self._v1_basic), methods=["POST"]),
            Route(_CLOUD, _Raw(self._cloud), methods=["POST"]),
            Route(_CLOUD, self._cloud_handshake, methods=["GET"]),
            Route("/healthz", self._health, methods=["GET"]),
        ]
        self._starlette = Starlette(
            routes=routes,
            lifespan=self._lifespan,
            exception_handlers={HTTPException: self._http_error},
        )
        # A 307 to the path without the slash would make providers re-post the body elsewhere.
        self._starlette.router.redirect_slashes = False
        self.asgi = _Raw(self._dispatch)
        """The ASGI app: webhook POSTs go straight to their handler, the rest through Starlette."""

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = route_path(scope)
            if path == _CLOUD:
                return await self._cloud(scope, receive, send)
            if path == _V1:
                return await self._v1_basic(scope, receive, send)
            token = path.removeprefix(_V1_PREFIX)
            if token != path and token and "/" not in token:
                return await self._v1_path(scope, receive, send)
        await self._starlette(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        store: WarehouseStore | None = None
        record: Record
        reapply: Reapply | None
        if self._record is not None:
            record, reapply = self._record, self._reapply
        else:
            store = await asyncio.to_thread(self._open_store)
            record, reapply = store.record, store.reapply
        settings = self.settings
        backend = make_url(settings.warehouse_url.get_secret_value()).get_backend_name()
        self.writer = GroupCommitWriter(
            record,
            reapply,
            # PostgreSQL locks rows in key order first (warehouse.events.reconcile): two at a time.
            concurrency=2 if backend == "postgresql" else 1,
            max_batch_events=settings.max_batch_events,
            max_queued_events=settings.max_queued_events,
            linger_s=settings.linger_s,
        )
        self.writer.start()
        if settings.token is None:
            log.warning("WEBHOOK_TOKEN is not set: v1 webhooks and the Cloud handshake get 401/403")
        if settings.app_secret is None and settings.cloud:
            log.warning("WHATSAPP_APP_SECRET is not set: Cloud API webhooks get 401")
        try:
            yield
        finally:
            await self.writer.close()
            stats = self.writer.stats
            log.info(
                "webhook receiver stopped: %d events of %d requests in %d transactions",
                stats.events,
                stats.requests,
                stats.transactions,
            )
            if store is not None:
                store.close()

    def _open_store(self) -> WarehouseStore:
        """The warehouse writer on the settings' engine, migrated here, before serving."""
        url = self.settings.warehouse_url.get_secret_value()
        store = WarehouseStore(warehouse(url), opt_out_keywords=self.settings.opt_out_keywords)
        log.info("webhook receiver writes to %s", mask_url(url))
        return store

    async def _http_error(self, _request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(status, {404: "not_found", 405: "method_not_allowed"}.get(status, "error"))

    # Routes ---------------------------------------------------------------------------------

    async def _v1_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = route_path(scope).removeprefix(_V1_PREFIX)
        allowed = self.settings.token_via in ("path", "both")
        if not (allowed and token_matches(given, self.settings.token)):
            return await answers.UNAUTHORIZED.send(send)
        await self._accept(scope, receive, send, parse_v1)

    async def _v1_basic(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = basic_password(answers.header(scope, b"authorization"))
        allowed = self.settings.token_via in ("basic", "both")
        if not (allowed and token_matches(given, self.settings.token)):
            return await answers.UNAUTHORIZED_BASIC.send(send)
        await self._accept(scope, receive, send, parse_v1)

    async def _cloud(self, scope: Scope, receive: Receive, send: Send) -> None:
        signature = answers.header(scope, _SIGNATURE)

        def verified(body: bytes) -> bool:
            return signature_valid(body, signature, self.settings.app_secret)

        await self._accept(scope, receive, send, parse_cloud, check=verified)

    async def _cloud_handshake(self, request: Request) -> Response:
        query = request.query_params
        if query.get("hub.mode") != "subscribe":
            return _error(400, "bad_request")
        if not token_matches(query.get("hub.verify_token"), self.settings.token):
            return _error(403, "forbidden")
        challenge = query.get("hub.challenge", "")
        if not (challenge.isascii() and challenge.isdigit() and len(challenge) <= 64):
            return _error(400, "bad_request")
        return PlainTextResponse(challenge)

    async def _health(self, _request: Request) -> Response:
        running = self.writer is not None and self.writer.running
        if not running:
            return _error(503, "writer_stopped")
        return JSONResponse({**OK, "dropped_items": self.dropped.total()})

    def _count_dropped(self, batch: Batch) -> None:
        fields = Counter(batch.dropped)
        self.dropped.update(fields)
        log.warning(
            "dropped %d webhook item(s) holding a NUL or lone surrogate (%s); storing the other %d",
            len(batch.dropped),
            ", ".join(f"{field} x{n}" for field, n in sorted(fields.items())),
            len(batch),
        )

    # The common path -------------------------------------------------------------------------

    async def _accept(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        parse: Callable[[Any], Batch],
        *,
        check: Callable[[bytes], bool] | None = None,
    ) -> None:
        try:
            body = await answers.read_body(scope, receive, self.settings.max_body_bytes)
        except answers.TooLargeError:
            return await answers.TOO_LARGE.send(send)
        except answers.DisconnectedError:
            return  # nobody to answer; the provider sends the body again
        if check is not None and not check(body):
            return await answers.BAD_SIGNATURE.send(send)
        try:
            batch = parse(load_json(body))
        except PayloadError as exc:
            log.warning("refused a webhook body (400): %s", exc)
            return await answers.BAD_PAYLOAD.send(send)
        if batch.dropped:
            self._count_dropped(batch)
        if not len(batch):
            return await answers.OK.send(send)
        assert self.writer is not None  # set by the lifespan before any request
        try:
            await self.writer.submit(batch)
        except BusyError:
            return await answers.BUSY.send(send)
        except WriteFailedError:
            return await answers.WRITE_FAILED.send(send)
        await answers.OK.send(send)
