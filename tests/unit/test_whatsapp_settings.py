"""One sender's settings: one auth mode, and a stable id that never shows a secret."""

from __future__ import annotations

import pytest

from connectors.settings import Connections
from connectors.whatsapp import WhatsAppSettings


def test_settings_refuse_two_auth_modes_and_say_which_variables() -> None:
    with pytest.raises(ValueError, match="WHATSAPP_API_KEY"):
        WhatsAppSettings(base_url="http://x", api_key="k", token="t")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "sender_id"),
    [
        ("http://127.0.0.1:8080", "onprem:127.0.0.1:8080"),
        ("https://user:s3cret@WABA.example.com/base?key=abc", "onprem:waba.example.com"),
        ("https://waba.example.com:443/", "onprem:waba.example.com"),
        ("http://[::1]:9000", "onprem:[::1]:9000"),
    ],
)
def test_the_sender_id_is_the_servers_host_and_port_without_secrets(
    base_url: str, sender_id: str
) -> None:
    settings = WhatsAppSettings(base_url=base_url, api_key="k")  # type: ignore[arg-type]
    assert settings.api == "onprem"
    assert settings.sender_id == sender_id


def test_connections_hold_one_sender_from_the_environment_or_none() -> None:
    env = {"WHATSAPP_API_URL": "https://waba.example.com", "WHATSAPP_TOKEN": "t0ken"}
    configured = Connections.from_env(env)
    assert [s.sender_id for s in configured.senders] == ["onprem:waba.example.com"]
    assert configured.whatsapp == configured.senders[0]
    embedded = Connections.from_env({})
    assert embedded.senders == () and embedded.whatsapp is None
