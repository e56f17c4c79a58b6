"""What extract settles alone: customers without an id, unreadable consent dates, repeated ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from connectors.crm import UNREADABLE_CONSENT, AudienceError, to_frame
from connectors.vocabulary import CUSTOMER_ID, OUTCOME, PHONE_E164, REASON, Outcome, Reason
from tasks.consent import apply_consent
from tasks.extract import settle
from tasks.phones.normalise import normalise

NAMES = ["customer_id", "phone_raw", "country", "opt_in_at", "opt_out_at"]
OPT_IN = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def chunk(*rows: tuple[object, ...]) -> pd.DataFrame:
    """A chunk as the connector reads it, from (id, phone, country[, opt-in[, opt-out]]) rows."""
    full = [(*row, *(OPT_IN, None)[len(row) - 3 :]) for row in rows]
    return to_frame(full, NAMES)


def test_a_customer_without_id_is_excluded_with_a_stable_synthetic_id() -> None:
    rows = [(None, "+4915112345678", "DE"), ("  ", "+4915112345679", "DE"), (7, "+1", "US")]
    first, again = settle([chunk(*rows)])[0], settle([chunk(*rows)])[0]
    ids = first[CUSTOMER_ID].tolist()
    assert ids[0].startswith("null-id:") and len(ids[0]) == len("null-id:") + 16
    assert ids[1].startswith("null-id:") and ids[1] != ids[0]
    assert ids == again[CUSTOMER_ID].tolist()
    assert first[OUTCOME].tolist()[:2] == [Outcome.EXCLUDED_INVALID_CUSTOMER_ID] * 2
    assert first[REASON].tolist()[:2] == [Reason.MISSING_CUSTOMER_ID] * 2
    assert (ids[2], first[OUTCOME].isna().iloc[2]) == ("7", True)


def test_null_id_rows_sharing_phone_and_country_get_ordinals_across_chunks() -> None:
    same = (None, "+4915112345678", "DE")
    chunks = settle([chunk(same, same), chunk((1, "+1", "US"), same)])
    ids = [*chunks[0][CUSTOMER_ID], *chunks[1][CUSTOMER_ID]]
    base = ids[0]
    assert [ids[1], ids[3]] == [f"{base}-2", f"{base}-3"]
    assert settle([chunk((None, "+4915112345678", "AT"))])[0][CUSTOMER_ID].iloc[0] != base


@pytest.mark.parametrize("value", ["x" * 129, "a\x00b", "\ud800", float("nan")], ids=repr)
def test_an_id_the_warehouse_cannot_key_on_is_an_invalid_customer_id(value: object) -> None:
    out = settle([chunk((value, "+4915112345678", "DE"))])[0]
    assert out[CUSTOMER_ID].iloc[0].startswith("null-id:")
    assert out[OUTCOME].iloc[0] == Outcome.EXCLUDED_INVALID_CUSTOMER_ID


def test_consent_and_normalise_leave_customers_settled_at_extract_alone() -> None:
    rows = [
        (None, "+4915112345678", "DE", None, None),  # no id, and no opt-in either
        (2, "+4915112345679", "DE", "01/02/2024", None),
        (3, "+4915112345670", "DE", OPT_IN, "yesterday"),  # an opt-out that may be real
        (4, "+4915112345671", "DE", OPT_IN, None),
    ]
    settled = settle([chunk(*rows)])[0]
    assert UNREADABLE_CONSENT not in settled.columns
    out = normalise(apply_consent(settled, now=NOW), default_region="DE")
    assert out[OUTCOME].fillna("").tolist() == [
        Outcome.EXCLUDED_INVALID_CUSTOMER_ID,
        Outcome.EXCLUDED_NO_CONSENT,
        Outcome.EXCLUDED_NO_CONSENT,
        "",
    ]
    assert out[REASON].tolist()[:3] == [
        Reason.MISSING_CUSTOMER_ID,
        Reason.UNREADABLE_CONSENT_DATE,
        Reason.UNREADABLE_CONSENT_DATE,
    ]
    assert out[PHONE_E164].isna().tolist() == [True, True, True, False]


def test_one_id_on_two_rows_refuses_the_audience_even_across_chunks() -> None:
    chunks = [
        chunk((7, "+1", "US"), ("a", "+1", "US")),
        chunk((7.0, "+1", "US"), ("7", "+1", "US")),
    ]
    with pytest.raises(
        AudienceError, match=r'1 customer_id values on more than one row \(e.g. "7"\)'
    ):
        settle(chunks)


def test_the_refusal_counts_every_repeated_id_and_names_five() -> None:
    rows = [(i % 8, "+1", "US") for i in range(16)]
    with pytest.raises(
        AudienceError, match=r"8 customer_id values .*GROUP BY customer_id"
    ) as error:
        settle([chunk(*rows)])
    assert str(error.value).count('"') == 10  # five ids, quoted


def test_customers_without_id_are_not_duplicates_of_each_other() -> None:
    rows = [(None, "+4915112345678", "DE"), (None, "+4915112345678", "DE"), ("", None, None)]
    assert len(settle([chunk(*rows)])[0]) == 3
