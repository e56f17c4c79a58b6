"""The region (ISO 3166) a normalised number belongs to, read from the number itself: +1 415…
is US, +1 416… is CA whatever the CRM's country column says. Rules by market (Meta's paused
marketing regions) and the rate card use it.

phonenumbers takes ~40 µs a number; a calling code that only one region uses needs no parse, and
a shared one (+1, +7, +44…) is decided by the digits right after it, so each prefix is parsed once.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

import pandas as pd
import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

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
    if code != 1:
        main, others, decisive = _shared_plan(code)
        national = e164[1 + len(str(code)) :]
        if decisive and not any(p.match(national) for p in others):
            return main
    national_digits = _NANP_DIGITS if code == 1 else _PREFIX_DIGITS
    return _shared(e164[: 1 + len(str(code)) + national_digits], e164)


@cache
def _shared_plan(code: int) -> tuple[str, tuple[re.Pattern[str], ...], bool]:
    """A shared calling code's main region, the leading-digit patterns of the others, and whether
    those patterns decide alone: then a valid number none of them matches is the main region's,
    as phonenumbers reads it (it tries the main region first, by validity)."""
    main, *rest = COUNTRY_CODE_TO_REGION_CODE[code]
    first = PhoneMetadata.metadata_for_region(main)
    others = [PhoneMetadata.metadata_for_region(r) for r in rest]
    patterns = tuple(re.compile(m.leading_digits) for m in others if m and m.leading_digits)
    decisive = (
        main != "001"
        and first is not None
        and first.leading_digits is None
        and len(patterns) == len(rest)
    )
    return main, patterns, decisive


_BY_PREFIX: dict[str, str | None] = {}


def _shared(prefix: str, e164: str) -> str | None:
    """The region of a number whose calling code several regions share, kept by prefix (a race
    between threads computes one prefix twice, with the same answer)."""
    if prefix in _BY_PREFIX:
        return _BY_PREFIX[prefix]
    found = phonenumbers.region_code_for_number(_number(e164))
    region = found if found and found != "001" else None
    if region is not None:  # an invalid number's None says nothing of its prefix's others
        _BY_PREFIX[prefix] = region
    return region


def _number(e164: str) -> phonenumbers.PhoneNumber:
    """The number of an E.164 string built directly (no parse: it is already normalised)."""
    code = calling_code(e164) or 0
    national = e164[1 + len(str(code)) :]
    zeros = len(national) - len(national.lstrip("0"))
    return phonenumbers.PhoneNumber(
        country_code=code,
        national_number=int(national or 0),
        italian_leading_zero=zeros > 0 or None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )


def regions_of(phones: pd.Series) -> pd.Series:
    """The ISO region of each number of a column (null where the number is null or has none).
    +1 numbers are read by area code, vectorised; the others once per distinct number."""
    present = phones.dropna().astype("str")
    nanp = present.str.startswith("+1")
    keys = present[nanp].str.slice(0, 2 + _NANP_DIGITS)
    first = present[nanp].groupby(keys.to_numpy()).first()
    by_area = {key: region_of(number) for key, number in first.items()}
    found = pd.Series(pd.NA, index=present.index, dtype="str")
    found[nanp] = keys.map(by_area).astype("str")
    # An area code whose first number was invalid: read each of its numbers.
    unsure = nanp & found.isna()
    rest = present[~nanp | unsure]
    found[~nanp | unsure] = rest.map({n: region_of(n) for n in pd.unique(rest)}).astype("str")
    return found.reindex(phones.index).astype("str")
