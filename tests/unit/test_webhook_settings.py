"""Receiver settings from the environment: secrets kept out of reprs, opt-out keywords replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.webhooks.keywords import DEFAULT_OPT_OUT_KEYWORDS, keyword_index, matched_keyword
from connectors.webhooks.settings import ReceiverSettings


def test_settings_from_env_keep_secrets_out_of_reprs(tmp_path: Path) -> None:
    env = {
        "WA_DATA_DIR": str(tmp_path),
        "WEBHOOK_TOKEN": "tok-123",
        "WHATSAPP_APP_SECRET": "sec-456",
        "WEBHOOK_MAX_BODY_BYTES": "2048",
        "WEBHOOK_TOKEN_VIA": "basic",
    }
    settings = ReceiverSettings.from_env(env)
    assert settings.warehouse_url.get_secret_value() == f"sqlite:///{tmp_path}/warehouse.sqlite"
    assert (settings.max_body_bytes, settings.token_via) == (2048, "basic")
    assert settings.linger_s == 0.025  # the default
    assert ReceiverSettings.from_env({**env, "WEBHOOK_LINGER_MS": "0"}).linger_s == 0
    assert settings.opt_out_keywords == DEFAULT_OPT_OUT_KEYWORDS
    assert "tok-123" not in repr(settings) and "sec-456" not in repr(settings)
    with pytest.raises(ValueError, match="WEBHOOK_TOKEN_VIA"):
        ReceiverSettings.from_env({**env, "WEBHOOK_TOKEN_VIA": "query"})


def test_configured_keywords_replace_the_defaults() -> None:
    settings = ReceiverSettings.from_env({"WA_OPT_OUT_KEYWORDS": "halt, Genug ,,"})
    index = keyword_index(settings.opt_out_keywords)
    assert matched_keyword("HALT!", index) == "halt"
    assert matched_keyword("genug", index) == "Genug"
    assert matched_keyword("stop", index) is None
