"""Async client for the WhatsApp v1 API: contact checks and template sends, with bounded retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from connectors.whatsapp.auth import auth_for
from connectors.whatsapp.errors import (
    NetworkError,
    OutcomeUnknown,
    TransientError,
    UnknownContact,
    WhatsAppError,
    error_from_response,
)
from connectors.whatsapp.limits import SendLimiter, SendLimits
from connectors.whatsapp.settings import WhatsAppSettings
from connectors.whatsapp.transport import ShardedTransport

ContactStatus = Literal["valid", "invalid", "processing", "failed"]

# Errors raised before the request was written: the server cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# The API allows other endpoints 20 calls/s with bursts of 60; a bucket of 20 stays under.
CONTACTS_CALLS_PER_S = 20


@dataclass(frozen=True, slots=True)
class ContactCheck:
    """The API's answer for one input number."""

    input: str
    status: ContactStatus
    wa_id: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template, addressed as the API wants it."""

    namespace: str
    name: str
    language: str


def template_body(to: str, template: Template, params: Sequence[str]) -> dict[str, Any]:
    """The `/v1/messages` body for one template message."""
    body: dict[str, Any] = {
        "to": to,
        "type": "template",
        "template": {
            "namespace": template.namespace,
            "name": template.name,
            "language": {"policy": "deterministic", "code": template.language},
            "components": [],
        },
    }
    if params:
        body["template"]["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
        ]
    return body


class WhatsAppClient:
    """One sender's connection to the API: `async with WhatsAppClient(settings=...) as wa:`."""

    def __init__(
        self,
        *,
        settings: WhatsAppSettings,
        http: httpx.AsyncClient | None = None,
        send_limits: SendLimits | None = None,
        max_connections: int = 32,
    ) -> None:
        self._settings = settings
        self._auth = auth_for(settings)
        self._send_limiter = SendLimiter(send_limits) if send_limits else None
        self._contacts_rate = AsyncLimiter(CONTACTS_CALLS_PER_S, 1.0)
        if send_limits:
            max_connections = max(max_connections, send_limits.concurrency + 2)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.write_timeout_s,
                pool=settings.pool_timeout_s,
            ),
            transport=ShardedTransport(max_connections=max_connections, verify=settings.verify_tls),
        )
        self._base = settings.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"WhatsAppClient(base_url={self._base!r}, auth={self._settings.auth_mode})"

    async def __aenter__(self) -> WhatsAppClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections this client opened itself."""
        if self._owns_http:
            await self._http.aclose()

    def _retrying(self) -> AsyncRetrying:
        backoff = wait_random_exponential(
            multiplier=self._settings.backoff_initial_s, max=self._settings.backoff_max_s
        )

        def wait(state: RetryCallState) -> float:
            delay = backoff(state)
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, WhatsAppError) and exc.retry_after_s is not None:
                delay = max(delay, exc.retry_after_s)
            return delay

        return AsyncRetrying(
            stop=stop_after_attempt(self._settings.max_attempts),
            wait=wait,
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        )

    async def _request(self, path: str, body: dict[str, Any], *, limited: bool) -> httpx.Response:
        if limited and self._send_limiter is not None:
            async with self._send_limiter.slot():
                return await self._http.post(self._base + path, json=body, auth=self._auth)
        return await self._http.post(self._base + path, json=body, auth=self._auth)

    async def _post_once(self, path: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        try:
            response = await self._request(path, body, limited=not idempotent)
        except _NOT_SENT as exc:
            raise NetworkError(f"POST {path}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            if idempotent:
                raise NetworkError(f"POST {path}: {type(exc).__name__}") from exc
            raise OutcomeUnknown(
                f"POST {path}: {type(exc).__name__} after the request was written"
            ) from exc
        if response.status_code in (200, 201):
            return response.json()
        raise error_from_response(response, operation=f"POST {path}")

    async def _post(self, path: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        async for attempt in self._retrying():
            with attempt:
                return await self._post_once(path, body, idempotent=idempotent)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _check_batch(self, numbers: Sequence[str], force_check: bool) -> list[ContactCheck]:
        body = {"blocking": "wait", "contacts": list(numbers), "force_check": force_check}
        answer = await self._post("/v1/contacts", body, idempotent=True)
        by_input: dict[str, ContactCheck] = {}
        for item in answer.get("contacts", []):
            status = item.get("status")
            if status not in ("valid", "invalid", "processing", "failed"):
                status = "failed"
            wa_id = item.get("wa_id") if status == "valid" else None
            by_input[str(item.get("input"))] = ContactCheck(str(item.get("input")), status, wa_id)
        # An input the server did not answer is a failed check, never "invalid".
        return [by_input.get(n, ContactCheck(n, "failed")) for n in numbers]

    async def check_contacts(
        self,
        numbers: Sequence[str],
        *,
        batch_size: int = 1000,
        force_check: bool = False,
        in_flight: int = 2,
    ) -> dict[str, ContactCheck]:
        """Check numbers in as few calls as the batch size allows, `in_flight` calls at once (the
        client reads one answer while the server checks the next); answers keyed by input."""
        results: dict[str, ContactCheck] = {}
        pending = list(dict.fromkeys(numbers))
        deadline = time.monotonic() + self._settings.processing_deadline_s
        delay = self._settings.backoff_initial_s
        gate = asyncio.Semaphore(max(1, in_flight))

        async def check(batch: list[str]) -> None:
            async with gate, self._contacts_rate:
                results.update((c.input, c) for c in await self._check_batch(batch, force_check))

        while pending:
            try:
                async with asyncio.TaskGroup() as group:
                    for start in range(0, len(pending), batch_size):
                        group.create_task(check(pending[start : start + batch_size]))
            except ExceptionGroup as failed:
                # The first failure cancelled the other calls: raise it as one call would.
                raise failed.exceptions[0] from None
            pending = [n for n in pending if results[n].status == "processing"]
            if not pending or time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max_s)
        return results

    async def send_template(
        self, to: str, template: Template, params: Sequence[str], *, number: str | None = None
    ) -> str:
        """Send one template message to a `wa_id` and return the message id.

        On 404/1006 (contact unknown to this server) the contact is checked once with `number` and
        the message resent once to the `wa_id` that check returns.
        """
        try:
            return await self._send(to, template, params)
        except UnknownContact:
            if number is None:
                raise
            check = (await self.check_contacts([number]))[number]
            if check.status != "valid" or check.wa_id is None:
                raise
            return await self._send(check.wa_id, template, params)

    async def _send(self, to: str, template: Template, params: Sequence[str]) -> str:
        answer = await self._post(
            "/v1/messages", template_body(to, template, params), idempotent=False
        )
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise OutcomeUnknown("POST /v1/messages: success answer without a message id") from exc
