"""The Cloud API's sender: template sends, template look-ups and the number's facts, with bounded
retries (cloud-api.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from types import TracebackType
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
)

from connectors.masking import mask_url
from connectors.whatsapp.answers import error_from_response
from connectors.whatsapp.calls import api_client, retry_policy, send_json, with_retries
from connectors.whatsapp.cloud import answers, templates
from connectors.whatsapp.cloud.body import endpoint, template_body
from connectors.whatsapp.components import NO_EXTRAS, Extras
from connectors.whatsapp.errors import (
    MalformedAnswer,
    NetworkError,
    OutcomeUnknown,
    UnknownObject,
    WhatsAppError,
)
from connectors.whatsapp.limits import Pause, SendLimiter, SendLimits
from connectors.whatsapp.protocol import PhoneFacts, SendReceipt, Template, TemplateInfo
from connectors.whatsapp.settings import WhatsAppSettings

# Errors raised before the request was written: the server cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

TOKEN_SETTING = "WHATSAPP_TOKEN"
PHONE_FIELDS = (
    "display_phone_number,quality_rating,throughput,whatsapp_business_manager_messaging_limit"
)
T = TypeVar("T")
PAIR_INTERVAL_S = 6.0
"""Meta's pair rate limit: about one message per recipient every 6 s (131056 when faster)."""


class CloudSender:
    """One Cloud API sender, one phone number (a `Sender` and a `TemplateDirectory`):
    `async with CloudSender(settings=...) as sender:`.

    `clock` (Unix seconds) dates Retry-After headers; `monotonic` and `sleep` time the retries and
    the pauses after a sender-wide rate limit. Tests inject all three to run without waiting.
    """

    def __init__(
        self,
        *,
        settings: WhatsAppSettings,
        http: httpx.AsyncClient | None = None,
        send_limits: SendLimits | None = None,
        max_connections: int = 32,
        pair_interval_s: float = PAIR_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if settings.api != "cloud" or settings.token is None or settings.phone_number_id is None:
            raise ValueError("CloudSender needs Cloud API settings (WHATSAPP_API=cloud)")
        self._settings = settings
        self._phone_number_id = settings.phone_number_id
        self._pair_interval_s = pair_interval_s
        self._clock = clock
        self._sleep = sleep
        self._send_limiter = (
            SendLimiter(send_limits, clock=monotonic, sleep=sleep) if send_limits else None
        )
        # A sender-wide rate limit holds every send of this number, not only the one that got it.
        self._pause = (
            self._send_limiter.pause if self._send_limiter else Pause(clock=monotonic, sleep=sleep)
        )
        self._owns_http = http is None
        self._http = http or api_client(settings, max_connections, send_limits)
        self._headers = {"Authorization": f"Bearer {settings.token.get_secret_value()}"}
        self._root = f"{settings.base_url.rstrip('/')}/{settings.graph_version}"

    def __repr__(self) -> str:
        return f"CloudSender(base_url={mask_url(self._root)!r}, sender={self.sender_id!r})"

    @property
    def sender_id(self) -> str:
        """`cloud:<phone_number_id>` (see `WhatsAppSettings.sender_id`)."""
        return self._settings.sender_id

    async def __aenter__(self) -> CloudSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections this sender opened itself."""
        if self._owns_http:
            await self._http.aclose()

    def _retrying(self, pause: Pause | None) -> AsyncRetrying:
        return retry_policy(self._settings, self._sleep, pause, self._pair_interval_s)

    def _error(self, response: httpx.Response, operation: str) -> WhatsAppError:
        return error_from_response(
            response, operation=operation, now=self._clock(), credentials=TOKEN_SETTING
        )

    @asynccontextmanager
    async def _send_slot(self) -> AsyncIterator[None]:
        """Every send passes the send limits (rate, in-flight cap, pause), or at least the pause."""
        if self._send_limiter is not None:
            async with self._send_limiter.slot():
                yield
        else:
            await self._pause.wait()
            yield

    async def _post_once(self, path: str, body: dict[str, Any]) -> Any:
        """One send: its answer's JSON, or the error it stands for."""
        operation = f"POST {path}"
        try:
            async with self._send_slot():
                response = await send_json(
                    self._http, "POST", self._root + path, body, self._headers
                )
        except _NOT_SENT as exc:
            raise NetworkError(f"{operation}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise OutcomeUnknown(
                f"{operation}: {type(exc).__name__} after the request was written"
            ) from exc
        if response.status_code not in (200, 201):
            raise self._error(response, operation)
        try:
            return response.json()
        except ValueError:
            raise OutcomeUnknown(
                f"{operation}: HTTP {response.status_code} answer is not JSON; the message may "
                "have been sent",
                status=response.status_code,
            ) from None

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
        """Send one template message to `to` (the E.164 number's digits) and return its receipt.

        The template's category picks the endpoint (see `settings.marketing_route`), its
        parameter format the body; `callback` becomes `biz_opaque_callback_data`. `number` is not
        needed: Cloud has no contact check to repeat.
        """
        body = template_body(to, template, params, extras=extras, callback=callback)
        path = f"/{self._phone_number_id}/{endpoint(template, self._settings.marketing_route)}"

        async def once() -> SendReceipt:
            return answers.send_receipt(await self._post_once(path, body), f"POST {path}")

        return await with_retries(lambda: self._retrying(self._pause), once)

    async def _get_once(self, path: str, params: Mapping[str, str], setting: str) -> Any:
        """One look-up: its answer's JSON; an error 100 (unknown id) names `setting`."""
        operation = f"GET {path}"
        try:
            response = await self._http.get(self._root + path, params=params, headers=self._headers)
        except httpx.TransportError as exc:
            raise NetworkError(f"{operation}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            error = self._error(response, operation)
            if error.code == 100 or (error.code is None and response.status_code == 404):
                raise _unknown_object(error, operation, setting, path.split("/")[1]) from error
            raise error
        try:
            return response.json()
        except ValueError:
            raise MalformedAnswer(f"{operation}: HTTP 200 answer is not JSON", status=200) from None

    async def _get(
        self, path: str, params: Mapping[str, str], setting: str, parse: Callable[[Any], T]
    ) -> T:
        """A look-up, with transient errors retried; `parse` runs inside each attempt, so an
        answer it refuses (`MalformedAnswer`) is asked again."""

        async def once() -> T:
            return parse(await self._get_once(path, params, setting))

        return await with_retries(lambda: self._retrying(None), once)

    async def _template_page(self, query: Mapping[str, str]) -> Mapping[str, Any]:
        """One page of the account's templates."""
        path = f"/{self._settings.waba_id}/message_templates"
        return await self._get(path, query, "WHATSAPP_WABA_ID", templates.page)

    async def lookup_template(self, name: str, language: str) -> TemplateInfo:
        """The account's template of this name and language, whatever its status; raises
        `TemplateUnavailable` naming both when there is none."""
        account = f"WhatsApp Business Account {self._settings.waba_id}"
        return await templates.find_template(self._template_page, name, language, account=account)

    async def lookup_translations(self, name: str) -> list[TemplateInfo]:
        """Every language of the account's template of this name, whatever their status."""
        return await templates.find_translations(self._template_page, name)

    async def phone_facts(self) -> PhoneFacts:
        """The number's display number, quality rating, throughput and messaging limit."""
        path = f"/{self._phone_number_id}"
        return await self._get(
            path,
            {"fields": PHONE_FIELDS},
            "WHATSAPP_PHONE_NUMBER_ID",
            lambda answer: answers.phone_facts(answer, self._phone_number_id, f"GET {path}"),
        )

    async def health(self) -> Mapping[str, Any] | None:
        """The phone number's facts, asked once: proves the token (401 or 190 raise an
        `AuthenticationError` naming WHATSAPP_TOKEN) and the phone number id (`UnknownObject`
        naming WHATSAPP_PHONE_NUMBER_ID); `NetworkError` when the API cannot be reached."""
        path = f"/{self._phone_number_id}"
        answer = await self._get_once(path, {"fields": PHONE_FIELDS}, "WHATSAPP_PHONE_NUMBER_ID")
        return asdict(answers.phone_facts(answer, self._phone_number_id, f"GET {path}"))


def _unknown_object(
    error: WhatsAppError, operation: str, setting: str, object_id: str
) -> UnknownObject:
    """The error a look-up of an id from the settings stands for when the API does not know it."""
    code = f", code {error.code}" if error.code is not None else ""
    return UnknownObject(
        f"{operation}: HTTP {error.status}{code} ({error.title or 'unknown id'}): the API does "
        f"not know {setting}={object_id}, or the token may not use it; check {setting} and the "
        "token's access to it",
        status=error.status,
        code=error.code,
        title=error.title,
        details=error.details,
    )
