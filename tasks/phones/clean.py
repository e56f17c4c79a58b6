"""Vectorised clean-up of raw phone strings before phonenumbers sees them (see `normalise`).

Every step is a pandas string operation on Arrow-backed strings; the regular expressions are
written to be valid for both RE2 (pyarrow) and Python's `re`, and to avoid the constructs (`\\s`,
`\\d`, look-arounds) that make pandas fall back to per-row Python.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata

SUPPORTED_REGIONS: Final = frozenset(phonenumbers.SUPPORTED_REGIONS)
SHAPE: Final = r"\+?[0-9]+"


def _fold_table() -> dict[int, str]:
    """Unicode decimal digits and full-width ASCII forms mapped to plain ASCII."""
    table = {
        code: str(unicodedata.decimal(chr(code)))
        for code in range(0x80, 0x10000)
        if unicodedata.decimal(chr(code), None) is not None
    }
    table.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})
    table[0x3000] = " "  # ideographic space
    return table


def _char_class(codes: Iterable[int]) -> str:
    """A regex class of exactly these code points, spelled the same for RE2 and `re`."""

    def spell(code: int) -> str:
        return f"\\x{code:02x}" if code < 0x80 else chr(code)

    ranges: list[list[int]] = []
    for code in sorted(set(codes)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(spell(a) if a == b else f"{spell(a)}-{spell(b)}" for a, b in ranges) + "]"


def _formatting_codes() -> set[int]:
    """Characters that only format a number: spaces, dashes, controls, invisible and bidi marks."""
    codes = {
        code
        for code in range(0x10000)
        if unicodedata.category(chr(code)) in {"Zs", "Zl", "Zp", "Cc", "Cf", "Pd"}
    }
    # Dots, slashes, brackets, the minus sign and middle dots; the apostrophe because
    # spreadsheets prefix numbers with it to keep them as text.
    codes.update(ord(char) for char in "./\\()[]{}'\u2212\u00b7\u30fb\u3002\uff61")
    return codes


FOLD: Final = _fold_table()
NON_ASCII: Final = r"[^\x00-\x7f]"
FORMATTING: Final = _char_class(_formatting_codes()) + "+"
EXTENSION: Final = r"(?i)[;,]?(?:#|x|ext|extn|extension)[:=]?[0-9]+$"


@functools.cache
def international_prefix(region: str) -> str | None:
    """The region's international dialling prefix as a regex (`00`, `011`, ...), if it has one."""
    metadata = PhoneMetadata.metadata_for_region(region)
    return None if metadata is None else metadata.international_prefix or None


LEADING_00: Final = "^00([1-9])"


def clean(raw: pd.Series[str]) -> pd.Series[str]:
    """Fold digits to ASCII, drop formatting characters and cut a trailing extension."""
    text = raw.astype("str").reset_index(drop=True)
    # Most CRM numbers are ASCII: translate (per value) only the few that are not.
    foreign = text.str.contains(NON_ASCII, regex=True).to_numpy(dtype=bool, na_value=False)
    if foreign.any():
        text[foreign] = text[foreign].str.translate(FOLD)
    text = text.str.replace(FORMATTING, "", regex=True)
    return text.str.replace(EXTENSION, "", regex=True)


def regions(country: pd.Series[str], default_region: str) -> pd.Series[str]:
    """The row's country upper-cased where phonenumbers knows it as a region, else the default."""
    code = country.astype("str").reset_index(drop=True).str.strip().str.upper()
    return code.where(code.isin(SUPPORTED_REGIONS), default_region)


def international_to_plus(
    number: pd.Series[str], region: pd.Series[str], shaped: npt.NDArray[np.bool_]
) -> pd.Series[str]:
    """Rewrite a leading international prefix as `+`, the region's way (its reading).

    The region's prefix is rewritten exactly where phonenumbers itself would strip it (a prefix
    match followed by a digit other than 0), so those numbers parse as before and lose their
    region from the parse key. A `00` where the region dials out otherwise (`011` in the US,
    `00` plus a carrier code in Brazil) is left to `leading_00_as_plus`.
    """
    out = number.copy()
    candidates = shaped & ~out.str.startswith("+").to_numpy(dtype=bool, na_value=False)
    for code in region[candidates].unique():
        pattern = international_prefix(str(code))
        if pattern is None:
            continue
        rows = candidates & (region == code).to_numpy(dtype=bool)
        digits = out[rows]
        rest = digits.str.replace(f"^(?:{pattern})", "", n=1, regex=True)
        stripped = (rest.str.len() < digits.str.len()) & rest.str.match("[1-9]")
        out.loc[rest.index[stripped.to_numpy(dtype=bool)]] = "+" + rest[stripped]
    return out


@functools.cache
def _own_code(region: str) -> str | None:
    """The region's calling code; None where its trunk prefix is that code (the NANP's `1`:
    `1 201 555 0123` reads the same either way)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return None
    code = str(metadata.country_code)
    return None if metadata.national_prefix == code else code


def starts_with_own_code(
    number: pd.Series[str], region: pd.Series[str], shaped: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Rows of plain digits (no `+`, no leading 0) that begin with their region's calling code."""
    plain = shaped & number.str.match("[1-9]").to_numpy(dtype=bool, na_value=False)
    out = np.zeros(len(number), dtype=bool)
    for code in region[plain].unique():
        own = _own_code(str(code))
        if own is None:
            continue
        rows = plain & (region == code).to_numpy(dtype=bool)
        out[rows] = number[rows].str.startswith(own).to_numpy(dtype=bool)
    return out


def leading_00_as_plus(number: pd.Series[str]) -> pd.Series[str]:
    """A leading `00` (before a digit other than 0) read as `+`, as most people mean it."""
    return number.str.replace(LEADING_00, r"+\1", regex=True)
