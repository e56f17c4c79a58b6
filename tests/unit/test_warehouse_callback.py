"""The ledger key a Cloud send carries in `biz_opaque_callback_data`, without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.warehouse.callback import MAX_LENGTH, callback_key, parse_callback_key


@pytest.mark.parametrize(
    ("campaign_id", "phone"),
    [
        ("spring-sale", "+4915112345678"),
        ("spring-sale:2026", "+4915112345678"),  # campaign ids may hold ":"
        ("a:b:c:", "+1"),
        ("x" * 128, "+" + "9" * 19),
        ("Frühling ☀", "+5511987654321"),
    ],
)
def test_a_key_names_its_ledger_row_even_when_the_campaign_id_holds_colons(
    campaign_id: str, phone: str
) -> None:
    key = callback_key(campaign_id, phone)
    assert key == f"wa1:{campaign_id}:{phone}"
    assert len(key) <= MAX_LENGTH
    assert parse_callback_key(key) == (campaign_id, phone)


@pytest.mark.parametrize(
    ("campaign_id", "phone"),
    [
        ("spring-sale", "4915112345678"),  # no "+"
        ("spring-sale", "+49:151"),
        ("spring-sale", "+" + "9" * 20),  # longer than wa_deliveries.phone_e164
        ("spring-sale", "+٤٩١٥١"),  # digits of another script
        ("", "+4915112345678"),
        ("x" * 129, "+4915112345678"),
        ("nul\x00", "+4915112345678"),
    ],
)
def test_a_row_that_cannot_be_keyed_is_refused(campaign_id: str, phone: str) -> None:
    with pytest.raises(ValueError):
        callback_key(campaign_id, phone)


@pytest.mark.parametrize(
    "text",
    [
        None,
        42,
        b"wa1:spring-sale:+4915112345678",
        "",
        "wa1:",
        "wa1:spring-sale",
        "wa1::+4915112345678",
        "wa1:spring-sale:4915112345678",
        "wa1:spring-sale:+49151 2345678",
        "wa1:spring-sale:+4915112345678:",
        "wa2:spring-sale:+4915112345678",
        "WA1:spring-sale:+4915112345678",
        "order-4711",  # another system's callback data
        "wa1:" + "x" * 600 + ":+4915112345678",
        "wa1:\ud800:+4915112345678",
    ],
)
def test_anything_but_a_key_parses_to_none(text: Any) -> None:
    assert parse_callback_key(text) is None


@given(st.one_of(st.text(max_size=700), st.text().map(lambda t: "wa1:" + t)))
def test_parsing_never_raises(text: str) -> None:
    parsed = parse_callback_key(text)
    if parsed is not None:
        assert callback_key(*parsed) == text
