"""Who may post: the shared token (path or HTTP Basic password) and Cloud API body signatures."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(body: bytes, secret: SecretStr) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`: `sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def signature_valid(body: bytes, header: str | None, secret: SecretStr | None) -> bool:
    """True when `header` is the body's signature under `secret` (compared in constant time)."""
    if secret is None or header is None or not header.startswith(_PREFIX):
        return False
    expected = sign(body, secret).encode()
    return hmac.compare_digest(expected, header.strip().lower().encode("ascii", "replace"))


def token_matches(given: str | None, expected: SecretStr | None) -> bool:
    """True when a presented token equals the configured one (constant time); none set: False."""
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def basic_password(authorization: str | None) -> str | None:
    """The password of an `Authorization: Basic` header, or None when there is none."""
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None
