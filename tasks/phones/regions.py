"""The region (ISO 3166) a normalised number belongs to, read from the number itself: +1 415…
is US, +1 416… is CA whatever the CRM's country column says. Rules by market (Meta's paused
marketing regions) and the rate card use it.

phonenumbers takes ~40 µs a number; a calling code that only one region uses needs no parse, and
a shared one (+1, +7, +44…) is decided by the digits right after it, so each prefix is parsed once.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

_PREFIX_DIGITS: Final = 6
"""National digits that decide the region within a shared calling code (Jersey: 77003…)."""
_NANP_DIGITS: Final = 3
"""Within +1 the area code alone decides (US, CA, the Caribbean's own codes)."""


def calling_code(e164: str) -> int | None:
    """The calling code of an E.164 string (`+` and digits), or None."""
    digits = e164[1:4]
    for length in (1, 2, 3):
        code = int(digits[:length]) if digits[:length].isdigit() else None
        if code is not None and code in COUNTRY_CODE_TO_REGION_CODE:
            return code
    return None


def region_of(e164: str) -> str | None:
    """The ISO region of one E.164 number, or None when it has none (e.g. +800, malformed)."""
    code = calling_code(e164)
    if code is None:
        return None
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    if len(regions) == 1:
        region = regions[0]
        return None if region == "001" else region
    national = _NANP_DIGITS if code == 1 else _PREFIX_DIGITS
    return _shared(e164[: 1 + len(str(code)) + national], e164)


_BY_PREFIX: dict[str, str | None] = {}


def _shared(prefix: str, e164: str) -> str | None:
    """The region of a number whose calling code several regions share, kept by prefix (a race
    between threads computes one prefix twice, with the same answer)."""
    if prefix in _BY_PREFIX:
        return _BY_PREFIX[prefix]
    try:
        found = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        found = None
    region = found if found and found != "001" else None
    _BY_PREFIX[prefix] = region
    return region


def regions_of(phones: pd.Series) -> pd.Series:
    """The ISO region of each number of a column (null where the number is null or has none)."""
    present = phones.dropna()
    unique = pd.unique(present.astype(str))
    found = {number: region_of(number) for number in unique}
    return phones.map(found).astype("str")
