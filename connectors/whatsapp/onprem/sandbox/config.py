"""How a sandbox behaves: credentials, rates, templates, faults and number rules, all injectable."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from connectors.vocabulary import DeliveryStatus
from connectors.whatsapp.shape import ButtonShape, TemplateShape

FaultKind = Literal["500", "503", "reset", "hang", "garbage"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("500", "503", "reset", "hang", "garbage")
"""`garbage`: a 200 whose body is `not json`, as a misbehaving proxy answers."""

Endpoint = Literal["login", "logout", "contacts", "messages", "settings", "health"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    "login",
    "logout",
    "contacts",
    "messages",
    "settings",
    "health",
)

RateLimit = tuple[float, int]
"""(requests per second, burst): a bucket of `burst` requests refilled at the rate."""

TemplateKey = tuple[str, str, str]
"""(namespace, name, language code) of an approved template."""


BODY_ONLY: Final = TemplateShape()
"""The shape of a template without a header or buttons."""


@dataclass(frozen=True, slots=True)
class V1Template:
    """An approved template as a v1 campaign declares it: its body's parameter count and its
    header and buttons."""

    body_params: int
    shape: TemplateShape = BODY_ONLY


def _order_shipped() -> V1Template:
    """order_shipped in every language: an IMAGE header, a tracking link and a quick reply."""
    buttons = (ButtonShape("URL", dynamic=True), ButtonShape("QUICK_REPLY"))
    return V1Template(1, TemplateShape(header="IMAGE", buttons=buttons))


DEFAULT_TEMPLATES: Final[Mapping[TemplateKey, V1Template]] = {
    ("acme_ns", "order_update", "en"): V1Template(1),
    ("acme_ns", "spring_sale", "en"): V1Template(1),
    ("acme_ns", "welcome", "en"): V1Template(0),
    ("acme_ns", "order_update", "de"): V1Template(1),
    ("acme_ns", "order_shipped", "en"): _order_shipped(),
    ("acme_ns", "order_shipped", "de"): _order_shipped(),
    ("acme_ns", "spring_coupon", "en"): V1Template(
        0,
        TemplateShape(
            header="TEXT",
            header_params=("1",),
            buttons=(ButtonShape("COPY_CODE"), ButtonShape("URL")),
        ),
    ),
    ("acme_ns", "terms_update", "en"): V1Template(1, TemplateShape(header="DOCUMENT")),
    ("acme_ns", "product_video", "en"): V1Template(
        0, TemplateShape(header="VIDEO", buttons=(ButtonShape("QUICK_REPLY"),))
    ),
}
"""The approved templates of namespace `acme_ns`; the last four have the Cloud sandbox's shapes:

| name | languages | body parameters | header | buttons |
|---|---|---|---|---|
| order_update | en, de | 1 | - | - |
| spring_sale | en | 1 | - | - |
| welcome | en | 0 | - | - |
| order_shipped | en, de | 1 | IMAGE | 0 URL (dynamic), 1 QUICK_REPLY |
| spring_coupon | en | 0 | TEXT, 1 parameter | 0 COPY_CODE, 1 URL (static) |
| terms_update | en | 1 | DOCUMENT | - |
| product_video | en | 0 | VIDEO | 0 QUICK_REPLY |
"""

CONTACT_CACHE_S: Final = 7 * 24 * 3600


def _default_templates() -> Mapping[TemplateKey, V1Template]:
    return dict(DEFAULT_TEMPLATES)


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Everything a sandbox instance is started with; the defaults mimic a healthy v1 server."""

    username: str = "admin"
    password: str = "sandbox-password"
    api_keys: tuple[str, ...] = ("sandbox-api-key",)
    static_tokens: tuple[str, ...] = ()
    token_lifetime_s: float = 7 * 24 * 3600

    latency_s: float = 0.0
    always_valid: bool = False
    shuffle_contacts: bool = False
    success_status: Literal[200, 201] = 201

    rate_limit_messages: RateLimit | None = (50.0, 150)
    rate_limit_other: RateLimit | None = (20.0, 60)
    rate_limit_login: RateLimit | None = (20.0, 60)
    retry_after_s: int | None = None
    """The Retry-After of a 429, in seconds; None: the time the bucket takes to refill one."""

    templates: Mapping[TemplateKey, V1Template] = field(default_factory=_default_templates)

    fault_rates: Mapping[Endpoint, Mapping[FaultKind, float]] = field(default_factory=dict)
    fault_script: Mapping[Endpoint, tuple[FaultKind, ...]] = field(default_factory=dict)
    fault_seed: int = 0
    hang_s: float = 30.0

    processing_numbers: tuple[str, ...] = ()
    processing_asks: int = 1
    failed_numbers: tuple[str, ...] = ()

    webhook_url: str | None = None
    push_statuses: tuple[str, ...] = (
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
    )
    push_delay_s: float = 0.0

    clock: Callable[[], float] = time.time
    """Wall clock in Unix seconds for token expiry and the contact cache; tests inject a fake."""

    def __post_init__(self) -> None:
        if self.success_status not in (200, 201):
            raise ValueError(f"success_status={self.success_status!r}; use 200 or 201")
        for name in ("rate_limit_messages", "rate_limit_other", "rate_limit_login"):
            limit: RateLimit | None = getattr(self, name)
            if limit is not None and (limit[0] <= 0 or limit[1] < 1):
                raise ValueError(f"{name}={limit!r}; use (rate > 0, burst >= 1) or None")
        check_retry_after(self.retry_after_s)
        for endpoint, rates in self.fault_rates.items():
            check_fault_rates(endpoint, rates)
        for endpoint, kinds in self.fault_script.items():
            check_fault_script(endpoint, kinds)


def check_retry_after(seconds: object) -> None:
    """Reject a Retry-After that is not a whole number of seconds >= 0 (RFC 9110) or None."""
    if seconds is not None and (
        not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0
    ):
        raise ValueError(f"retry_after_s={seconds!r}; use whole seconds >= 0, or None")


def check_endpoint(endpoint: str) -> Endpoint:
    """Return `endpoint` typed, or raise naming the accepted values."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)}")
    return endpoint


def check_fault_kind(kind: str) -> FaultKind:
    """Return `kind` typed, or raise naming the accepted values."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)}")
    return kind


def check_fault_rates(
    endpoint: str, rates: Mapping[str, float] | Mapping[FaultKind, float]
) -> None:
    """Reject unknown endpoints or kinds and probabilities outside [0, 1] (summing above 1)."""
    check_endpoint(endpoint)
    for kind, probability in rates.items():
        check_fault_kind(kind)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault rate {endpoint}/{kind}={probability!r}; use 0..1")
    if sum(rates.values()) > 1.0:
        raise ValueError(f"fault rates for {endpoint} sum above 1: {dict(rates)!r}")


def check_fault_script(endpoint: str, kinds: Sequence[str]) -> None:
    """Reject unknown endpoints or fault kinds in a script."""
    check_endpoint(endpoint)
    for kind in kinds:
        check_fault_kind(kind)
