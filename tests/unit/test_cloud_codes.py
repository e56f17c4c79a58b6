"""The Cloud error table: every code's class, kind, stop-at-once marker and what-to-do message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.errors import kind_of
from connectors.whatsapp import errors
from connectors.whatsapp.answers import error_from_response
from connectors.whatsapp.cloud.codes import ADVICE, CODES
from connectors.whatsapp.onprem.codes import CODES as V1_CODES

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"

# code: (HTTP status Meta answers it with, class, kind, stops the run at the first one)
TABLE: dict[int, tuple[int, type[errors.WhatsAppError], str, bool]] = {
    130429: (429, errors.RateLimited, "transient", False),
    131056: (400, errors.RateLimited, "transient", False),
    4: (400, errors.RateLimited, "transient", False),
    80007: (400, errors.RateLimited, "transient", False),
    1: (500, errors.ServerError, "transient", False),
    2: (503, errors.ServerError, "transient", False),
    131000: (500, errors.ServerError, "transient", False),
    131057: (503, errors.ServerError, "transient", False),
    100: (400, errors.InvalidRequest, "recipient", False),
    131008: (400, errors.InvalidRequest, "recipient", False),
    131009: (400, errors.InvalidRequest, "recipient", False),
    132005: (400, errors.InvalidRequest, "recipient", False),
    132012: (400, errors.InvalidRequest, "recipient", False),
    131026: (400, errors.RecipientIncapable, "recipient", False),
    131049: (400, errors.MarketingLimited, "recipient", False),
    131050: (400, errors.MarketingStopped, "recipient", False),
    132000: (400, errors.TemplateMismatch, "stop_run", False),
    130497: (403, errors.AccountRestricted, "stop_run", False),
    132001: (404, errors.TemplateUnavailable, "stop_run", True),
    132015: (400, errors.TemplateUnavailable, "stop_run", True),
    132016: (400, errors.TemplateUnavailable, "stop_run", True),
    131042: (400, errors.AccountBlocked, "stop_run", True),
    131048: (400, errors.NumberBlocked, "stop_run", True),
    131063: (400, errors.AccountBlocked, "stop_run", True),
    131064: (400, errors.AccountBlocked, "stop_run", True),
    368: (403, errors.AccountBlocked, "stop_run", True),
    131031: (403, errors.AccountBlocked, "stop_run", True),
    190: (401, errors.TokenExpired, "stop_run", True),
    # Free-form only: a template send never gets it, so one that does stops (not at once).
    131047: (400, errors.UnexpectedError, "stop_run", False),
}
AT_ONCE = {132001, 132015, 132016, 131042, 131048, 131063, 131064, 368, 131031, 190}


def _fixture(code: int) -> Any:
    return json.loads((FIXTURES / f"cloud_error_{code}.json").read_text())


def _error(status: int, body: Any) -> errors.WhatsAppError:
    response = httpx.Response(status, json=body)
    return error_from_response(response, operation="POST /v23.0/1/messages", now=0.0)


def test_the_table_is_the_contracts_and_shares_no_code_with_v1() -> None:
    assert set(TABLE) == set(CODES) == set(ADVICE)
    assert not set(CODES) & set(V1_CODES)
    assert {code for code, row in TABLE.items() if row[3]} == AT_ONCE


@pytest.mark.parametrize("code", sorted(TABLE))
def test_every_cloud_code_is_its_class_kind_and_marker_whatever_the_status(code: int) -> None:
    status, cls, kind, at_once = TABLE[code]
    for answered in (status, 400, 500):
        error = _error(answered, _fixture(code))
        assert type(error) is cls, answered
        assert kind_of(error) == kind
        assert error.stops_at_once is at_once
        assert error.code == code and error.reason == str(code)


@pytest.mark.parametrize("code", sorted(TABLE))
def test_every_message_names_the_code_and_what_to_do(code: int) -> None:
    status = TABLE[code][0]
    body = _fixture(code)
    error = _error(status, body)
    assert f"code {code}" in str(error)
    assert str(error).endswith(ADVICE[code])
    assert error.details == body["error"].get("error_data", {}).get("details")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (132015, "template paused by Meta"),
        (132016, "pick another template"),
        (131048, "the number is in danger, stop sending"),
        (190, "renew WHATSAPP_TOKEN"),
        (131063, "/marketing_messages"),
        (131042, "payment"),
    ],
)
def test_stop_at_once_messages_say_what_to_do(code: int, words: str) -> None:
    assert words in str(_error(TABLE[code][0], _fixture(code)))


def test_an_expired_token_names_the_variable_once_never_the_token() -> None:
    error = _error(401, _fixture(190))
    assert isinstance(error, errors.AuthenticationError)
    assert str(error).count("WHATSAPP_TOKEN") == 1


def _error_classes() -> list[type[errors.WhatsAppError]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.WhatsAppError)
    ]


def test_stop_at_once_is_only_ever_set_on_stop_run_classes() -> None:
    classes = _error_classes()
    at_once = {cls for cls in classes if cls.stops_at_once}
    assert at_once == {
        errors.TokenExpired,
        errors.TemplateUnavailable,
        errors.AccountBlocked,
        errors.NumberBlocked,
        errors.UnknownObject,
    }
    assert all(issubclass(cls, errors.StopRunError) for cls in at_once)


def test_only_a_numbers_own_causes_stop_one_sender_alone() -> None:
    classes = _error_classes()
    own = {cls for cls in classes if cls.about_sender}
    assert own == {
        errors.AuthenticationError,
        errors.AccessDenied,
        errors.TokenExpired,
        errors.NumberBlocked,
    }
    assert errors.class_for(400, 131048, CODES) is errors.NumberBlocked
    # payment, policy, lock, route and template are the campaign's: they stop every sender
    assert not any(errors.class_for(400, c, CODES).about_sender for c in (131042, 368, 132015))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"errors": [{"code": 2001, "title": "template missing"}]}),  # v1 template codes
        (401, None),  # v1 credentials refused after a new login
        (400, {"error": {"code": 987654}}),  # a code nobody knows
        (403, {"errors": [{"code": 1005}]}),
    ],
)
def test_other_stop_run_errors_only_count_towards_the_breaker(status: int, body: Any) -> None:
    error = _error(status, body)
    assert kind_of(error) == "stop_run" and error.stops_at_once is False


def test_only_the_pair_rate_limit_spares_the_other_sends() -> None:
    limited = {code: _error(400, _fixture(code)) for code in (130429, 131056, 4, 80007)}
    assert {
        code: e.sender_wide for code, e in limited.items() if isinstance(e, errors.RateLimited)
    } == {
        130429: True,
        131056: False,
        4: True,
        80007: True,
    }
