"""Audience definitions are checked before anything runs, with errors that say what to change;
CRM values are read one by one by their type."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from connectors.crm import (
    UNREADABLE_CONSENT,
    Audience,
    AudienceError,
    audience_statement,
    check_columns,
    check_query_text,
    check_where_text,
    id_text,
    phone_text,
    to_frame,
    utc_moment,
)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("DELETE FROM crm_contacts", "single SELECT statement, not DELETE"),
        ("SELECT 1 AS customer_id; DROP TABLE crm_contacts", "holds 2 statements"),
        ("  update x set y = 1", "not UPDATE"),
        ("WITH a AS (SELECT 1) DELETE FROM t", "not DELETE"),
        ("", "not empty"),
    ],
)
def test_anything_but_one_select_is_refused(query: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Audience(query=query)


def test_a_trailing_semicolon_with_clauses_and_quoted_semicolons_are_fine() -> None:
    Audience(query="SELECT id AS customer_id, m AS phone_raw FROM t;")
    Audience(query="SELECT id AS customer_id, m AS phone_raw FROM t WHERE note <> 'a;b'")
    Audience(query="WITH a AS (SELECT 1) SELECT id AS customer_id, m AS phone_raw FROM t")


def test_query_and_table_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Audience(query="SELECT 1", table="t", columns={"customer_id": "id", "phone_raw": "m"})


def test_table_mapping_must_name_id_and_phone() -> None:
    with pytest.raises(ValidationError, match=r"maps no phone_raw; map your table.s columns"):
        Audience(table="contacts", columns={"customer_id": "id"})


def test_missing_and_unknown_result_columns_name_the_column_and_the_fix() -> None:
    with pytest.raises(AudienceError, match='no column "phone_raw"; map your column AS phone_raw'):
        check_columns(["customer_id", "mobile"])
    with pytest.raises(AudienceError, match='"mobile" is not a frame column'):
        check_columns(["customer_id", "phone_raw", "mobile"])
    check_columns(["customer_id", "phone_raw", "country", "param_first_name"])


def test_table_audience_selects_mapped_columns_with_frame_names() -> None:
    audience = Audience(
        table="contacts",
        columns={"customer_id": "id", "phone_raw": "mobile", "param_first_name": "fname"},
        where="region = 'EU'",
    )
    sql = str(audience_statement(audience))
    assert "contacts.mobile AS phone_raw" in sql
    assert "contacts.fname AS param_first_name" in sql
    assert "region = 'EU'" in sql


# --- the guard: writes, files, other servers and sessions ---------------------------------------

REFUSED_QUERIES = [
    ("SELECT id AS customer_id, m AS phone_raw INTO OUTFILE '/tmp/x' FROM t", "INTO OUTFILE"),
    ("SELECT id AS customer_id, m AS phone_raw FROM t INTO DUMPFILE '/tmp/x'", "INTO DUMPFILE"),
    ("select id as customer_id into outfile '/tmp/x' from t", "INTO OUTFILE"),
    ("SELECT id AS customer_id INTO @v FROM t", "INTO @"),
    ("SELECT id AS customer_id INTO copied FROM t", "INTO COPIED"),
    ("WITH gone AS (DELETE FROM t RETURNING id) SELECT id FROM gone", "DELETE"),
    ("WITH n AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM n", "INSERT"),
    ("SELECT id AS customer_id FROM t FOR UPDATE", "UPDATE"),
    ("SELECT lo_export(1, '/tmp/x')", r"lo_export\(\)"),
    ("SELECT LO_IMPORT('/etc/passwd')", r"lo_import\(\)"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", r"pg_read_file\(\)"),
    ("SELECT pg_read_binary_file('/etc/passwd')", r"pg_read_binary_file\(\)"),
    ("SELECT pg_ls_dir('.')", r"pg_ls_dir\(\)"),
    ("SELECT pg_file_write('/tmp/x', 'y', false)", r"pg_file_write\(\)"),
    ("SELECT * FROM dblink('host=elsewhere', 'SELECT 1') AS t(a int)", r"dblink\(\)"),
    ("SELECT pg_terminate_backend(42)", r"pg_terminate_backend\(\)"),
    ("SELECT set_config('role', 'admin', false)", r"set_config\(\)"),
    ("SELECT pg_advisory_lock(1)", r"pg_advisory_lock\(\)"),
    ("SELECT query_to_xml('SELECT 1', true, true, '')", r"query_to_xml\(\)"),
    ("SELECT load_file('/etc/passwd')", r"load_file\(\)"),
    ("SELECT get_lock('x', 10)", r"get_lock\(\)"),
    ("SELECT load_extension('/tmp/evil.so')", r"load_extension\(\)"),
    ("SELECT \"lo_export\"(1, '/tmp/x')", r"lo_export\(\)"),
    ("SELECT `load_file`('/etc/passwd')", r"load_file\(\)"),
    ("SELECT lo_export /* spaced */ (1, '/tmp/x')", r"lo_export\(\)"),
    # MySQL runs the content of /*! ... */ comments
    ("SELECT id AS customer_id FROM t /*! INTO OUTFILE '/tmp/x' */", "executable comment"),
    # PostgreSQL reads '\' as a whole string: the call after it runs there
    ("SELECT '\\' , lo_export(1, '/tmp/x') --'", r"lo_export\(\)"),
    ("SELECT U&\"lo\\005fexport\"(1, '/tmp/x')", "Unicode-escaped"),
    ("COPY (SELECT 1) TO PROGRAM 'rm -rf /'", "not UNKNOWN"),
]
ALLOWED_QUERIES = [
    "SELECT 'into outfile' AS param_note, id AS customer_id, m AS phone_raw FROM t",
    "SELECT id AS customer_id, m AS phone_raw FROM t -- INTO OUTFILE '/tmp/x'",
    "SELECT id AS customer_id, m AS phone_raw FROM t /* lo_export(1, '/tmp/x') */",
    "SELECT id AS customer_id, m AS phone_raw FROM t WHERE note = 'pg_read_file(x)'",
    'SELECT id AS customer_id, m AS phone_raw, "into" AS param_x FROM t',
    "SELECT id AS customer_id, lo_export_done AS phone_raw FROM t",
    "SELECT id AS customer_id, replace(m, '-', '') AS phone_raw FROM t WHERE pg_sleep(0) IS NULL",
    "SELECT id AS customer_id, m AS phone_raw FROM t WHERE updated_at > now() - interval '1 day'",
    "SELECT $$ lo_export( $$ AS param_note, id AS customer_id, m AS phone_raw FROM t",
]


@pytest.mark.parametrize(("query", "message"), REFUSED_QUERIES)
def test_a_query_that_writes_or_reaches_beyond_the_crm_is_refused(query: str, message: str) -> None:
    with pytest.raises(AudienceError, match=message):
        check_query_text(query)
    with pytest.raises(ValidationError, match=message):
        Audience(query=query)


@pytest.mark.parametrize("query", ALLOWED_QUERIES)
def test_refused_words_in_strings_comments_and_names_are_fine(query: str) -> None:
    check_query_text(query)


REFUSED_WHERES = [
    ("1=1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
    ("1=1 into dumpfile '/tmp/x'", "INTO DUMPFILE"),
    ("1=1; DROP TABLE contacts", "';'"),
    ("1=1 UNION SELECT id, password FROM admins", '"UNION" outside an expression'),
    ("x = 1) UNION (SELECT 1", '"\\)" outside an expression'),
    ("(x = 1", "unbalanced parentheses"),
    ("1=1 ORDER BY id", '"ORDER BY" outside'),
    ("1=1 LIMIT 1", '"LIMIT" outside'),
    ("lo_export(1, '/tmp/x') = 1", r"lo_export\(\)"),
    ("1=1 FOR UPDATE", "UPDATE"),
    ("1=1 /*! INTO OUTFILE '/tmp/x' */", "executable comment"),
]
ALLOWED_WHERES = [
    "region = 'EU'",
    "note = 'a;b' AND note <> 'union select 1 into outfile'",
    "a IS DISTINCT FROM b",
    "extract(year FROM created) = 2024",
    "id IN (SELECT id FROM vip ORDER BY id LIMIT 5)",
    "region = 'EU' -- only Europe",
]


@pytest.mark.parametrize(("where", "message"), REFUSED_WHERES)
def test_a_where_that_is_not_one_read_only_expression_is_refused(where: str, message: str) -> None:
    with pytest.raises(AudienceError, match=message):
        check_where_text(where)
    with pytest.raises(ValidationError, match=message):
        Audience(table="t", columns={"customer_id": "id", "phone_raw": "m"}, where=where)


@pytest.mark.parametrize("where", ALLOWED_WHERES)
def test_a_where_expression_with_subqueries_strings_and_comments_is_fine(where: str) -> None:
    audience = Audience(table="t", columns={"customer_id": "id", "phone_raw": "m"}, where=where)
    # In parentheses, and a trailing comment ends before the closing one.
    assert f"({where}\n)" in str(audience_statement(audience))


def test_an_audience_built_without_validation_is_checked_when_its_sql_is_made() -> None:
    query = Audience.model_construct(query="SELECT 1 INTO OUTFILE '/tmp/x'")
    with pytest.raises(AudienceError, match="INTO OUTFILE"):
        audience_statement(query)
    where = Audience.model_construct(
        table="t", columns={"customer_id": "id", "phone_raw": "m"}, where="1=1; DROP TABLE t"
    )
    with pytest.raises(AudienceError, match="';'"):
        audience_statement(where)


# --- result columns ------------------------------------------------------------------------------


def test_a_template_parameter_the_query_does_not_return_is_refused_naming_it() -> None:
    names = ["customer_id", "phone_raw", "param_last_name"]
    with pytest.raises(
        AudienceError,
        match=re.escape(
            'template parameter "first_name" is not returned by the audience: map a column '
            "as param_first_name"
        ),
    ):
        check_columns(names, ["param_last_name", "param_first_name"])
    check_columns(names, ["param_last_name"])


def test_a_column_returned_twice_is_refused() -> None:
    with pytest.raises(AudienceError, match='"phone_raw" twice'):
        check_columns(["customer_id", "phone_raw", "phone_raw"])


# --- values, one by one --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        43664123456,
        np.int64(43664123456),
        Decimal("43664123456"),
        Decimal("43664123456.00"),
        Decimal("4.3664123456E+10"),
        43664123456.0,
    ],
    ids=repr,
)
def test_a_numeric_phone_reads_as_its_exact_digits(value: object) -> None:
    assert phone_text(value) == "43664123456"


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        12345678901.5,
        float("nan"),
        float("inf"),
        -float("inf"),
        float(2**53 + 2),
        Decimal("1.5"),
        Decimal("12345678901.5"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1E+100"),
        -43664123456,
        10**60,
        True,
        False,
        datetime(2024, 1, 1),
        ["+4915112345678"],
        b"\xff\xfe",
        "\ud800",
    ],
    ids=repr,
)
def test_a_phone_value_that_is_no_exact_whole_number_is_never_guessed(value: object) -> None:
    text_ = phone_text(value)
    assert text_ is not None and not any(ch.isdigit() for ch in text_)


def test_a_single_precision_float_is_trusted_only_where_it_holds_every_integer() -> None:
    assert phone_text(43664120000.0, float_limit=2**24).startswith("<")  # type: ignore[union-attr]
    assert phone_text(16777216.0, float_limit=2**24) == "16777216"


def test_phone_text_and_bytes_are_kept_as_stored() -> None:
    assert phone_text(" +49 151 12345678 ") == " +49 151 12345678 "
    assert phone_text(b"+4915112345678") == "+4915112345678"
    assert phone_text(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, "7"),
        (7.0, "7"),
        (Decimal("7.00"), "7"),
        ("7", "7"),
        (" 7 ", "7"),
        (2**62, "4611686018427387904"),
        (2**62 + 1, "4611686018427387905"),
        (Decimal("4611686018427387905"), "4611686018427387905"),
        ("4611686018427387905", "4611686018427387905"),
        (-12, "-12"),
        (Decimal("7.5"), "7.5"),
        (True, "1"),
        (UUID("3f2b8c1e-0000-4000-8000-000000000001"), "3f2b8c1e-0000-4000-8000-000000000001"),
        (" Kunde  7 ", "Kunde  7"),
        (b"\x00\x01\xff", "0001ff"),
        (None, None),
        ("", None),
        ("  \t ", None),
        (float("nan"), None),
        (Decimal("NaN"), None),
        (Decimal("-Infinity"), None),
        ("\ud800", None),
    ],
    ids=repr,
)
def test_a_customer_id_is_text_of_its_own_value(value: object, expected: str | None) -> None:
    assert id_text(value) == expected


def test_ids_and_phones_do_not_depend_on_the_other_rows_of_the_chunk() -> None:
    names = ["customer_id", "phone_raw", "param_order"]
    frame = to_frame(
        [(7, 16315551234, 12), (None, None, None), (2**62, 4915112345678, 3), (2**62 + 1, 1, 4)],
        names,
    )
    assert frame["customer_id"].tolist()[::2] == ["7", str(2**62)]
    assert frame["customer_id"].iloc[3] == str(2**62 + 1)
    assert pd.isna(frame["customer_id"].iloc[1])
    assert frame["phone_raw"].tolist()[::2] == ["16315551234", "4915112345678"]
    assert frame["param_order"].tolist()[::2] == ["12", "3"]
    assert frame["customer_id"].dtype == "str"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 5)),
        (
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 1, 2, 1, 4, 5),
        ),
        (date(2026, 1, 2), datetime(2026, 1, 2)),
        ("2026-01-02 03:04:05+02:00", datetime(2026, 1, 2, 1, 4, 5)),
        (" 2026-01-02T03:04:05Z ", datetime(2026, 1, 2, 3, 4, 5)),
        ("2026-01-02", datetime(2026, 1, 2)),
        (datetime(9999, 12, 31, 23, 59, 59), datetime(9999, 12, 31, 23, 59, 59)),
        (None, None),
    ],
    ids=repr,
)
def test_consent_moments_are_read_as_utc(value: object, expected: datetime | None) -> None:
    assert utc_moment(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "01/02/2024",
        "yesterday",
        1706745600,
        1706745600.0,
        1706745600000,
        "1706745600",
        "0000-00-00",
        "0000-00-00 00:00:00",
        "infinity",
        "-infinity",
        "20000-01-01 00:00:00",
        "0044-01-01 00:00:00+00 BC",
        "2024-01-02" + "x" * 100_000,
        "2024-01-02\x00",
        "\ud800",
        True,
        b"2024-01-02",
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_anything_else_is_an_unreadable_moment(value: object) -> None:
    with pytest.raises(ValueError):
        utc_moment(value)


def test_an_unreadable_consent_date_is_flagged_and_the_column_stays_utc() -> None:
    names = ["customer_id", "phone_raw", "opt_in_at", "opt_out_at"]
    rows = [
        ("1", "+1", "2026-01-02T03:04:05+02:00", None),
        ("2", "+1", "01/02/2024", None),
        ("3", "+1", datetime(2025, 1, 1), "yesterday"),
        ("4", "+1", datetime(9999, 12, 31), None),
    ]
    frame = to_frame(rows, names)
    assert str(frame["opt_in_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["opt_out_at"].dtype) == "datetime64[us, UTC]"
    assert frame[UNREADABLE_CONSENT].tolist() == [False, True, True, False]
    assert frame["opt_in_at"].isna().tolist() == [False, True, False, False]
    assert frame["opt_in_at"].iloc[3].year == 9999
