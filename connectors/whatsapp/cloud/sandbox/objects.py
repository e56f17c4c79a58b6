"""The Graph objects `GET /{version}/{id}` reads: a business phone number's facts, or the WABA.

`whatsapp_business_manager_messaging_limit` is the tier name (`TIER_250`, `TIER_2K`, `TIER_10K`,
`TIER_100K`, `TIER_UNLIMITED`; default `TIER_100K`), as Graph answers it; `throughput.level` is
`STANDARD`, or `HIGH` when the sandbox is configured for 1,000 messages/s or more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import phonenumbers

from connectors.whatsapp.cloud.sandbox.config import CloudSandboxConfig

PHONE_FIELDS: Final = (
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "throughput",
    "whatsapp_business_manager_messaging_limit",
    "messaging_limit_tier",
    "code_verification_status",
    "platform_type",
    "id",
)
WABA_FIELDS: Final = ("name", "currency", "timezone_id", "id")


class UnknownField(ValueError):
    """A `fields` entry the object does not have (Graph's error 100)."""


def _fields(query: Mapping[str, str], known: tuple[str, ...], node: str) -> list[str]:
    asked = [f.strip() for f in query.get("fields", ",".join(known)).split(",") if f.strip()]
    for name in asked:
        if name not in known:
            raise UnknownField(f"Tried accessing nonexisting field ({name}) on node type ({node})")
    return asked


def formatted(digits: str) -> str:
    """A number as Graph displays it (`+1 555-078-3881`); `+digits` when it cannot be parsed."""
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_number(
    config: CloudSandboxConfig, phone_number_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    """The asked facts of one business number, plus its `id`, as Graph answers them."""
    asked = _fields(query, PHONE_FIELDS, "WhatsAppBusinessPhoneNumber")
    display = config.phone_numbers[phone_number_id]
    facts: dict[str, Any] = {
        "display_phone_number": formatted(display),
        "verified_name": "Sandbox Business",
        "quality_rating": config.quality_rating,
        "throughput": {"level": config.throughput_level},
        "whatsapp_business_manager_messaging_limit": config.messaging_limit,
        "messaging_limit_tier": config.messaging_limit,
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "id": phone_number_id,
    }
    return {**{name: facts[name] for name in asked}, "id": phone_number_id}


def waba(config: CloudSandboxConfig, query: Mapping[str, str]) -> dict[str, Any]:
    """The asked fields of the WhatsApp Business Account, plus its `id`."""
    asked = _fields(query, WABA_FIELDS, "WhatsAppBusinessAccount")
    facts = {
        "name": "Sandbox Business",
        "currency": "USD",
        "timezone_id": "1",
        "id": config.waba_id,
    }
    return {**{name: facts[name] for name in asked}, "id": config.waba_id}
