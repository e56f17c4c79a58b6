"""The bulk classifier gives, key for key, what phonenumbers gives when it parses each key."""

from __future__ import annotations

import functools
import random
import re
import re._parser as sre
from collections.abc import Iterator, Sequence

import numpy as np
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberFormat, PhoneNumberType

from tasks.phones.bulk import UNDECIDED, classify_distinct, classify_fast
from tasks.phones.fallback import Results, classify_batch
from tasks.phones.verdict import Verdict


def classify_keys(
    keys: Sequence[str], *, mobile_only: bool, parallel: bool | None = None
) -> Results:
    """What the bulk path with its fallback answers for keys, as plain lists (like parsing)."""
    e164, verdicts = classify_distinct(list(keys), mobile_only=mobile_only, parallel=parallel)
    return e164.to_pylist(), [Verdict(verdict) for verdict in verdicts.tolist()]


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
TYPES = [kind for kind in PhoneNumberType.values() if kind != PhoneNumberType.UNKNOWN]
DESCS = ["fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number"]
DESCS += ["voip", "pager", "uan", "voicemail"]


def example_numbers() -> Iterator[tuple[str | None, PhoneNumber]]:
    """Every example number phonenumbers has: each type of each region, and non-geographic."""
    for region in REGIONS:
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                yield region, number
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        metadata = PhoneMetadata.metadata_for_nongeo_region(code)
        for name in DESCS:
            desc = getattr(metadata, name)
            if desc is not None and desc.example_number:
                yield None, phonenumbers.parse(f"+{code}{desc.example_number}")


def variations(digits: str, rng: random.Random) -> set[str]:
    """The number, and the same with its last or first digit changed, or digits dropped or added."""

    def digit() -> str:
        return str(rng.randrange(10))

    middle = rng.randrange(len(digits))
    return {
        digits,
        digits[:-1] + digit(),
        digit() + digits[1:],
        digits[:-1],
        digits[:-2],
        digits[:middle] + digits[middle + 1 :],
        digits + digit(),
        digit() + digits,
    }


def example_keys() -> list[str]:
    """Keys as `normalise` builds them from example numbers typed many ways, and variations."""
    rng = random.Random(20261124)
    keys: set[str] = set()
    for region, number in example_numbers():
        code = str(number.country_code)
        nsn = phonenumbers.national_significant_number(number)
        national = "".join(
            ch
            for ch in phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            if ch.isdigit()
        )
        home = region or rng.choice(REGIONS)
        keys |= {f"+{code}{digits}" for digits in variations(nsn, rng)}
        keys |= {f"{home}:{digits}" for digits in variations(national, rng)}
        keys |= {f"{home}:{code}{digits}" for digits in variations(nsn, rng)}
        keys |= {f"{rng.choice(REGIONS)}:{national}", f"{home}:{nsn}", f"+{code}0{nsn}"}
        keys |= {f"{home}:00{code}{nsn}", f"{home}:011{code}{nsn}", f"{home}:{code}0{nsn}"}
        keys |= {f"+0{nsn}", f"+999{nsn}"}  # no such calling code
    return sorted(keys)


KEYS = example_keys()


@functools.cache
def parsed_each(keys: tuple[str, ...], mobile_only: bool) -> Results:
    """The reference: phonenumbers parsing each key (cached: the example corpus is large)."""
    return classify_batch(keys, mobile_only)


def mismatches(keys: list[str], mobile_only: bool) -> tuple[list[tuple[object, ...]], int]:
    """Keys the bulk classifier decided differently from parsing each, and how many it left."""
    e164, verdicts = classify_fast(keys, mobile_only=mobile_only, min_group=1)
    expected = zip(*parsed_each(tuple(keys), mobile_only), strict=True)
    wrong = [
        (key, got_number, Verdict(got), number, verdict)
        for key, got_number, got, (number, verdict) in zip(
            keys, e164.to_pylist(), verdicts.tolist(), expected, strict=True
        )
        if got != UNDECIDED and (got_number, got) != (number, verdict)
    ]
    return wrong, int(np.count_nonzero(verdicts == UNDECIDED))


@pytest.mark.parametrize("mobile_only", [False, True])
def test_bulk_verdicts_equal_parsing_each_example_number_and_its_variations(
    mobile_only: bool,
) -> None:
    assert len(KEYS) > 20_000
    wrong, undecided = mismatches(KEYS, mobile_only)
    assert wrong == []
    assert undecided < len(KEYS) * 0.05


def test_bulk_with_its_fallback_equals_parsing_each_including_the_keys_left_to_it() -> None:
    assert classify_keys(KEYS, mobile_only=True) == parsed_each(tuple(KEYS), True)


def test_calling_codes_and_regions_with_few_keys_are_left_to_parsing_each() -> None:
    keys = ["+4930123456"] * 99 + ["US:2015550123"] * 100
    _, verdicts = classify_fast(keys, mobile_only=False)
    assert verdicts.tolist() == [UNDECIDED] * 99 + [Verdict.VALID] * 100


def test_arrow_keys_in_several_chunks_classify_as_a_list_of_them() -> None:
    keys = [["+4915123456789", "US:2015550123", "US:12"], ["+999123", "GB:07400123456"]]
    e164, verdicts = classify_distinct(pa.chunked_array(keys), mobile_only=False)
    expected = classify_batch([key for chunk in keys for key in chunk], False)
    assert (e164.to_pylist(), verdicts.tolist()) == expected


def least_width(pattern: str, group: int) -> int | None:
    """The fewest characters a capturing group of the pattern can match (None: no such group)."""

    def walk(items: sre.SubPattern) -> int | None:
        for op, av in items:
            if op is sre.SUBPATTERN and av[0] == group:
                return int(av[3].getwidth()[0])
            if op is sre.SUBPATTERN:
                inner = [av[3]]
            elif op is sre.BRANCH:
                inner = av[1]
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
                inner = [av[2]]
            else:
                inner = []
            for sub in inner:
                if (found := walk(sub)) is not None:
                    return found
        return None

    return walk(sre.parse(pattern))


def test_the_last_group_of_every_transform_rule_captures_digits_when_it_takes_part() -> None:
    # tasks.phone_fast tells "took part" from "captured something", which needs this.
    rules = [
        metadata.national_prefix_for_parsing
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        for region in regions
        if (metadata := PhoneMetadata.metadata_for_region_or_calling_code(code, region))
        and metadata.national_prefix_transform_rule
    ]
    assert len(rules) > 20
    widths = [least_width(rule, re.compile(rule).groups) for rule in rules if rule]
    assert all(width is not None and width > 0 for width in widths), widths


def test_every_verdict_is_reached_in_bulk() -> None:
    _, verdicts = classify_fast(KEYS, mobile_only=True, min_group=1)
    assert set(verdicts.tolist()) == {UNDECIDED, *Verdict} - {Verdict.NOT_A_NUMBER}


@pytest.mark.parametrize(
    "key",
    [
        "+",  # no digits
        "+12",  # too few digits after the `+` to parse
        "US:1",  # too few digits to be a number
        "DE:00049301234567",  # the international prefix then a 0 (cleaning leaves these)
        "US:0114930123456",  # the international prefix (cleaning rewrites most as `+`)
        "US:2015550123x",  # not a key `tasks.phones.normalise` builds
        "+4930" + "1" * 30,  # longer than any number
    ],
)
def test_keys_it_cannot_be_sure_of_are_left_to_phonenumbers(key: str) -> None:
    _, verdicts = classify_fast([key], mobile_only=False, min_group=1)
    assert verdicts.tolist() == [UNDECIDED]
    assert classify_keys([key], mobile_only=False) == classify_batch([key], False)


@pytest.mark.parametrize(
    ("key", "e164"),
    [
        ("IT:0612345678", "+390612345678"),  # Italian leading zero kept
        ("+390612345678", "+390612345678"),
        ("+2250701234567", "+2250701234567"),  # Côte d'Ivoire numbers start with 0 too
        ("CA:12042345678", "+12042345678"),  # shared code +1, Canadian area code
        ("+17012345678", "+17012345678"),  # shared code +1, US area code
        ("+77112345678", "+77112345678"),  # shared code +7, Kazakhstan
        ("GB:07400123456", "+447400123456"),  # national prefix stripped
        ("GB:447400123456", "+447400123456"),  # calling code without the `+`
        ("US:12015550123", "+12015550123"),
        ("BR:011961234567", "+5511961234567"),  # national prefix, no carrier code
        ("AR:0111512345678", "+5491112345678"),  # transform rule: 15 mobile to 9
    ],
)
def test_numbers_phonenumbers_treats_specially_get_its_e164(key: str, e164: str) -> None:
    got, verdicts = classify_fast([key], mobile_only=False, min_group=1)
    assert (got.to_pylist(), verdicts.tolist()) == ([e164], [Verdict.VALID])
    assert classify_batch([key], False) == ([e164], [Verdict.VALID])


digits = st.text("0123456789", max_size=20)
heads = st.sampled_from(["", "0", "00", "011", "1", "15", "9", *map(str, CODES)])
keys = st.builds(
    lambda region, head, tail: ("+" if region is None else f"{region}:") + head + tail,
    st.none() | st.sampled_from(REGIONS),
    heads,
    digits,
)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(keys, min_size=1, max_size=40), st.booleans())
def test_random_digits_with_or_without_a_region_classify_as_parsed_each(
    sample: list[str], mobile_only: bool
) -> None:
    assert mismatches(sample, mobile_only)[0] == []
    assert classify_keys(sample, mobile_only=mobile_only) == classify_batch(sample, mobile_only)
