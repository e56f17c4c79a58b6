"""The region of a normalised number, read from the number, as phonenumbers reads it."""

from __future__ import annotations

import random

import pandas as pd
import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberType

from tasks.phones.regions import region_of, regions_of


def valid_numbers(per_type: int = 4, seed: int = 16) -> list[str]:
    """Valid numbers around every region's example mobile and fixed-line numbers."""
    rng = random.Random(seed)
    found = []
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                national = phonenumbers.national_significant_number(example)
                for _ in range(per_type):
                    tail = "".join(str(rng.randrange(10)) for _ in range(min(3, len(national))))
                    number = f"+{code}{national[: len(national) - len(tail)]}{tail}"
                    if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                        found.append(number)
    return found


def test_every_valid_number_gets_the_region_phonenumbers_gives_it() -> None:
    numbers = valid_numbers()
    assert len(numbers) > 1500
    wrong = [
        (n, region_of(n))
        for n in numbers
        if region_of(n) != phonenumbers.region_code_for_number(phonenumbers.parse(n))
    ]
    assert not wrong, wrong[:5]


def test_shared_calling_codes_split_by_the_number_not_the_crm() -> None:
    assert [region_of(n) for n in ("+14155550123", "+14165550123", "+12425550123")] == [
        "US",
        "CA",
        "BS",
    ]
    assert [region_of(n) for n in ("+79161234567", "+77011234567")] == ["RU", "KZ"]


def test_an_invalid_number_does_not_decide_for_its_prefix() -> None:
    assert region_of("+19071234567") is None  # exchange 123 does not exist: no region
    assert region_of("+19072521234") == "US"  # the area code's next number is still read


def test_a_column_keeps_nulls_and_numbers_without_a_region() -> None:
    column = pd.Series(["+5511987654321", None, "+80012345678"], dtype="str")
    assert [None if pd.isna(r) else r for r in regions_of(column)] == ["BR", None, None]


def test_an_area_whose_first_number_is_invalid_is_read_number_by_number() -> None:
    column = pd.Series(["+18081234567", "+18082345678", "+18082345679"], dtype="str")
    assert [None if pd.isna(r) else r for r in regions_of(column)] == [None, "US", "US"]
