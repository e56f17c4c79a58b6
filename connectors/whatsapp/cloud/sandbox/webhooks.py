"""Signed Cloud webhooks to the configured URL, off the request path: statuses, preferences, texts.

Every body is a `whatsapp_business_account` envelope signed as Meta signs it:
`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>`. A push that does
not get HTTP 200 is retried twice (Meta retries for days; the sandbox gives up sooner) and counted
in `stats()` as `webhooks.delivered` or `webhooks.failed` (`webhooks.<field>.…` for the others).

What is emitted, one body per event:
- statuses of each accepted send, in their true order, one second apart: `id`, `status`,
  `timestamp`, `recipient_id`, `recipient_user_id` (with BSUIDs on; left out of `failed`, as Meta
  does for sends addressed to a phone number), `biz_opaque_callback_data` when the send had one,
  `pricing` (PMP, the template's category, `regular`) on `sent` and `delivered`, `errors` on
  `failed`;
- `user_preferences`: `{wa_id, user_id?, detail, category: marketing_messages, value, timestamp}`;
- an inbound text: `contacts[{profile, wa_id, user_id?}]` and `messages[{from, from_user_id?, id,
  timestamp, type: text, text}]`; "BSUID only" leaves out `wa_id` and `from`, as for a user with
  a username whose number Meta withholds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from connectors.vocabulary import DeliveryStatus
from connectors.whatsapp.cloud.sandbox.errors import error_entry
from connectors.whatsapp.cloud.sandbox.rules import Outcome, bsuid_of
from connectors.whatsapp.cloud.sandbox.state import CloudSandboxState, CloudSentMessage

OBJECT: Final = "whatsapp_business_account"
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
_ATTEMPTS = 3
_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
# A few workers, not a task per message: thousands of tasks would crowd the server's event loop.
_WORKERS = 8
_PREFERENCE_DETAILS: Final = {
    "stop": "User requested to stop marketing messages",
    "resume": "User requested to resume marketing messages",
}


def signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value of `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class CloudWebhookPusher:
    """Posts signed envelopes from background workers; a failing receiver never hurts the API."""

    def __init__(self, state: CloudSandboxState) -> None:
        self._state = state
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[tuple[str, Sequence[dict[str, Any]]]] | None = None

    # Building bodies -------------------------------------------------------------------------

    def envelope(
        self, phone_number_id: str, field: str, value: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One change of `field` about business number `phone_number_id`, in Meta's envelope."""
        config = self._state.config
        metadata = {
            "display_phone_number": config.phone_numbers[phone_number_id],
            "phone_number_id": phone_number_id,
        }
        change_value = {"messaging_product": "whatsapp", "metadata": metadata, **value}
        change = {"field": field, "value": change_value}
        return {"object": OBJECT, "entry": [{"id": config.waba_id, "changes": [change]}]}

    def _bsuid(self, digits: str) -> str | None:
        config = self._state.config
        return bsuid_of(digits, business=config.waba_id) if config.bsuids else None

    def status_bodies(
        self, sent: CloudSentMessage, outcome: Outcome, *, phone_number_id: str, category: str
    ) -> list[dict[str, Any]]:
        """The status envelopes of one accepted send, in their true order."""
        base = int(self._state.config.clock())
        user_id = self._bsuid(sent.to)
        bodies = []
        for i, status in enumerate(outcome.statuses):
            entry: dict[str, Any] = {
                "id": sent.message_id,
                "status": status,
                "timestamp": str(base + i),
                "recipient_id": sent.to,
            }
            if user_id is not None and status != DeliveryStatus.FAILED:
                entry["recipient_user_id"] = user_id
            if sent.callback_data is not None:
                entry["biz_opaque_callback_data"] = sent.callback_data
            if status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
                entry["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "category": category.lower(),
                    "type": "regular",
                }
            if status == DeliveryStatus.FAILED and outcome.error_code is not None:
                entry["errors"] = [error_entry(outcome.error_code)]
            bodies.append(self.envelope(phone_number_id, "messages", {"statuses": [entry]}))
        return bodies

    def preference_body(self, digits: str, value: str, *, phone_number_id: str) -> dict[str, Any]:
        """A `user_preferences` envelope: the user stopped or resumed marketing messages."""
        user_id = self._bsuid(digits)
        ids = {"wa_id": digits} | ({} if user_id is None else {"user_id": user_id})
        preference = {
            **ids,
            "detail": _PREFERENCE_DETAILS[value],
            "category": "marketing_messages",
            "value": value,
            "timestamp": int(self._state.config.clock()),
        }
        contact = {"profile": {"name": "Sandbox Customer"}, **ids}
        value_obj = {"contacts": [contact], "user_preferences": [preference]}
        return self.envelope(phone_number_id, "user_preferences", value_obj)

    def inbound_body(
        self, digits: str, text: str, *, name: str, bsuid_only: bool, phone_number_id: str
    ) -> tuple[str, dict[str, Any]]:
        """A customer's text message envelope and its wamid."""
        raw = f"in:{digits}:{secrets.token_hex(8)}".encode()
        message_id = "wamid." + base64.b64encode(raw).decode()
        user_id = self._bsuid(digits)
        contact: dict[str, Any] = {"profile": {"name": name or "Sandbox Customer"}}
        message: dict[str, Any] = {}
        if not bsuid_only:
            contact["wa_id"], message["from"] = digits, digits
        if user_id is not None:
            contact["user_id"], message["from_user_id"] = user_id, user_id
        message |= {
            "id": message_id,
            "timestamp": str(int(self._state.config.clock())),
            "type": "text",
            "text": {"body": text},
        }
        value = {"contacts": [contact], "messages": [message]}
        return message_id, self.envelope(phone_number_id, "messages", value)

    # Posting ---------------------------------------------------------------------------------

    def queue(self, url: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Queue bodies to be posted to `url` in order by one worker (on the server's loop)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            for _ in range(_WORKERS):
                task = loop.create_task(self._work(self._queue))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._state.count("webhooks.queued", len(bodies))
        self._queue.put_nowait((url, bodies))

    async def _work(self, queue: asyncio.Queue[tuple[str, Sequence[dict[str, Any]]]]) -> None:
        while True:
            url, bodies = await queue.get()
            try:
                for body in bodies:
                    if self._state.config.push_delay_s > 0:
                        await asyncio.sleep(self._state.config.push_delay_s)
                    await self.post(url, body, counter="webhooks")
            finally:
                queue.task_done()

    async def post(self, url: str, payload: dict[str, Any], *, counter: str) -> bool:
        """Post one signed body to `url`, retrying non-200s; count the outcome."""
        if self._client is None:
            limits = httpx.Limits(max_connections=_WORKERS)
            self._client = httpx.AsyncClient(timeout=_TIMEOUT, limits=limits)
        self._state.note_push(payload)
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(body, self._state.app_secret),
        }
        for attempt in range(_ATTEMPTS):
            try:
                response = await self._client.post(url, content=body, headers=headers)
                if response.status_code == 200:
                    self._state.count(f"{counter}.delivered")
                    return True
            except Exception:  # any receiver failure only counts as a failed push
                pass
            if attempt + 1 < _ATTEMPTS:
                await asyncio.sleep(0.05 * 2**attempt)
        self._state.count(f"{counter}.failed")
        return False

    async def aclose(self) -> None:
        """Cancel pending pushes and close the HTTP client (at server shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
