"""The bulk classification: distinct phone keys against phonenumbers' own metadata, one regex pass
per group.

For the keys `tasks.phones.normalise` builds (`+<digits>`, `<REGION>:<digits>`), `classify_fast`
replays `phonenumbers.parse`, `is_valid_number`, `number_type` and `is_possible_number_with_reason`
step by step (calling code, national prefix and transform rule, the region a shared calling code
resolves to, type patterns, lengths), running each metadata pattern once per calling code or
region with pyarrow's RE2, instead of parsing each key with phonenumbers (~40 µs a key).
Keys it cannot be sure of (malformed, or starting with their region's international prefix) are
left to `classify_distinct`, which parses those one by one. tests/unit/test_phone_fast.py holds
both to the per-key results.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, ValidationResult
from phonenumbers.phonemetadata import PhoneNumberDesc
from phonenumbers.phonenumberutil import _test_number_length

from tasks.phones.fallback import classify_each
from tasks.phones.verdict import Verdict

Arrow = Any  # a pyarrow array: pyarrow ships no type information
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]
Verdicts = npt.NDArray[np.int8]

UNDECIDED: Final = -1
# Keys of one calling code or region below which parsing each is faster: a group costs 1-5 ms
# of pyarrow calls, parsing a key ~40 µs.
MIN_GROUP: Final = 100
_LONGEST: Final = 24  # digits replayed; phonenumbers rejects national numbers over 17
_MIN_NSN, _MAX_NSN = 2, 17
# `parse` needs 3 digits after a `+`, 2 without.
_SHAPE: Final = rf"^(?:\+[0-9]{{3,{_LONGEST}}}|[A-Z]{{2}}:[0-9]{{2,{_LONGEST}}})$"
_CODES: Final = pa.array([str(code) for code in COUNTRY_CODE_TO_REGION_CODE], pa.string())
# The types `_number_type_helper` tries before fixed line and mobile, in its order.
_SPECIAL: Final = "premium_rate toll_free shared_cost voip personal_number pager uan voicemail"


@dataclass(frozen=True)
class _Parsed:
    """Keys (by position) parsed as far as a calling code and a number still to strip."""

    rows: Rows
    code: int
    region: str  # whose metadata strips the national prefix
    rest: Arrow


def _contiguous(keys: Arrow) -> Arrow:
    """Keys as one pyarrow string array, from a sequence, array or chunked array of str."""
    keys = pa.array(keys)
    return (keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys).cast(pa.string())


def _bools(values: Arrow) -> Mask:
    """A pyarrow boolean array as numpy."""
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _lengths(values: Arrow) -> npt.NDArray[np.intp]:
    """Characters per value."""
    return np.asarray(pc.utf8_length(values).to_numpy(), dtype=np.intp)


def _starts(values: Arrow, pattern: str) -> Mask:
    """`re.match` per value: the pattern matches at the start."""
    return _bools(pc.match_substring_regex(values, f"^(?:{pattern})"))


def _fullmatch(values: Arrow, desc: PhoneNumberDesc | None) -> Mask:
    """`_match_national_number` per value: a desc without a pattern matches nothing."""
    if desc is None or not desc.national_number_pattern:
        return np.zeros(len(values), dtype=bool)
    return _bools(pc.match_substring_regex(values, f"^(?:{desc.national_number_pattern})$"))


def _where(mask: Mask, values: Arrow, otherwise: Arrow) -> Arrow:
    """Per position, from `values` where the mask holds, else from `otherwise`."""
    return pc.if_else(pa.array(mask), values, otherwise)


def _groups(values: Arrow) -> Iterator[tuple[Any, Rows]]:
    """Each distinct value with the positions holding it."""
    if len(values) == 0:
        return
    encoded = pc.dictionary_encode(values)
    codes = np.asarray(encoded.indices.to_numpy(), dtype=np.intp)
    ends = np.cumsum(np.bincount(codes, minlength=len(encoded.dictionary)))
    parts = np.split(np.argsort(codes, kind="stable"), ends[:-1])
    yield from zip(encoded.dictionary.to_pylist(), parts, strict=True)


@functools.cache
def _metadata(code: int, region: str) -> PhoneMetadata:
    """The metadata phonenumbers uses for a calling code's region (`001`: non-geographic)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        raise LookupError(f"phonenumbers has no metadata for +{code} in {region}")
    return metadata


def _main_region(code: int) -> str:
    """The region whose metadata holds a calling code's lengths (the first listed)."""
    return COUNTRY_CODE_TO_REGION_CODE[code][0]


@functools.cache
def _length_results(code: int, region: str) -> npt.NDArray[np.int8]:
    """`_test_number_length` by number length, which is all it reads of the number."""
    metadata = _metadata(code, region)
    return np.array([_test_number_length("0" * n, metadata) for n in range(_LONGEST + 1)], np.int8)


@functools.cache
def _of_length(lengths: tuple[int, ...]) -> Mask:
    """Which lengths (the index) are among these."""
    table = np.zeros(_LONGEST + 1, dtype=bool)
    table[[length for length in lengths if 0 <= length <= _LONGEST]] = True
    return table


def _strip_national_prefix(rest: Arrow, metadata: PhoneMetadata) -> tuple[Arrow, Mask]:
    """`_maybe_strip_national_prefix_carrier_code`'s number, and where it cannot be replayed."""
    unsure = np.zeros(len(rest), dtype=bool)
    prefix = metadata.national_prefix_for_parsing
    if not prefix or not (matched := _starts(rest, prefix)).any():
        return rest, unsure
    anchored = f"^(?:{prefix})"
    out = pc.replace_substring_regex(rest, anchored, "", max_replacements=1)
    rule, groups = metadata.national_prefix_transform_rule, re.compile(prefix).groups
    if rule and not 1 <= groups <= 9:
        return rest, matched
    if rule:
        # phonenumbers transforms only where the last group took part; each such group in the
        # metadata needs digits, so that is where it captured any. The `[0-9]*$` added cannot
        # change which alternative wins at the start: every prefix match extends to it.
        last = pc.replace_substring_regex(rest, f"{anchored}[0-9]*$", f"\\{groups}")
        replaced = pc.replace_substring_regex(rest, anchored, rule, max_replacements=1)
        out = _where(matched & (_lengths(last) > 0), replaced, out)
    undone = _fullmatch(rest, metadata.general_desc) & ~_fullmatch(out, metadata.general_desc)
    return _where(matched & ~undone, out, rest), unsure


def _international(keys: Arrow, rows: Rows, verdict: Verdicts, min_group: int) -> Iterator[_Parsed]:
    """`+` keys: the known calling code they start with, else `invalid_country_code`."""
    digits = pc.utf8_slice_codeunits(keys.take(pa.array(rows)), 1)
    code = pa.array([""] * len(digits), pa.string())
    for size in (3, 2, 1):
        head = pc.utf8_slice_codeunits(digits, 0, size)
        code = pc.if_else(pc.is_in(head, _CODES), head, code)
    for value, where in _groups(code):
        if value == "":
            verdict[rows[where]] = Verdict.INVALID_COUNTRY_CODE
            continue
        if len(where) < min_group:
            continue
        rest = pc.utf8_slice_codeunits(digits.take(pa.array(where)), len(value))
        yield _Parsed(rows[where], int(value), _main_region(int(value)), rest)


def _national(keys: Arrow, rows: Rows, min_group: int) -> Iterator[_Parsed]:
    """`REGION:digits` keys: the region's calling code, unless the digits start with it."""
    taken = keys.take(pa.array(rows))
    digits = pc.utf8_slice_codeunits(taken, 3)
    for region, where in _groups(pc.utf8_slice_codeunits(taken, 0, 2)):
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if len(where) < min_group or metadata is None or metadata.country_code is None:
            continue
        number, code = digits.take(pa.array(where)), metadata.country_code
        idd = metadata.international_prefix
        unsure = _starts(number, idd) if idd else np.zeros(len(number), dtype=bool)
        moved = _bools(pc.starts_with(number, str(code))) & ~unsure
        if moved.any():
            # `_maybe_extract_country_code`: the calling code written without `+` is taken off
            # where that makes the number match, or it was too long with it.
            written = number.filter(pa.array(moved))
            rest, rest_unsure = _strip_national_prefix(
                pc.utf8_slice_codeunits(written, len(str(code))), metadata
            )
            general = metadata.general_desc
            too_long = _length_results(code, region)[_lengths(written)] == ValidationResult.TOO_LONG
            better = (~_fullmatch(written, general) & _fullmatch(rest, general)) | too_long
            unsure[moved] = rest_unsure
            moved[moved] = better & ~rest_unsure
            taken_off = rest.filter(pa.array(better & ~rest_unsure))
            yield _Parsed(rows[where[moved]], code, _main_region(code), taken_off)
        left = ~unsure & ~moved
        yield _Parsed(rows[where[left]], code, region, number.filter(pa.array(left)))


def _national_number(parsed: _Parsed, verdict: Verdicts) -> tuple[Rows, Arrow]:
    """The national significant number `parse` ends with; its parse errors into `verdict`."""
    short = _lengths(parsed.rest) < _MIN_NSN
    verdict[parsed.rows[short]] = Verdict.TOO_SHORT
    rows, rest = parsed.rows[~short], parsed.rest.filter(pa.array(~short))
    stripped, unsure = _strip_national_prefix(rest, _metadata(parsed.code, parsed.region))
    possible = _length_results(parsed.code, parsed.region)[_lengths(stripped)]
    kept = (possible == ValidationResult.IS_POSSIBLE) | (possible == ValidationResult.TOO_LONG)
    number = _where(kept, stripped, rest)
    long = _lengths(number) > _MAX_NSN
    verdict[rows[long & ~unsure]] = Verdict.TOO_LONG
    sure = ~long & ~unsure
    return rows[sure], number.filter(pa.array(sure))


def _matches(number: Arrow, lengths: Rows, desc: PhoneNumberDesc | None, asked: Mask) -> Mask:
    """`_is_number_matching_desc` where asked (False elsewhere), running the regex only there."""
    if desc is None or not desc.national_number_pattern:
        return np.zeros(len(asked), dtype=bool)
    hit = asked.copy()
    if desc.possible_length:
        hit &= _of_length(desc.possible_length)[lengths]
    if hit.any():
        hit[hit] = _fullmatch(number.filter(pa.array(hit)), desc)
    return hit


def _types(number: Arrow, metadata: PhoneMetadata, mobile_only: bool) -> tuple[Mask, Mask]:
    """`_number_type_helper` is not UNKNOWN; and (with `mobile_only`) is a mobile type."""
    lengths = _lengths(number)
    general = _matches(number, lengths, metadata.general_desc, np.ones(len(number), dtype=bool))
    fixed = _matches(number, lengths, metadata.fixed_line, general)
    mobile = _matches(number, lengths, metadata.mobile, general)
    same = metadata.same_mobile_and_fixed_line_pattern
    plain = fixed | (mobile & (not same))
    # The special types come first in phonenumbers, so they matter where they decide validity,
    # or where they would hide a mobile number.
    special = np.zeros(len(number), dtype=bool)
    asked = general if mobile_only else general & ~plain
    for name in _SPECIAL.split():
        special |= _matches(number, lengths, getattr(metadata, name), asked & ~special)
    if not mobile_only:
        return plain | special, np.zeros(len(number), dtype=bool)
    is_mobile = ~special & ((fixed & (same | mobile)) | (~fixed & (not same) & mobile))
    return plain | special, is_mobile


def _kinds(code: int, number: Arrow, mobile_only: bool) -> tuple[Mask, Mask]:
    """`is_valid_number`, and (with `mobile_only`) a mobile type, for one calling code."""
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    if len(regions) == 1:
        return _types(number, _metadata(code, regions[0]), mobile_only)
    # `_region_code_for_number_from_list`: the first region whose leading digits match, or
    # that has none and where the number is valid, owns the number.
    valid, mobile = np.zeros(len(number), dtype=bool), np.zeros(len(number), dtype=bool)
    pending = np.ones(len(number), dtype=bool)
    for region in regions:
        if not pending.any():
            break
        metadata, rows = _metadata(code, region), np.flatnonzero(pending)
        asked = number.take(pa.array(rows))
        if metadata.leading_digits is not None:
            hit = rows[_starts(asked, metadata.leading_digits)]
            valid[hit], mobile[hit] = _types(number.take(pa.array(hit)), metadata, mobile_only)
        else:
            ok, is_mobile = _types(asked, metadata, mobile_only)
            hit = rows[ok]
            valid[hit], mobile[hit] = True, is_mobile[ok]
        pending[hit] = False
    return valid, mobile


def _validate(
    code: int, rows: Rows, number: Arrow, mobile_only: bool, verdict: Verdicts
) -> tuple[Rows, Arrow]:
    """Verdicts for one calling code's numbers; the rows that are valid and their E.164."""
    valid, mobile = _kinds(code, number, mobile_only)
    possible = _length_results(code, _main_region(code))[_lengths(number)]
    reason = np.select(
        [possible == ValidationResult.TOO_SHORT, possible == ValidationResult.TOO_LONG],
        [Verdict.TOO_SHORT, Verdict.TOO_LONG],
        Verdict.INVALID_FOR_REGION,
    ).astype(np.int8)
    wanted = valid & mobile if mobile_only else valid
    reason[valid & ~wanted] = Verdict.NOT_MOBILE
    reason[wanted] = Verdict.VALID
    verdict[rows] = reason
    e164 = pc.binary_join_element_wise(f"+{code}", number.filter(pa.array(wanted)), "")
    return rows[wanted], e164


def classify_fast(
    keys: Arrow, *, mobile_only: bool, min_group: int = MIN_GROUP
) -> tuple[Arrow, Verdicts]:
    """E.164 (null unless valid) and `Verdict` per key; `UNDECIDED` where it cannot be sure, or
    where the key's calling code or region has fewer than `min_group` keys."""
    keys = _contiguous(keys)
    verdict = np.full(len(keys), UNDECIDED, dtype=np.int8)
    shaped = _bools(pc.match_substring_regex(keys, _SHAPE))
    plus = shaped & _bools(pc.starts_with(keys, "+"))
    parsed = [
        *_international(keys, np.flatnonzero(plus), verdict, min_group),
        *_national(keys, np.flatnonzero(shaped & ~plus), min_group),
    ]
    by_code: dict[int, list[tuple[Rows, Arrow]]] = {}
    for part in parsed:
        if len(part.rows):
            by_code.setdefault(part.code, []).append(_national_number(part, verdict))
    found = []
    for code, parts in by_code.items():
        rows, numbers = zip(*parts, strict=True)
        number = pa.concat_arrays(numbers)
        found.append(_validate(code, np.concatenate(rows), number, mobile_only, verdict))
    return _scatter(len(keys), found), verdict


def _scatter(size: int, parts: list[tuple[Rows, Arrow]]) -> Arrow:
    """A string array of this size: each part's values at its rows, null elsewhere."""
    position = np.full(size, -1, dtype=np.intp)
    start = 0
    for rows, _ in parts:
        position[rows] = np.arange(start, start + len(rows))
        start += len(rows)
    values = pa.concat_arrays([pa.array([], pa.string()), *(values for _, values in parts)])
    return values.take(pa.array(position, mask=position < 0))


def classify_distinct(
    keys: Arrow, *, mobile_only: bool, parallel: bool | None = None
) -> tuple[Arrow, Verdicts]:
    """E.164 (null unless valid) and `Verdict` per key: in bulk, and one by one where unsure."""
    keys = _contiguous(keys)
    e164, verdict = classify_fast(keys, mobile_only=mobile_only)
    sure, unsure = np.flatnonzero(verdict != UNDECIDED), np.flatnonzero(verdict == UNDECIDED)
    if len(unsure) == 0:
        return e164, verdict
    numbers, verdicts = classify_each(
        keys.take(pa.array(unsure)).to_pylist(), mobile_only=mobile_only, parallel=parallel
    )
    verdict[unsure] = verdicts
    parts = [(sure, e164.take(pa.array(sure))), (unsure, pa.array(numbers, pa.string()))]
    return _scatter(len(keys), parts), verdict
