"""The phones stage (`tasks/phones/`: normalise, dedupe, their tasks) on small frames: formats,
every reason code, the dedupe rule."""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from connectors.vocabulary import (
    COUNTRY,
    CUSTOMER_ID,
    DUPLICATE_OF,
    NUMBER_REASONS,
    OPT_IN_AT,
    OUTCOME,
    PHONE_E164,
    PHONE_RAW,
    REASON,
    Outcome,
    Reason,
)
from tasks.frame import with_stage_columns
from tasks.phones.bulk import classify_distinct
from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise

REASONS = set(NUMBER_REASONS)


def frame_of(
    raw: list[str | None],
    country: list[str | None] | None = None,
    opt_in: list[str | None] | None = None,
    ids: list[str] | None = None,
) -> pd.DataFrame:
    """A frame as extract and consent leave it: one row per customer, stage columns null."""
    return with_stage_columns(
        pd.DataFrame(
            {
                CUSTOMER_ID: pd.Series(ids or [f"c{i}" for i in range(len(raw))], dtype="str"),
                PHONE_RAW: pd.Series(raw, dtype="str"),
                COUNTRY: pd.Series(country or [None] * len(raw), dtype="str"),
                OPT_IN_AT: pd.to_datetime(opt_in or ["2025-01-01"] * len(raw), utc=True),
                "param_first_name": "Asha",
            }
        )
    )


def one(raw: str | None, country: str | None = None, **options: object) -> pd.Series:
    """The normalised row for one raw number."""
    region = str(options.pop("default_region", "US"))
    mobile_only = bool(options.pop("mobile_only", False))
    out = normalise(frame_of([raw], [country]), default_region=region, mobile_only=mobile_only)
    return out.iloc[0]


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # national, with the row's country (any case) as the region
        ("(201) 555-0123", "US", "+12015550123"),
        ("0151 23456789", "de", "+4915123456789"),
        ("07400 123456", " gb ", "+447400123456"),
        ("8 (912) 345-67-89", "ru", "+79123456789"),
        # international, whatever the country says
        ("+49 151 23456789", None, "+4915123456789"),
        ("+49 151 23456789", "us", "+4915123456789"),
        ("+49 (0)151 23456789", None, "+4915123456789"),
        # 00 anywhere, and the region's own international prefix
        ("0049 151 23456789", None, "+4915123456789"),
        ("00 44 7400 123456", "us", "+447400123456"),
        ("011 49 151 23456789", "US", "+4915123456789"),
        ("011-44-7400-123456", "ca", "+447400123456"),
        ("0011 61 412 345 678", "AU", "+61412345678"),
        ("810 49 151 23456789", "RU", "+4915123456789"),
        # separators of every kind
        ("201.555.0123", "US", "+12015550123"),
        ("201/555/0123", "US", "+12015550123"),
        ("[201] 555 0123", "US", "+12015550123"),
        ("{201}\t555\n0123", "US", "+12015550123"),
        ("201\u00a0555\u20130123", "US", "+12015550123"),
        ("201\u2014555\u22120123", "US", "+12015550123"),
        ("\u200e+49\u202f151\u200b234\u00ad56789\u200f", None, "+4915123456789"),
        ("\ufeff  +1 201 555 0123  ", None, "+12015550123"),
        ("'+4915123456789", None, "+4915123456789"),
        # other digits
        (
            "\uff0b\uff14\uff19\u3000\uff11\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
            None,
            "+4915123456789",
        ),
        (
            "\u0660\u0661\u0660\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
            "eg",
            "+201001234567",
        ),
        (
            "\u06f0\u06f9\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9",
            "IR",
            "+989123456789",
        ),
        (
            "\u0966\u096e\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f",
            "in",
            "+918123456789",
        ),
        # extensions are cut
        ("201-555-0123 x123", "US", "+12015550123"),
        ("201-555-0123 X 9", "US", "+12015550123"),
        ("201-555-0123 ext. 123", "US", "+12015550123"),
        ("201-555-0123 Ext123", "US", "+12015550123"),
        ("201-555-0123 #123", "US", "+12015550123"),
        ("201-555-0123 extension 123", "US", "+12015550123"),
        ("+1-201-555-0123;ext=123", None, "+12015550123"),
    ],
)
def test_formats_normalise_to_e164(raw: str, country: str | None, expected: str) -> None:
    row = one(raw, country)
    assert row[PHONE_E164] == expected
    assert pd.isna(row[OUTCOME]) and pd.isna(row[REASON])


def test_unknown_or_junk_country_falls_back_to_default_region() -> None:
    out = normalise(
        frame_of(["0151 23456789"] * 4, ["zz", "Germany", None, "  "]), default_region="de"
    )
    assert out[PHONE_E164].tolist() == ["+4915123456789"] * 4


def test_default_region_must_be_known() -> None:
    with pytest.raises(ValueError, match="default_region 'XX'"):
        normalise(frame_of(["+12015550123"]), default_region="XX")


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [
        (None, None, Reason.EMPTY),
        ("", None, Reason.EMPTY),
        ("   ", None, Reason.EMPTY),
        (" - ( ) . / ", None, Reason.EMPTY),
        ("\u200b\u00a0", None, Reason.EMPTY),
        ("1-800-FLOWERS", "US", Reason.NOT_A_NUMBER),
        ("n/a", None, Reason.NOT_A_NUMBER),
        ("+", None, Reason.NOT_A_NUMBER),
        ("12+34", None, Reason.NOT_A_NUMBER),
        ("\U0001f4f1 201 555 0123", "US", Reason.NOT_A_NUMBER),
        ("'; DROP TABLE customers;--", None, Reason.NOT_A_NUMBER),
        ("+4", None, Reason.NOT_A_NUMBER),  # phonenumbers: too little to be a number
        ("12", "US", Reason.TOO_SHORT),  # parse: TOO_SHORT_NSN
        ("+331", None, Reason.TOO_SHORT),  # parse: too short after the country code
        ("+1 201 555 01", None, Reason.TOO_SHORT),  # parsed, not possible: too short
        ("9" * 500, "US", Reason.TOO_LONG),  # parse: TOO_LONG
        ("+1 201 555 01234", None, Reason.TOO_LONG),  # parsed, not possible: too long
        ("+999 123 456", None, Reason.INVALID_COUNTRY_CODE),
        ("+0 123 456 789", None, Reason.INVALID_COUNTRY_CODE),
        ("+1 200 555 0123", None, Reason.INVALID_FOR_REGION),  # no such area code
        ("0151 2345678", "DE", Reason.INVALID_FOR_REGION),
    ],
)
def test_each_rejection_has_its_reason(raw: str | None, country: str | None, reason: str) -> None:
    row = one(raw, country)
    assert row[OUTCOME] == Outcome.EXCLUDED_INVALID_NUMBER
    assert row[REASON] == reason
    assert pd.isna(row[PHONE_E164])


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        ("+49 151 23456789", True),  # mobile
        ("+1 201 555 0123", True),  # fixed line or mobile: US numbers cannot be told apart
        ("+44 20 7946 0958", False),  # fixed line
        ("+1 800 555 0123", False),  # toll free
    ],
)
def test_mobile_only_keeps_mobile_numbers(raw: str, accepted: bool) -> None:
    row = one(raw, mobile_only=True)
    if accepted:
        assert pd.notna(row[PHONE_E164]) and pd.isna(row[OUTCOME])
    else:
        assert (row[OUTCOME], row[REASON]) == (Outcome.EXCLUDED_INVALID_NUMBER, Reason.NOT_MOBILE)
    assert pd.notna(one(raw, mobile_only=False)[PHONE_E164])


def test_hostile_inputs_are_recorded_not_raised() -> None:
    hostile = [
        "+" * 500,
        "1" * 500,
        "\U0001f600" * 100,
        "Robert'); DROP TABLE students;--",
        "\x00\x01\x02",
        "\u202e3210 555 102\u202c",
        "\u0661" * 300,
        "<script>alert(1)</script>",
        "+49 151 23456789 ext",
        "\\N",
        "NaN",
        "None",
    ]
    out = normalise(frame_of(hostile), default_region="US")
    assert len(out) == len(hostile)
    assert out[REASON].isin(REASONS).all(), out[REASON].tolist()
    assert (out[OUTCOME] == Outcome.EXCLUDED_INVALID_NUMBER).all()


def test_rows_already_excluded_are_left_untouched() -> None:
    frame = frame_of(["not a number", "+4915123456789", "+4915123456789", "+12015550123"])
    frame.loc[[0, 1], OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
    frame.loc[[0, 1], REASON] = Reason.NO_OPT_IN
    before = frame.copy()
    out = dedupe([normalise(frame, default_region="US")])[0]
    pd.testing.assert_frame_equal(out.iloc[:2], before.iloc[:2])
    assert out[PHONE_E164].iloc[2:].tolist() == ["+4915123456789", "+12015550123"]
    assert out[OUTCOME].iloc[2:].isna().all()  # the excluded twin does not compete
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified


def test_index_order_other_columns_and_row_count_are_kept() -> None:
    frame = frame_of(["+12015550123", "junk", None, "0151 23456789"], [None, None, None, "DE"])
    frame.index = pd.Index([7, 7, 3, 1])  # duplicate, unordered labels
    out = normalise(frame, default_region="US")
    assert out.index.tolist() == [7, 7, 3, 1]
    assert out[CUSTOMER_ID].tolist() == frame[CUSTOMER_ID].tolist()
    pd.testing.assert_frame_equal(
        out[[PHONE_RAW, COUNTRY, "param_first_name"]],
        frame[[PHONE_RAW, COUNTRY, "param_first_name"]],
    )
    assert out[PHONE_E164].tolist()[::3] == ["+12015550123", "+4915123456789"]
    assert out[REASON].tolist()[1:3] == [Reason.NOT_A_NUMBER, Reason.EMPTY]


def test_string_columns_stay_arrow_backed() -> None:
    out = normalise(frame_of(["+12015550123", "junk"]), default_region="US")
    for column in (PHONE_E164, OUTCOME, REASON, DUPLICATE_OF):
        assert out[column].dtype == "str"
        assert out[column].dtype.storage == "pyarrow"


def test_stage_columns_are_added_when_missing() -> None:
    frame = pd.DataFrame({CUSTOMER_ID: ["1"], PHONE_RAW: ["+12015550123"], COUNTRY: [None]})
    frame[OUTCOME] = pd.Series([None], dtype="object")
    out = normalise(frame, default_region="US")
    assert out[PHONE_E164].tolist() == ["+12015550123"]
    assert out[OUTCOME].dtype == "str"


def example_corpus() -> list[tuple[str, str | None, str]]:
    """Every region's example mobile and fixed-line number, written three ways, and its E.164."""
    corpus = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
            corpus += [(national, region, e164), (international, None, e164), (e164, None, e164)]
    return corpus


def test_every_example_number_of_every_region_comes_back_to_its_e164() -> None:
    corpus = example_corpus()
    assert len(corpus) > 1_000
    raw, country, expected = (list(column) for column in zip(*corpus, strict=True))
    out = normalise(frame_of(raw, country), default_region="US")
    got = out[PHONE_E164].tolist()
    wrong = [(r, c, e, g) for r, c, e, g in zip(raw, country, expected, got, strict=True) if e != g]
    assert wrong == []


def test_parallel_classification_matches_in_process() -> None:
    digits = [
        ("".join(ch for ch in raw if ch.isdigit()), region) for raw, region, _ in example_corpus()
    ]
    keys = [f"{region}:{number}" if region else f"+{number}" for number, region in digits]
    keys += ["US:12", "+999", "+4930123"]

    def classified(parallel: bool) -> tuple[list[str | None], list[int]]:
        e164, verdicts = classify_distinct(keys, mobile_only=True, parallel=parallel)
        return e164.to_pylist(), verdicts.tolist()

    assert classified(parallel=True) == classified(parallel=False)


# --- dedupe -------------------------------------------------------------------------------------


def normalised(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    """A normalised chunk from (customer_id, E.164 number, opt-in date or None) rows."""
    ids, raw, opt_in = (list(column) for column in zip(*rows, strict=True))
    return normalise(frame_of(raw, opt_in=opt_in, ids=ids), default_region="US")


A, B = "+4915123456789", "+12015550123"


def test_dedupe_keeps_the_most_recent_opt_in() -> None:
    out = dedupe([normalised(("1", A, "2024-01-01"), ("2", A, "2025-06-01"), ("3", A, None))])[0]
    assert out[OUTCOME].tolist()[::2] == [Outcome.EXCLUDED_DUPLICATE] * 2
    assert pd.isna(out[OUTCOME].iloc[1])
    assert out[DUPLICATE_OF].tolist()[::2] == ["2", "2"]
    assert out[REASON].tolist()[::2] == [Reason.DUPLICATE] * 2


def test_dedupe_counts_a_missing_opt_in_as_oldest() -> None:
    out = dedupe([normalised(("1", A, None), ("2", A, "1990-01-01"))])[0]
    assert out[OUTCOME].isna().tolist() == [False, True]
    assert out[DUPLICATE_OF].iloc[0] == "2"


def test_dedupe_tie_keeps_the_smallest_id_numerically() -> None:
    same = "2025-01-01"
    out = dedupe([normalised(("10", A, same), ("9", A, same), ("100", A, same))])[0]
    assert out[OUTCOME].isna().tolist() == [False, True, False]
    assert out[DUPLICATE_OF].tolist()[::2] == ["9", "9"]


def test_dedupe_tie_orders_equal_length_ids_as_text() -> None:
    ids = ["f47ac10b-58cc-4372-a567-0e02b2c3d479", "0b2c3d47-58cc-4372-a567-f47ac10b0e02"]
    out = dedupe([normalised((ids[0], A, None), (ids[1], A, None))])[0]
    assert out[DUPLICATE_OF].tolist()[0] == ids[1]
    assert pd.isna(out[OUTCOME].iloc[1])


def test_dedupe_works_across_chunks_and_keeps_their_shape() -> None:
    first = normalised(("1", A, "2024-01-01"), ("2", B, "2024-01-01"), ("3", "junk", None))
    second = normalised(("4", A, "2025-01-01"), ("5", B, "2023-01-01"))
    first.index = pd.Index([30, 10, 20])
    empty = normalised(("6", A, None)).iloc[:0]
    outs = dedupe([first, empty, second])
    assert [len(out) for out in outs] == [3, 0, 2]
    assert outs[0].index.tolist() == [30, 10, 20]
    assert outs[0][CUSTOMER_ID].tolist() == ["1", "2", "3"]
    assert outs[0][OUTCOME].fillna("").tolist() == [
        Outcome.EXCLUDED_DUPLICATE,
        "",
        Outcome.EXCLUDED_INVALID_NUMBER,
    ]
    assert outs[0][DUPLICATE_OF].iloc[0] == "4"
    assert outs[2][OUTCOME].fillna("").tolist() == ["", Outcome.EXCLUDED_DUPLICATE]
    assert outs[2][DUPLICATE_OF].iloc[1] == "2"
    assert outs[0][REASON].iloc[2] == Reason.NOT_A_NUMBER  # earlier exclusion kept


def test_dedupe_of_nothing_is_nothing() -> None:
    assert dedupe([]) == []
    only = normalised(("1", A, None))
    pd.testing.assert_frame_equal(dedupe([only])[0], only)


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # Brazil dials out with 00 and a carrier code: 0055 is carrier 55 calling +1 1961...,
        # which is invalid; 00 read as + gives the number meant.
        ("0055 11 96123-4543", "BR", "+5511961234543"),
        ("0055 11 96123-4543", "br", "+5511961234543"),
        ("0015 55 11 96123-4543", "BR", "+5511961234543"),  # carrier 15, then +55
        ("0049 151 12345678", "DE", "+4915112345678"),
        ("011 49 151 12345678", "US", "+4915112345678"),
        ("0049 151 12345678", "US", "+4915112345678"),
    ],
)
def test_a_00_number_invalid_the_regions_way_is_read_with_00_as_plus(
    raw: str, country: str, expected: str
) -> None:
    row = one(raw, country)
    assert row[PHONE_E164] == expected
    assert pd.isna(row[OUTCOME])


def test_a_carrier_coded_call_to_no_valid_number_stays_invalid() -> None:
    # Carrier 15 calling +1 1961234543 (invalid); read as +15... it is too long for +1.
    assert not phonenumbers.is_valid_number(phonenumbers.parse("0015 11 96123-4543", "BR"))
    assert not phonenumbers.is_valid_number(phonenumbers.parse("+1511961234543"))
    row = one("0015 11 96123-4543", "BR")
    assert (row[OUTCOME], row[REASON]) == (
        Outcome.EXCLUDED_INVALID_NUMBER,
        Reason.INVALID_FOR_REGION,
    )


@pytest.mark.parametrize(
    ("raw", "country"),
    [("00995322123456", "BR"), ("0093234567890", "CO"), ("0016492311234", "AU")],
)
def test_a_00_number_valid_the_regions_way_keeps_that_reading(raw: str, country: str) -> None:
    # Each is valid both ways; the region's own reading (a carrier or operator prefix) wins.
    parsed = phonenumbers.parse(raw, country)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.is_valid_number(phonenumbers.parse("+" + raw[2:]))
    expected = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    assert expected != "+" + raw[2:]
    assert one(raw, country)[PHONE_E164] == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("4915112345678", "DE", "+4915112345678"),  # not +49 4915112345678
        ("43664123456", "AT", "+43664123456"),
        ("15112345678", "DE", "+4915112345678"),  # national, its trunk 0 lost in a number column
        ("2015550123", "US", "+12015550123"),  # national: not +20 (Egypt)
        ("16315551234", "US", "+16315551234"),
        ("0491 51 1234567", "DE", "+49491511234567"),  # written nationally: stays national
    ],
)
def test_plain_digits_starting_with_the_regions_calling_code_are_that_international_number(
    raw: str, country: str, expected: str
) -> None:
    row = one(raw, country)
    assert row[PHONE_E164] == expected
    assert pd.isna(row[OUTCOME])
