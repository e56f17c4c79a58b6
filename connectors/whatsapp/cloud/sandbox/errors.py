"""The Cloud error answers the sandbox gives: code -> HTTP status and title, and the error body.

Where Meta documents no HTTP status for a code, the choice is the one in this table (clients key
on the code, cloud-api.md): 400 for request problems, 401 for 190, 404 for 132001, 5xx for 1, 2,
131000 and 131057, 429 for the call rate limits 4 and 80007, 403 for the integrity codes 368,
131031 and 130497 (as Meta's error reference lists them). Codes without a natural trigger in
the sandbox are answered by the `code:<n>` fault (`faults.py`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Final, NamedTuple

from starlette.responses import JSONResponse


class Kind(NamedTuple):
    """HTTP status, Graph error type and title of one code."""

    status: int
    type: str
    title: str


CATALOGUE: Final[Mapping[int, Kind]] = {
    1: Kind(500, "OAuthException", "An unknown error has occurred."),
    2: Kind(503, "OAuthException", "Service temporarily unavailable"),
    4: Kind(429, "OAuthException", "Application request limit reached"),
    100: Kind(400, "OAuthException", "Invalid parameter"),
    190: Kind(401, "OAuthException", "Invalid OAuth access token"),
    368: Kind(403, "OAuthException", "Temporarily blocked for policies violations"),
    80007: Kind(429, "OAuthException", "Rate limit issues"),
    130429: Kind(429, "OAuthException", "Rate limit hit"),
    130497: Kind(
        403, "OAuthException", "Business account is restricted from messaging users in this country"
    ),
    131000: Kind(500, "OAuthException", "Something went wrong"),
    131008: Kind(400, "OAuthException", "Required parameter is missing"),
    131009: Kind(400, "OAuthException", "Parameter value is not valid"),
    131026: Kind(400, "OAuthException", "Message undeliverable"),
    131031: Kind(403, "OAuthException", "Account has been locked"),
    131042: Kind(400, "OAuthException", "Business eligibility payment issue"),
    131047: Kind(400, "OAuthException", "Re-engagement message"),
    131048: Kind(400, "OAuthException", "Spam rate limit hit"),
    131049: Kind(
        400,
        "OAuthException",
        "This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    131050: Kind(
        400,
        "OAuthException",
        "Unable to deliver the message. This recipient has "
        "chosen to stop receiving marketing messages on WhatsApp from your business.",
    ),
    131056: Kind(400, "OAuthException", "(Business Account, Consumer Account) pair rate limit hit"),
    131057: Kind(500, "OAuthException", "Account in maintenance mode"),
    131063: Kind(400, "OAuthException", "Marketing messages are disabled on this endpoint"),
    131064: Kind(400, "OAuthException", "Only marketing templates can be sent on this endpoint"),
    132000: Kind(
        400, "OAuthException", "Number of parameters does not match the expected number of params"
    ),
    132001: Kind(404, "OAuthException", "Template name does not exist in the translation"),
    132005: Kind(400, "OAuthException", "Translated text too long"),
    132012: Kind(
        400, "OAuthException", "Parameter format does not match format in the created template"
    ),
    132015: Kind(400, "OAuthException", "Template is Paused"),
    132016: Kind(400, "OAuthException", "Template is disabled"),
}
"""Codes the sandbox answers or pushes; 130429's status is the config's `throttle_status`."""

UNKNOWN_OBJECT: Final = Kind(400, "GraphMethodException", "Unsupported request")
"""Code 100 for an id the token cannot see: Graph's `GraphMethodException`, subcode 33."""


class CloudError(JSONResponse):
    """A Graph error answer; `.code` lets the sandbox count rejections by code."""

    def __init__(self, code: int, details: str, *, status: int | None = None) -> None:
        kind = CATALOGUE[code]
        super().__init__(error_body(code, kind, details), status_code=status or kind.status)
        self.code = code


class UnknownObject(CloudError):
    """Error 100 for a path whose id names no object of this account (Graph's wording)."""

    def __init__(self, method: str, object_id: str) -> None:
        details = (
            f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation."
        )
        JSONResponse.__init__(self, error_body(100, UNKNOWN_OBJECT, details, subcode=33), 400)
        self.code = 100


def error_body(
    code: int, kind: Kind, details: str, *, subcode: int | None = None
) -> dict[str, object]:
    """`{"error": {message, type, code, error_data: {details}, fbtrace_id}}` as Graph sends it."""
    error: dict[str, object] = {
        "message": f"(#{code}) {kind.title}",
        "type": kind.type,
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if code == 190:
        error["message"] = details
        del error["error_data"]
    return {"error": error}


WEBHOOK_DETAILS: Final[Mapping[int, str]] = {
    131026: "Message Undeliverable.",
    131049: "In order to maintain a healthy ecosystem engagement, the message failed to be "
    "delivered.",
    131050: "The recipient has chosen to stop receiving marketing messages from your business.",
}


def error_entry(code: int) -> dict[str, object]:
    """One `errors[]` item of a `failed` status webhook: code, title, message, details."""
    title = CATALOGUE[code].title
    details = WEBHOOK_DETAILS.get(code, title)
    return {"code": code, "title": title, "message": title, "error_data": {"details": details}}
