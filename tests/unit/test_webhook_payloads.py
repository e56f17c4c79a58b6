"""Webhook bodies, opt-out keywords, signatures, settings and the status ranking, without I/O."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.warehouse.events import best_status
from connectors.webhooks.keywords import (
    DEFAULT_OPT_OUT_KEYWORDS,
    keyword_index,
    matched_keyword,
    normalise_reply,
)
from connectors.webhooks.payloads import PayloadError, load_json, parse_cloud, parse_v1
from connectors.webhooks.security import basic_password, sign, signature_valid, token_matches
from connectors.webhooks.settings import ReceiverSettings

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


# Opt-out keywords -----------------------------------------------------------------------------

INDEX = keyword_index(DEFAULT_OPT_OUT_KEYWORDS)


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        ("  Stop!  ", "STOP"),
        ("STOP.", "STOP"),
        ("ＳＴＯＰ", "STOP"),
        ("stop 🛑", "STOP"),
        ("Stop   all", "STOP ALL"),
        ("opt-out", "OPT OUT"),
        ("Opt Out", "OPT OUT"),
        ("optout", "OPTOUT"),
        ("Unsubscribe", "UNSUBSCRIBE"),
        ("stopp", "STOPP"),
        ("Abmelden!", "ABMELDEN"),
        ("arrêt", "ARRÊT"),
        ("Arret", "ARRET"),
        ("désabonner", "DÉSABONNER"),
        ("¡Baja!", "BAJA"),
        ("cancelar", "CANCELAR"),
        ("Annulla", "ANNULLA"),
        ("«СТОП»", "СТОП"),
        ("отписаться", "ОТПИСАТЬСЯ"),
        ("\u200fتوقف", "توقف"),
        ("إلغاء", "إلغاء"),
    ],
)
def test_opt_out_replies_match_whatever_their_case_and_punctuation(
    reply: str, keyword: str
) -> None:
    assert matched_keyword(reply, INDEX) == keyword


@pytest.mark.parametrize(
    "reply", ["please stop", "unstop", "stop it", "start", "", "!!!", "s t o p", "stopstop"]
)
def test_other_replies_are_not_opt_outs(reply: str) -> None:
    assert matched_keyword(reply, INDEX) is None


def test_decomposed_accents_match_composed_keywords() -> None:
    assert normalise_reply("ARRE\u0302T") == normalise_reply("ARRÊT") == "arrêt"


def test_configured_keywords_replace_the_defaults() -> None:
    settings = ReceiverSettings.from_env({"WA_OPT_OUT_KEYWORDS": "halt, Genug ,,"})
    index = keyword_index(settings.opt_out_keywords)
    assert matched_keyword("HALT!", index) == "halt"
    assert matched_keyword("genug", index) == "Genug"
    assert matched_keyword("stop", index) is None


# Signatures and tokens ------------------------------------------------------------------------

SECRET = SecretStr("app-secret")
BODY = json.dumps(fixture("cloud_statuses.json")).encode()


def test_a_signed_body_verifies() -> None:
    header = sign(BODY, SECRET)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_valid(BODY, header, SECRET)
    assert signature_valid(BODY, header.upper().replace("SHA256=", "sha256="), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        sign(BODY, SecretStr("another-secret")),
        sign(BODY + b" ", SECRET),
        "sha256=é",
    ],
)
def test_missing_or_forged_signatures_fail(header: str | None) -> None:
    assert not signature_valid(BODY, header, SECRET)


def test_no_app_secret_means_no_signature_is_valid() -> None:
    assert not signature_valid(BODY, sign(BODY, SECRET), None)


def test_token_and_basic_password() -> None:
    token = SecretStr("t0ken")
    assert token_matches("t0ken", token)
    assert not token_matches("t0ken ", token)
    assert not token_matches(None, token)
    assert not token_matches("t0ken", None)
    encoded = base64.b64encode(b"provider:t0ken").decode()
    assert basic_password(f"Basic {encoded}") == "t0ken"
    assert basic_password("Bearer t0ken") is None
    assert basic_password("Basic not-base64!") is None
    assert basic_password(None) is None


# Settings -------------------------------------------------------------------------------------


def test_settings_from_env_keep_secrets_out_of_reprs(tmp_path: Path) -> None:
    env = {
        "WA_DATA_DIR": str(tmp_path),
        "WEBHOOK_TOKEN": "tok-123",
        "WHATSAPP_APP_SECRET": "sec-456",
        "WEBHOOK_MAX_BODY_BYTES": "2048",
        "WEBHOOK_TOKEN_VIA": "basic",
    }
    settings = ReceiverSettings.from_env(env)
    assert settings.warehouse_url.get_secret_value() == f"sqlite:///{tmp_path}/warehouse.sqlite"
    assert (settings.max_body_bytes, settings.token_via) == (2048, "basic")
    assert settings.opt_out_keywords == DEFAULT_OPT_OUT_KEYWORDS
    assert "tok-123" not in repr(settings) and "sec-456" not in repr(settings)
    with pytest.raises(ValueError, match="WEBHOOK_TOKEN_VIA"):
        ReceiverSettings.from_env({**env, "WEBHOOK_TOKEN_VIA": "query"})


# Ranking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "final"),
    [
        (("sent", "delivered", "read"), "read"),
        (("sent", "failed"), "failed"),
        (("sent", "delivered", "failed"), "delivered"),
        (("read", "failed"), "read"),
        (("sent", "deleted", "warning"), "sent"),
        (("warning",), None),
    ],
)
def test_the_final_status_never_depends_on_arrival_order(
    statuses: tuple[str, ...], final: str | None
) -> None:
    for order in itertools.permutations(statuses):
        current = None
        for status in order:
            current = best_status(current, [status])
        assert current == final
