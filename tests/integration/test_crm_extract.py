"""Extract from real CRMs: chunks, types, and query checks, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import create_engine

from connectors.crm import Audience, AudienceError
from connectors.demo_crm import DEMO_AUDIENCE_QUERY, demo_customers, seed_demo_crm
from tasks.extract import extract


def _seed(url: str, n: int) -> None:
    engine = create_engine(url)
    seed_demo_crm(engine, demo_customers(n, seed=5))
    engine.dispose()


def test_audience_streams_in_chunks_with_text_ids_and_utc_times(any_db_url: str) -> None:
    _seed(any_db_url, 250)
    chunks = extract(any_db_url, Audience(query=DEMO_AUDIENCE_QUERY), chunk_size=100)
    assert [len(c) for c in chunks] == [100, 100, 50]
    frame = pd.concat(chunks)
    assert sorted(frame["customer_id"], key=int) == [str(i) for i in range(1, 251)]
    assert (
        str(frame["opt_in_at"].dtype).startswith("datetime64")
        and str(frame["opt_in_at"].dt.tz) == "UTC"
    )
    assert frame["outcome"].isna().all()
    customers = {str(c.id): c for c in demo_customers(250, seed=5)}
    row = frame.set_index("customer_id").loc["1"]
    expected = customers["1"]
    assert row["phone_raw"] == expected.mobile or (
        pd.isna(row["phone_raw"]) and not expected.mobile
    )
    if expected.optin is not None:
        assert row["opt_in_at"].to_pydatetime() == expected.optin.astimezone(UTC)


def test_table_audience_with_column_map_and_filter(sqlite_url: str) -> None:
    _seed(sqlite_url, 60)
    audience = Audience(
        table="crm_contacts",
        columns={"customer_id": "id", "phone_raw": "mobile", "country": "cc"},
        where="id <= 10",
    )
    frame = pd.concat(extract(sqlite_url, audience, chunk_size=1000))
    assert sorted(frame["customer_id"], key=int) == [str(i) for i in range(1, 11)]
    assert frame["opt_in_at"].isna().all()  # unmapped consent columns arrive empty


def test_query_missing_a_required_column_is_refused_before_reading(sqlite_url: str) -> None:
    _seed(sqlite_url, 5)
    with pytest.raises(AudienceError, match='no column "phone_raw"'):
        extract(sqlite_url, Audience(query="SELECT id AS customer_id FROM crm_contacts"), 100)


def test_uuid_and_integer_ids_become_text(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE c (id TEXT, n INTEGER, phone TEXT, optin TIMESTAMP)")
        conn.exec_driver_sql(
            "INSERT INTO c VALUES ('3f2b8c1e-0000-4000-8000-000000000001', 7, '+1', "
            "'2026-01-02 03:04:05+02:00')"
        )
    engine.dispose()
    query = "SELECT id AS customer_id, phone AS phone_raw, optin AS opt_in_at FROM c"
    frame = extract(sqlite_url, Audience(query=query), 10)[0]
    assert frame["customer_id"].iloc[0] == "3f2b8c1e-0000-4000-8000-000000000001"
    assert frame["opt_in_at"].iloc[0] == pd.Timestamp(datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC))
    numeric = extract(
        sqlite_url, Audience(query="SELECT n AS customer_id, phone AS phone_raw FROM c"), 10
    )
    assert numeric[0]["customer_id"].iloc[0] == "7"


def test_the_audience_connection_cannot_write(any_db_url: str) -> None:
    from sqlalchemy.exc import DBAPIError

    from connectors.crm import crm_engine, read_only

    _seed(any_db_url, 3)
    engine = crm_engine(any_db_url)
    with engine.connect() as raw:
        conn = read_only(raw)
        with pytest.raises(DBAPIError, match=r"(?i)read.only|readonly"):
            conn.exec_driver_sql("UPDATE crm_contacts SET fname = 'x'")
    engine.dispose()


def test_consent_flags_are_read_from_booleans_numbers_and_text(any_db_url: str) -> None:
    engine = create_engine(any_db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE flags (id INTEGER, phone VARCHAR(20), dns VARCHAR(5), ok INTEGER)"
        )
        conn.exec_driver_sql(
            "INSERT INTO flags VALUES (1, '+1', 'Y', 1), (2, '+1', 'no', 0), (3, '+1', NULL, NULL)"
        )
    engine.dispose()
    audience = Audience(
        table="flags",
        columns={"customer_id": "id", "phone_raw": "phone", "opt_out": "dns", "opt_in": "ok"},
    )
    frame = extract(any_db_url, audience, 10)[0].sort_values("customer_id")
    assert frame["opt_out"].tolist() == [True, False, False]
    assert frame["opt_in"].tolist() == [True, False, False]


def test_a_flag_that_is_not_yes_or_no_is_refused_naming_the_column(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE f (id INTEGER, phone TEXT, dns TEXT)")
        conn.exec_driver_sql("INSERT INTO f VALUES (1, '+1', 'maybe')")
    engine.dispose()
    query = "SELECT id AS customer_id, phone AS phone_raw, dns AS opt_out FROM f"
    with pytest.raises(AudienceError, match="\"opt_out\" holds 'maybe'"):
        extract(sqlite_url, Audience(query=query), 10)
