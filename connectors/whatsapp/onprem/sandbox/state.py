"""What a running sandbox knows: tokens, contact cache, faults and the record of requests."""

from __future__ import annotations

import random
import secrets
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from aiolimiter import AsyncLimiter

from connectors.vocabulary import Contact, ContactStatus
from connectors.whatsapp.onprem.sandbox.config import (
    CONTACT_CACHE_S,
    Endpoint,
    FaultKind,
    RateLimit,
    SandboxConfig,
    check_endpoint,
    check_fault_kind,
    check_fault_rates,
    check_fault_script,
)
from connectors.whatsapp.onprem.sandbox.rules import contact_status, digits_of

AuthUsed = Literal["basic", "bearer", "static", "api_key"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received and answered; `auth` names the mode, never the secret."""

    endpoint: str
    method: str
    path: str
    body: Any
    auth: AuthUsed | None
    status: int | None
    """HTTP status sent, or None when no answer went out (reset, or the client left a hang)."""
    fault: FaultKind | None
    monotonic: float
    wall_time: float


class SentMessage(NamedTuple):
    """An accepted send: who, which template, its body parameters and the id answered."""

    to: str
    template: str
    params: tuple[str, ...]
    message_id: str


@dataclass(frozen=True, slots=True)
class _CachedCheck:
    status: ContactStatus
    wa_id: str | None
    checked_at: float


class SandboxState:
    """Mutable state of one sandbox; safe to read from another thread (tests) while it serves."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.fault_seed)
        self._tokens: dict[str, float] = {}
        self.latency_s = config.latency_s
        self.always_valid = config.always_valid
        self.hang_s = config.hang_s
        self.retry_after_s = config.retry_after_s
        self.webhook_url = config.webhook_url
        self.templates = dict(config.templates)
        self._fault_rates: dict[Endpoint, dict[FaultKind, float]] = {
            endpoint: dict(rates) for endpoint, rates in config.fault_rates.items()
        }
        self._scripts: dict[Endpoint, deque[FaultKind]] = {
            endpoint: deque(kinds) for endpoint, kinds in config.fault_script.items()
        }
        self._processing: set[str] = {digits_of(n) for n in config.processing_numbers}
        self._failed: set[str] = {digits_of(n) for n in config.failed_numbers}
        self._processing_asks = config.processing_asks
        self._clear()

    def _clear(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._sent: list[SentMessage] = []
        self._sent_to: list[str] = []
        self._checked: list[str] = []
        self._cache: dict[str, _CachedCheck] = {}
        self._asks: Counter[str] = Counter()
        self._known: set[str] = set()
        self._counters: Counter[str] = Counter()
        self._limiters = {
            "messages": _limiter(self.config.rate_limit_messages),
            "login": _limiter(self.config.rate_limit_login),
            "other": _limiter(self.config.rate_limit_other),
        }

    def reset(self) -> None:
        """Forget the record, the contact cache, known contacts, counters and rate buckets."""
        with self._lock:
            self._clear()

    # The record ------------------------------------------------------------------------------

    def record(self, entry: RecordedRequest) -> None:
        """Append one request to the record."""
        with self._lock:
            self._requests.append(entry)
            self._counters[f"requests.{entry.endpoint}"] += 1

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every API request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The recorded requests to one endpoint (`messages`, `contacts`, `login`...)."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def messages_sent(self) -> list[SentMessage]:
        """Every accepted send, in order."""
        with self._lock:
            return list(self._sent)

    def sent_to(self) -> list[str]:
        """The `to` of every message request received, rejected ones included."""
        with self._lock:
            return list(self._sent_to)

    def contacts_checked(self) -> list[str]:
        """Every input number sent to /v1/contacts, as sent, in order (cache hits included)."""
        with self._lock:
            return list(self._checked)

    def known_contacts(self) -> set[str]:
        """The wa_ids this sandbox has answered `valid`: the only ones a message may go to."""
        with self._lock:
            return set(self._known)

    def stats(self) -> dict[str, int]:
        """Counters: requests per endpoint, cache hits/misses, sends, rejections, faults, pushes."""
        with self._lock:
            return dict(self._counters)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        with self._lock:
            self._counters[name] += amount

    # Tokens ----------------------------------------------------------------------------------

    def issue_token(self) -> tuple[str, float]:
        """A new bearer token and its expiry (Unix seconds on the config's clock)."""
        token = secrets.token_urlsafe(32)
        expires_at = self.config.clock() + self.config.token_lifetime_s
        self._tokens[token] = expires_at
        return token, expires_at

    def bearer_mode(self, token: str) -> AuthUsed | None:
        """`bearer` for a live login token, `static` for a configured one, else None."""
        expires_at = self._tokens.get(token)
        if expires_at is not None:
            if self.config.clock() < expires_at:
                return "bearer"
            del self._tokens[token]
        if any(secrets.compare_digest(token, t) for t in self.config.static_tokens):
            return "static"
        return None

    def revoke_token(self, token: str) -> None:
        """Make a login token invalid at once."""
        self._tokens.pop(token, None)

    def revoke_all_tokens(self) -> int:
        """Make every login token invalid at once (an operator's reset); returns how many."""
        revoked = len(self._tokens)
        self._tokens.clear()
        return revoked

    # Rate limits and faults ------------------------------------------------------------------

    def limiter(self, endpoint: Endpoint) -> AsyncLimiter | None:
        """The bucket an endpoint draws from, or None when unlimited."""
        if endpoint == "messages" or endpoint == "login":
            return self._limiters[endpoint]
        return self._limiters["other"]

    def script(self, endpoint: str, faults: Iterable[str]) -> None:
        """Queue faults for the next requests to `endpoint`, in order; then it answers normally."""
        kinds = list(faults)
        check_fault_script(endpoint, kinds)
        with self._lock:
            queue = self._scripts.setdefault(check_endpoint(endpoint), deque())
            queue.extend(check_fault_kind(k) for k in kinds)

    def set_fault_rates(self, endpoint: str, rates: Mapping[str, float]) -> None:
        """Replace the fault probabilities of one endpoint (empty mapping: no random faults)."""
        check_fault_rates(endpoint, rates)
        with self._lock:
            self._fault_rates[check_endpoint(endpoint)] = {
                check_fault_kind(k): p for k, p in rates.items()
            }

    def clear_faults(self) -> None:
        """Drop every scripted fault and fault probability."""
        with self._lock:
            self._scripts.clear()
            self._fault_rates.clear()

    def next_fault(self, endpoint: Endpoint) -> FaultKind | None:
        """The fault this request gets: the script first, then one seeded draw per request."""
        queue = self._scripts.get(endpoint)
        if queue:
            with self._lock:
                return queue.popleft() if queue else None
        rates = self._fault_rates.get(endpoint)
        if not rates:
            return None
        draw = self._rng.random()
        for kind, probability in rates.items():
            if draw < probability:
                return kind
            draw -= probability
        return None

    def shuffle(self, items: list[Any]) -> None:
        """Reorder `items` in place with the seeded generator."""
        self._rng.shuffle(items)

    # Contacts --------------------------------------------------------------------------------

    def set_processing_numbers(self, numbers: Iterable[str], *, asks: int | None = None) -> None:
        """Numbers that answer `processing` in no_wait mode for the first `asks` asks."""
        with self._lock:
            self._processing = {digits_of(n) for n in numbers}
            self._asks.clear()
            if asks is not None:
                self._processing_asks = asks

    def set_failed_numbers(self, numbers: Iterable[str]) -> None:
        """Numbers whose check always answers `failed`."""
        with self._lock:
            self._failed = {digits_of(n) for n in numbers}

    def check_contact(self, number: str, *, wait: bool, force: bool) -> dict[str, str]:
        """Answer one input of /v1/contacts, using and filling the 7-day cache."""
        self._checked.append(number)
        digits = digits_of(number)
        if digits in self._failed:
            self.count("contacts.failed")
            return {"input": number, "status": Contact.FAILED}
        now = self.config.clock()
        cached = None if force else self._cache.get(digits)
        if cached is not None and now - cached.checked_at < CONTACT_CACHE_S:
            self.count("contacts.cache_hits")
            status, wa_id = cached.status, cached.wa_id
        else:
            self.count("contacts.cache_misses")
            if not wait and digits in self._processing:
                self._asks[digits] += 1
                if self._asks[digits] <= self._processing_asks:
                    return {"input": number, "status": Contact.PROCESSING}
            status, wa_id = contact_status(number, always_valid=self.always_valid)
            self._cache[digits] = _CachedCheck(status, wa_id, now)
        if wa_id is None:
            return {"input": number, "status": status}
        self._known.add(wa_id)
        return {"input": number, "status": status, "wa_id": wa_id}

    # Messages --------------------------------------------------------------------------------

    def note_message_to(self, to: str) -> None:
        """Remember the `to` of a message request, accepted or not."""
        self._sent_to.append(to)

    def is_known(self, wa_id: str) -> bool:
        """True when a contacts call of this sandbox answered `valid` with this wa_id."""
        return wa_id in self._known

    def accept_message(self, to: str, template: str, params: tuple[str, ...]) -> str:
        """Record an accepted send and return its new message id."""
        message_id = "gBEG" + secrets.token_urlsafe(18)
        with self._lock:
            self._sent.append(SentMessage(to, template, params, message_id))
            self._counters["messages.accepted"] += 1
        return message_id


def _limiter(limit: RateLimit | None) -> AsyncLimiter | None:
    """A leaky bucket holding `burst` requests that drains at `rate` per second."""
    if limit is None:
        return None
    rate, burst = limit
    return AsyncLimiter(burst, burst / rate)
