"""Masks for URLs, phone numbers, free text and errors: pure functions, no I/O."""

from __future__ import annotations

import pymysql
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from connectors.masking import (
    MAX_ERROR_CHARS,
    MaskedError,
    mask_phone,
    mask_phones_in,
    mask_text,
    mask_url,
    safe_error,
    sanitised,
)
from connectors.settings import mask_url as settings_mask_url

# URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://etl:secret@db/wh", "postgresql+psycopg://etl:***@db/wh"),
        ("https://user:secret@host/", "https://user:***@host/"),
        ("https://host/v1?key=abc&page=2", "https://host/v1?key=***&page=2"),
        ("mysql+pymysql://root:s3cr%40t@db:3306/crm", "mysql+pymysql://root:***@db:3306/crm"),
        (
            "https://user:secret@host/path?api_key=abc&token=xyz&password=p&page=2",
            "https://user:***@host/path?api_key=***&token=***&password=***&page=2",
        ),
        ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),
        ("postgresql://u:pa/ss?#x@host/db", "postgresql://u:***@host/db"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        (
            "postgresql://db/wh?sslpassword=x&sslmode=require",
            "postgresql://db/wh?sslpassword=***&sslmode=require",
        ),
        (
            "https://h/cb?Access_Token=a&API-KEY=b&client_secret=c",
            "https://h/cb?Access_Token=***&API-KEY=***&client_secret=***",
        ),
        ("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1"),
        (
            "https://api.example.com:443/v1/users/a@b.com",
            "https://api.example.com:443/v1/users/a@b.com",
        ),
        ("https://user@host/x", "https://user@host/x"),
        ("sqlite:////tmp/wh.sqlite", "sqlite:////tmp/wh.sqlite"),
        ("sqlite://", "sqlite://"),
        ("postgresql:/etl:hunter2@db/wh", "postgresql:***@db/wh"),
        ("etl:hunter2@db/wh", "etl:***@db/wh"),
        ("postgresql+psycopg://:0000@?@a/db", "postgresql+psycopg://:***@a/db"),
        ("host=db user=etl password=hunter2 dbname=wh", "host=db user=etl password=*** dbname=wh"),
        ("", ""),
    ],
)
def test_urls_lose_passwords_and_secret_parameters(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_settings_still_exports_mask_url() -> None:
    assert settings_mask_url is mask_url


@given(
    user=st.text(alphabet=st.characters(blacklist_characters=":/@?#"), max_size=8),
    password=st.text(min_size=6, max_size=20).filter(lambda p: p.strip() and "***" not in p),
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    scheme=st.sampled_from(["postgresql+psycopg", "mysql+pymysql", "oracle", "mssql+pyodbc"]),
)
def test_a_database_url_never_shows_its_password(
    user: str, password: str, host: str, scheme: str
) -> None:
    masked = mask_url(f"{scheme}://{user}:{password}@{host}/db")
    assert masked == f"{scheme}://{user}:***@{host}/db"


@given(st.text(max_size=200))
def test_mask_url_never_raises(text: str) -> None:
    assert isinstance(mask_url(text), str)
    assert isinstance(mask_text(text, [text[:5]]), str)


# Phone numbers --------------------------------------------------------------------------------


def test_phone_mask_keeps_the_first_five_and_last_two_characters() -> None:
    assert mask_phone("+491712345689") == "+4917******89"
    assert mask_phone("4915112345678") == "49151******78"
    assert mask_phone("+123456") == "*******"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "Key (phone_e164)=(+4915112345678) already exists.",
            "Key (phone_e164)=(+4915*******78) already exists.",
        ),
        (
            "Duplicate entry '+4915112345678-camp' for key 'PRIMARY'",
            "Duplicate entry '+4915*******78-camp' for key 'PRIMARY'",
        ),
        ("wa_id 4915112345678 failed", "wa_id 49151******78 failed"),
        ("call +49 151 1234 5678 now", "call +49 15* **** **78 now"),
        ("1234567", "*******"),
        (
            "order 123456, port 5432, at 2026-11-01 09:00:00",
            "order 123456, port 5432, at 2026-11-01 09:00:00",
        ),
    ],
)
def test_numbers_in_text_are_masked_like_phones(text: str, masked: str) -> None:
    assert mask_phones_in(text) == masked


# Free text ------------------------------------------------------------------------------------


def test_text_loses_url_passwords_secrets_and_numbers() -> None:
    text = (
        "could not reach postgresql+psycopg://etl:pa'ss\"w@rd@db/wh (token=abc123) for "
        "+4915112345678 with {\"password\": \"hunter2\", 'api_key': 'k-9'} and key s3cr3t-value"
    )
    masked = mask_text(text, secrets=["s3cr3t-value", ""])
    for secret in ("pa'ss\"w@rd", "abc123", "4915112345678", "hunter2", "k-9", "s3cr3t-value"):
        assert secret not in masked
    assert "postgresql+psycopg://etl:***@db/wh" in masked
    assert "+4915*******78" in masked


def test_a_url_secret_also_hides_its_password_alone_and_encoded() -> None:
    url = "postgresql://etl:p%40ss@db/wh"
    masked = mask_text("auth failed for p@ss, p%40ss and p@ss again", secrets=[url])
    assert masked == "auth failed for ***, *** and *** again"


# Errors ---------------------------------------------------------------------------------------

INSERT = "INSERT INTO wa_deliveries (campaign_id, phone_e164, url) VALUES (%s, %s, %s)"
PARAMS = ("camp", "+4915112345678", "https://u:hunter2@h/x")


def test_a_mysql_integrity_error_keeps_its_code_and_loses_the_values() -> None:
    orig = pymysql.err.IntegrityError(
        1062, "Duplicate entry '+4915112345678-camp' for key 'PRIMARY'"
    )
    error = sa_exc.IntegrityError(INSERT, PARAMS, orig)
    assert safe_error(error) == "IntegrityError: 1062 Duplicate entry '***' for key 'PRIMARY'"


def test_a_driver_error_without_sqlalchemy_is_reduced_too() -> None:
    import psycopg

    orig = psycopg.errors.UniqueViolation(
        'duplicate key value violates unique constraint "pk"\n'
        "DETAIL:  Key (phone_e164)=(+4915112345678) already exists."
    )
    assert safe_error(orig) == (
        'UniqueViolation: duplicate key value violates unique constraint "pk"'
    )
    wrapped = sa_exc.IntegrityError(INSERT, PARAMS, orig)
    assert safe_error(wrapped) == (
        'IntegrityError (UniqueViolation): duplicate key value violates unique constraint "pk"'
    )


def test_a_statement_error_loses_sql_and_parameters() -> None:
    error = sa_exc.StatementError("bad value +4915112345678", INSERT, PARAMS, TypeError("x"))
    text = safe_error(error)
    assert text == "StatementError (TypeError): x"


def test_other_errors_are_one_masked_capped_line() -> None:
    error = ValueError("cannot reach https://u:hunter2@api/x\nfor +4915112345678 " + "y" * 1000)
    text = safe_error(error, secrets=["nothing-here"])
    assert text.startswith("ValueError: cannot reach https://u:***@api/x for +4915*******78 y")
    assert "\n" not in text and len(text) == MAX_ERROR_CHARS
    assert safe_error(KeyError()) == "KeyError"


def test_an_error_whose_str_fails_is_still_named() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert safe_error(Broken()) == "Broken"


def test_sanitised_errors_carry_only_the_safe_text() -> None:
    error = sanitised(RuntimeError("postgresql://etl:hunter2@db/x"), secrets=[])
    assert isinstance(error, MaskedError)
    assert str(error) == "RuntimeError: postgresql://etl:***@db/x"
    assert error.__cause__ is None and error.__context__ is None


def test_errors_leaving_a_guarded_function_carry_no_secret_of_its_arguments() -> None:
    from pydantic import SecretStr
    from sqlalchemy.exc import IntegrityError

    from connectors.masking import MaskedError, masked_errors

    url = SecretStr("postgresql+psycopg://etl:hunter2@db/wh")

    @masked_errors
    def database(url: SecretStr) -> None:
        raise IntegrityError("INSERT ...", {"phone": "+4915112345678"}, Exception("dup"))

    @masked_errors
    def foreign(url: SecretStr) -> None:
        raise OSError(f"cannot open {url.get_secret_value()} for +4915112345678")

    class OwnError(RuntimeError):
        """Stands for an error of the project's own packages."""

    OwnError.__module__ = "connectors.example"

    @masked_errors
    def own(url: SecretStr) -> None:
        raise OwnError(f"campaign promo-20261129 at {url.get_secret_value()}")

    for function in (database, foreign):
        with pytest.raises(MaskedError) as caught:
            function(url)
        assert "hunter2" not in str(caught.value) and "12345678" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(OwnError, match=r"^campaign promo-20261129 at \*\*\*$"):
        own(url)

    @masked_errors
    def harmless() -> None:
        raise KeyError("param_first_name")

    with pytest.raises(KeyError):
        harmless()
