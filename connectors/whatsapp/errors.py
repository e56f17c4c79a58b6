"""Errors of the WhatsApp API clients (v1 and Cloud), each of one kind of `connectors.errors`.

```
WhatsAppError (PipelineError)     carries the HTTP status, API code, title, details, Retry-After
├── TransientError kind           retry with backoff, slow down
│   ├── RateLimited                   429 / 1015, Cloud 130429, 4, 80007 (Retry-After) pause the
│   │                                 whole sender; Cloud 131056 (pair limit) only that recipient
│   ├── Overloaded                    503 / 1016
│   ├── ServerError                   5xx / 1000, 1011, 1014, 1017/8, Cloud 1, 2, 131000, 131057
│   ├── MalformedAnswer               200 whose body is not the API's answer (idempotent calls)
│   └── NetworkError                  a network failure that is safe to repeat: before the request
│                                     was written, during a login, or on an idempotent call
├── RecipientError kind           the recipient's own: record it and move on
│   ├── InvalidRequest                400 / 1001, 1008, 1009, Cloud 100, 131008/9, 132005, 132012
│   ├── UnknownContact                404 / 1006 (check the contact once, resend once)
│   ├── RecipientIncapable            1013, 1026, Cloud 131026 (undeliverable: suppress the number)
│   ├── MarketingLimited              Cloud 131049: Meta's per-user marketing limit, retry >= 24 h
│   └── MarketingStopped              Cloud 131050: the user stopped this business's marketing
├── StopRunError kind             campaign-level: every send would fail so; retry on a later run
│   ├── AuthenticationError           401 (after one new login), a refused login
│   │   ├── AccessDenied                  403 / 1005
│   │   └── TokenExpired          [!]     Cloud 190: renew WHATSAPP_TOKEN
│   ├── TemplateMismatch              2000-2099, Cloud 132000 (parameters do not fit the template)
│   │   └── TemplateUnavailable   [!]     Cloud 132001, 132015, 132016 (unknown, paused, disabled)
│   ├── AccountRestricted             Cloud 130497 (may not message that country)
│   │   └── AccountBlocked        [!]     Cloud 368, 131031, 131042, 131063, 131064
│   │       └── NumberBlocked     [!] (s) Cloud 131048: this number's spam rate limit
│   ├── UnknownObject             [!]     Cloud 100 on a look-up: an id of the settings unknown
│   └── UnexpectedError               a code or HTTP status this client does not know
└── OutcomeUnknownError kind      may have been applied (timeout or reset after writing, a 200
    └── OutcomeUnknown                without a message id): never resend blindly
```
[!] `stops_at_once`: the run stops at the first such error (the cause will not pass and every
further send worsens it: a paused template, a number in danger, an expired token). Every other
StopRunError-kind error is counted by the send loop's circuit breaker, which stops the run only
after several in a row (one odd answer must not end a campaign). Read it on any instance or
class: `error.stops_at_once` (False on all other classes).

Each API flavour maps its codes to these classes in one table (`onprem/codes.py`,
`cloud/codes.py`, which also says what to do for each Cloud code); `connectors.whatsapp.answers`
reads an error answer with them. A known code decides the class whatever the HTTP status (Cloud
sends 130429 as 429 or 400); an unknown one is classed by its status (429 and 5xx stay transient,
401/403 are credentials, any other is `UnexpectedError`). No error carries a credential or a full
phone number.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import ClassVar

from connectors.errors import (
    OutcomeUnknownError,
    PipelineError,
    RecipientError,
    StopRunError,
    TransientError,
)

__all__ = [
    "AccessDenied",
    "AccountBlocked",
    "AccountRestricted",
    "AuthenticationError",
    "InvalidRequest",
    "MalformedAnswer",
    "MarketingLimited",
    "MarketingStopped",
    "NetworkError",
    "NumberBlocked",
    "OutcomeUnknown",
    "OutcomeUnknownError",
    "Overloaded",
    "RateLimited",
    "RecipientError",
    "RecipientIncapable",
    "ServerError",
    "StopRunError",
    "TemplateMismatch",
    "TemplateUnavailable",
    "TokenExpired",
    "TransientError",
    "UnexpectedError",
    "UnknownContact",
    "UnknownObject",
    "WhatsAppError",
    "class_for",
    "retry_after_s",
]


class WhatsAppError(PipelineError):
    """Root of every error raised by the WhatsApp clients; each subclass is of one kind."""

    stops_at_once: ClassVar[bool] = False
    """True on the StopRunError-kind classes whose first occurrence stops the run (see above)."""
    about_sender: ClassVar[bool] = False
    """True where the cause is the sender's own (its number or credentials), not the campaign's."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        title: str | None = None,
        details: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.details = details
        self.retry_after_s = retry_after_s

    @property
    def reason(self) -> str:
        """Short machine-readable reason for the warehouse: the API code, else the HTTP status."""
        if self.code is not None:
            return str(self.code)
        if self.status is not None:
            return f"http_{self.status}"
        return type(self).__name__.lower()


class RateLimited(WhatsAppError, TransientError):
    """The API refused the call for a rate limit (429 / 1015, Cloud 130429, 131056, 4, 80007)."""

    @property
    def sender_wide(self) -> bool:
        """True when every send must slow down; 131056 limits one recipient only."""
        return self.code != 131056


class Overloaded(WhatsAppError, TransientError):
    """The API's queue is full (503 / 1016)."""


class ServerError(WhatsAppError, TransientError):
    """A transient server fault (5xx)."""


class MalformedAnswer(WhatsAppError, TransientError):
    """A success status whose body is not the API's answer (a proxy's page, a cut body)."""


class NetworkError(WhatsAppError, TransientError):
    """A network failure that is safe to repeat (not written yet, a login, an idempotent call)."""


class InvalidRequest(WhatsAppError, RecipientError):
    """The API rejected this recipient's request content (400)."""


class UnknownContact(WhatsAppError, RecipientError):
    """The recipient was not checked on this server (404 / 1006)."""


class RecipientIncapable(WhatsAppError, RecipientError):
    """The recipient cannot receive messages (1013, 1026, Cloud 131026)."""


class MarketingLimited(WhatsAppError, RecipientError):
    """Meta's per-user marketing limit (Cloud 131049): retry no sooner than 24 h later."""


class MarketingStopped(WhatsAppError, RecipientError):
    """The user stopped this business's marketing messages (Cloud 131050)."""


class AuthenticationError(WhatsAppError, StopRunError):
    """The credentials were refused: no call will succeed, stop the run."""

    about_sender = True


class AccessDenied(AuthenticationError):
    """The account may not do this (403 / 1005): stop the run."""


class TokenExpired(AuthenticationError):
    """The access token expired or was revoked (Cloud 190): stop at once, renew WHATSAPP_TOKEN."""

    stops_at_once = True


class TemplateMismatch(WhatsAppError, StopRunError):
    """The template or its parameters do not fit what was sent (2000-2099, Cloud 132000)."""


class TemplateUnavailable(TemplateMismatch):
    """The template does not exist, is paused or disabled (Cloud 132001, 132015, 132016)."""

    stops_at_once = True


class AccountRestricted(WhatsAppError, StopRunError):
    """The sender's account may not message some recipients (Cloud 130497, a country)."""


class AccountBlocked(AccountRestricted):
    """The account or number may not send (spam limit, restricted, locked, payment, marketing
    disabled or category misuse: Cloud 131048, 368, 131031, 131042, 131063, 131064)."""

    stops_at_once = True


class NumberBlocked(AccountBlocked):
    """This number hit its spam rate limit (Cloud 131048): stop it, the other numbers go on."""

    about_sender = True


class UnknownObject(WhatsAppError, StopRunError):
    """The API does not know an id of the settings (Cloud 100 on a look-up); the message names
    the variable to fix."""

    stops_at_once = True


class UnexpectedError(WhatsAppError, StopRunError):
    """An answer this client does not know: stop rather than fail every recipient with it."""


class OutcomeUnknown(WhatsAppError, OutcomeUnknownError):
    """The request may have been applied: the caller must not resend it blindly."""


def class_for(
    status: int, code: int | None, table: Mapping[int, type[WhatsAppError]]
) -> type[WhatsAppError]:
    """The class an error answer stands for: its code if `table` knows it, else its status's."""
    if code is not None and code in table:
        return table[code]
    if status == 429:
        return RateLimited
    if status == 503:
        return Overloaded
    if status >= 500:
        return ServerError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return AccessDenied
    return UnexpectedError


def retry_after_s(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses naive
        return None
    return max(0.0, when.timestamp() - now)
