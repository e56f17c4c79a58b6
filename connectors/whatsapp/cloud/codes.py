"""The Cloud API's error codes (cloud-api.md), each mapped to its class and to what to do; the code
decides whatever the HTTP status (Cloud sends 130429 as 429 or 400)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from connectors.whatsapp.errors import (
    AccountBlocked,
    AccountRestricted,
    InvalidRequest,
    MarketingLimited,
    MarketingStopped,
    NumberBlocked,
    RateLimited,
    RecipientIncapable,
    ServerError,
    TemplateMismatch,
    TemplateUnavailable,
    TokenExpired,
    UnexpectedError,
    WhatsAppError,
)

PAIR_RATE_LIMIT = 131056
"""Too many messages to one recipient: only that recipient's send waits."""

# code: (class, what it means and what to do; the error message carries it after the code)
_TABLE: Final[Mapping[int, tuple[type[WhatsAppError], str]]] = {
    130429: (RateLimited, "throughput of the number reached: slowing down and retrying"),
    PAIR_RATE_LIMIT: (RateLimited, "pair rate limit: retrying this recipient a little later"),
    4: (RateLimited, "app call rate limit: backing off"),
    80007: (RateLimited, "WhatsApp Business Account rate limit: backing off"),
    1: (ServerError, "unknown API error: retrying"),
    2: (ServerError, "API service unavailable: retrying"),
    131000: (ServerError, "something went wrong at Meta: retrying"),
    131057: (ServerError, "account in maintenance mode: retrying"),
    100: (InvalidRequest, "invalid parameter: check this customer's template parameters"),
    131008: (InvalidRequest, "a required parameter is missing: check the body parameters"),
    131009: (InvalidRequest, "a parameter value is invalid: check this customer's parameters"),
    132005: (InvalidRequest, "the translated text is too long: shorten the parameters"),
    132012: (InvalidRequest, "a parameter's format does not fit the template"),
    131026: (RecipientIncapable, "undeliverable: not on WhatsApp or an old app; number suppressed"),
    131049: (MarketingLimited, "Meta's per-user marketing limit: retry no sooner than 24 h later"),
    131050: (MarketingStopped, "the user stopped marketing messages from this business"),
    132000: (
        TemplateMismatch,
        "parameter count does not match the template: map body_params to its parameters",
    ),
    132001: (
        TemplateUnavailable,
        "template does not exist in this language: check the template's name and language",
    ),
    132015: (TemplateUnavailable, "template paused by Meta for low quality: pick another or wait"),
    132016: (TemplateUnavailable, "template disabled by Meta: pick another template"),
    131042: (
        AccountBlocked,
        "payment problem on the business account: fix its payment method, then run again",
    ),
    131048: (
        NumberBlocked,
        "spam rate limit: the number is in danger, stop sending from it and review the campaign",
    ),
    131063: (
        AccountBlocked,
        "marketing disabled on /messages: send MARKETING templates to /marketing_messages",
    ),
    131064: (
        AccountBlocked,
        "template category not allowed here: check the template's category and route",
    ),
    368: (AccountBlocked, "account restricted for a policy violation: see Business Manager"),
    131031: (AccountBlocked, "account locked: see Business Manager before sending again"),
    130497: (AccountRestricted, "the account may not message users in this country"),
    190: (TokenExpired, "access token expired or revoked: renew WHATSAPP_TOKEN"),
    131047: (
        UnexpectedError,
        "24 h window closed for a free-form message; a template send should never get this: "
        "stopping, check the message type the run sends",
    ),
}

CODES: Final[Mapping[int, type[WhatsAppError]]] = {code: cls for code, (cls, _) in _TABLE.items()}
"""Code -> the class its error is raised as."""

ADVICE: Final[Mapping[int, str]] = {code: advice for code, (_, advice) in _TABLE.items()}
"""Code -> what it means and what to do, in the words the error message ends with."""
