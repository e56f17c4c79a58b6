"""The Cloud API's error codes (cloud-api.md), each mapped to its class; the code decides whatever
the HTTP status (Cloud sends 130429 as 429 or 400)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from connectors.whatsapp.errors import (
    AccountRestricted,
    AuthenticationError,
    InvalidRequest,
    RateLimited,
    RecipientIncapable,
    ServerError,
    TemplateMismatch,
    WhatsAppError,
)

CODES: Final[Mapping[int, type[WhatsAppError]]] = {
    130429: RateLimited,
    131056: RateLimited,
    4: RateLimited,
    80007: RateLimited,
    1: ServerError,
    2: ServerError,
    131000: ServerError,
    131057: ServerError,
    100: InvalidRequest,
    131008: InvalidRequest,
    131009: InvalidRequest,
    132005: InvalidRequest,
    132012: InvalidRequest,
    131026: RecipientIncapable,
    190: AuthenticationError,
    132000: TemplateMismatch,
    132001: TemplateMismatch,
    132015: TemplateMismatch,
    132016: TemplateMismatch,
    131048: AccountRestricted,
    368: AccountRestricted,
    131031: AccountRestricted,
    130497: AccountRestricted,
    131042: AccountRestricted,
    131063: AccountRestricted,
    131064: AccountRestricted,
}
