"""Extract from real CRMs: chunks, types, and query checks, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from connectors.crm import Audience, AudienceError, crm_engine, read_audience
from connectors.demo import DEMO_AUDIENCE_QUERY, demo_customers, seed_demo_crm
from connectors.vocabulary import CUSTOMER_ID, OUTCOME, PHONE_E164, REASON
from tasks.consent import apply_consent
from tasks.extract import extract
from tasks.phones.normalise import normalise

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _seed(url: str, n: int) -> None:
    engine = create_engine(url)
    seed_demo_crm(engine, demo_customers(n, seed=5))
    engine.dispose()


def _run(url: str, *statements: str, rows: list[dict[str, Any]] | None = None) -> None:
    """Run DDL, then the last statement once per row (bound parameters)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements[:-1]:
            conn.exec_driver_sql(statement)
        conn.execute(text(statements[-1]), rows or [{}])
    engine.dispose()


def _by_id(frame: pd.DataFrame, *columns: str) -> dict[str, tuple[object, ...]]:
    """Columns per customer id, missing values as None."""
    values = frame[[CUSTOMER_ID, *columns]].astype(object).where(frame.notna(), None)
    return {row[0]: tuple(row[1:]) for row in values.itertuples(index=False)}


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


# --- numbers in numeric columns ------------------------------------------------------------------

PHONES = {  # customer id: (country, number as digits, E.164)
    1: ("AT", 43664123456, "+43664123456"),
    2: ("DE", 4915112345678, "+4915112345678"),
    3: ("US", 16315551234, "+16315551234"),
    4: (None, 12015550123, "+12015550123"),  # the default region
    5: ("GB", 447400123456, "+447400123456"),
    6: ("FR", 33612345678, "+33612345678"),
    7: ("IT", 393123456789, "+393123456789"),
    8: ("ES", 34612345678, "+34612345678"),
    9: ("NL", 31612345678, "+31612345678"),
    10: ("BR", 5511961234543, "+5511961234543"),
    11: ("IN", 919876543210, "+919876543210"),
    12: ("AU", 61412345678, "+61412345678"),
    13: ("JP", 819012345678, "+819012345678"),
    14: ("ZA", 27821234567, "+27821234567"),
}
NUMERIC = ("dbl", "dec0", "dec2", "big")


def test_numeric_phone_columns_come_out_as_their_exact_e164(any_db_url: str) -> None:
    rows = [
        {"id": i, "cc": cc, "dbl": n, "dec0": n, "dec2": n, "big": n}
        for i, (cc, n, _) in PHONES.items()
    ]
    # Not whole numbers, beside NULLs that turn a pandas integer column float.
    rows.append(
        {"id": 98, "cc": "DE", "dbl": 1.5, "dec0": None, "dec2": 12345678901.5, "big": None}
    )
    rows.append(
        {"id": 99, "cc": "DE", "dbl": 12345678901.5, "dec0": None, "dec2": 1.5, "big": None}
    )
    _run(
        any_db_url,
        "CREATE TABLE nums (id INTEGER, cc VARCHAR(2), dbl DOUBLE PRECISION, dec0 DECIMAL(20,0), "
        "dec2 DECIMAL(20,2), big BIGINT)",
        "INSERT INTO nums VALUES (:id, :cc, :dbl, :dec0, :dec2, :big)",
        rows=rows,
    )
    expected = {str(i): (e164, None) for i, (_, _, e164) in PHONES.items()}
    for name in NUMERIC:
        query = f"SELECT id AS customer_id, {name} AS phone_raw, cc AS country FROM nums"
        chunk = extract(any_db_url, Audience(query=query), chunk_size=100)[0]
        got = _by_id(normalise(chunk, default_region="US"), PHONE_E164, REASON)
        assert {k: v for k, v in got.items() if k not in ("98", "99")} == expected, name
        # 1.5 and 12345678901.5 in the float and DECIMAL(20,2) columns, NULL in the others
        odd = (None, "not_a_number") if name in ("dbl", "dec2") else (None, "empty")
        assert (got["98"], got["99"]) == (odd, odd), name


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest) -> str:
    """An empty PostgreSQL or MariaDB database (the dialects with single-precision floats)."""
    fixture = {"postgresql": "postgres_url", "mariadb": "mariadb_url"}[request.param]
    return str(request.getfixturevalue(fixture))


def test_single_precision_float_phone_columns_never_pass_rounded_digits(server_url: str) -> None:
    single = "REAL" if make_url(server_url).get_backend_name() == "postgresql" else "FLOAT"
    _run(
        server_url,
        f"CREATE TABLE f (id INTEGER, phone {single})",
        "INSERT INTO f VALUES (:id, :phone)",
        rows=[{"id": 1, "phone": 43664123456}, {"id": 2, "phone": 4915112345678}],
    )
    query = "SELECT id AS customer_id, phone AS phone_raw FROM f"
    frame = normalise(extract(server_url, Audience(query=query), 10)[0], default_region="AT")
    assert frame[PHONE_E164].isna().all()
    assert frame[REASON].tolist() == ["not_a_number", "not_a_number"]


# --- customer ids --------------------------------------------------------------------------------


def test_customer_ids_are_their_own_text_whatever_the_rest_of_the_chunk(any_db_url: str) -> None:
    big = 2**62
    _run(
        any_db_url,
        "CREATE TABLE ids (id BIGINT, dec30 DECIMAL(30,0), txt VARCHAR(40), phone VARCHAR(20))",
        "INSERT INTO ids VALUES (:id, :dec30, :txt, :phone)",
        rows=[
            {"id": 7, "dec30": 7, "txt": " 42 ", "phone": "+4915112345670"},
            {"id": None, "dec30": None, "txt": "  ", "phone": "+4915112345671"},
            {"id": big, "dec30": big, "txt": str(big), "phone": "+4915112345672"},
            {"id": big + 1, "dec30": big + 1, "txt": str(big + 1), "phone": "+4915112345673"},
        ],
    )
    for column, first in (("id", "7"), ("dec30", "7"), ("txt", "42")):
        query = f"SELECT {column} AS customer_id, phone AS phone_raw FROM ids ORDER BY phone"
        frame = extract(any_db_url, Audience(query=query), chunk_size=10)[0]
        ids = frame[CUSTOMER_ID].tolist()
        assert [ids[0], *ids[2:]] == [first, str(big), str(big + 1)], column
        assert ids[1].startswith("null-id:"), column
        assert frame[OUTCOME].fillna("").tolist()[:2] == ["", "excluded_invalid_customer_id"]
        assert frame[REASON].iloc[1] == "missing_customer_id"


def test_a_customer_id_on_two_rows_in_different_chunks_refuses_the_audience(
    any_db_url: str,
) -> None:
    _run(
        any_db_url,
        "CREATE TABLE d (id INTEGER, phone VARCHAR(20))",
        "INSERT INTO d VALUES (:id, '+4915112345678')",
        rows=[{"id": i} for i in (1, 2, 3, 4, 5, 3)],
    )
    query = "SELECT id AS customer_id, phone AS phone_raw FROM d"
    with pytest.raises(AudienceError, match=r'1 customer_id values .*\(e.g. "3"\); make customer'):
        extract(any_db_url, Audience(query=query), chunk_size=2)


# --- consent dates -------------------------------------------------------------------------------


def test_unreadable_consent_dates_exclude_only_their_customer(any_db_url: str) -> None:
    stored = {  # id: (opt-in text, opt-out epoch, expected reason)
        1: ("2026-01-02T03:04:05+02:00", None, None),
        2: ("01/02/2024", None, "unreadable_consent_date"),
        3: ("yesterday", None, "unreadable_consent_date"),
        4: ("1706745600", None, "unreadable_consent_date"),
        5: ("0000-00-00 00:00:00", None, "unreadable_consent_date"),
        6: ("infinity", None, "unreadable_consent_date"),
        7: ("x" * 1000, None, "unreadable_consent_date"),
        8: ("2025-01-01 00:00:00", 1706745600, "unreadable_consent_date"),
        9: ("9999-12-31 00:00:00", None, "opt_in_in_future"),
    }
    _run(
        any_db_url,
        "CREATE TABLE c (id INTEGER, phone VARCHAR(20), optin VARCHAR(1000), optout BIGINT)",
        "INSERT INTO c VALUES (:id, :phone, :optin, :optout)",
        rows=[
            {"id": i, "phone": f"+49151123456{i:02d}", "optin": optin, "optout": optout}
            for i, (optin, optout, _) in stored.items()
        ],
    )
    query = (
        "SELECT id AS customer_id, phone AS phone_raw, optin AS opt_in_at, optout AS opt_out_at "
        "FROM c"
    )
    frame = pd.concat(extract(any_db_url, Audience(query=query), chunk_size=4))
    assert str(frame["opt_in_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["opt_out_at"].dtype) == "datetime64[us, UTC]"
    got = _by_id(apply_consent(frame, now=NOW), REASON)
    assert got == {str(i): (reason,) for i, (_, _, reason) in stored.items()}


def test_mariadb_zero_dates_are_unreadable_consent_dates(mariadb_url: str) -> None:
    _run(
        mariadb_url,
        "SET SESSION sql_mode = ''",
        "CREATE TABLE z (id INTEGER, phone VARCHAR(20), dt DATETIME, d DATE, ts TIMESTAMP NULL)",
        "INSERT INTO z VALUES (:id, :phone, :dt, :d, :ts)",
        rows=[
            {
                "id": 1,
                "phone": "+4915112345671",
                "dt": "0000-00-00 00:00:00",
                "d": None,
                "ts": None,
            },
            {"id": 2, "phone": "+4915112345672", "dt": "2025-01-01", "d": "0000-00-00", "ts": None},
            {"id": 3, "phone": "+4915112345673", "dt": "2025-01-01", "d": None, "ts": "0000-00-00"},
            {
                "id": 4,
                "phone": "+4915112345674",
                "dt": "9999-12-31 23:59:59",
                "d": None,
                "ts": None,
            },
            {"id": 5, "phone": "+4915112345675", "dt": "2025-01-01", "d": None, "ts": None},
        ],
    )
    dates = "SELECT id AS customer_id, phone AS phone_raw, dt AS opt_in_at, d AS opt_out_at FROM z"
    stamps = (
        "SELECT id AS customer_id, phone AS phone_raw, dt AS opt_in_at, ts AS opt_out_at FROM z"
    )
    for query, unreadable in ((dates, ["1", "2"]), (stamps, ["1", "3"])):
        frame = apply_consent(extract(mariadb_url, Audience(query=query), 10)[0], now=NOW)
        got = _by_id(frame, REASON)
        assert [k for k, (r,) in got.items() if r == "unreadable_consent_date"] == unreadable
        assert (got["4"], got["5"]) == (("opt_in_in_future",), (None,))


def test_postgres_infinite_and_out_of_range_dates_do_not_abort_the_extract(
    postgres_url: str,
) -> None:
    _run(
        postgres_url,
        "CREATE TABLE p (id INTEGER, phone TEXT, tz TIMESTAMPTZ, ts TIMESTAMP, d DATE)",
        "INSERT INTO p VALUES (:id, :phone, CAST(:tz AS TIMESTAMPTZ), CAST(:ts AS TIMESTAMP), "
        "CAST(:d AS DATE))",
        rows=[
            {"id": i, "phone": f"+49151123456{i:02d}", "tz": tz, "ts": ts, "d": d}
            for i, (tz, ts, d) in enumerate(
                [
                    ("infinity", None, "infinity"),
                    ("-infinity", None, "-infinity"),
                    ("2025-01-01 00:00:00+00", "20000-01-01 00:00:00", "2024-01-01"),
                    ("0044-01-01 00:00:00+00 BC", None, None),
                    ("9999-12-31 23:59:59-05", None, None),  # year 10000 in UTC
                    ("9999-12-31 00:00:00+00", None, None),
                    ("2025-01-01 00:00:00+00", None, "2025-06-01"),
                ],
                start=1,
            )
        ],
    )
    times = "SELECT id AS customer_id, phone AS phone_raw, tz AS opt_in_at, ts AS opt_out_at FROM p"
    frame = pd.concat(extract(postgres_url, Audience(query=times), chunk_size=3))
    got = _by_id(apply_consent(frame, now=NOW), REASON)
    unreadable = ("unreadable_consent_date",)
    assert [got[str(i)] for i in range(1, 6)] == [unreadable] * 5
    assert (got["6"], got["7"]) == (("opt_in_in_future",), (None,))
    days = "SELECT id AS customer_id, phone AS phone_raw, d AS opt_in_at FROM p"
    frame = pd.concat(extract(postgres_url, Audience(query=days), chunk_size=3))
    got = _by_id(apply_consent(frame, now=NOW), REASON)
    assert [got[str(i)] for i in (1, 2, 3, 7)] == [unreadable, unreadable, (None,), (None,)]


# --- template parameters and the guard -----------------------------------------------------------


def test_a_template_param_the_query_does_not_return_is_refused_before_any_row(
    any_db_url: str,
) -> None:
    _seed(any_db_url, 5)
    with pytest.raises(AudienceError, match='parameter "city" is not returned by the audience'):
        extract(
            any_db_url,
            Audience(query=DEMO_AUDIENCE_QUERY),
            100,
            required_params=["param_first_name", "param_city"],
        )
    frame = extract(
        any_db_url, Audience(query=DEMO_AUDIENCE_QUERY), 100, required_params=["param_first_name"]
    )[0]
    assert len(frame) == 5


def _refused_before_it_runs(url: str, audience: Audience, message: str, marker: str) -> None:
    """The audience is refused and no statement holding `marker` reaches the database."""
    sent: list[str] = []
    engine = crm_engine(url)
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with pytest.raises(AudienceError, match=message):
        list(read_audience(engine, audience, 10))
    engine.dispose()
    assert not [s for s in sent if marker.lower() in s.lower()]


def test_into_outfile_is_refused_before_it_reaches_mariadb(mariadb_url: str) -> None:
    _seed(mariadb_url, 3)
    query = f"{DEMO_AUDIENCE_QUERY} INTO OUTFILE '/tmp/wa-audience-leak'"
    with pytest.raises(ValidationError, match="INTO OUTFILE"):
        Audience(query=query)
    _refused_before_it_runs(
        mariadb_url, Audience.model_construct(query=query), "INTO OUTFILE", "OUTFILE"
    )
    columns = {"customer_id": "id", "phone_raw": "mobile"}
    where = "1=1 INTO OUTFILE '/tmp/wa-audience-leak'"
    with pytest.raises(ValidationError, match="INTO OUTFILE"):
        Audience(table="crm_contacts", columns=columns, where=where)
    table_audience = Audience.model_construct(table="crm_contacts", columns=columns, where=where)
    _refused_before_it_runs(mariadb_url, table_audience, "INTO OUTFILE", "OUTFILE")


def test_lo_export_is_refused_before_it_reaches_postgres(postgres_url: str) -> None:
    _seed(postgres_url, 3)
    query = (
        "SELECT id AS customer_id, mobile AS phone_raw, lo_export(1, '/tmp/wa-audience-leak') "
        "AS param_x FROM crm_contacts"
    )
    with pytest.raises(ValidationError, match=r"lo_export\(\)"):
        Audience(query=query)
    _refused_before_it_runs(
        postgres_url, Audience.model_construct(query=query), r"lo_export\(\)", "lo_export"
    )
