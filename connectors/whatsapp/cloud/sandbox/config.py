"""How a Cloud sandbox behaves: token, numbers, templates, limits, faults, webhooks; injectable."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from connectors.whatsapp.cloud.sandbox.faults import CloudFault, FaultPlan
from connectors.whatsapp.cloud.sandbox.templates import DEFAULT_TEMPLATES, CloudTemplate

Endpoint = Literal["phone_number", "templates", "messages", "marketing_messages"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    "phone_number",
    "templates",
    "messages",
    "marketing_messages",
)
"""`phone_number` is `GET /{version}/{id}` (the phone number's facts, or the WABA's)."""

MessagingLimit = Literal["TIER_250", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"]
MESSAGING_LIMITS: Final[tuple[MessagingLimit, ...]] = (
    "TIER_250",
    "TIER_2K",
    "TIER_10K",
    "TIER_100K",
    "TIER_UNLIMITED",
)
GRAPH_VERSION: Final = "v23.0"
DEFAULT_TOKEN: Final = "sandbox-cloud-token"
DEFAULT_APP_SECRET: Final = "sandbox-app-secret"
DEFAULT_WABA_ID: Final = "102290129340398"
DEFAULT_PHONE_NUMBER_ID: Final = "106540352242922"
DEFAULT_DISPLAY_NUMBER: Final = "15550783881"
HIGH_THROUGHPUT_PER_S: Final = 1000.0


def _default_phone_numbers() -> Mapping[str, str]:
    return {DEFAULT_PHONE_NUMBER_ID: DEFAULT_DISPLAY_NUMBER}


@dataclass(frozen=True, kw_only=True)
class CloudSandboxConfig:
    """Everything a Cloud sandbox starts with; the defaults mimic a healthy, verified number."""

    tokens: tuple[str, ...] = (DEFAULT_TOKEN,)
    graph_version: str = GRAPH_VERSION
    """The version printed and advertised; requests may use any `v<major>.<minor>`."""
    waba_id: str = DEFAULT_WABA_ID
    phone_numbers: Mapping[str, str] = field(default_factory=_default_phone_numbers)
    """phone_number_id -> display_phone_number (digits) of each business number."""
    quality_rating: Literal["GREEN", "YELLOW", "RED"] = "GREEN"
    messaging_limit: MessagingLimit = "TIER_100K"
    templates: tuple[CloudTemplate, ...] = DEFAULT_TEMPLATES

    marketing_on_messages: bool = True
    """False: a MARKETING template sent to `/messages` answers 131063."""
    bsuids: bool = True
    """Return a business-scoped user id (`user_id`, `recipient_user_id`) for every recipient."""
    text_format_code: Literal[100, 132012] = 100
    """Code of a body parameter with a newline, a tab or 5+ spaces in a row."""

    throughput_per_s: float | None = 80.0
    """Messages per second per phone number (None: unlimited); above it 130429."""
    throughput_burst: int | None = None
    """Sends a full bucket holds; None: one second's worth."""
    throttle_status: Literal[429, 400] = 429
    throttle_retry_after_s: int | None = None
    """A `Retry-After` (whole seconds) on 130429 answers; None: none, as Meta sends (a provider's
    proxy may add one: set it to see a client honour it)."""
    pair_interval_s: float = 6.0
    """At most one message to the same recipient per this many seconds (131056); 0: off."""

    latency_s: float = 0.0
    fault_rates: Mapping[Endpoint, Mapping[CloudFault, float]] = field(default_factory=dict)
    fault_script: Mapping[Endpoint, tuple[CloudFault, ...]] = field(default_factory=dict)
    """Per endpoint: v1 fault kinds (`500`, `503`, `reset`, `hang`, `garbage`) or `code:<n>`."""
    fault_seed: int = 0
    hang_s: float = 30.0

    webhook_url: str | None = None
    app_secret: str = DEFAULT_APP_SECRET
    push_delay_s: float = 0.0

    clock: Callable[[], float] = time.time
    """Wall clock in Unix seconds for the pair limit and webhook timestamps; tests inject one."""

    def __post_init__(self) -> None:
        if not self.tokens or not all(self.tokens):
            raise ValueError("tokens: give at least one non-empty access token")
        if not self.phone_numbers:
            raise ValueError("phone_numbers: give at least one phone_number_id")
        if self.messaging_limit not in MESSAGING_LIMITS:
            raise ValueError(f"messaging_limit={self.messaging_limit!r}; use {MESSAGING_LIMITS}")
        if self.throttle_status not in (429, 400):
            raise ValueError(f"throttle_status={self.throttle_status!r}; use 429 or 400")
        if self.throttle_retry_after_s is not None and self.throttle_retry_after_s < 0:
            raise ValueError(
                f"throttle_retry_after_s={self.throttle_retry_after_s!r}; use >= 0 or None"
            )
        if self.text_format_code not in (100, 132012):
            raise ValueError(f"text_format_code={self.text_format_code!r}; use 100 or 132012")
        if self.throughput_per_s is not None and self.throughput_per_s <= 0:
            raise ValueError(f"throughput_per_s={self.throughput_per_s!r}; use > 0 or None")
        if self.throughput_burst is not None and self.throughput_burst < 1:
            raise ValueError(f"throughput_burst={self.throughput_burst!r}; use >= 1 or None")
        if self.pair_interval_s < 0:
            raise ValueError(f"pair_interval_s={self.pair_interval_s!r}; use >= 0")
        self.fault_plan()  # validates endpoints, kinds and probabilities

    @property
    def phone_number_id(self) -> str:
        """The first (default) business phone number id."""
        return next(iter(self.phone_numbers))

    @property
    def throughput_level(self) -> Literal["STANDARD", "HIGH"]:
        """HIGH from 1,000 messages/s (Meta's upgraded numbers), else STANDARD."""
        rate = self.throughput_per_s
        return "HIGH" if rate is None or rate >= HIGH_THROUGHPUT_PER_S else "STANDARD"

    def fault_plan(self) -> FaultPlan:
        """A fresh fault plan from the configured rates and script."""
        return FaultPlan(
            ENDPOINTS, rates=self.fault_rates, script=self.fault_script, seed=self.fault_seed
        )
