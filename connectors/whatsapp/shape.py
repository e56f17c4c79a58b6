"""A template's components around its body (header, buttons) and the API's rules for the values a
send fills them with, defined once for the senders' checks and the sandboxes.

Both APIs describe a template the same way (Cloud lists it in the business account; a v1
campaign declares it): at most one header (TEXT with at most one parameter, or IMAGE, VIDEO,
DOCUMENT filled by a link), the body, and up to ten buttons addressed by their index. A send
fills a dynamic URL button's suffix and a COPY_CODE button's coupon (both required) and may
give a QUICK_REPLY button's payload; other buttons take nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

HeaderFormat = Literal["TEXT", "IMAGE", "VIDEO", "DOCUMENT"]
HEADER_FORMATS: Final[tuple[HeaderFormat, ...]] = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT")
MEDIA_FORMATS: Final[tuple[HeaderFormat, ...]] = ("IMAGE", "VIDEO", "DOCUMENT")
ButtonSubType = Literal["url", "quick_reply", "copy_code"]
BUTTON_SUB_TYPES: Final[tuple[ButtonSubType, ...]] = ("url", "quick_reply", "copy_code")

MAX_BUTTONS: Final = 10
MAX_HEADER_TEXT: Final = 60
"""A TEXT header's characters: its parameter can never be longer (the filled header is checked
by the API)."""
MAX_COUPON_CODE: Final = 15
MAX_URL: Final = 2000
MAX_PAYLOAD: Final = 1024
MAX_FILENAME: Final = 240

BAD_SPACING: Final = re.compile(r"[\n\t]| {5,}")
"""What the API refuses in parameter text: a newline, a tab, more than 4 spaces in a row."""

# RFC 3986: unreserved and reserved characters, and `%` starting a two-digit escape.
_URL_CHARS: Final = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


@dataclass(frozen=True, slots=True)
class ButtonShape:
    """One button of a template: its type as the template lists it (URL, QUICK_REPLY, COPY_CODE,
    PHONE_NUMBER, OTP, ...) and, for URL, whether its address ends in a `{{1}}` suffix."""

    type: str
    dynamic: bool = False

    @property
    def sub_type(self) -> ButtonSubType | None:
        """The `sub_type` a send addresses this button with; None: a send gives it nothing."""
        if self.type == "URL" and self.dynamic:
            return "url"
        if self.type == "QUICK_REPLY":
            return "quick_reply"
        if self.type == "COPY_CODE":
            return "copy_code"
        return None

    @property
    def required(self) -> bool:
        """True when every send must fill it (a URL suffix, a coupon code)."""
        return self.sub_type in ("url", "copy_code")


@dataclass(frozen=True, slots=True)
class TemplateShape:
    """A template's header and buttons; `header_params` are a TEXT header's parameter names
    (NAMED) or numbers (POSITIONAL), at most one."""

    header: HeaderFormat | None = None
    header_params: tuple[str, ...] = ()
    buttons: tuple[ButtonShape, ...] = ()

    @property
    def header_takes_parameter(self) -> bool:
        """True when every send must fill the header: media, or TEXT with a placeholder."""
        return self.header in MEDIA_FORMATS or (self.header == "TEXT" and bool(self.header_params))

    def describe(self) -> str:
        """The components in words, for refusals: `IMAGE header, buttons 0 URL (dynamic)`."""
        header = "no header" if self.header is None else f"{self.header} header"
        if self.header == "TEXT":
            header += f" with {len(self.header_params)} parameter(s)"
        if not self.buttons:
            return f"{header}, no buttons"
        buttons = ", ".join(
            f"{i} {b.type}{' (dynamic)' if b.dynamic else ''}" for i, b in enumerate(self.buttons)
        )
        return f"{header}, buttons {buttons}"


def https_link_problem(link: str) -> str | None:
    """Why `link` cannot be a media header's link (an absolute `https://` URL), None if it can."""
    if len(link) > MAX_URL:
        return f"has {len(link)} characters; at most {MAX_URL}"
    if not _URL_CHARS.fullmatch(link):
        return "holds characters a URL cannot carry (spaces, quotes, non-ASCII: percent-encode)"
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:  # urlsplit refuses an unbalanced `[` or `]`: a refusal, not a crash
        return "is not a URL (an unbalanced [ or ] in its host)"
    if parts.scheme.lower() != "https" or not host:
        return "is not an https:// URL with a host"
    return None


def url_suffix_problem(suffix: str) -> str | None:
    """Why `suffix` cannot end a URL button's address, None if it can."""
    if not suffix:
        return "is empty"
    if len(suffix) > MAX_URL:
        return f"has {len(suffix)} characters; at most {MAX_URL}"
    if not _URL_CHARS.fullmatch(suffix):
        return "holds characters a URL cannot carry (spaces, quotes, non-ASCII: percent-encode)"
    return None


def coupon_problem(code: str) -> str | None:
    """Why `code` cannot be a COPY_CODE button's coupon, None if it can."""
    if not code:
        return "is empty"
    if len(code) > MAX_COUPON_CODE:
        return f"has {len(code)} characters; at most {MAX_COUPON_CODE}"
    return None


def payload_problem(payload: str) -> str | None:
    """Why `payload` cannot be a QUICK_REPLY button's payload, None if it can."""
    if not payload:
        return "is empty"
    if len(payload) > MAX_PAYLOAD:
        return f"has {len(payload)} characters; at most {MAX_PAYLOAD}"
    return None


def header_text_problem(text: str) -> str | None:
    """Why `text` cannot fill a TEXT header's parameter, None if it can."""
    if not text.strip():
        return "is empty"
    if len(text) > MAX_HEADER_TEXT:
        return f"has {len(text)} characters; a header has at most {MAX_HEADER_TEXT}"
    if BAD_SPACING.search(text):
        return "holds a newline, a tab or more than 4 spaces in a row"
    return None


def filename_problem(name: str) -> str | None:
    """Why `name` cannot be a document header's file name, None if it can."""
    if not name.strip():
        return "is empty"
    if len(name) > MAX_FILENAME:
        return f"has {len(name)} characters; at most {MAX_FILENAME}"
    if re.search(r"[\x00-\x1f/\\]", name):
        return "holds a control character or a path separator"
    return None


BUTTON_PARAMETER: Final[Mapping[ButtonSubType, str]] = {
    "url": "text",
    "quick_reply": "payload",
    "copy_code": "coupon_code",
}
"""The parameter `type` (and key) a send fills each kind of button with."""

BUTTON_VALUE_PROBLEM: Final[Mapping[ButtonSubType, Callable[[str], str | None]]] = {
    "url": url_suffix_problem,
    "quick_reply": payload_problem,
    "copy_code": coupon_problem,
}
"""Why a value cannot fill each kind of button (None: it can)."""

NO_SHAPE: Final = TemplateShape()
"""A template with neither header nor buttons."""
