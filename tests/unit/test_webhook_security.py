"""Cloud API signatures (`X-Hub-Signature-256`) and the v1 token, by path or Basic password."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.webhooks.security import basic_password, sign, signature_valid, token_matches

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
SECRET = SecretStr("app-secret")
BODY = (FIXTURES / "cloud_statuses.json").read_bytes()


def test_a_signed_body_verifies() -> None:
    header = sign(BODY, SECRET)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_valid(BODY, header, SECRET)
    assert signature_valid(BODY, header.upper().replace("SHA256=", "sha256="), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        sign(BODY, SecretStr("another-secret")),
        sign(BODY + b" ", SECRET),
        "sha256=é",
    ],
)
def test_missing_or_forged_signatures_fail(header: str | None) -> None:
    assert not signature_valid(BODY, header, SECRET)


def test_no_app_secret_means_no_signature_is_valid() -> None:
    assert not signature_valid(BODY, sign(BODY, SECRET), None)


def test_token_and_basic_password() -> None:
    token = SecretStr("t0ken")
    assert token_matches("t0ken", token)
    assert not token_matches("t0ken ", token)
    assert not token_matches(None, token)
    assert not token_matches("t0ken", None)
    encoded = base64.b64encode(b"provider:t0ken").decode()
    assert basic_password(f"Basic {encoded}") == "t0ken"
    assert basic_password("Bearer t0ken") is None
    assert basic_password("Basic not-base64!") is None
    assert basic_password(None) is None
