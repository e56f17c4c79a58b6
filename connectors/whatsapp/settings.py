"""How to reach one sender: its API flavour, base URL, one auth mode, timeouts and retry bounds."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeAlias

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.masking import mask_url

AuthMode = Literal["login", "api_key", "bearer"]
Api = Literal["onprem"]
"""The API flavours a sender can speak; `connectors.whatsapp.open_sender` picks by it."""


class WhatsAppSettings(BaseModel):
    """One sender's settings; secrets are `SecretStr` so they never show in reprs or logs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api: Api = Field(default="onprem", description="API flavour: the v1 (On-Premises) API")
    base_url: str = Field(
        description="API root, e.g. https://waba.example.com", repr=False
    )  # it may carry credentials (https://user:password@host); `shown_url` masks them
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    token: SecretStr | None = None
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

    @model_validator(mode="after")
    def _one_auth_mode(self) -> WhatsAppSettings:
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

    @property
    def shown_url(self) -> str:
        """The base URL fit for messages and logs: credentials in it masked."""
        return mask_url(self.base_url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "base_url", self.shown_url
        yield from super().__repr_args__()

    @property
    def sender_id(self) -> str:
        """Which sender this is, stable across runs: `onprem:<host>[:port]` of the base URL
        (never its credentials, path or query)."""
        url = httpx.URL(self.base_url)
        host = f"[{url.host}]" if ":" in url.host else url.host
        return f"{self.api}:{host}" + (f":{url.port}" if url.port is not None else "")

    @property
    def auth_mode(self) -> AuthMode:
        """Which of the three auth modes these settings use."""
        if self.api_key is not None:
            return "api_key"
        if self.token is not None:
            return "bearer"
        return "login"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: object
    ) -> WhatsAppSettings:
        """Read `WHATSAPP_*` variables; `overrides` fill what the environment leaves unset."""
        env = os.environ if env is None else env
        values: dict[str, object] = dict(overrides)
        for field, var in (
            ("base_url", "WHATSAPP_API_URL"),
            ("username", "WHATSAPP_USERNAME"),
            ("password", "WHATSAPP_PASSWORD"),
            ("api_key", "WHATSAPP_API_KEY"),
            ("token", "WHATSAPP_TOKEN"),
        ):
            if env.get(var):
                values[field] = env[var]
        return cls.model_validate(values)


SenderSettings: TypeAlias = WhatsAppSettings
"""One sender's settings, whatever its flavour (a union discriminated by `api` once Cloud lands)."""
