"""Webhook bodies (v1 and Cloud API) into status events and inbound messages, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.webhooks.payloads import PayloadError, load_json, parse_cloud, parse_v1

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"


def fixture(name: str) -> Any:
    """A webhook body from tests/fixtures/webhooks, parsed."""
    return json.loads((FIXTURES / name).read_text())


# v1 bodies ------------------------------------------------------------------------------------


def test_v1_statuses_parse_with_recipient_time_and_raw_copy() -> None:
    batch = parse_v1(fixture("v1_statuses.json"))
    assert [s.status for s in batch.statuses] == ["sent", "delivered", "read"]
    sent = batch.statuses[0]
    assert sent.message_id == "gBGGEgZHMlEfAgkM1RBkhDRr7t8"
    assert sent.recipient_id == "4915112345671"
    assert sent.event_at == datetime(2026, 5, 28, 20, 26, 40, tzinfo=UTC)
    assert sent.raw is not None and json.loads(sent.raw)["pricing"]["category"] == "marketing"
    assert batch.inbound == ()


def test_v1_failure_carries_code_and_title() -> None:
    (failed,) = parse_v1(fixture("v1_failed.json")).statuses
    assert (failed.status, failed.error_code) == ("failed", "470")
    assert failed.error_title is not None and failed.error_title.startswith("Message failed")


def test_v1_inbound_text_parses() -> None:
    batch = parse_v1(fixture("v1_inbound_stop.json"))
    (message,) = batch.inbound
    assert (message.wa_id, message.type, message.text) == ("16315551234", "text", "STOP")
    assert message.event_at == datetime.fromtimestamp(1518694235, UTC)


def test_optional_fields_that_do_not_fit_are_dropped_not_refused() -> None:
    status = {"id": "m1", "status": "sent", "timestamp": "soon", "recipient_id": "9" * 40}
    (parsed,) = parse_v1({"statuses": [status]}).statuses
    assert (parsed.event_at, parsed.recipient_id) == (None, None)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "statuses",
        {},
        {"unrelated": 1},
        {"statuses": {"id": "m1"}},
        {"statuses": ["m1"]},
        {"statuses": [{"status": "sent"}]},
        {"statuses": [{"id": "m1"}]},
        {"statuses": [{"id": "", "status": "sent"}]},
        {"statuses": [{"id": "m" * 129, "status": "sent"}]},
        {"statuses": [{"id": "m1", "status": 3}]},
        {"statuses": [{"id": "m\u0000"}]},
        {"messages": [{"id": "x", "type": "text"}]},
        {"messages": [{"from": "123", "id": "x", "type": "text"}], "contacts": "Kerry"},
    ],
)
def test_wrong_v1_shapes_are_refused(payload: Any) -> None:
    with pytest.raises(PayloadError):
        parse_v1(payload)


def test_malformed_json_is_refused() -> None:
    with pytest.raises(PayloadError):
        load_json(b'{"statuses": [')
    with pytest.raises(PayloadError):
        load_json(b"\xff\xfe")


def _stores_as_utf8_without_nul(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def test_items_with_a_nul_or_lone_surrogate_in_a_required_field_are_dropped_and_counted() -> None:
    batch = parse_v1(fixture("v1_statuses_unstorable.json"))
    assert [s.message_id for s in batch.statuses] == [
        "wamid.v1-good-sent",
        "wamid.v1-good-failed",
        "wamid.v1-good-delivered",
    ]
    assert [m.message_id for m in batch.inbound] == [
        "wamid.v1-inbound-good",
        "wamid.v1-inbound-bad-text",
    ]
    assert sorted(batch.dropped) == ["messages.from", "statuses.id", "statuses.status"]


def test_optional_fields_with_a_nul_or_lone_surrogate_become_none() -> None:
    batch = parse_v1(fixture("v1_statuses_unstorable.json"))
    failed = batch.statuses[1]
    assert (failed.recipient_id, failed.error_code, failed.error_title) == (None, "470", None)
    assert batch.inbound[1].text is None
    (cloud_failed,) = parse_cloud(fixture("cloud_statuses_unstorable.json")).statuses[1:]
    assert (cloud_failed.recipient_id, cloud_failed.error_title) == (None, None)


def test_raw_copies_stay_storable_json_whatever_the_item_holds() -> None:
    statuses = parse_v1(fixture("v1_statuses_unstorable.json")).statuses
    for status in statuses:
        assert status.raw is not None and _stores_as_utf8_without_nul(status.raw)
        assert "\\u0000" not in status.raw  # jsonb refuses the escape too
    failed = json.loads(statuses[1].raw or "")
    assert failed["pricing"]["category"] == "mark\ufffdeting"
    assert json.loads(statuses[2].raw or "")["conversation"]["origin"]["type"] == "marketing 😀"


def test_raw_copies_over_the_limit_in_utf8_bytes_are_dropped() -> None:
    wide = {"id": "m1", "status": "sent", "note": "😀" * 20_000}  # 20,000 chars, 80,000 bytes
    (status,) = parse_v1({"statuses": [wide]}).statuses
    assert status.raw is None


def test_cloud_items_with_unstorable_required_fields_are_dropped_and_counted() -> None:
    batch = parse_cloud(fixture("cloud_statuses_unstorable.json"))
    assert [s.message_id for s in batch.statuses] == [
        "wamid.cloud-good-delivered",
        "wamid.cloud-good-failed",
    ]
    assert sorted(batch.dropped) == ["statuses.id", "statuses.status"]


# Cloud API bodies -----------------------------------------------------------------------------


def test_cloud_statuses_parse_from_entry_changes() -> None:
    batch = parse_cloud(fixture("cloud_statuses.json"))
    delivered, failed = batch.statuses
    assert delivered.status == "delivered" and delivered.recipient_id == "16505551234"
    assert (failed.status, failed.error_code, failed.error_title) == (
        "failed",
        "131026",
        "Message undeliverable",
    )


def test_cloud_inbound_parses_and_other_fields_are_ignored() -> None:
    batch = parse_cloud(fixture("cloud_inbound.json"))
    assert batch.statuses == ()
    (message,) = batch.inbound
    assert (message.wa_id, message.text) == ("16505551234", "Stop.")


@pytest.mark.parametrize(
    "payload",
    [
        {"statuses": []},
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": [1]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]},
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": 1}]}}]}],
        },
    ],
)
def test_wrong_cloud_shapes_are_refused(payload: Any) -> None:
    with pytest.raises(PayloadError):
        parse_cloud(payload)


# The sender a Cloud status came for -----------------------------------------------------------

PHONE_NUMBER_ID = "106540352242922"


def test_cloud_statuses_and_messages_keep_their_changes_phone_number_id() -> None:
    statuses = parse_cloud(fixture("cloud_statuses.json")).statuses
    assert [s.phone_number_id for s in statuses] == [PHONE_NUMBER_ID, PHONE_NUMBER_ID]
    (message,) = parse_cloud(fixture("cloud_inbound.json")).inbound
    assert message.phone_number_id == PHONE_NUMBER_ID


def test_each_change_of_a_body_names_its_own_phone_number_id() -> None:
    statuses = parse_cloud(fixture("cloud_statuses_two_numbers.json")).statuses
    assert [(s.status, s.phone_number_id) for s in statuses] == [
        ("read", "106540352242922"),
        ("sent", "106540352242923"),
    ]


def test_v1_bodies_name_no_phone_number_id() -> None:
    batch = parse_v1(fixture("v1_statuses_unstorable.json"))
    assert {s.phone_number_id for s in batch.statuses} == {None}
    assert {m.phone_number_id for m in batch.inbound} == {None}


_MISSING = object()


@pytest.mark.parametrize(
    ("metadata", "phone_number_id"),
    [
        (_MISSING, None),
        ("106540352242922", None),
        ({}, None),
        ({"phone_number_id": None}, None),
        ({"phone_number_id": 106540352242922}, None),
        ({"phone_number_id": ""}, None),
        ({"phone_number_id": "1065-4035"}, None),
        ({"phone_number_id": "\uff19\uff19"}, None),  # full-width digits
        ({"phone_number_id": "1" * 65}, None),
        ({"phone_number_id": "10654035\x002242922"}, None),
        ({"phone_number_id": "10654035\ud8002242922"}, None),
        ({"phone_number_id": "9" * 64}, "9" * 64),
    ],
)
def test_a_phone_number_id_that_is_no_digit_string_up_to_64_is_dropped_alone(
    metadata: Any, phone_number_id: str | None
) -> None:
    payload = fixture("cloud_statuses.json")
    value = payload["entry"][0]["changes"][0]["value"]
    if metadata is _MISSING:
        del value["metadata"]
    else:
        value["metadata"] = metadata
    batch = parse_cloud(payload)
    assert [(s.status, s.phone_number_id) for s in batch.statuses] == [
        ("delivered", phone_number_id),
        ("failed", phone_number_id),
    ]
    assert batch.dropped == ()
    assert all(s.raw is not None for s in batch.statuses)


# Cloud extras: BSUIDs, callback keys, pricing, preferences ------------------------------------

BSUID = "DE.13491208655302741918"
KEY = "wa1:spring-sale:2026:+4915112345678"


def test_cloud_statuses_keep_bsuid_callback_and_pricing() -> None:
    sent, delivered, read, _ = parse_cloud(fixture("cloud_statuses_pricing_bsuid.json")).statuses
    for status in (sent, delivered, read):
        assert (status.recipient_user_id, status.callback) == (BSUID, KEY)
    pricing = (sent.pricing_model, sent.pricing_category, sent.pricing_type, sent.billable)
    assert pricing == ("PMP", "marketing", "regular", True)
    assert (read.pricing_model, read.pricing_category, read.pricing_type, read.billable) == (
        None,
        None,
        None,
        None,
    )


def test_cloud_extras_that_do_not_fit_are_dropped_alone() -> None:
    *_, odd = parse_cloud(fixture("cloud_statuses_pricing_bsuid.json")).statuses
    assert odd.status == "delivered" and odd.raw is not None
    assert (odd.recipient_user_id, odd.callback) == (None, None)  # too long; not a string
    # a model over 16 characters, a number for a category, a string for billable
    assert (odd.pricing_model, odd.pricing_category, odd.billable) == (None, None, None)
    assert odd.pricing_type == "free_customer_service"


@pytest.mark.parametrize(
    "pricing",
    [None, "PMP", [], {"billable": 1}, {"billable": None}, {"category": "\x00"}],
)
def test_pricing_of_the_wrong_shape_is_dropped_not_refused(pricing: Any) -> None:
    payload = fixture("cloud_statuses.json")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = pricing
    delivered, _ = parse_cloud(payload).statuses
    assert (delivered.pricing_category, delivered.billable) == (None, None)


def test_a_131026_failure_keeps_its_code_and_callback() -> None:
    (failed,) = parse_cloud(fixture("cloud_failed_131026.json")).statuses
    assert (failed.status, failed.error_code) == ("failed", "131026")
    assert failed.callback == "wa1:spring-sale:2026:+4915112345670"
    assert failed.recipient_user_id is None


def test_an_inbound_stop_with_only_a_bsuid_keeps_the_bsuid() -> None:
    (message,) = parse_cloud(fixture("cloud_inbound_stop_bsuid.json")).inbound
    assert (message.wa_id, message.user_id, message.text) == (None, BSUID, "STOP")


def test_a_sender_bsuid_comes_from_contacts_when_the_message_has_none() -> None:
    payload = fixture("cloud_inbound_stop_bsuid.json")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["from_user_id"]
    (message,) = parse_cloud(payload).inbound
    assert (message.wa_id, message.user_id) == (None, BSUID)

    payload = fixture("cloud_inbound.json")  # a number: the contact with that wa_id names it
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"] = [
        {"wa_id": "0000", "user_id": "US.1"},
        {**value["contacts"][0], "user_id": BSUID},
    ]
    (message,) = parse_cloud(payload).inbound
    assert (message.wa_id, message.user_id) == ("16505551234", BSUID)


@pytest.mark.parametrize("bsuid", [None, 7, "", "US." + "1" * 126])
def test_a_message_without_a_number_or_a_usable_bsuid_is_refused(bsuid: Any) -> None:
    payload = fixture("cloud_inbound_stop_bsuid.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from_user_id"] = bsuid
    value["contacts"] = []
    with pytest.raises(PayloadError):
        parse_cloud(payload)


def test_a_bsuid_only_message_whose_bsuid_is_unstorable_is_dropped_and_counted() -> None:
    payload = fixture("cloud_inbound_stop_bsuid.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from_user_id"] = "DE.1349\x00"
    value["contacts"] = []
    batch = parse_cloud(payload)
    assert (batch.inbound, batch.dropped) == ((), ("messages.from_user_id",))


def test_user_preferences_are_parsed_with_their_business_and_counted_as_events() -> None:
    batch = parse_cloud(fixture("cloud_user_preferences.json"))
    (stop,) = batch.preferences  # the entry naming no user is skipped
    assert (stop.wa_id, stop.user_id, stop.category, stop.value) == (
        "16505551234",
        "US.13491208655302741918",
        "marketing_messages",
        "stop",
    )
    assert stop.event_at == datetime.fromtimestamp(1780000100, UTC)
    assert (stop.phone_number_id, stop.business_id) == (PHONE_NUMBER_ID, "102290129340398")
    assert len(batch) == 1 and batch.statuses == () and batch.inbound == ()
