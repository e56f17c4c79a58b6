"""Errors of the WhatsApp API client, one tree, split by what the caller must do.

```
WhatsAppError
├── TransientError       retry with backoff
│   ├── RateLimited          429 / 1015 (honour Retry-After)
│   ├── Overloaded           503 / 1016
│   ├── ServerError          500, 502, 504 / 1000, 1011, 1014, 1017, 1018
│   └── NetworkError         connect failure or timeout before the request was written
├── PermanentError       record and move on
│   ├── InvalidRequest       400 / 1001, 1008, 1009
│   ├── TemplateMismatch     2000-2099 (unknown template, parameter count)
│   ├── UnknownContact       404 / 1006 (check the contact once, resend once)
│   └── RecipientIncapable   1013, 1026
├── AuthenticationError  401 twice, or 1005 access denied: stop the run
└── OutcomeUnknown       may have been applied (timeout or reset after writing): never resend
```
No error carries a credential or a full phone number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class WhatsAppError(Exception):
    """Root of every error raised by the WhatsApp client."""

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


class TransientError(WhatsAppError):
    """A failure that may pass: retry with backoff."""


class RateLimited(TransientError):
    """The API refused the call for its rate limit (429 / 1015)."""


class Overloaded(TransientError):
    """The API's queue is full (503 / 1016)."""


class ServerError(TransientError):
    """A transient server fault (5xx)."""


class NetworkError(TransientError):
    """The request never reached the API (connect error or timeout before it was written)."""


class PermanentError(WhatsAppError):
    """A failure that repeating will not fix: record it and move on."""


class InvalidRequest(PermanentError):
    """The API rejected the request's content (400)."""


class TemplateMismatch(PermanentError):
    """The template is unknown or its parameters do not fit it (codes 2000-2099)."""


class UnknownContact(PermanentError):
    """The recipient was not checked on this server (404 / 1006)."""


class RecipientIncapable(PermanentError):
    """The recipient cannot receive messages (1013, 1026)."""


class AuthenticationError(WhatsAppError):
    """The credentials were refused: no call will succeed, stop the run."""


class OutcomeUnknown(WhatsAppError):
    """The request may have been applied: the caller must not resend it blindly."""


_BY_CODE: Mapping[int, type[WhatsAppError]] = {
    1015: RateLimited,
    1016: Overloaded,
    1000: ServerError,
    1011: ServerError,
    1014: ServerError,
    1017: ServerError,
    1018: ServerError,
    1005: AuthenticationError,
    1006: UnknownContact,
    1013: RecipientIncapable,
    1026: RecipientIncapable,
    1001: InvalidRequest,
    1008: InvalidRequest,
    1009: InvalidRequest,
}


def _class_for(status: int, code: int | None) -> type[WhatsAppError]:
    if code is not None:
        if code in _BY_CODE:
            return _BY_CODE[code]
        if 2000 <= code < 2100:
            return TemplateMismatch
    if status == 429:
        return RateLimited
    if status == 503:
        return Overloaded
    if status >= 500:
        return ServerError
    if status == 401:
        return AuthenticationError
    if status == 404:
        return UnknownContact
    return PermanentError


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(response: httpx.Response, *, operation: str) -> WhatsAppError:
    """Build the error that an unsuccessful API answer stands for."""
    code: int | None = None
    title: str | None = None
    details: str | None = None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = first.get("code") if isinstance(first.get("code"), int) else None
            title = str(first["title"]) if first.get("title") is not None else None
            details = str(first["details"]) if first.get("details") is not None else None
        elif isinstance(body.get("error"), dict):  # Cloud API shape
            cloud = body["error"]
            code = cloud.get("code") if isinstance(cloud.get("code"), int) else None
            title = str(cloud.get("message", "")) or None
    cls = _class_for(response.status_code, code)
    summary = f"{operation} failed: HTTP {response.status_code}"
    if code is not None:
        summary += f", code {code}"
    if title:
        summary += f" ({title})"
    return cls(
        summary,
        status=response.status_code,
        code=code,
        title=title,
        details=details,
        retry_after_s=_retry_after(response),
    )
