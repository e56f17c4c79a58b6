"""Hostile CRM values, one per row, through extract's reading, consent and normalise.

Every row ends with exactly one outcome and its reason, or stays in the running with a valid
E.164 number; nothing raises. Each case changes one column of an otherwise valid customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Final

import pandas as pd
import pytest

from connectors.crm import to_frame
from connectors.vocabulary import CUSTOMER_ID, OUTCOME, PHONE_E164, REASON, Outcome, Reason
from tasks.consent import apply_consent
from tasks.extract import settle
from tasks.phones.normalise import normalise

NAMES: Final = ["customer_id", "phone_raw", "country", "opt_in_at", "opt_out_at", "param_name"]
NOW: Final = datetime(2026, 6, 1, tzinfo=UTC)
E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
BIG: Final = 100_000
IN: Final = (None, None)  # still in the running
NO_ID: Final = (Outcome.EXCLUDED_INVALID_CUSTOMER_ID, Reason.MISSING_CUSTOMER_ID)
BAD_ID: Final = (Outcome.EXCLUDED_INVALID_CUSTOMER_ID, Reason.UNUSABLE_CUSTOMER_ID)
NOT_A_NUMBER: Final = (Outcome.EXCLUDED_INVALID_NUMBER, Reason.NOT_A_NUMBER)
UNREADABLE: Final = (Outcome.EXCLUDED_NO_CONSENT, Reason.UNREADABLE_CONSENT_DATE)


@dataclass(frozen=True)
class Case:
    """One hostile value in one column, and what must become of its customer."""

    column: str
    value: object
    expected: tuple[str | None, str | None]
    e164: str | None = None  # for rows that stay in the running


CASES: Final = [
    # numbers in numeric columns
    Case("phone_raw", 43664123456, IN, "+43664123456"),
    Case("phone_raw", 43664123456.0, IN, "+43664123456"),
    Case("phone_raw", Decimal("43664123456.00"), IN, "+43664123456"),
    Case("phone_raw", 1.5, NOT_A_NUMBER),
    Case("phone_raw", 12345678901.5, NOT_A_NUMBER),
    Case("phone_raw", Decimal("12345678901.5"), NOT_A_NUMBER),
    Case("phone_raw", float("nan"), NOT_A_NUMBER),
    Case("phone_raw", float("inf"), NOT_A_NUMBER),
    Case("phone_raw", Decimal("NaN"), NOT_A_NUMBER),
    Case("phone_raw", 2.0**60, NOT_A_NUMBER),
    Case("phone_raw", -43664123456, NOT_A_NUMBER),
    Case("phone_raw", True, NOT_A_NUMBER),
    Case("phone_raw", False, NOT_A_NUMBER),
    Case("phone_raw", datetime(2024, 1, 1), NOT_A_NUMBER),
    Case("phone_raw", ["+4915112345678"], NOT_A_NUMBER),
    Case("phone_raw", {"mobile": "+4915112345678"}, NOT_A_NUMBER),
    # text and bytes in the phone column
    Case("phone_raw", "4.3664123456E10", NOT_A_NUMBER),
    Case("phone_raw", "x" * BIG, NOT_A_NUMBER),
    Case("phone_raw", "1" * BIG, (Outcome.EXCLUDED_INVALID_NUMBER, Reason.TOO_LONG)),
    Case("phone_raw", "+49151\x0012345678", IN, "+4915112345678"),  # NUL: a control character
    Case("phone_raw", "\ud800", NOT_A_NUMBER),
    Case("phone_raw", "+4915112345678\ud800", NOT_A_NUMBER),
    Case("phone_raw", "\U0001f4f1\U0001f600", NOT_A_NUMBER),
    Case("phone_raw", "\u200f+49 151 12345678\u200e", IN, "+4915112345678"),
    Case("phone_raw", "\u202e8765432115194+\u202c", NOT_A_NUMBER),
    Case("phone_raw", b"+4915112345678", IN, "+4915112345678"),
    Case("phone_raw", b"\xff\xfe\x00", NOT_A_NUMBER),
    Case("phone_raw", None, (Outcome.EXCLUDED_INVALID_NUMBER, Reason.EMPTY)),
    Case("phone_raw", " \t ", (Outcome.EXCLUDED_INVALID_NUMBER, Reason.EMPTY)),
    # ids
    Case("customer_id", None, NO_ID),
    Case("customer_id", "", NO_ID),
    Case("customer_id", " \u3000 ", NO_ID),
    Case("customer_id", "x" * BIG, BAD_ID),
    Case("customer_id", "a\x00b", BAD_ID),
    Case("customer_id", "\ud800", NO_ID),
    Case("customer_id", float("nan"), NO_ID),
    Case("customer_id", 7.0, IN, "+4915112345678"),
    Case("customer_id", 2**62 + 1, IN, "+4915112345678"),
    Case("customer_id", Decimal("4611686018427387906.000"), IN, "+4915112345678"),
    Case("customer_id", "kunde-\U0001f600-\u200f", IN, "+4915112345678"),
    Case("customer_id", b"\x00\x01\xff", IN, "+4915112345678"),
    # consent dates
    Case("opt_in_at", "01/02/2024", UNREADABLE),
    Case("opt_in_at", "yesterday", UNREADABLE),
    Case("opt_in_at", 1706745600, UNREADABLE),
    Case("opt_in_at", "0000-00-00 00:00:00", UNREADABLE),
    Case("opt_in_at", "0000-00-00", UNREADABLE),
    Case("opt_in_at", "infinity", UNREADABLE),
    Case("opt_in_at", "2024-01-01" + "0" * BIG, UNREADABLE),
    Case("opt_in_at", "2024-01-01\x00", UNREADABLE),
    Case("opt_in_at", True, UNREADABLE),
    Case("opt_in_at", b"2024-01-01", UNREADABLE),
    Case("opt_in_at", datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))), UNREADABLE),
    Case("opt_out_at", "-infinity", UNREADABLE),
    Case("opt_out_at", "yesterday", UNREADABLE),  # might be a real opt-out
    Case(
        "opt_in_at", datetime(9999, 12, 31), (Outcome.EXCLUDED_NO_CONSENT, Reason.OPT_IN_IN_FUTURE)
    ),
    Case(
        "opt_in_at", "2030-01-01T00:00:00Z", (Outcome.EXCLUDED_NO_CONSENT, Reason.OPT_IN_IN_FUTURE)
    ),
    Case("opt_out_at", datetime(9999, 12, 31), (Outcome.EXCLUDED_NO_CONSENT, Reason.OPTED_OUT)),
    Case("opt_in_at", "2025-01-01T00:00:00+14:00", IN, "+4915112345678"),
    Case("opt_in_at", date(2025, 1, 1), IN, "+4915112345678"),
    # template parameters and country
    Case("param_name", "x" * BIG, IN, "+4915112345678"),
    Case("param_name", "\ud800\x00\u202e", IN, "+4915112345678"),
    Case("param_name", b"\xff", IN, "+4915112345678"),
    Case("param_name", 12.5, IN, "+4915112345678"),
    Case("country", "\ud800", IN, "+4915112345678"),
    Case("country", 49, IN, "+4915112345678"),
    Case("country", "x" * BIG, IN, "+4915112345678"),
]


def _row(number: int, case: Case) -> tuple[object, ...]:
    """A valid customer (its own id and number) with the case's column replaced."""
    row: dict[str, object] = {
        "customer_id": f"c{number}",
        "phone_raw": "+49 151 12345678",
        "country": "AT" if case.column == "phone_raw" else "DE",
        "opt_in_at": datetime(2025, 1, 1, tzinfo=UTC),
        "opt_out_at": None,
        "param_name": "Asha",
    }
    row[case.column] = case.value
    return tuple(row[name] for name in NAMES)


@pytest.fixture(scope="module")
def outcomes() -> pd.DataFrame:
    """Every case as one customer of one chunk, through the stages (once for the module)."""
    frame = to_frame([_row(number, case) for number, case in enumerate(CASES)], NAMES)
    settled = settle([frame])[0]
    return normalise(apply_consent(settled, now=NOW), default_region="DE")


@pytest.mark.parametrize(
    ("position", "case"),
    list(enumerate(CASES)),
    ids=[f"{case.column}={case.value!r:.30}" for case in CASES],
)
def test_every_hostile_value_ends_with_its_outcome_or_a_valid_number(
    outcomes: pd.DataFrame, position: int, case: Case
) -> None:
    row = outcomes.iloc[position]
    got = tuple(None if pd.isna(row[c]) else row[c] for c in (OUTCOME, REASON))
    assert got == case.expected
    if case.expected == IN:
        assert E164.fullmatch(row[PHONE_E164]) and row[PHONE_E164] == case.e164
    else:
        assert pd.isna(row[PHONE_E164])


def test_the_hostile_chunk_keeps_one_row_per_customer_with_unique_ids(
    outcomes: pd.DataFrame,
) -> None:
    assert len(outcomes) == len(CASES)
    assert outcomes[CUSTOMER_ID].is_unique and outcomes[CUSTOMER_ID].notna().all()
