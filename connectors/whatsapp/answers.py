"""What an unsuccessful API answer stands for: its code, title and details read from the body's
shape (v1 `{"errors": [...]}` or Cloud `{"error": {...}}`), classed by that flavour's code table;
a Cloud code's message also says what to do."""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Mapping
from typing import Any, Final

import httpx

from connectors.masking import mask_phones_in
from connectors.whatsapp.cloud.codes import ADVICE as CLOUD_ADVICE
from connectors.whatsapp.cloud.codes import CODES as CLOUD_CODES
from connectors.whatsapp.errors import (
    AuthenticationError,
    WhatsAppError,
    class_for,
    retry_after_s,
)
from connectors.whatsapp.onprem.codes import CODES as V1_CODES

# The body's own flavour first, then the other's: v1 servers answer some Cloud codes (131026,
# 1320xx) in the v1 shape. The two tables share no code.
V1_FIRST: Final[Mapping[int, type[WhatsAppError]]] = ChainMap(dict(V1_CODES), dict(CLOUD_CODES))
CLOUD_FIRST: Final[Mapping[int, type[WhatsAppError]]] = ChainMap(dict(CLOUD_CODES), dict(V1_CODES))


def _text(value: object) -> str | None:
    return mask_phones_in(str(value)) if value is not None and str(value) else None


def _code(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_error_body(
    body: Any,
) -> tuple[int | None, str | None, str | None, Mapping[int, type[WhatsAppError]]]:
    """`(code, title, details, table)` of an error body of either shape; title and details
    with phone numbers masked."""
    code: int | None = None
    title: object = None
    details: object = None
    table = V1_FIRST
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code, title, details = (
                _code(first.get("code")),
                first.get("title"),
                first.get("details"),
            )
        elif isinstance(body.get("error"), dict):
            cloud = body["error"]
            data = cloud.get("error_data")
            code, title = _code(cloud.get("code")), cloud.get("message")
            details = data.get("details") if isinstance(data, dict) else None
            table = CLOUD_FIRST
    return code, _text(title), _text(details), table


def error_from_response(
    response: httpx.Response,
    *,
    operation: str,
    now: float | None = None,
    credentials: str | None = None,
) -> WhatsAppError:
    """Build the error that an unsuccessful API answer stands for.

    `now` (Unix seconds) dates a `Retry-After` given as an HTTP date; `credentials` names the
    settings an `AuthenticationError` tells the operator to check (never their values).
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code, title, details, table = read_error_body(body)
    cls = class_for(response.status_code, code, table)
    summary = f"{operation} failed: HTTP {response.status_code}"
    if code is not None:
        summary += f", code {code}"
    if title:
        summary += f" ({title})"
    advice = CLOUD_ADVICE.get(code) if code is not None else None
    if advice:
        summary += f"; {advice}"
    elif credentials and issubclass(cls, AuthenticationError):
        summary += f"; check {credentials}"
    wait = retry_after_s(
        response.headers.get("Retry-After"), now=time.time() if now is None else now
    )
    return cls(
        summary,
        status=response.status_code,
        code=code,
        title=title,
        details=details,
        retry_after_s=wait,
    )
