"""The Cloud API's success answers read into the protocol's values: a send's receipt and the
sender number's facts."""

from __future__ import annotations

import re
from typing import Any, Final

from connectors.whatsapp.errors import MalformedAnswer, OutcomeUnknown
from connectors.whatsapp.protocol import PhoneFacts, SendReceipt

# Meta's messaging-limit tiers (the phone number's `whatsapp_business_manager_messaging_limit`,
# the webhooks' `max_daily_conversations_per_business`); None: unlimited.
TIERS: Final[dict[str, int | None]] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": None,
}
_NUMBER = re.compile(r"-?\d+")
_LIMIT_KEYS = ("max_daily_conversations_per_business", "current_limit", "tier", "limit")


def _text(value: object) -> str | None:
    """A non-empty string (numbers as their text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str) and str(value):
        return str(value)
    return None


def _first(answer: Any, key: str) -> dict[str, Any]:
    """The first object of the answer's `key` list ({} when there is none)."""
    items = answer.get(key) if isinstance(answer, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, dict) else {}


def send_receipt(answer: Any, operation: str) -> SendReceipt:
    """The receipt of a 200 send answer; `OutcomeUnknown` when it carries no message id (the
    message may have been sent)."""
    first, contact = _first(answer, "messages"), _first(answer, "contacts")
    message_id = _text(first.get("id"))
    if message_id is None:
        raise OutcomeUnknown(
            f"{operation}: success answer without a message id; the message may have been sent",
            status=200,
        )
    return SendReceipt(
        message_id=message_id,
        message_status=_text(first.get("message_status")),
        user_id=_text(contact.get("user_id")),
        wa_id=_text(contact.get("wa_id")),
    )


def _unwrap(value: object) -> object:
    """The limit itself, out of an object that holds it (as webhooks and some providers give)."""
    if isinstance(value, dict):
        return next((value[key] for key in _LIMIT_KEYS if key in value), None)
    return value


def messaging_limit(value: object) -> tuple[int | None, bool]:
    """`(limit, known)` of a messaging-limit answer: a tier name, a number (-1: unlimited), or an
    object holding either; `(None, True)` is unlimited, `(None, False)` not known (absent,
    `TIER_NOT_SET`, a tier this client does not know)."""
    value = _unwrap(value)
    if isinstance(value, bool) or value is None:
        return None, False
    if isinstance(value, int) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        number = int(value)
        return (None, True) if number < 0 else (number, True)
    if isinstance(value, str) and value.strip().upper() in TIERS:
        return TIERS[value.strip().upper()], True
    return None, False


def phone_facts(answer: Any, phone_number_id: str, operation: str) -> PhoneFacts:
    """The facts of a phone number answer; `MalformedAnswer` when it is not an object."""
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"{operation}: success answer is not a phone number", status=200)
    throughput = answer.get("throughput")
    raw_limit = answer.get("whatsapp_business_manager_messaging_limit")
    limit, known = messaging_limit(raw_limit)
    return PhoneFacts(
        phone_number_id=_text(answer.get("id")) or phone_number_id,
        display_phone_number=_text(answer.get("display_phone_number")),
        quality_rating=_text(answer.get("quality_rating")),
        throughput_level=_text(throughput.get("level")) if isinstance(throughput, dict) else None,
        messaging_limit=limit,
        limit_known=known,
        messaging_limit_tier=_text(_unwrap(raw_limit)),
    )
