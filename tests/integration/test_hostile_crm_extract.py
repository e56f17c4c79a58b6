"""A real CRM table full of hostile values extracts, and every customer gets its outcome.

SQLite, PostgreSQL and MariaDB, each with the values it can store (PostgreSQL text holds no NUL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.crm import Audience
from connectors.vocabulary import CUSTOMER_ID, OUTCOME, PHONE_E164, REASON
from tasks.consent import apply_consent
from tasks.extract import extract
from tasks.phones.normalise import normalise

NOW: Final = datetime(2026, 6, 1, tzinfo=UTC)
BIG: Final = 60_000  # below MariaDB's TEXT limit of 65,535 bytes
OK: Final = "2025-01-01 00:00:00"
IN: Final = (None, None)
NOT_A_NUMBER: Final = ("excluded_invalid_number", "not_a_number")
UNREADABLE: Final = ("excluded_no_consent", "unreadable_consent_date")
NO_ID: Final = ("excluded_invalid_customer_id", "missing_customer_id")
# id, phone text, phone as a double, opt-in text, parameter; outcome of the text and the double
ROWS: Final = [
    ("h01", "4.3664123456E10", 4915112345678, OK, "Asha", NOT_A_NUMBER, IN),
    ("h02", "\U0001f4f1 0151 12345678", 1.5, OK, "Asha", NOT_A_NUMBER, NOT_A_NUMBER),
    ("h03", "\u200f+49 151 12345678\u200e", -4915112345678, OK, "Asha", IN, NOT_A_NUMBER),
    ("h04", "x" * BIG, 1e300, OK, "Asha", NOT_A_NUMBER, NOT_A_NUMBER),
    (
        "h05",
        "1" * BIG,
        12345678901.5,
        OK,
        "Asha",
        ("excluded_invalid_number", "too_long"),
        NOT_A_NUMBER,
    ),
    ("h06", "+4915112345678", None, "01/02/2024", "Asha", UNREADABLE, None),
    ("h07", "+4915112345678", None, "0000-00-00", "Asha", UNREADABLE, None),
    ("h08", "+4915112345678", None, "x" * BIG, "Asha", UNREADABLE, None),
    ("h09", "+4915112345678", None, "1706745600", "Asha", UNREADABLE, None),
    ("h10", "+4915112345678", None, "9999-12-31 23:59:59", "Asha", None, None),
    ("h11", "+4915112345679", None, OK, "x" * BIG, IN, None),
    ("kunde-\U0001f600", "+4915112345670", None, OK, "\u202eAsha\u202c", IN, None),
    ("  ", "+4915112345671", None, OK, "Asha", NO_ID, None),
    (None, "+4915112345672", None, OK, "Asha", NO_ID, None),
]
NUL_ROW: Final = ("h99", "+49151\x0012345673", None, OK, "A\x00sha", IN, None)
TEXT: Final = {"sqlite": "TEXT", "postgresql": "TEXT", "mysql": "MEDIUMTEXT"}


def _store(url: str) -> list[tuple[object, ...]]:
    """The hostile rows this dialect can hold, in a table `hostile`."""
    dialect = make_url(url).get_backend_name()
    rows = [*ROWS, NUL_ROW] if dialect != "postgresql" else list(ROWS)
    long = TEXT[dialect]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE hostile (n INTEGER, id VARCHAR(100), phone {long}, "
            f"dbl DOUBLE PRECISION, optin {long}, param {long})"
        )
        names = ("id", "phone", "dbl", "optin", "param")
        conn.execute(
            text("INSERT INTO hostile VALUES (:n, :id, :phone, :dbl, :optin, :param)"),
            [{"n": n, **dict(zip(names, row[:5], strict=True))} for n, row in enumerate(rows)],
        )
    engine.dispose()
    return rows


def test_a_table_of_hostile_values_extracts_and_every_customer_gets_its_outcome(
    any_db_url: str,
) -> None:
    rows = _store(any_db_url)
    query = (
        "SELECT id AS customer_id, phone AS phone_raw, optin AS opt_in_at, param AS param_name "
        "FROM hostile ORDER BY n"
    )
    chunks = extract(any_db_url, Audience(query=query), chunk_size=4)
    out = pd.concat([normalise(apply_consent(c, now=NOW), default_region="DE") for c in chunks])
    assert len(out) == len(rows) and out[CUSTOMER_ID].is_unique
    got = [
        (None if pd.isna(o) else o, None if pd.isna(r) else r)
        for o, r in zip(out[OUTCOME], out[REASON], strict=True)
    ]
    expected = [row[5] or ("excluded_no_consent", "opt_in_in_future") for row in rows]
    assert got == expected
    valid = out[PHONE_E164].dropna()
    assert valid.str.fullmatch(r"\+[1-9][0-9]{6,14}").all() and len(valid) == got.count(IN)


def test_a_hostile_double_column_never_guesses_digits(any_db_url: str) -> None:
    rows = [row for row in _store(any_db_url) if row[2] is not None]
    query = (
        "SELECT id AS customer_id, dbl AS phone_raw FROM hostile WHERE dbl IS NOT NULL ORDER BY n"
    )
    out = normalise(extract(any_db_url, Audience(query=query), 10)[0], default_region="DE")
    got = [
        (None if pd.isna(o) else o, None if pd.isna(r) else r)
        for o, r in zip(out[OUTCOME], out[REASON], strict=True)
    ]
    assert got == [row[6] for row in rows]
    assert out[PHONE_E164].dropna().tolist() == ["+4915112345678"]
