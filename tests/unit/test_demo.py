"""The demo CRM: a realistic mix, expectations that agree with phonenumbers and the sandbox rule."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from connectors.demo import (
    DEMO_AUDIENCE_QUERY,
    NUMBER_FORMATS,
    DemoCustomer,
    crm_contacts,
    demo_crm_url,
    demo_customers,
    expected_by_id,
    expected_funnel,
    seed_demo_crm,
)
from connectors.whatsapp.onprem.sandbox import rules

OUTCOMES = (
    "excluded_no_consent", "excluded_invalid_number", "excluded_duplicate",
    "excluded_not_on_whatsapp", "sent", "send_failed",
)  # fmt: skip
REASONS = (
    "no_opt_in", "opted_out", "empty", "not_a_number", "too_short", "too_long",
    "invalid_country_code", "invalid_for_region", "duplicate", "not_on_whatsapp",
    "missing_parameter",
)  # fmt: skip
# server: (URL variable, default URL, how to start one, DDL creating / dropping a namespace)
SERVERS = {
    "postgresql": (
        "TEST_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test"
        " postgres",
        "CREATE SCHEMA {}",
        "DROP SCHEMA {} CASCADE",
    ),
    "mariadb": (
        "TEST_MARIADB_URL",
        "mysql+pymysql://root@127.0.0.1:3306/test",
        "docker run -d -p 3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 -e MARIADB_DATABASE=test"
        " mariadb",
        "CREATE DATABASE {}",
        "DROP DATABASE {}",
    ),
}


@pytest.fixture(scope="module")
def customers() -> list[DemoCustomer]:
    return demo_customers()


def has_consent(c: DemoCustomer) -> bool:
    return c.optin is not None and (c.optout is None or c.optout < c.optin)


def test_same_seed_gives_same_customers_and_another_seed_does_not() -> None:
    assert demo_customers(300, seed=3) == demo_customers(300, seed=3)
    assert demo_customers(300, seed=3) != demo_customers(300, seed=4)


def test_ids_run_from_one_to_n(customers: list[DemoCustomer]) -> None:
    assert [c.id for c in customers] == list(range(1, 3001))
    assert set(expected_by_id(customers)) == {str(i) for i in range(1, 3001)}


def test_every_outcome_and_reason_appears(customers: list[DemoCustomer]) -> None:
    funnel = expected_funnel(customers)
    assert set(funnel) == set(OUTCOMES) and sum(funnel.values()) == len(customers)
    assert {c.expected_reason for c in customers} - {None} == set(REASONS)


def test_mix_is_roughly_as_designed(customers: list[DemoCustomer]) -> None:
    reasons = Counter(c.expected_reason for c in customers)
    assert reasons["duplicate"] == 300 and reasons["no_opt_in"] + reasons["opted_out"] == 300
    kept = [c for c in customers if c.expected_outcome in ("sent", "excluded_not_on_whatsapp")]
    assert 0.07 < reasons["not_on_whatsapp"] / len(kept) < 0.13
    assert sum(1 for c in customers if has_consent(c) and c.optout is not None) >= 30


def test_several_countries_and_every_format_appear(customers: list[DemoCustomer]) -> None:
    numbers = [phonenumbers.parse(c.expected_e164) for c in customers if c.expected_e164]
    countries = Counter(phonenumbers.region_code_for_number(number) for number in numbers)
    assert {"US", "GB", "DE", "IN", "BR", "MX", "FR", "ES", "NG", "ZA", "AE"} <= set(countries)
    assert set(NUMBER_FORMATS) <= {c.number_format for c in customers}
    mobiles = [c.mobile or "" for c in customers]
    assert any("ext." in m for m in mobiles) and any(" x" in m for m in mobiles)
    assert any("０" <= ch <= "９" for m in mobiles for ch in m)
    assert any("٠" <= ch <= "٩" for m in mobiles for ch in m)
    assert {None, ""} <= set(c.mobile for c in customers)
    assert any(c.cc and c.cc.islower() for c in customers)


def test_timestamps_are_whole_utc_seconds_before_now() -> None:
    now = datetime(2025, 6, 1, 12, 30, 15, 999, tzinfo=UTC)
    stamps = [t for c in demo_customers(500, now=now) for t in (c.optin, c.optout) if t]
    assert all(t.tzinfo == UTC and t.microsecond == 0 and t < now for t in stamps)


def test_sent_customers_have_consent_a_valid_number_and_the_rules_wa_id(
    customers: list[DemoCustomer],
) -> None:
    sent = [c for c in customers if c.expected_outcome == "sent"]
    for c in sent:
        assert has_consent(c) and c.fname and c.fname.strip() and c.expected_e164
        number = phonenumbers.parse(c.expected_e164)
        assert phonenumbers.is_valid_number(number)
        assert (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            == c.expected_e164
        )
        assert rules.contact_status(c.expected_e164) == ("valid", c.expected_wa_id)
    ninth_digit = [c for c in sent if c.expected_wa_id != (c.expected_e164 or "")[1:]]
    assert ninth_digit and all((c.expected_e164 or "").startswith("+55") for c in ninth_digit)


def test_each_invalid_number_is_rejected_by_phonenumbers(customers: list[DemoCustomer]) -> None:
    possible = {"too_short": 2, "too_long": 3, "invalid_for_region": 0}  # ValidationResult values
    checked = Counter[str]()
    for c in customers:
        if c.expected_outcome != "excluded_invalid_number":
            continue
        assert has_consent(c) and c.expected_e164 is None
        raw, reason = c.mobile or "", c.expected_reason or ""
        if reason == "empty":
            assert c.mobile in (None, "")
        elif reason == "not_a_number":
            assert any(ch.isalpha() for ch in raw)
        elif reason == "invalid_country_code":
            assert raw.startswith(("+", "00"))
            with pytest.raises(phonenumbers.NumberParseException) as caught:
                phonenumbers.parse("+" + raw.removeprefix("+").removeprefix("00"))
            assert caught.value.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE
        else:
            number = phonenumbers.parse(raw, (c.cc or "US").upper())
            assert not phonenumbers.is_valid_number(number)
            assert phonenumbers.is_possible_number_with_reason(number) == possible[reason], raw
        checked[reason] += 1
    assert len(checked) == 6


def test_duplicates_point_to_a_kept_customer_with_the_same_number(
    customers: list[DemoCustomer],
) -> None:
    by_id = expected_by_id(customers)
    duplicates = [c for c in customers if c.expected_outcome == "excluded_duplicate"]
    for c in duplicates:
        kept = by_id[c.expected_duplicate_of or ""]
        assert kept.expected_e164 == c.expected_e164 and kept.mobile != c.mobile
        assert kept.expected_outcome not in ("excluded_no_consent", "excluded_invalid_number")
        assert kept.expected_duplicate_of is None and has_consent(c) and has_consent(kept)
        assert kept.optin and c.optin and (kept.optin, -kept.id) > (c.optin, -c.id)
    assert any(by_id[c.expected_duplicate_of or ""].optin == c.optin for c in duplicates)
    assert all(c.expected_duplicate_of is None for c in customers if c not in duplicates)


def test_a_shared_number_is_kept_once_and_otherwise_lacks_consent(
    customers: list[DemoCustomer],
) -> None:
    kept_outcomes = ("sent", "send_failed", "excluded_not_on_whatsapp")
    kept_numbers = [c.expected_e164 for c in customers if c.expected_outcome in kept_outcomes]
    assert len(kept_numbers) == len(set(kept_numbers))
    holders: dict[str, list[DemoCustomer]] = {}
    for c in customers:
        if c.expected_e164:
            holders.setdefault(c.expected_e164, []).append(c)
    shared = [group for group in holders.values() if len(group) > 1]
    assert len(shared) > 100
    for group in shared:
        consenting = [c for c in group if has_consent(c)]
        kept = [c for c in consenting if c.expected_outcome != "excluded_duplicate"]
        assert len(kept) == 1, group
        assert all(c.expected_duplicate_of == str(kept[0].id) for c in consenting if c not in kept)
        assert all(
            c.expected_outcome == "excluded_no_consent" for c in group if c not in consenting
        )
    assert any(len([c for c in g if not has_consent(c)]) for g in shared)


def test_not_on_whatsapp_and_missing_parameter_follow_the_rules(
    customers: list[DemoCustomer],
) -> None:
    for c in customers:
        if c.expected_outcome == "excluded_not_on_whatsapp":
            assert c.expected_e164 and c.expected_e164.endswith("0") and c.fname
        if c.expected_outcome == "send_failed":
            assert c.expected_reason == "missing_parameter" and not (c.fname or "").strip()


def test_customers_without_cc_are_written_internationally_or_as_us_numbers(
    customers: list[DemoCustomer],
) -> None:
    for c in customers:
        if c.cc is None and c.expected_e164:
            written = (c.mobile or "").strip()
            assert written.startswith(("+", "00")) or c.expected_e164.startswith("+1"), written


def test_seeding_sqlite_round_trips_the_rows(tmp_path: Path) -> None:
    customers = demo_customers(300)
    engine = create_engine(demo_crm_url(tmp_path))
    try:
        assert seed_demo_crm(engine, customers[:50]) == 50
        assert seed_demo_crm(engine, customers) == 300  # replaces, never appends
        assert_round_trip(engine, customers)
        with engine.connect() as conn:
            result = conn.execute(text(DEMO_AUDIENCE_QUERY))
            assert list(result.keys())[:2] == ["customer_id", "phone_raw"]
            assert len(result.all()) == 300
    finally:
        engine.dispose()
    assert demo_crm_url(tmp_path) == f"sqlite:///{tmp_path}/crm.sqlite"


def assert_round_trip(engine: Engine, customers: list[DemoCustomer]) -> None:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(crm_contacts)).scalar_one()
        rows = {r.id: r._asdict() for r in conn.execute(select(crm_contacts))}
    assert count == len(customers) == len(rows)
    for c in customers:
        stored = rows[c.id]
        for column in ("optin", "optout"):
            value = stored[column]
            stored[column] = value.replace(tzinfo=UTC) if value and not value.tzinfo else value
        assert stored == c.row(), c.id


@pytest.fixture(params=sorted(SERVERS))
def server_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine whose crm_contacts lands in a throwaway schema, dropped afterwards."""
    variable, default, how, create, drop = SERVERS[request.param]
    url = os.environ.get(variable, default)
    admin = create_engine(url, connect_args={"connect_timeout": 3})
    schema = f"demo_crm_{uuid.uuid4().hex[:12]}"  # the table name is fixed; the schema is not
    try:
        with admin.begin() as conn:
            conn.execute(text(create.format(schema)))
    except OperationalError as error:
        admin.dispose()
        pytest.skip(
            f"{request.param} not reachable at {url} ({error.orig}); start one with `{how}` "
            f"or set {variable} to a URL whose user may create schemas"
        )
    try:
        yield admin.execution_options(schema_translate_map={None: schema})
    finally:
        with admin.begin() as conn:
            conn.execute(text(drop.format(schema)))
        admin.dispose()


def test_seeding_a_server_database_round_trips_the_rows(server_engine: Engine) -> None:
    customers = demo_customers(200, seed=11, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert seed_demo_crm(server_engine, customers) == 200
    assert_round_trip(server_engine, customers)
