"""What phonenumbers said about one number, as a small integer the bulk path can store in arrays."""

from __future__ import annotations

from enum import IntEnum


class Verdict(IntEnum):
    """What phonenumbers said about one number; `tasks.phones` maps it to a `Reason`."""

    VALID = 0
    INVALID_COUNTRY_CODE = 1
    NOT_A_NUMBER = 2
    TOO_SHORT = 3
    TOO_LONG = 4
    INVALID_FOR_REGION = 5
    NOT_MOBILE = 6
