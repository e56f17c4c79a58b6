"""The error tables: v1 and Cloud API error bodies, unknown answers, Retry-After, masking."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.errors import kind_of
from connectors.whatsapp import errors
from connectors.whatsapp.answers import error_from_response

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"


def _body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _error(status: int, body: Any = None, **headers: str) -> errors.WhatsAppError:
    response = httpx.Response(status, json=body, headers=headers)
    return error_from_response(response, operation="POST /v1/messages")


@pytest.mark.parametrize(
    ("fixture", "status", "expected"),
    [
        ("cloud_error_130429.json", 400, errors.RateLimited),
        ("cloud_error_131056.json", 400, errors.RateLimited),
        ("cloud_error_80007.json", 400, errors.RateLimited),
        ("cloud_error_131000.json", 500, errors.ServerError),
        ("cloud_error_131026.json", 400, errors.RecipientIncapable),
        ("cloud_error_190.json", 401, errors.TokenExpired),
        ("cloud_error_131048.json", 400, errors.NumberBlocked),
        ("cloud_error_131063.json", 400, errors.AccountBlocked),
        ("cloud_error_368.json", 403, errors.AccountBlocked),
        ("cloud_error_132000.json", 400, errors.TemplateMismatch),
        ("cloud_error_132001.json", 404, errors.TemplateUnavailable),
        ("error_1006.json", 404, errors.UnknownContact),
        ("error_1013.json", 400, errors.RecipientIncapable),
        ("error_1005.json", 403, errors.AccessDenied),
        ("error_2001.json", 400, errors.TemplateMismatch),
        ("error_99999.json", 400, errors.UnexpectedError),
    ],
)
def test_error_bodies_map_to_their_class_by_code_whatever_the_status(
    fixture: str, status: int, expected: type[errors.WhatsAppError]
) -> None:
    error = _error(status, _body(fixture))
    assert type(error) is expected
    assert error.status == status and error.code is not None and error.reason == str(error.code)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"errors": [{"code": 99999, "title": "new"}]}),
        (418, None),
        (409, {"errors": [{"code": 1234}]}),
        (400, None),
        (404, None),
        (401, None),
        (403, None),
        (401, {"errors": [{"code": 4242}]}),
        (302, None),
    ],
)
def test_unknown_codes_and_statuses_are_campaign_level_never_the_recipients(
    status: int, body: Any
) -> None:
    error = _error(status, body)
    assert isinstance(error, errors.StopRunError)
    assert not isinstance(error, (errors.TransientError, errors.OutcomeUnknownError))


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, 1006), (400, 1013), (400, 1026), (400, 1008), (400, 1009), (400, 1001), (400, 131026)],
)
def test_recipient_codes_stay_permanent_and_never_stop_the_run(status: int, code: int) -> None:
    error = _error(status, {"errors": [{"code": code, "title": "t"}]})
    assert isinstance(error, errors.RecipientError)
    assert not isinstance(error, errors.StopRunError)


@pytest.mark.parametrize("code", [130429, 131056, 4, 80007, 1, 2, 131000, 131057])
@pytest.mark.parametrize("status", [400, 429, 500])
def test_transient_cloud_codes_are_transient_whatever_the_status(status: int, code: int) -> None:
    error = _error(status, {"error": {"code": code, "message": "m"}})
    assert isinstance(error, errors.TransientError)


@pytest.mark.parametrize(
    "code", [190, 131048, 368, 131031, 130497, 131042, 131063, 131064, 132000, 132001, 132015]
)
def test_cloud_account_template_and_token_codes_are_campaign_level(code: int) -> None:
    assert isinstance(_error(400, {"error": {"code": code}}), errors.StopRunError)


def test_only_a_pair_rate_limit_spares_the_other_sends() -> None:
    pair = _error(400, _body("cloud_error_131056.json"))
    throughput = _error(400, _body("cloud_error_130429.json"))
    assert isinstance(pair, errors.RateLimited) and isinstance(throughput, errors.RateLimited)
    assert (pair.sender_wide, throughput.sender_wide) == (False, True)


def test_every_api_error_is_of_exactly_one_kind() -> None:
    kinds = (
        errors.TransientError,
        errors.RecipientError,
        errors.StopRunError,
        errors.OutcomeUnknownError,
    )
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.WhatsAppError)
        and cls is not errors.WhatsAppError
    ]
    assert len(classes) >= 14
    for cls in classes:
        assert sum(issubclass(cls, kind) for kind in kinds) == 1, cls
        assert kind_of(cls("x")) is not None


def test_cloud_error_keeps_its_details() -> None:
    error = _error(400, _body("cloud_error_131048.json"))
    assert error.title == "Spam rate limit hit"
    assert error.details is not None and error.details.startswith("Message failed to send")


def test_retry_after_in_seconds_or_as_an_http_date_counts_from_the_given_clock() -> None:
    now = datetime(2026, 10, 21, 7, 27, 58, tzinfo=UTC).timestamp()
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert errors.retry_after_s(date, now=now) == 2.0
    assert errors.retry_after_s(date, now=now + 10) == 0.0  # already past: at once
    assert errors.retry_after_s("3", now=now) == 3.0
    assert errors.retry_after_s("soon", now=now) is None
    assert errors.retry_after_s(None, now=now) is None
    response = httpx.Response(429, headers={"Retry-After": date})
    error = error_from_response(response, operation="op", now=now)
    assert isinstance(error, errors.RateLimited) and error.retry_after_s == 2.0


def test_error_messages_mask_phone_numbers_the_api_echoes() -> None:
    body = {"errors": [{"code": 1013, "title": "User +4917612345689 is not valid"}]}
    error = _error(400, body)
    assert "+4917612345689" not in str(error) and "+4917612345689" not in (error.title or "")
    assert "+4917*******89" in str(error)


def test_authentication_errors_name_the_settings_to_check_never_their_values() -> None:
    response = httpx.Response(401, json=_body("error_1005.json"))
    error = error_from_response(response, operation="op", credentials="WHATSAPP_API_KEY")
    assert isinstance(error, errors.AuthenticationError)
    assert str(error).endswith("check WHATSAPP_API_KEY")


def test_every_error_class_is_drawn_in_the_module_docstring() -> None:
    assert errors.__doc__ is not None
    classes = [
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.WhatsAppError)
    ]
    assert len(classes) >= 15
    for name in classes:
        assert name in errors.__doc__, name


def test_error_table_maps_codes_to_classes() -> None:
    cases = {
        (429, 1015): errors.RateLimited,
        (503, 1016): errors.Overloaded,
        (500, 1014): errors.ServerError,
        (502, None): errors.ServerError,
        (404, 1006): errors.UnknownContact,
        (400, 1008): errors.InvalidRequest,
        (400, 2000): errors.TemplateMismatch,
        (400, 1013): errors.RecipientIncapable,
        (403, 1005): errors.AccessDenied,
        (401, None): errors.AuthenticationError,
    }
    for (status, code), cls in cases.items():
        body = {"errors": [{"code": code, "title": "t"}]} if code else {}
        error = error_from_response(httpx.Response(status, json=body), operation="op")
        assert type(error) is cls, (status, code)
        assert error.status == status and error.code == code


def test_error_keeps_code_title_details_and_retry_after() -> None:
    body = json.loads((FIXTURES / "error_1006.json").read_text())
    error = error_from_response(
        httpx.Response(404, json=body, headers={"Retry-After": "3"}), operation="send"
    )
    assert (error.code, error.title, error.details, error.retry_after_s) == (
        1006,
        "Resource not found",
        "unknown contact",
        3.0,
    )
    assert error.reason == "1006"


def test_cloud_api_error_body_is_understood() -> None:
    body = json.loads((FIXTURES / "cloud_error_130429.json").read_text())
    error = error_from_response(httpx.Response(429, json=body), operation="send")
    assert isinstance(error, errors.RateLimited) and error.code == 130429
