"""Audience definitions are checked before anything runs, with errors that say what to change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.crm import Audience, AudienceError, audience_statement, check_columns


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
