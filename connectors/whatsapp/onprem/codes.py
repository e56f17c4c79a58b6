"""The v1 API's error codes (whatsapp-api.md), each mapped to its class; the code decides whatever
the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from connectors.whatsapp.errors import (
    AccessDenied,
    InvalidRequest,
    Overloaded,
    RateLimited,
    RecipientIncapable,
    ServerError,
    TemplateMismatch,
    UnknownContact,
    WhatsAppError,
)

TEMPLATE_CODES: Final = range(2000, 2100)

CODES: Final[Mapping[int, type[WhatsAppError]]] = {
    1015: RateLimited,
    1016: Overloaded,
    1000: ServerError,
    1011: ServerError,
    1014: ServerError,
    1017: ServerError,
    1018: ServerError,
    1005: AccessDenied,
    1006: UnknownContact,
    1013: RecipientIncapable,
    1026: RecipientIncapable,
    1001: InvalidRequest,
    1008: InvalidRequest,
    1009: InvalidRequest,
    **dict.fromkeys(TEMPLATE_CODES, TemplateMismatch),
}
