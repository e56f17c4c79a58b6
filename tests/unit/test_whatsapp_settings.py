"""One sender's settings: the API flavour, one auth mode (Cloud: a token and its ids), a stable
id that never shows a secret, and the variables they are read from."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.settings import Connections
from connectors.whatsapp import WhatsAppSettings
from connectors.whatsapp.settings import api_from_env, senders_from_env


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


CLOUD_ENV = {
    "WHATSAPP_API": "cloud",
    "WHATSAPP_API_URL": "https://graph.facebook.com",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_WABA_ID": "102290129340398",
    "WHATSAPP_TOKEN": "EAAG-system-user-token",
}


def test_whatsapp_api_is_onprem_unless_it_says_cloud() -> None:
    assert api_from_env({}) == "onprem"
    assert api_from_env({"WHATSAPP_API": ""}) == "onprem"
    assert api_from_env({"WHATSAPP_API": "onprem"}) == "onprem"
    assert api_from_env({"WHATSAPP_API": " Cloud "}) == "cloud"


@pytest.mark.parametrize("value", ["v2", "graph", "on-prem", "cloud-api"])
def test_any_other_whatsapp_api_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="WHATSAPP_API") as caught:
        Connections.from_env({"WHATSAPP_API": value})
    assert repr(value) in str(caught.value) and "onprem" in str(caught.value)


def test_cloud_settings_are_read_from_every_variable() -> None:
    env = {**CLOUD_ENV, "WHATSAPP_GRAPH_VERSION": "v24.0", "WHATSAPP_APP_SECRET": "receivers"}
    settings = WhatsAppSettings.from_env(env)
    assert settings.api == "cloud" and settings.base_url == "https://graph.facebook.com"
    assert (settings.graph_version, settings.phone_number_id, settings.waba_id) == (
        "v24.0",
        "106540352242922",
        "102290129340398",
    )
    assert settings.token is not None
    assert settings.token.get_secret_value() == "EAAG-system-user-token"
    assert settings.auth_mode == "bearer" and settings.marketing_route == "auto"
    assert settings.sender_id == "cloud:106540352242922"
    assert "EAAG-system-user-token" not in repr(settings)


def test_cloud_defaults_to_graph_v23_and_needs_no_app_secret() -> None:
    settings = WhatsAppSettings.from_env(CLOUD_ENV)
    assert settings.graph_version == "v23.0"


@pytest.mark.parametrize(
    "missing", ["WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_WABA_ID", "WHATSAPP_TOKEN"]
)
def test_cloud_refuses_to_start_without_its_ids_and_token_naming_them(missing: str) -> None:
    env = {k: v for k, v in CLOUD_ENV.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        Connections.from_env(env)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"WHATSAPP_API_KEY": "k"}, "WHATSAPP_API_KEY"),
        ({"WHATSAPP_USERNAME": "admin"}, "WHATSAPP_USERNAME"),
        ({"WHATSAPP_USERNAME": "admin", "WHATSAPP_PASSWORD": "pw"}, "WHATSAPP_PASSWORD"),
    ],
)
def test_cloud_refuses_v1_credentials_naming_them(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        WhatsAppSettings.from_env({**CLOUD_ENV, **extra})
    assert "pw" not in str(caught.value).replace("WHATSAPP_PASSWORD", "")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WHATSAPP_GRAPH_VERSION", "23.0"),
        ("WHATSAPP_GRAPH_VERSION", "latest"),
        ("WHATSAPP_PHONE_NUMBER_ID", "+15550783881"),
        ("WHATSAPP_PHONE_NUMBER_ID", "1065,1065"),
        ("WHATSAPP_PHONE_NUMBER_ID", " , "),
        ("WHATSAPP_WABA_ID", "acme"),
    ],
)
def test_malformed_cloud_values_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Connections.from_env({**CLOUD_ENV, variable: value})


def test_v1_refuses_cloud_ids_naming_them_and_the_switch() -> None:
    env = {
        "WHATSAPP_API_URL": "https://waba.example.com",
        "WHATSAPP_TOKEN": "t",
        "WHATSAPP_WABA_ID": "102290129340398",
    }
    with pytest.raises(ValueError, match="WHATSAPP_WABA_ID") as caught:
        Connections.from_env(env)
    assert "WHATSAPP_API=cloud" in str(caught.value)


def test_v1_ignores_the_cloud_only_graph_version_and_app_secret() -> None:
    env = {
        "WHATSAPP_API_URL": "https://waba.example.com",
        "WHATSAPP_API_KEY": "k",
        "WHATSAPP_GRAPH_VERSION": "v24.0",
        "WHATSAPP_APP_SECRET": "s",
    }
    (sender,) = Connections.from_env(env).senders
    assert sender.api == "onprem" and sender.sender_id == "onprem:waba.example.com"


def test_several_phone_number_ids_make_one_sender_each_sharing_the_token() -> None:
    env = {**CLOUD_ENV, "WHATSAPP_PHONE_NUMBER_ID": "1065, 2077,3088"}
    connections = Connections.from_env(env)
    assert connections.api == "cloud"
    assert [s.sender_id for s in connections.senders] == ["cloud:1065", "cloud:2077", "cloud:3088"]
    assert {s.token.get_secret_value() for s in connections.senders if s.token} == {
        "EAAG-system-user-token"
    }
    assert {s.waba_id for s in connections.senders} == {"102290129340398"}
    assert connections.whatsapp == connections.senders[0]
    assert WhatsAppSettings.from_env(env).sender_id == "cloud:1065"
    assert [s.sender_id for s in senders_from_env(env)] == [
        "cloud:1065",
        "cloud:2077",
        "cloud:3088",
    ]


def test_several_v1_servers_make_one_sender_each_sharing_the_credentials() -> None:
    env = {
        "WHATSAPP_API_URL": "https://wa1.example.com, https://wa2.example.com:8443",
        "WHATSAPP_USERNAME": "admin",
        "WHATSAPP_PASSWORD": "pw",
    }
    senders = senders_from_env(env)
    assert [s.sender_id for s in senders] == [
        "onprem:wa1.example.com",
        "onprem:wa2.example.com:8443",
    ]
    assert {s.username for s in senders} == {"admin"}
    twice = {**env, "WHATSAPP_API_URL": "https://wa1.example.com,https://wa1.example.com/"}
    with pytest.raises(ValueError, match=r"lists the server onprem:wa1\.example\.com twice"):
        senders_from_env(twice)


def test_the_api_is_read_without_a_url_so_the_flow_can_embed_that_sandbox() -> None:
    embedded = Connections.from_env({"WHATSAPP_API": "cloud"})
    assert embedded.api == "cloud" and embedded.senders == () and embedded.whatsapp is None
    assert Connections.from_env({}).api == "onprem"


def test_connections_refuse_senders_of_another_api() -> None:
    v1 = WhatsAppSettings(base_url="http://x", api_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WHATSAPP_API=cloud"):
        Connections(
            crm_url="sqlite://",  # type: ignore[arg-type]
            warehouse_url="sqlite://",  # type: ignore[arg-type]
            api="cloud",
            senders=(v1,),
            data_dir=Path("."),
        )


@pytest.mark.parametrize(("route", "accepted"), [("auto", True), ("messages", True), ("x", False)])
def test_the_marketing_route_is_auto_or_messages(route: str, accepted: bool) -> None:
    values = {
        "api": "cloud",
        "base_url": "https://graph.facebook.com",
        "phone_number_id": "1",
        "waba_id": "2",
        "token": "t",
        "marketing_route": route,
    }
    if accepted:
        assert WhatsAppSettings.model_validate(values).marketing_route == route
    else:
        with pytest.raises(ValueError, match="marketing_route"):
            WhatsAppSettings.model_validate(values)


@pytest.mark.parametrize(
    "env",
    [
        {**CLOUD_ENV, "WHATSAPP_PASSWORD": "pw-SECRET-1"},
        {**CLOUD_ENV, "WHATSAPP_API_KEY": "key-SECRET-2", "WHATSAPP_WABA_ID": ""},
        {
            "WHATSAPP_API_URL": "https://w",
            "WHATSAPP_PASSWORD": "pw-SECRET-3",
            "WHATSAPP_TOKEN": "x",
        },
        {
            "WHATSAPP_API_URL": "https://w",
            "WHATSAPP_API_KEY": "key-SECRET-4",
            "WHATSAPP_WABA_ID": "1",
        },
    ],
)
def test_a_refusal_never_quotes_a_secret(env: dict[str, str]) -> None:
    with pytest.raises(ValueError) as caught:
        Connections.from_env(env)
    assert "SECRET" not in str(caught.value) and "WHATSAPP_" in str(caught.value)
