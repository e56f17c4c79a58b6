"""A campaign's parameters: what the Prefect UI renders as a form and refuses bad input for."""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Final, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from connectors.crm import Audience, missing_param_message
from connectors.vocabulary import PARAM_PREFIX
from tasks.template.spec import TemplateSpec

__all__ = ["Campaign", "SendWindow", "TemplateSpec"]


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_CLOCK_FIELD: Final[dict[str, JsonValue]] = {"pattern": _CLOCK.pattern}
_REGIONS: Final = list[JsonValue](sorted(phonenumbers.SUPPORTED_REGIONS))
_BOUNDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _bounds_on_field(schema: dict[str, Any]) -> None:
    """Move an optional number's bounds from its `anyOf` branch to the field itself, so a form
    names the bound a value breaks ("-1 is less than the minimum of 0.1"), not only that it
    matches no branch (JSON Schema applies number bounds to numbers only: null still passes)."""
    for branch in schema.get("anyOf", []):
        for key in _BOUNDS:
            if key in branch:
                schema[key] = branch.pop(key)


class SendWindow(BaseModel):
    """Local hours in which a recipient may be messaged (`start` inclusive, `end` exclusive);
    a window whose end is before its start runs over midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = Field(
        description="Local opening time, HH:MM (24 h).",
        examples=["09:00"],
        json_schema_extra=_CLOCK_FIELD,
    )
    end: str = Field(
        description="Local closing time, HH:MM (24 h).",
        examples=["20:00"],
        json_schema_extra=_CLOCK_FIELD,
    )

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError(f'send_window time "{value}" is not HH:MM on a 24-hour clock')
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError(f"send_window start and end are both {self.start}: it never opens")
        return self

    @property
    def opens(self) -> time:
        """The opening time of day."""
        return time.fromisoformat(self.start)

    @property
    def closes(self) -> time:
        """The closing time of day."""
        return time.fromisoformat(self.end)


class Campaign(BaseModel):
    """One campaign run's parameters; no secrets here (Prefect stores parameters in clear text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="Stable id; a campaign never messages one number twice, however often re-run.",
    )
    template: TemplateSpec
    audience: Audience
    default_region: str = Field(
        default="US",
        description="ISO region for numbers whose row has no usable country.",
        json_schema_extra={"enum": _REGIONS},
    )
    mobile_only: bool = Field(default=False, description="Keep only mobile numbers.")
    consent_max_age_days: int | None = Field(
        default=None,
        gt=0,
        description="Opt-ins older than this are treated as no consent.",
        json_schema_extra=_bounds_on_field,
    )
    dry_run: bool = Field(default=False, description="Plan only: nothing checked, nothing sent.")
    resend_unknown: bool = Field(
        default=False, description="Resend numbers whose earlier send ended in doubt (crash)."
    )
    rate_limit_per_s: float | None = Field(
        default=None,
        ge=0.1,
        le=1000,
        description="Messages per second per sender (0.1 to 1,000); below 0.1/s a campaign "
        "never ends. Unset: a Cloud number's throughput (80/s STANDARD, 1,000/s HIGH), 50/s on "
        "v1; set, it also caps a Cloud number's throughput.",
        json_schema_extra=_bounds_on_field,
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Sends in flight at most per sender; unset: rate x 0.2 + 2 (at least 16), "
        "enough while an answer plus its ledger turn take up to 0.2 s at the sender's rate.",
        json_schema_extra=_bounds_on_field,
    )
    contacts_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Numbers per /v1/contacts call."
    )
    circuit_breaker: int = Field(
        default=10,
        ge=1,
        description="Stop after this many sends in a row fail for a reason that is not the "
        "recipient's (unknown template, refused credentials).",
    )
    lease_seconds: float = Field(
        default=30,
        ge=2,
        le=600,
        description="How long the campaign's lease outlives a run that stopped renewing it "
        "(killed, cut off from the warehouse) before another run may take the campaign over.",
    )
    marketing_route: Literal["auto", "messages"] = Field(
        default="auto",
        description="Cloud API: MARKETING templates go to `/marketing_messages` (auto) or are "
        "forced to `/messages`.",
    )
    undeliverable_suppress_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Cloud API: numbers a send showed undeliverable (131026) are not sent to for "
        "this many days, then tried again.",
    )
    send_window: SendWindow | None = Field(
        default=None,
        description="Quiet hours: send only between these local times of the recipient (time "
        "zones from the number); others are deferred until the window opens.",
    )
    marketing_paused_regions: list[str] = Field(
        default_factory=lambda: ["US"],
        description="Regions (from the number) where Meta does not deliver MARKETING templates; "
        "such customers are `excluded_policy`.",
        json_schema_extra={"items": {"type": "string", "enum": _REGIONS}},
    )
    messaging_limit: int | None = Field(
        default=None,
        ge=0,
        description="Unique recipients per moving 24 hours for the business portfolio; unset: "
        "the Cloud number's own limit (v1: none).",
        json_schema_extra=_bounds_on_field,
    )
    chunk_size: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Customers per chunk read from the CRM and, about, per partition: what one "
        "task holds in memory.",
    )

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f'default_region "{value}" is not an ISO 3166 region phonenumbers knows'
            )
        return region

    @field_validator("marketing_paused_regions")
    @classmethod
    def _known_regions(cls, values: list[str]) -> list[str]:
        regions = [v.upper() for v in values]
        unknown = [v for v in regions if v not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(
                f"marketing_paused_regions {unknown} are not ISO 3166 regions phonenumbers knows"
            )
        return regions

    @model_validator(mode="after")
    def _params_are_mapped(self) -> Campaign:
        """Refuse a template parameter a table audience does not map, before the run (a query's
        columns are only known when it runs: extract refuses those)."""
        if self.audience.table is not None:
            for param in self.template.all_params:
                if f"{PARAM_PREFIX}{param}" not in self.audience.columns:
                    raise ValueError(missing_param_message(param))
        return self
