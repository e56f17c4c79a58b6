"""Normalise: phone numbers to E.164, or the reason why not.

Cleaning, vectorised over the chunk before any number is parsed (`tasks.phones.clean`):
  1. fold Unicode decimal digits (Arabic-Indic, Devanagari, full-width, ...) and full-width
     ASCII forms to ASCII;
  2. drop formatting characters: every space (NBSP included), dash, control, zero-width and
     bidi mark, plus `. / \\ ( ) [ ] { } '`, the minus sign and middle dots;
  3. cut a trailing extension: `x12`, `ext12`, `ext. 12`, `extn 12`, `extension 12`, `#12`,
     `;ext=12`, case-insensitive;
  4. rewrite the region's international prefix (`011` in the US, `810` in Russia, `00` plus a
     carrier code in Brazil, ...) as `+` where phonenumbers would.
Two numbers are then read once more where the region's reading may not be what was meant:
  - plain digits (no `+`, no leading 0) that begin with the region's calling code, and are a
    valid number read with a `+`, are that international number: a national number is written
    with its trunk prefix, and a numeric CRM column cannot hold a `+` (`4915112345678` in a
    German row is +49 151..., not +49 4915...). NANP regions are left alone (their trunk prefix
    is their calling code, so both readings agree);
  - a number starting with `00` that the region's reading leaves invalid is read with that `00`
    as `+` (Brazil's `0055 11 96123-4543`: carrier 55 calling +1 1961... first, +55 second).
    One valid the region's way keeps that reading. One invalid both ways keeps the reason of
    the region's reading where that took the `00` for an international prefix, else the `+`
    reading's.
Then rows that are empty are rejected as `empty`, and rows holding anything but an optional
leading `+` and digits as `not_a_number`. Vanity numbers (`1-800-FLOWERS`) are rejected there on
purpose: phonenumbers would turn the letters into digits, but a campaign messages real mobile
numbers, and a CRM field holding letters is a data error worth surfacing.

Each distinct (number, region) pair, or each distinct `+` number whatever its region, is classified
once: in bulk against phonenumbers' own metadata (`tasks.phones.bulk`), and where that cannot be
sure, by phonenumbers itself (`tasks.phones.fallback`, which shares large remainders with child
processes); both give what phonenumbers gives, and only `is_valid_number` makes a row valid.
The region is the row's `country` where phonenumbers knows it, else `default_region`. Rejections
map phonenumbers' parse errors to `invalid_country_code`, `not_a_number`, `too_short` or
`too_long`, a parsed but invalid number to `too_short`, `too_long` or `invalid_country_code` by
`is_possible_number_with_reason`, else `invalid_for_region`; with `mobile_only`, a valid number
that is neither MOBILE nor FIXED_LINE_OR_MOBILE is `not_mobile`.
"""

from __future__ import annotations

from typing import Final, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.extensions import ExtensionArray

from connectors.vocabulary import COUNTRY, OUTCOME, PHONE_E164, PHONE_RAW, REASON, Outcome, Reason
from tasks.phones.bulk import classify_distinct
from tasks.phones.clean import (
    SHAPE,
    SUPPORTED_REGIONS,
    clean,
    international_to_plus,
    leading_00_as_plus,
    regions,
    starts_with_own_code,
)
from tasks.phones.columns import empty_strings, writable, write
from tasks.phones.verdict import Verdict

_REASONS: Final[dict[Verdict, str | None]] = {
    Verdict.VALID: None,
    Verdict.INVALID_COUNTRY_CODE: Reason.INVALID_COUNTRY_CODE,
    Verdict.NOT_A_NUMBER: Reason.NOT_A_NUMBER,
    Verdict.TOO_SHORT: Reason.TOO_SHORT,
    Verdict.TOO_LONG: Reason.TOO_LONG,
    Verdict.INVALID_FOR_REGION: Reason.INVALID_FOR_REGION,
    Verdict.NOT_MOBILE: Reason.NOT_MOBILE,
}
# The reason of each verdict, at the verdict's value.
_REASON_OF: Final = pd.array([_REASONS[verdict] for verdict in sorted(Verdict)], dtype="str")


def _classify(
    number: pd.Series[str], region: pd.Series[str], mobile_only: bool
) -> tuple[ExtensionArray, ExtensionArray]:
    """E.164 number and rejection reason of shaped numbers, parsing each distinct key once."""
    keys = number.where(number.str.startswith("+"), region + ":" + number)
    codes, distinct = keys.factorize()
    e164_distinct, verdicts = classify_distinct(
        cast("pd.Index[str]", distinct).array, mobile_only=mobile_only
    )
    e164: ExtensionArray = pd.array(e164_distinct, dtype="str").take(codes)
    return e164, _REASON_OF.take(verdicts[codes])


def _adopt(
    e164: pd.Series[str],
    reason: pd.Series[str],
    rows: npt.NDArray[np.bool_],
    found: tuple[ExtensionArray, ExtensionArray],
    taken: npt.NDArray[np.bool_],
) -> None:
    """Replace the answers of `rows` by another reading's `found` ones where `taken` says so."""
    replaced = rows.copy()
    replaced[rows] = taken
    e164[replaced], reason[replaced] = found[0][taken], found[1][taken]


def _verdicts(
    raw: pd.Series[str], country: pd.Series[str], default_region: str, mobile_only: bool
) -> tuple[pd.Series[str], pd.Series[str]]:
    """E.164 number and rejection reason per row (positionally), parsing each distinct key once."""
    number = clean(raw)
    region = regions(country, default_region)
    shaped = number.str.fullmatch(SHAPE).to_numpy(dtype=bool, na_value=False)
    empty = (number.isna() | (number == "")).to_numpy(dtype=bool)
    regional = international_to_plus(number, region, shaped)

    e164, reason = empty_strings(len(number)), empty_strings(len(number))
    e164[shaped], reason[shaped] = _classify(regional[shaped], region[shaped], mobile_only)
    reason[empty] = Reason.EMPTY
    reason[~empty & ~shaped] = Reason.NOT_A_NUMBER

    own = starts_with_own_code(number, region, shaped)
    if own.any():
        found = _classify("+" + number[own], region[own], mobile_only)
        _adopt(e164, reason, own, found, pd.isna(found[1]))

    plus = leading_00_as_plus(number)
    retry = shaped & reason.notna().to_numpy(dtype=bool) & (plus != regional).to_numpy(bool)
    if retry.any():
        found = _classify(plus[retry], region[retry], mobile_only)
        # Where the region's reading saw no international prefix, `00` as `+` is the only
        # international reading left, and its reason says more.
        national = ~regional[retry].str.startswith("+").to_numpy(dtype=bool)
        _adopt(e164, reason, retry, found, pd.isna(found[1]) | national)
    return e164, reason


def normalise(
    frame: pd.DataFrame, *, default_region: str, mobile_only: bool = False
) -> pd.DataFrame:
    """Set `phone_e164` on rows still in the running, or exclude them with the reason why not."""
    default = default_region.strip().upper()
    if default not in SUPPORTED_REGIONS:
        raise ValueError(
            f"default_region {default_region!r} is not a region phonenumbers knows; "
            "pass an ISO 3166 alpha-2 code such as 'US'"
        )
    out = writable(frame)
    rows = np.flatnonzero(out[OUTCOME].isna().to_numpy(dtype=bool))
    if len(rows) == 0:
        return out
    e164, reason = _verdicts(
        out[PHONE_RAW].iloc[rows], out[COUNTRY].iloc[rows], default, mobile_only
    )
    rejected = reason.notna().to_numpy(dtype=bool)
    write(out, PHONE_E164, rows, e164)
    write(out, OUTCOME, rows[rejected], Outcome.EXCLUDED_INVALID_NUMBER)
    write(out, REASON, rows[rejected], reason[rejected])
    return out
