"""`safe_error` on real driver errors (PostgreSQL, MariaDB, SQLite) raised through SQLAlchemy."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from connectors.masking import safe_error

PHONE = "+4915112345678"
PASSWORD = "hunter2-Pw"
URL = f"postgresql+psycopg://etl:{PASSWORD}@db/wh"

metadata = MetaData()
deliveries = Table(
    "masking_deliveries",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("phone_e164", String(20), primary_key=True),
    Column("callback_url", String(200)),
)


def _duplicate_insert_error(url: str) -> IntegrityError:
    engine = create_engine(url)
    try:
        metadata.create_all(engine)
        row = {"campaign_id": "camp", "phone_e164": PHONE, "callback_url": URL}
        with engine.begin() as conn:
            conn.execute(insert(deliveries), row)
        with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
            conn.execute(insert(deliveries), row)
        return caught.value
    finally:
        engine.dispose()


def test_a_duplicate_key_error_shows_neither_the_number_nor_the_password(any_db_url: str) -> None:
    error = _duplicate_insert_error(any_db_url)
    assert PHONE in str(error) and PASSWORD in str(error)  # what SQLAlchemy itself would show
    safe = safe_error(error)
    assert safe.startswith("IntegrityError")
    assert "\n" not in safe and "[SQL" not in safe and "parameters" not in safe
    assert PHONE not in safe and PHONE[1:] not in safe and PASSWORD not in safe
    assert PHONE not in safe_error(error.orig) and "DETAIL" not in safe_error(error.orig)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_failed_query_with_a_number_in_its_parameters_is_one_masked_line(
    kind: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_url" if kind == "postgresql" else "mariadb_url"))
    engine = create_engine(url)
    try:
        with pytest.raises(DBAPIError) as caught, engine.connect() as conn:
            conn.execute(
                text("SELECT CAST(:phone AS INTEGER) FROM no_such_table WHERE url = :url"),
                {"phone": PHONE, "url": URL},
            )
    finally:
        engine.dispose()
    safe = safe_error(caught.value, secrets=[URL])
    assert PHONE not in safe and PASSWORD not in safe and "\n" not in safe
    assert "no_such_table" in safe
