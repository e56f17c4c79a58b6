"""Masks for logs, artifacts and tables: passwords in URLs, secrets, phone numbers, DB errors.

Pure functions that never raise. `safe_error(exc)` is the one line to show for any exception:
database errors lose their SQL, parameters and DETAIL; every text loses URL passwords, secret
query parameters, given secret values and phone numbers (`+4917******89`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Final, ParamSpec, TypeVar
from urllib.parse import quote, unquote

from pydantic import BaseModel, SecretStr
from sqlalchemy import exc as sa_exc

from connectors.errors import StopRunError

MASK: Final = "***"
MAX_ERROR_CHARS: Final = 500
SECRET_PARAMETERS: Final = frozenset(
    {
        "password",
        "pass",
        "passwd",
        "pwd",
        "token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "access_token",
        "sslpassword",
    }
)
"""Query (and `key=value`) names whose values are masked, compared lowercased with `-` as `_`."""
_SECRET_SUFFIXES: Final = ("_password", "_token", "_secret", "_key", "_apikey")

# Bounds the scan for a password's end, so that odd text costs linear time, not quadratic.
_MAX_PASSWORD = 512
# The lookbehind keeps a long run of letters from being rescanned at every position.
_SCHEME = r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://"
_URL = re.compile(_SCHEME + r"[^\s'\"<>`]+")
# In free text a URL's password may hold quotes or "@": mask up to the last "@" before a space.
_USERINFO_IN_TEXT = re.compile(
    rf"({_SCHEME}[^\s:/@'\"]*:)[^\s]{{0,{_MAX_PASSWORD}}}?@(?=[^\s@]*(?:[\s'\"]|$))"
)
# Without "scheme://" (a mistyped URL): any `user:password@`.
_LOOSE_USERINFO = re.compile(rf"(?<![^\s:/@'\"])([^\s:/@'\"]*:)[^\s@]{{0,{_MAX_PASSWORD}}}@")
_PARAMETER = re.compile(r"(?<![^?&;#\s])(?P<key>[^?&;#=\s]+)=(?P<value>[^&;#\s]*)")
_KEY_VALUE = re.compile(
    r"(?<![\w.-])(?P<key>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>'[^']*'|\"[^\"]*\"|\S+)"
)
# `'password': 'x'` in a dict's repr, `"token": "x"` in JSON.
_QUOTED_PAIR = re.compile(r"(?P<q>['\"])(?P<key>[\w.-]+)(?P=q)\s*:\s*(?P<value>'[^']*'|\"[^\"]*\")")
# A run of 7+ digits, or a "+" number written with spaces, dashes or parentheses.
_PHONE = re.compile(r"\+?\d{7,}|\+\d(?:[ \-()]{1,2}\d|\d){6,}")
_DUPLICATE_ENTRY = re.compile(r"Duplicate entry '.*' for key")
_DB_MARKERS = ("[SQL:", "[parameters:", "(Background on this error at:")


class MaskedError(StopRunError):
    """An error reduced to its safe one-line text (see `sanitised`); the original is not kept."""


def mask_url(url: str) -> str:
    """`url` with the password of its userinfo and its secret-looking query values as `***`."""
    match = re.match(_SCHEME, url)
    if match is None:
        url = _LOOSE_USERINFO.sub(lambda m: m.group(1) + MASK + "@", url)
        return _mask_parameters(url, _KEY_VALUE)
    start = match.end()
    end = _userinfo_end(url, start, rfc=_is_web(url[: start - 3]))
    if end is not None:
        user, colon, _password = url[start:end].partition(":")
        if colon:
            url = f"{url[:start]}{user}:{MASK}{url[end:]}"
    split = _query_start(url)
    return url[:split] + _mask_parameters(url[split:], _PARAMETER)


def mask_phone(e164: str) -> str:
    """A number safe for logs and artifacts: the first 5 and last 2 characters, `+4917******89`."""
    if len(e164) <= 7:
        return "*" * len(e164)
    return e164[:5] + "*" * (len(e164) - 7) + e164[-2:]


def mask_phones_in(text: str) -> str:
    """`text` with every phone-like number (7+ digits, or a spaced `+` number) masked."""
    return _PHONE.sub(lambda m: _mask_digits(m.group()), text)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, URL passwords, secret parameters or phone numbers."""
    for secret in _secret_values(secrets):
        text = text.replace(secret, MASK)
    text = _USERINFO_IN_TEXT.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _URL.sub(lambda m: mask_url(m.group()), text)
    text = _mask_parameters(_mask_parameters(text, _KEY_VALUE), _QUOTED_PAIR)
    return mask_phones_in(text)


def safe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """One masked line naming `exc`; database errors keep only the driver's first line."""
    try:
        if _is_database_error(exc):
            name, message = _database_message(exc)
        else:
            name, message = type(exc).__name__, " ".join(_cut_sql(str(exc)).split())
        line = mask_text(message, secrets)
    except Exception:  # a broken __str__ must not hide the error it was meant to describe
        name, line = type(exc).__name__, ""
    text = f"{name}: {line}" if line else name
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def sanitised(exc: BaseException, secrets: Iterable[str] = ()) -> MaskedError:
    """A `MaskedError` holding only `safe_error(exc)`; raise it `from None` to drop the original."""
    return MaskedError(safe_error(exc, secrets))


P = ParamSpec("P")
R = TypeVar("R")
_OWN_PACKAGES: Final = ("connectors.", "tasks.", "flows.")


def secrets_in(values: Iterable[object]) -> list[str]:
    """The secret values among these arguments: `SecretStr`s, and those of pydantic models."""
    found: list[str] = []
    for value in values:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found.extend(secrets_in(getattr(value, name) for name in type(value).model_fields))
    return [secret for secret in found if secret]


def masked_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Let no error out of `function` carry a secret of its arguments, a URL password, SQL
    parameters or a phone number: database errors become a `MaskedError` with their class and
    first line, other foreign errors only when masking changes them; the project's own errors
    keep their class with secrets masked (their texts mask numbers where they are built)."""

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            secrets = secrets_in([*args, *kwargs.values()])
            if _is_database_error(exc):
                raise sanitised(exc, secrets) from None
            if type(exc).__module__.startswith(_OWN_PACKAGES):
                exc.args = tuple(_mask_credentials(a, secrets) for a in exc.args)
                raise
            text = str(exc)
            if mask_text(text, secrets) != text:
                raise sanitised(exc, secrets) from None
            raise

    return guarded


def _mask_credentials(value: object, secrets: Iterable[str]) -> object:
    """A text argument of an exception without secrets or URL passwords (numbers kept)."""
    if not isinstance(value, str):
        return value
    for secret in _secret_values(secrets):
        value = value.replace(secret, MASK)
    value = _USERINFO_IN_TEXT.sub(lambda m: m.group(1) + MASK + "@", value)
    return _URL.sub(lambda m: mask_url(m.group()), value)


# URLs ------------------------------------------------------------------------------------------


def _is_web(scheme: str) -> bool:
    return scheme.lower() in {"http", "https", "ws", "wss", "ftp", "ftps"}


def _userinfo_end(url: str, start: int, *, rfc: bool) -> int | None:
    """Index of the "@" ending the userinfo that starts at `start`, or None without one.

    Web URLs follow RFC 3986 (the authority ends at the first `/`, `?` or `#`). Database URLs
    follow SQLAlchemy, whose passwords may hold `/`, `?` or `#` unescaped; and since a password
    may hold an unescaped "@" too, the userinfo runs to the last "@" before the host ends: for
    a database URL, at the path's `/` (a `?` or `#` after an "@" may still be the password's,
    so masking errs towards hiding the host rather than showing part of a password).
    """
    first = url.find("@", start)
    if first < 0:
        return None
    if rfc and any(c in url[start:first] for c in "/?#"):
        return None
    host_end = len(url)
    for delimiter in "/?#" if rfc else "/":
        found = url.find(delimiter, first)
        if found >= 0:
            host_end = min(host_end, found)
    return url.rfind("@", start, host_end)


def _query_start(url: str) -> int:
    found = [i for i in (url.find("?"), url.find("#")) if i >= 0]
    return min(found) if found else len(url)


def _mask_parameters(text: str, pattern: re.Pattern[str]) -> str:
    def mask(match: re.Match[str]) -> str:
        if not _is_secret_name(match.group("key")):
            return match.group()
        return match.group()[: match.start("value") - match.start()] + MASK

    return pattern.sub(mask, text)


def _is_secret_name(key: str) -> bool:
    name = unquote(key).lower().replace("-", "_").rsplit(".", 1)[-1]
    return name in SECRET_PARAMETERS or name.endswith(_SECRET_SUFFIXES)


def _secret_values(secrets: Iterable[str]) -> list[str]:
    """The secrets, and the password of each secret that is a URL, longest first."""
    values: set[str] = set()
    for secret in secrets:
        if not secret or not secret.strip():
            continue
        values.update({secret, quote(secret, safe="")})
        match = re.match(_SCHEME, secret)
        end = _userinfo_end(secret, match.end(), rfc=False) if match else None
        if match and end is not None:
            password = secret[match.end() : end].partition(":")[2]
            values.update(p for p in (password, unquote(password)) if p)
    return sorted(values, key=len, reverse=True)


# Phone numbers ---------------------------------------------------------------------------------


def _mask_digits(number: str) -> str:
    """`mask_phone` on the digits (and "+") of `number`, its spaces and dashes kept in place."""
    compact = "".join(c for c in number if c.isdigit() or c == "+")
    masked = iter(mask_phone(compact))
    return "".join(next(masked) if c.isdigit() or c == "+" else c for c in number)


# Database errors -------------------------------------------------------------------------------


def _is_database_error(exc: BaseException) -> bool:
    """SQLAlchemy's statement errors, and DB-API driver errors (under its two base classes)."""
    if isinstance(exc, sa_exc.StatementError):
        return True
    return any(cls.__name__ in ("DatabaseError", "InterfaceError") for cls in type(exc).__mro__)


def _database_message(exc: BaseException) -> tuple[str, str]:
    """The class name (with the driver's, when it differs) and the first line of the message."""
    name = type(exc).__name__
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) else None
    if isinstance(orig, BaseException):
        driver = type(orig).__name__
        name = name if driver == name else f"{name} ({driver})"
        message = _driver_text(orig)
    else:
        message = _driver_text(exc)
    lines = _cut_sql(message).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return name, _DUPLICATE_ENTRY.sub(f"Duplicate entry '{MASK}' for key", first)


def _cut_sql(message: str) -> str:
    """`message` without SQLAlchemy's `[SQL: ...]`, `[parameters: ...]` and background link."""
    for marker in _DB_MARKERS:
        message = message.split(marker, 1)[0]
    return message


def _driver_text(exc: BaseException) -> str:
    """The driver's message; MySQL drivers' `(1062, "text")` args read as `1062 text`."""
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[0]} {args[1]}"
    return str(exc)
