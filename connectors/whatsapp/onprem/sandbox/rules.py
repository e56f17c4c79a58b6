"""Which numbers the sandbox treats as WhatsApp users: a fixed rule, so tests can predict it.

Rule (applied to the digits of the input, whatever its formatting):
- fewer than 8 or more than 15 digits: ``invalid`` (malformed);
- the last digit is ``0``: ``invalid`` (not a WhatsApp user);
- otherwise ``valid``, and the ``wa_id`` is the digits, except for Brazilian mobiles written
  with the ninth digit (``55`` + two-digit area + ``9`` + eight digits), whose ``wa_id`` drops
  that ``9`` as older accounts do, so callers must message the ``wa_id``, never the input.
In "always valid" mode (servers since v2.43) every number is ``valid`` with its digits as ``wa_id``.
"""

from __future__ import annotations

import re

from connectors.vocabulary import Contact, ContactStatus

_NON_DIGITS = re.compile(r"\D")


def digits_of(number: str) -> str:
    """The digits of a number as written, formatting dropped."""
    return _NON_DIGITS.sub("", number)


def contact_status(number: str, *, always_valid: bool = False) -> tuple[ContactStatus, str | None]:
    """Return ``(status, wa_id)`` for one input number under the sandbox rule."""
    digits = digits_of(number)
    if always_valid and digits:
        return Contact.VALID, digits
    if not 8 <= len(digits) <= 15 or digits.endswith("0"):
        return Contact.INVALID, None
    if len(digits) == 13 and digits.startswith("55") and digits[4] == "9":
        return Contact.VALID, digits[:4] + digits[5:]
    return Contact.VALID, digits


def is_whatsapp_user(e164: str) -> bool:
    """True when the sandbox answers ``valid`` for this E.164 number in its default mode."""
    return contact_status(e164)[0] == Contact.VALID
