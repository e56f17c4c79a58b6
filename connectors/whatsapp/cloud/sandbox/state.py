"""What a running Cloud sandbox knows: tokens, buckets, pair limits, faults, sends and pushes."""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from aiolimiter import AsyncLimiter

from connectors.whatsapp.cloud.sandbox.config import CloudSandboxConfig, Endpoint
from connectors.whatsapp.cloud.sandbox.faults import CloudFault
from connectors.whatsapp.cloud.sandbox.messages import CloudSend
from connectors.whatsapp.cloud.sandbox.rules import MessageStatus
from connectors.whatsapp.onprem.sandbox.state import _limiter as rate_bucket

AuthUsed = Literal["bearer", "query"]
"""How the access token came: `Authorization: Bearer` or the `access_token` query parameter."""


@dataclass(frozen=True, slots=True)
class CloudRecordedRequest:
    """One request as received and answered; `auth` names the mode, never the token."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    """The query parameters, `access_token` masked as `***`."""
    body: Any
    auth: AuthUsed | None
    status: int | None
    """HTTP status sent, or None when no answer went out (reset, or the client left a hang)."""
    fault: CloudFault | None
    monotonic: float
    wall_time: float


class CloudSentMessage(NamedTuple):
    """An accepted send: recipient digits, template, texts, the wamid and how it was answered."""

    to: str
    template: str
    language: str
    params: tuple[str, ...]
    message_id: str
    endpoint: str
    message_status: MessageStatus
    callback_data: str | None


class CloudSandboxState:
    """Mutable state of one Cloud sandbox; safe to read from another thread while it serves."""

    def __init__(self, config: CloudSandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.faults = config.fault_plan()
        self.tokens: tuple[str, ...] = config.tokens
        self.latency_s = config.latency_s
        self.hang_s = config.hang_s
        self.webhook_url = config.webhook_url
        self.app_secret = config.app_secret
        self.marketing_on_messages = config.marketing_on_messages
        self._ids = itertools.count(1)
        self._clear()

    def _clear(self) -> None:
        self._requests: list[CloudRecordedRequest] = []
        self._sent: list[CloudSentMessage] = []
        self._sent_to: list[str] = []
        self._pushed: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._last_sent: dict[str, float] = {}
        self._stopped: set[str] = set()
        self._counters: Counter[str] = Counter()
        rate = self.config.throughput_per_s
        burst = self.config.throughput_burst or max(1, round(rate or 1))
        self._buckets: dict[str, AsyncLimiter | None] = {
            number: rate_bucket(None if rate is None else (rate, burst))
            for number in self.config.phone_numbers
        }

    def reset(self) -> None:
        """Forget the record, sends, pushes, counters, pair limits, opt-outs and rate buckets."""
        with self._lock:
            self._clear()

    # The record ------------------------------------------------------------------------------

    def begin(self, endpoint: str) -> None:
        """Count a request whose body was read; `record` ends it (`in_flight`)."""
        self.count(f"started.{endpoint}")

    def in_flight(self) -> int:
        """Requests read but not yet answered: 0 once the sandbox has finished all it was sent,
        e.g. after a client was killed mid-send."""
        with self._lock:
            started = sum(n for name, n in self._counters.items() if name.startswith("started."))
            return started - len(self._requests)

    def record(self, entry: CloudRecordedRequest) -> None:
        """Append one request to the record."""
        with self._lock:
            self._requests.append(entry)
            self._counters[f"requests.{entry.endpoint}"] += 1

    @property
    def requests(self) -> list[CloudRecordedRequest]:
        """A snapshot of every API request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[CloudRecordedRequest]:
        """The recorded requests to one endpoint (`messages`, `templates`, `phone_number`...)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def messages_sent(self) -> list[CloudSentMessage]:
        """Every accepted send, in order."""
        with self._lock:
            return list(self._sent)

    def sent_to(self) -> list[str]:
        """The `to` of every send request received, rejected ones included, as written."""
        with self._lock:
            return list(self._sent_to)

    def pushed(self) -> list[dict[str, Any]]:
        """The webhook bodies posted (the last 10,000), oldest first, retries not repeated."""
        with self._lock:
            return list(self._pushed)

    def note_push(self, payload: dict[str, Any]) -> None:
        """Remember one webhook body about to be posted."""
        with self._lock:
            self._pushed.append(payload)

    def stats(self) -> dict[str, int]:
        """Counters: requests and rejections per endpoint, sends, faults, webhook deliveries."""
        with self._lock:
            return dict(self._counters)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        with self._lock:
            self._counters[name] += amount

    # Access and limits -----------------------------------------------------------------------

    def token_valid(self, token: str) -> bool:
        """True when `token` is one of the accepted access tokens (constant-time compare)."""
        given = token.encode()
        return any(secrets.compare_digest(given, t.encode()) for t in self.tokens)

    def set_tokens(self, tokens: Iterable[str]) -> None:
        """Replace the accepted tokens (an empty list revokes all: every call answers 190)."""
        self.tokens = tuple(t for t in tokens if t)

    def bucket(self, phone_number_id: str) -> AsyncLimiter | None:
        """The throughput bucket of one business number, or None when unlimited."""
        return self._buckets.get(phone_number_id)

    def pair_wait(self, digits: str) -> float:
        """Seconds until `digits` may get another message (0: now), by the pair rate limit."""
        interval = self.config.pair_interval_s
        last = self._last_sent.get(digits)
        if interval <= 0 or last is None:
            return 0.0
        return max(0.0, last + interval - self.config.clock())

    def set_marketing_stopped(self, digits: str, stopped: bool) -> None:
        """Remember a user's "Stop promotions" (True) or resume (False)."""
        with self._lock:
            (self._stopped.add if stopped else self._stopped.discard)(digits)

    def marketing_stopped(self, digits: str) -> bool:
        """True when the user stopped marketing messages from this business."""
        return digits in self._stopped

    # Sends -----------------------------------------------------------------------------------

    def note_send_to(self, to: str) -> None:
        """Remember the `to` of a send request, accepted or not."""
        with self._lock:
            self._sent_to.append(to)

    def accept(
        self, endpoint: Endpoint, send: CloudSend, message_status: MessageStatus
    ) -> CloudSentMessage:
        """Record an accepted send under a new wamid and start its pair-limit interval."""
        serial = next(self._ids)
        raw = f"{send.digits}:{serial}:{secrets.token_hex(8)}".encode()
        message_id = "wamid." + base64.b64encode(raw).decode()
        sent = CloudSentMessage(
            send.digits,
            send.template.name,
            send.template.language,
            send.params,
            message_id,
            endpoint,
            message_status,
            send.callback_data,
        )
        with self._lock:
            if send.digits not in self._last_sent:
                self._counters["recipients.unique"] += 1
            self._last_sent[send.digits] = self.config.clock()
            self._sent.append(sent)
            self._counters[f"{endpoint}.accepted"] += 1
        return sent


def masked_query(query: Mapping[str, str]) -> dict[str, str]:
    """The query parameters with the access token masked, for the record."""
    return {k: "***" if k == "access_token" else v for k, v in query.items()}
