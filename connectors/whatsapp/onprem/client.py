"""The v1 API's sender: template sends and contact checks, with bounded retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
)

from connectors.masking import mask_url
from connectors.vocabulary import CONTACT_STATUSES, Contact
from connectors.whatsapp.answers import error_from_response
from connectors.whatsapp.calls import api_client, retry_policy, send_json, with_retries
from connectors.whatsapp.components import NO_EXTRAS, Extras
from connectors.whatsapp.errors import (
    MalformedAnswer,
    NetworkError,
    OutcomeUnknown,
    UnknownContact,
    WhatsAppError,
)
from connectors.whatsapp.limits import Pause, SendLimiter, SendLimits
from connectors.whatsapp.onprem.auth import auth_for
from connectors.whatsapp.onprem.body import template_body
from connectors.whatsapp.protocol import ContactCheck, SendReceipt, Template
from connectors.whatsapp.settings import WhatsAppSettings

# Errors raised before the request was written: the server cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

MESSAGES_PATH = "/v1/messages"
CONTACTS_PATH = "/v1/contacts"
HEALTH_PATH = "/v1/health"


# The API allows other endpoints 20 calls/s with bursts of 60; a bucket of 20 stays under.
CONTACTS_CALLS_PER_S = 20


class OnPremSender:
    """One v1 sender (a `Sender` and a `ContactChecker`): `async with OnPremSender(settings=...)`.

    `clock` (Unix seconds) dates Retry-After headers and tokens; `monotonic` and `sleep` time the
    retries and the pauses after a 429. Tests inject all three to run without waiting.
    """

    def __init__(
        self,
        *,
        settings: WhatsAppSettings,
        http: httpx.AsyncClient | None = None,
        send_limits: SendLimits | None = None,
        max_connections: int = 32,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._auth = auth_for(settings, clock=clock)
        self._send_limiter = (
            SendLimiter(send_limits, clock=monotonic, sleep=sleep) if send_limits else None
        )
        # A 429 holds every call to the same endpoint, not only the one that earned it.
        self._pauses = {
            MESSAGES_PATH: (
                self._send_limiter.pause
                if self._send_limiter
                else Pause(clock=monotonic, sleep=sleep)
            ),
            CONTACTS_PATH: Pause(clock=monotonic, sleep=sleep),
        }
        self._contacts_rate = AsyncLimiter(CONTACTS_CALLS_PER_S, 1.0)
        self._owns_http = http is None
        self._http = http or api_client(settings, max_connections, send_limits)
        self._base = settings.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"OnPremSender(base_url={mask_url(self._base)!r}, auth={self._settings.auth_mode})"

    @property
    def sender_id(self) -> str:
        """`onprem:<host>[:port]` of the server (see `WhatsAppSettings.sender_id`)."""
        return self._settings.sender_id

    async def __aenter__(self) -> OnPremSender:
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

    def _retrying(self, pause: Pause | None) -> AsyncRetrying:
        return retry_policy(self._settings, self._sleep, pause)

    async def _authorised(self, method: str, path: str, body: Any) -> httpx.Response:
        """One API call with credentials; after a 401, renewed credentials and one repeat.

        A login happens here, before the call is written, and raises its own errors: when it
        fails, nothing was sent.
        """
        headers = await self._auth.headers(self._http)
        url = self._base + path
        response = await send_json(self._http, method, url, body, headers)
        if response.status_code == 401 and await self._auth.renew(self._http, headers):
            headers = await self._auth.headers(self._http)
            response = await send_json(self._http, method, url, body, headers)
        return response

    async def _exchange(self, path: str, body: Any) -> httpx.Response:
        if path == MESSAGES_PATH and self._send_limiter is not None:
            async with self._send_limiter.slot():
                return await self._authorised("POST", path, body)
        await self._pauses[path].wait()
        return await self._authorised("POST", path, body)

    def _error(self, response: httpx.Response, operation: str) -> WhatsAppError:
        return error_from_response(
            response, operation=operation, now=self._clock(), credentials=self._auth.setting
        )

    async def _post_once(self, path: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        try:
            response = await self._exchange(path, body)
        except _NOT_SENT as exc:
            raise NetworkError(f"POST {path}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            if idempotent:
                raise NetworkError(f"POST {path}: {type(exc).__name__}") from exc
            raise OutcomeUnknown(
                f"POST {path}: {type(exc).__name__} after the request was written"
            ) from exc
        if response.status_code in (200, 201):
            try:
                return response.json()
            except ValueError:
                message = f"POST {path}: HTTP {response.status_code} answer is not JSON"
                if idempotent:
                    raise MalformedAnswer(message, status=response.status_code) from None
                raise OutcomeUnknown(
                    f"{message}; the message may have been sent", status=response.status_code
                ) from None
        raise self._error(response, f"POST {path}")

    async def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        idempotent: bool,
        parse: Callable[[Any], Any] = lambda answer: answer,
    ) -> Any:
        """POST with bounded retries of transient errors; `parse` runs inside each attempt, so an
        answer it refuses (`MalformedAnswer`) is asked again."""

        async def once() -> Any:
            return parse(await self._post_once(path, body, idempotent=idempotent))

        return await with_retries(lambda: self._retrying(self._pauses.get(path)), once)

    async def health(self) -> Mapping[str, Any] | None:
        """`GET /v1/health` once with the configured credentials: the answer, or None when the
        server has no such endpoint (404). Raises `AuthenticationError` naming the settings to
        check, `NetworkError` when the API cannot be reached, else the answer's error."""
        try:
            response = await self._authorised("GET", HEALTH_PATH, None)
        except httpx.TransportError as exc:
            raise NetworkError(f"GET {HEALTH_PATH}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if 200 <= response.status_code < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            return answer if isinstance(answer, dict) else {}
        raise self._error(response, f"GET {HEALTH_PATH}")

    async def _check_batch(self, numbers: Sequence[str], force_check: bool) -> list[ContactCheck]:
        body = {"blocking": "wait", "contacts": list(numbers), "force_check": force_check}
        try:
            answered = await self._post(
                CONTACTS_PATH, body, idempotent=True, parse=_contacts_answer
            )
        except MalformedAnswer:
            answered = []  # asked max_attempts times: these checks failed, try on a later run
        by_input: dict[str, ContactCheck] = {}
        for item in answered:
            status = item.get("status")
            if status not in CONTACT_STATUSES:
                status = Contact.FAILED
            wa_id = item.get("wa_id") if status == Contact.VALID else None
            if status == Contact.VALID and not (isinstance(wa_id, str) and wa_id):
                status, wa_id = Contact.FAILED, None
            by_input[str(item.get("input"))] = ContactCheck(str(item.get("input")), status, wa_id)
        # An input the server did not answer is a failed check, never "invalid".
        return [by_input.get(n, ContactCheck(n, Contact.FAILED)) for n in numbers]

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
            pending = [n for n in pending if results[n].status == Contact.PROCESSING]
            if not pending or time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max_s)
        return results

    async def send_template(
        self,
        to: str,
        template: Template,
        params: Sequence[str],
        *,
        extras: Extras = NO_EXTRAS,
        number: str | None = None,
        callback: str | None = None,
    ) -> SendReceipt:
        """Send one template message to a `wa_id` and return its receipt (the message id).

        On 404/1006 (contact unknown to this server) the contact is checked once with `number` and
        the message resent once to the `wa_id` that check returns. `callback` is ignored: the v1
        API carries nothing back in its webhooks.
        """
        try:
            return SendReceipt(await self._send(to, template, params, extras))
        except UnknownContact:
            if number is None:
                raise
            check = (await self.check_contacts([number]))[number]
            if check.status != Contact.VALID or check.wa_id is None:
                raise
            return SendReceipt(await self._send(check.wa_id, template, params, extras))

    async def _send(
        self, to: str, template: Template, params: Sequence[str], extras: Extras
    ) -> str:
        answer = await self._post(
            MESSAGES_PATH, template_body(to, template, params, extras), idempotent=False
        )
        try:
            message_id = answer["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            message_id = None
        if isinstance(message_id, int) and not isinstance(message_id, bool):
            message_id = str(message_id)
        if not isinstance(message_id, str) or not message_id:
            raise OutcomeUnknown(
                "POST /v1/messages: success answer without a message id; the message may have "
                "been sent"
            )
        return message_id


def _contacts_answer(answer: Any) -> list[dict[str, Any]]:
    """The `contacts` list of a /v1/contacts answer; `MalformedAnswer` when there is none."""
    contacts = answer.get("contacts") if isinstance(answer, dict) else None
    if not isinstance(contacts, list):
        raise MalformedAnswer("POST /v1/contacts: success answer without a contacts list")
    return [item for item in contacts if isinstance(item, dict)]
