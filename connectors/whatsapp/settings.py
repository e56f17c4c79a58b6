"""How to reach one sender: its API flavour, base URL, credentials, timeouts and retry bounds.

| variable | meaning |
|---|---|
| `WHATSAPP_API` | `onprem` (the v1 API, default) or `cloud`; anything else is refused |
| `WHATSAPP_API_URL` | the v1 server (`url1,url2`: a sender per server), or the Graph API base |
| `WHATSAPP_USERNAME` + `WHATSAPP_PASSWORD` | v1 login mode: Basic -> bearer token, refreshed |
| `WHATSAPP_API_KEY` | v1: a `D360-API-KEY` header (360dialog style) |
| `WHATSAPP_TOKEN` | a static bearer token (v1), the system-user access token (Cloud, required) |
| `WHATSAPP_GRAPH_VERSION` | Cloud: the Graph API version, default `v23.0` |
| `WHATSAPP_PHONE_NUMBER_ID` | Cloud, required: the phone number id; `id1,id2`: a sender per id |
| `WHATSAPP_WABA_ID` | Cloud, required: the WhatsApp Business Account id (template look-ups) |

Several v1 servers share the credentials; several Cloud phone number ids share the token and
the account (the Graph API base is e.g. `https://graph.facebook.com`). `WHATSAPP_APP_SECRET` (Cloud
webhook signatures) belongs to the receiver, not to a sender.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal, TypeAlias

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.masking import mask_url

AuthMode = Literal["login", "api_key", "bearer"]
Api = Literal["onprem", "cloud"]
"""The API flavours a sender can speak; `connectors.whatsapp.open_sender` picks by it."""
APIS: Final[tuple[Api, ...]] = ("onprem", "cloud")
MarketingRoute = Literal["auto", "messages"]

_GRAPH_ID = re.compile(r"[0-9]+")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")


def api_from_env(env: Mapping[str, str] | None = None) -> Api:
    """`WHATSAPP_API` (unset or empty: `onprem`); any other value than `onprem` or `cloud` is
    refused, naming the variable."""
    env = os.environ if env is None else env
    value = (env.get("WHATSAPP_API") or "onprem").strip().lower()
    for api in APIS:
        if value == api:
            return api
    raise ValueError(f"WHATSAPP_API={env.get('WHATSAPP_API')!r}; use onprem (v1) or cloud")


class WhatsAppSettings(BaseModel):
    """One sender's settings; secrets are `SecretStr` so they never show in reprs or logs, and a
    refusal never quotes what was given (it names the variable instead)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api: Api = Field(
        default="onprem", description="API flavour: onprem (the v1 API) or cloud (Cloud API)"
    )
    base_url: str = Field(
        description="API root, e.g. https://waba.example.com or https://graph.facebook.com",
        repr=False,
    )  # it may carry credentials (https://user:password@host); `shown_url` masks them
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    token: SecretStr | None = None
    graph_version: str = Field(default="v23.0", description="Cloud: Graph API version")
    phone_number_id: str | None = Field(
        default=None, description="Cloud: the sender's phone number id"
    )
    waba_id: str | None = Field(default=None, description="Cloud: the WhatsApp Business Account id")
    marketing_route: MarketingRoute = Field(
        default="auto",
        description="Cloud: auto sends MARKETING templates to /marketing_messages and every "
        "other category to /messages; messages sends all to /messages",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    write_timeout_s: float = Field(default=10.0, gt=0)
    pool_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    retry_after_max_s: float = Field(
        default=60.0, gt=0, description="cap on a Retry-After the API asks for (seconds)"
    )
    token_refresh_margin_s: float = Field(
        default=60.0, ge=0, description="log in again this long before the token expires, at most"
    )
    processing_deadline_s: float = Field(default=60.0, gt=0)
    verify_tls: bool = True

    @field_validator("graph_version")
    @classmethod
    def _version_form(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"WHATSAPP_GRAPH_VERSION={value!r}; use the form v23.0")
        return value

    @field_validator("phone_number_id", "waba_id")
    @classmethod
    def _graph_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _GRAPH_ID.fullmatch(value):
            var = (
                "WHATSAPP_PHONE_NUMBER_ID"
                if info.field_name == "phone_number_id"
                else ("WHATSAPP_WABA_ID")
            )
            raise ValueError(f"{var}={value!r} is not an id: digits, as WhatsApp Manager shows it")
        return value

    @model_validator(mode="after")
    def _credentials_fit_the_api(self) -> WhatsAppSettings:
        if self.api == "cloud":
            self._check_cloud()
            return self
        if self.phone_number_id is not None or self.waba_id is not None:
            raise ValueError(
                "WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_WABA_ID are Cloud API settings: set "
                "WHATSAPP_API=cloud, or unset them for the v1 API"
            )
        modes = [
            self.username is not None or self.password is not None,
            self.api_key is not None,
            self.token is not None,
        ]
        if sum(modes) != 1:
            raise ValueError(
                "WhatsApp auth: set exactly one of WHATSAPP_USERNAME + WHATSAPP_PASSWORD (login), "
                "WHATSAPP_API_KEY or WHATSAPP_TOKEN"
            )
        if modes[0] and (self.username is None or self.password is None):
            raise ValueError("WhatsApp login needs both WHATSAPP_USERNAME and WHATSAPP_PASSWORD")
        return self

    def _check_cloud(self) -> None:
        given = [
            var
            for var, value in (
                ("WHATSAPP_USERNAME", self.username),
                ("WHATSAPP_PASSWORD", self.password),
                ("WHATSAPP_API_KEY", self.api_key),
            )
            if value is not None
        ]
        if given:
            raise ValueError(
                f"the Cloud API (WHATSAPP_API=cloud) takes a bearer token only: unset "
                f"{' and '.join(given)} and set WHATSAPP_TOKEN"
            )
        missing = [
            var
            for var, value in (
                ("WHATSAPP_PHONE_NUMBER_ID", self.phone_number_id),
                ("WHATSAPP_WABA_ID", self.waba_id),
                ("WHATSAPP_TOKEN", self.token),
            )
            if value is None
        ]
        if missing:
            raise ValueError(f"the Cloud API (WHATSAPP_API=cloud) needs {', '.join(missing)}")

    @property
    def shown_url(self) -> str:
        """The base URL fit for messages and logs: credentials in it masked."""
        return mask_url(self.base_url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "base_url", self.shown_url
        yield from super().__repr_args__()

    @property
    def sender_id(self) -> str:
        """Which sender this is, stable across runs: `cloud:<phone_number_id>`, or
        `onprem:<host>[:port]` of the base URL (never its credentials, path or query)."""
        if self.api == "cloud":
            return f"cloud:{self.phone_number_id}"
        url = httpx.URL(self.base_url)
        host = f"[{url.host}]" if ":" in url.host else url.host
        return f"{self.api}:{host}" + (f":{url.port}" if url.port is not None else "")

    @property
    def auth_mode(self) -> AuthMode:
        """Which of the three auth modes these settings use (Cloud: always `bearer`)."""
        if self.api_key is not None:
            return "api_key"
        if self.token is not None:
            return "bearer"
        return "login"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: object
    ) -> WhatsAppSettings:
        """Read `WHATSAPP_*` variables; `overrides` fill what the environment leaves unset.
        With several Cloud phone number ids, the first one's sender (see `senders_from_env`)."""
        return senders_from_env(env, **overrides)[0]


_VARIABLES: Final[dict[Api, tuple[tuple[str, str], ...]]] = {
    "onprem": (
        ("base_url", "WHATSAPP_API_URL"),
        ("username", "WHATSAPP_USERNAME"),
        ("password", "WHATSAPP_PASSWORD"),
        ("api_key", "WHATSAPP_API_KEY"),
        ("token", "WHATSAPP_TOKEN"),
        ("phone_number_id", "WHATSAPP_PHONE_NUMBER_ID"),  # refused, naming it, unless cloud
        ("waba_id", "WHATSAPP_WABA_ID"),
    ),
    "cloud": (
        ("base_url", "WHATSAPP_API_URL"),
        ("username", "WHATSAPP_USERNAME"),  # refused, naming it: Cloud takes a token only
        ("password", "WHATSAPP_PASSWORD"),
        ("api_key", "WHATSAPP_API_KEY"),
        ("token", "WHATSAPP_TOKEN"),
        ("graph_version", "WHATSAPP_GRAPH_VERSION"),
        ("waba_id", "WHATSAPP_WABA_ID"),
    ),
}


def phone_number_ids(value: str) -> tuple[str, ...]:
    """The ids of a `WHATSAPP_PHONE_NUMBER_ID` list (commas, spaces around them ignored); an id
    that is not digits or is listed twice is refused, naming the variable."""
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    for index, phone_id in enumerate(ids):
        if not _GRAPH_ID.fullmatch(phone_id):
            raise ValueError(
                f"WHATSAPP_PHONE_NUMBER_ID={phone_id!r} is not an id: digits, as WhatsApp "
                "Manager shows it"
            )
        if phone_id in ids[:index]:
            raise ValueError(f"WHATSAPP_PHONE_NUMBER_ID lists {phone_id} twice")
    return ids


def senders_from_env(
    env: Mapping[str, str] | None = None, **overrides: object
) -> tuple[WhatsAppSettings, ...]:
    """Every sender the `WHATSAPP_*` variables describe: one per v1 server of `WHATSAPP_API_URL`
    (sharing the credentials), or one per Cloud phone number id (sharing the token); `overrides`
    fill what the environment leaves unset."""
    env = os.environ if env is None else env
    api = api_from_env(env)
    values: dict[str, object] = {**overrides, "api": api}
    for field, var in _VARIABLES[api]:
        if env.get(var):
            values[field] = env[var]
    if api == "onprem":
        urls = [u.strip() for u in str(values.get("base_url") or "").split(",") if u.strip()]
        if len(urls) > 1:
            return _distinct(
                tuple(WhatsAppSettings.model_validate({**values, "base_url": u}) for u in urls)
            )
        return (WhatsAppSettings.model_validate(values),)
    if not env.get("WHATSAPP_PHONE_NUMBER_ID"):
        return (WhatsAppSettings.model_validate(values),)
    ids = phone_number_ids(env["WHATSAPP_PHONE_NUMBER_ID"])
    if not ids:
        raise ValueError("WHATSAPP_PHONE_NUMBER_ID names no phone number id")
    return tuple(WhatsAppSettings.model_validate({**values, "phone_number_id": i}) for i in ids)


def _distinct(senders: tuple[WhatsAppSettings, ...]) -> tuple[WhatsAppSettings, ...]:
    """The senders, refused when two are one server (the same sender id)."""
    ids = [s.sender_id for s in senders]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"WHATSAPP_API_URL lists the server {twice[0]} twice")
    return senders


SenderSettings: TypeAlias = WhatsAppSettings
"""One sender's settings, whatever its flavour (`api` says which; the Cloud fields are checked
only for `cloud`)."""
