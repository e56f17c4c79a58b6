"""What happens to an accepted Cloud send, by a fixed rule on the recipient's digits.

Rule (on the digits of `to`, whatever its formatting; the first matching line wins):

| recipient digits | category | answer `message_status` | status webhooks |
|---|---|---|---|
| fewer than 8 or more than 15, or last `0` | any | accepted | `failed` 131026 (undeliverable) |
| last digit `9` | MARKETING | accepted | `failed` 131049 (per-user marketing limit) |
| last `8`, or the user sent "stop" | MARKETING | accepted | `failed` 131050 (stopped marketing) |
| last digit `7` | MARKETING | held_for_quality_assessment | `sent`, `delivered` (released later) |
| any other | any | accepted | `sent`, `delivered`, `read` |

The Cloud API checks nothing before it answers: every send the rule fails is a 200 with a wamid,
and its failure arrives only by webhook, as on the real API. Each recipient also has a
business-scoped user id (BSUID), stable for the pair (business, number): `bsuid_of`.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal, NamedTuple

import phonenumbers

from connectors.vocabulary import DeliveryStatus
from connectors.whatsapp.cloud.sandbox.templates import Category
from connectors.whatsapp.onprem.sandbox.rules import digits_of

MessageStatus = Literal["accepted", "held_for_quality_assessment", "paused"]
UNDELIVERABLE: Final = 131026
MARKETING_LIMIT: Final = 131049
MARKETING_STOPPED: Final = 131050
_DELIVERED: Final = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
_RELEASED: Final = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


class Outcome(NamedTuple):
    """The synchronous `message_status`, the statuses pushed later, and the failure code if any."""

    message_status: MessageStatus
    statuses: tuple[str, ...]
    error_code: int | None = None


def _failed(code: int) -> Outcome:
    return Outcome("accepted", (DeliveryStatus.FAILED,), code)


def outcome(to: str, category: Category, *, marketing_stopped: bool = False) -> Outcome:
    """The fate of one accepted send to `to` of a template of `category` (see the module table)."""
    digits = digits_of(to)
    if not 8 <= len(digits) <= 15 or digits.endswith("0"):
        return _failed(UNDELIVERABLE)
    if category != "MARKETING":
        return Outcome("accepted", _DELIVERED)
    if digits.endswith("9"):
        return _failed(MARKETING_LIMIT)
    if digits.endswith("8") or marketing_stopped:
        return _failed(MARKETING_STOPPED)
    if digits.endswith("7"):
        return Outcome("held_for_quality_assessment", _RELEASED)
    return Outcome("accepted", _DELIVERED)


def bsuid_of(to: str, *, business: str) -> str:
    """The recipient's BSUID for `business`: `<ISO region>.<20 digits>`, stable per pair."""
    digits = digits_of(to)
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        region = None
    digest = hashlib.sha256(f"{business}:{digits}".encode()).digest()
    number = int.from_bytes(digest[:9], "big") % 10**20
    return f"{region or 'ZZ'}.{number:020d}"
