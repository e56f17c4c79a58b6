"""Receiver settings, read from the environment: warehouse, secrets, body limit, opt-out words.

| variable | default | meaning |
|---|---|---|
| `WAREHOUSE_DATABASE_URL` | the embedded SQLite warehouse | where events are written |
| `WEBHOOK_TOKEN` | unset: v1 posts and the Cloud handshake refused | shared secret of v1 posts |
| `WEBHOOK_TOKEN_VIA` | `both` | `path` (`/webhooks/v1/{token}`), `basic` (password), `both` |
| `WHATSAPP_APP_SECRET` | unset: Cloud API posts are refused | HMAC key of `X-Hub-Signature-256` |
| `WEBHOOK_MAX_BODY_BYTES` | 1048576 | larger bodies are answered 413 |
| `WEBHOOK_LINGER_MS` | 25 | a warehouse transaction starts at most this often (group commit) |
| `WA_OPT_OUT_KEYWORDS` | `keywords.DEFAULT_OPT_OUT_KEYWORDS` | comma list of opt-out replies |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.settings import Connections
from connectors.webhooks.keywords import DEFAULT_OPT_OUT_KEYWORDS

TokenVia = Literal["path", "basic", "both"]
MIB = 1024 * 1024
DEFAULT_LINGER_S = 0.025
"""Requests arriving within 25 ms of a transaction's start join the next one: at thousands of
events/s, dozens of events per transaction instead of a few, for 25 ms more latency at most."""
_TOKEN_VIA: dict[str, TokenVia] = {"path": "path", "basic": "basic", "both": "both"}


class ReceiverSettings(BaseModel):
    """Everything a receiver is started with; secrets stay SecretStr and never reach a log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse_url: SecretStr
    token: SecretStr | None = None
    token_via: TokenVia = "both"
    app_secret: SecretStr | None = None
    cloud: bool = True
    """Cloud API webhooks are expected: a start without `app_secret` warns (the v1 demo: False)."""
    max_body_bytes: int = Field(default=MIB, gt=0)
    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT_KEYWORDS
    max_batch_events: int = Field(default=5000, gt=0)
    """Events per warehouse transaction at most (requests waiting meanwhile form the next one)."""
    max_queued_events: int = Field(default=200_000, gt=0)
    """Events waiting for the writer beyond which requests get 503 (the provider retries)."""
    linger_s: float = Field(default=DEFAULT_LINGER_S, ge=0)
    """Seconds between transaction starts at least, unless `max_batch_events` wait."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReceiverSettings:
        """Read the variables in this module's table; unset means the default."""
        env = os.environ if env is None else env
        keywords = env.get("WA_OPT_OUT_KEYWORDS")
        via = env.get("WEBHOOK_TOKEN_VIA") or "both"
        if via not in _TOKEN_VIA:
            raise ValueError(f"WEBHOOK_TOKEN_VIA={via!r}; use path, basic or both")
        limit = env.get("WEBHOOK_MAX_BODY_BYTES")
        linger = env.get("WEBHOOK_LINGER_MS")
        return cls(
            warehouse_url=Connections.from_env(env).warehouse_url,
            token=SecretStr(env["WEBHOOK_TOKEN"]) if env.get("WEBHOOK_TOKEN") else None,
            token_via=_TOKEN_VIA[via],
            app_secret=(
                SecretStr(env["WHATSAPP_APP_SECRET"]) if env.get("WHATSAPP_APP_SECRET") else None
            ),
            max_body_bytes=int(limit) if limit else MIB,
            linger_s=float(linger) / 1000 if linger else DEFAULT_LINGER_S,
            opt_out_keywords=(
                tuple(k.strip() for k in keywords.split(",") if k.strip())
                if keywords
                else DEFAULT_OPT_OUT_KEYWORDS
            ),
        )
