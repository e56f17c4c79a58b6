"""Webhook pushes to the configured URL, off the request path: statuses and inbound replies.

Each accepted message gets the config's `push_statuses` (sent, delivered, read), one v1 payload
per status with the recipient's wa_id and a Unix timestamp one second apart in the true order.
A `PushPolicy` (Python: `pusher_for(state).policy = ...`; HTTP: `POST /sandbox/webhooks`) makes
them misbehave as real servers do:
- `failed_share`: that share of accepted messages fails instead (message n of the sandbox's
  count fails when floor(n * share) > floor((n - 1) * share): deterministic, exact over time),
  pushed as `failed_after` then `failed` with `errors: [{code: failed_code, title}]`;
- `script`: the status sequences of the next messages, in order, before any other rule;
- `duplicates`: every payload is posted twice; `shuffle`: a message's payloads (duplicates
  included) go out in a seeded random order that is never the true one.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from weakref import WeakKeyDictionary

import httpx

from connectors.vocabulary import DELIVERY_STATUSES, DeliveryStatus
from connectors.whatsapp.onprem.sandbox.state import SandboxState

_ATTEMPTS = 3
_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
# Pushes go out through a few workers: one task per message would crowd the server's event loop
# and httpx's pool (its per-request pool scan grows with the requests waiting) under load.
_WORKERS = 8

STATUSES: Final = DELIVERY_STATUSES
ERROR_TITLES: Final[Mapping[int, str]] = {
    470: "Message failed to send because more than 24 hours have passed since the customer "
    "last replied to this number",
    471: "Message failed to send because of spam rate limit",
    472: "User's number is part of an experiment",
    429: "Too many messages sent to this user",
    410: "Message expired",
    408: "Message is not valid",
}


@dataclass(frozen=True, kw_only=True)
class PushPolicy:
    """How status pushes deviate from a healthy server's (see the module docstring)."""

    failed_share: float = 0.0
    failed_code: int = 470
    failed_after: tuple[str, ...] = (DeliveryStatus.SENT,)
    duplicates: bool = False
    shuffle: bool = False
    script: tuple[tuple[str, ...], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.failed_share <= 1.0:
            raise ValueError(f"failed_share={self.failed_share!r}; use 0..1")
        for status in {*self.failed_after, *(s for seq in self.script for s in seq)}:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")


_PUSHERS: WeakKeyDictionary[SandboxState, WebhookPusher] = WeakKeyDictionary()


def pusher_for(state: SandboxState) -> WebhookPusher:
    """The pusher of the sandbox that owns `state` (to set its policy or push inbound replies)."""
    return _PUSHERS[state]


class WebhookPusher:
    """Posts v1 payloads from background tasks; a failing receiver never hurts the server."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[tuple[str, Sequence[Mapping[str, object]]]] | None = None
        self._accepted = 0
        self._script: deque[tuple[str, ...]] = deque()
        self._rng = random.Random(0)
        self.pushed: deque[dict[str, Any]] = deque(maxlen=10_000)
        """The last payloads posted, oldest first (for tests)."""
        self._policy = PushPolicy()
        _PUSHERS[state] = self

    @property
    def policy(self) -> PushPolicy:
        """The current misbehaviour rules."""
        return self._policy

    @policy.setter
    def policy(self, policy: PushPolicy) -> None:
        self._policy = policy
        self._script = deque(policy.script)
        self._rng = random.Random(policy.seed)
        self._accepted = 0

    def push(self, url: str, message_id: str, wa_id: str) -> None:
        """Queue the statuses of one accepted message for the push workers."""
        self._accepted += 1
        payloads = self._status_payloads(message_id, wa_id, self._sequence(self._accepted))
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            for _ in range(_WORKERS):
                task = loop.create_task(self._work(self._queue))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._queue.put_nowait((url, payloads))

    async def _work(self, queue: asyncio.Queue[tuple[str, Sequence[Mapping[str, object]]]]) -> None:
        while True:
            url, payloads = await queue.get()
            try:
                await self._deliver(url, payloads)
            finally:
                queue.task_done()

    async def push_inbound(self, url: str, wa_id: str, text: str, *, name: str = "") -> str:
        """Post a customer's text message now, as a v1 server does; returns its message id."""
        message_id = "ABGG" + secrets.token_urlsafe(18)
        payload = {
            "contacts": [{"profile": {"name": name or "Sandbox Customer"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": message_id,
                    "timestamp": str(int(self._state.config.clock())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
        # A client of its own: callers may run on another event loop than the sandbox's (a test's
        # `asyncio.run`), and the shared client's pool must never be awaited from two loops.
        async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
            ok = await self._post(url, payload, client)
        self._state.count("webhooks.inbound.delivered" if ok else "webhooks.inbound.failed")
        return message_id

    def _sequence(self, n: int) -> tuple[str, ...]:
        """The statuses message number `n` goes through, in their true order."""
        policy = self._policy
        if self._script:
            return self._script.popleft()
        share = policy.failed_share
        if share > 0 and math.floor(n * share) > math.floor((n - 1) * share):
            return (*policy.failed_after, DeliveryStatus.FAILED)
        return tuple(self._state.config.push_statuses)

    def _status_payloads(
        self, message_id: str, wa_id: str, sequence: Sequence[str]
    ) -> list[dict[str, Any]]:
        policy = self._policy
        base = int(self._state.config.clock())
        conversation = {
            "id": secrets.token_hex(16),
            "origin": {"type": "marketing"},
            "expiration_timestamp": str(base + 24 * 3600),
        }
        payloads = []
        for i, status in enumerate(sequence):
            entry: dict[str, Any] = {
                "id": message_id,
                "recipient_id": wa_id,
                "status": status,
                "timestamp": str(base + i),
            }
            if status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
                entry["conversation"] = conversation
                entry["pricing"] = {
                    "billable": True,
                    "pricing_model": "CBP",
                    "category": "marketing",
                }
            if status == DeliveryStatus.FAILED:
                title = ERROR_TITLES.get(policy.failed_code, "Message failed to send")
                entry["errors"] = [{"code": policy.failed_code, "title": title}]
            payloads.append({"statuses": [entry]})
        if policy.duplicates:
            payloads = [p for p in payloads for _ in range(2)]
        if policy.shuffle and len(payloads) > 1:
            original = list(payloads)
            self._rng.shuffle(payloads)
            if payloads == original:
                payloads.reverse()
        return payloads

    async def _deliver(self, url: str, payloads: Sequence[Mapping[str, object]]) -> None:
        delay = self._state.config.push_delay_s
        for payload in payloads:
            if delay > 0:
                await asyncio.sleep(delay)
            ok = await self._post(url, payload)
            self._state.count("webhooks.delivered" if ok else "webhooks.failed")

    async def _post(
        self, url: str, payload: Mapping[str, object], client: httpx.AsyncClient | None = None
    ) -> bool:
        if client is None:
            if self._client is None:
                self._client = httpx.AsyncClient(
                    timeout=_TIMEOUT, limits=httpx.Limits(max_connections=_WORKERS)
                )
            client = self._client
        self.pushed.append(dict(payload))
        for attempt in range(_ATTEMPTS):
            try:
                response = await client.post(url, json=payload)
                if response.status_code < 300:
                    return True
            except Exception:  # any receiver failure only counts as a failed push
                pass
            if attempt + 1 < _ATTEMPTS:
                await asyncio.sleep(0.05 * 2**attempt)
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
