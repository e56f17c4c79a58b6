"""Credentials for the three modes: login (Basic → bearer, refreshed), API key and static bearer.

The client asks for the headers before each call (`await auth.headers(http)`) and tells the auth
when a call answered 401 (`await auth.renew(http, used)`). A login is a call of its own, made before
the message request is written: when it fails, nothing was sent, so it is a transient error
(`NetworkError`, `RateLimited`, `ServerError`) or `AuthenticationError`, never `OutcomeUnknown`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import httpx
from pydantic import SecretStr

from connectors.whatsapp.answers import error_from_response
from connectors.whatsapp.errors import (
    AuthenticationError,
    NetworkError,
    UnexpectedError,
)
from connectors.whatsapp.settings import WhatsAppSettings

LOGIN_PATH = "/v1/users/login"

# With a short-lived token the configured margin would mean a login per call: keep at least
# three quarters of the token's observed lifetime in use.
LIFETIME_SHARE_AS_MARGIN = 0.25


class ApiAuth(Protocol):
    """What the client needs from a credential mode."""

    setting: str
    """The environment variables that hold these credentials, for error messages."""

    async def headers(self, http: httpx.AsyncClient) -> Mapping[str, str]:
        """The headers that authenticate the next call (logging in first when needed)."""
        ...

    async def renew(self, http: httpx.AsyncClient, used: Mapping[str, str]) -> bool:
        """After a 401 to a call made with `used`: True when new credentials are worth one retry."""
        ...


class HeaderAuth:
    """One fixed secret header (API key or static bearer token) on every call."""

    def __init__(self, name: str, value: SecretStr, *, setting: str) -> None:
        self._name = name
        self._value = value
        self.setting = setting

    def __repr__(self) -> str:
        return f"HeaderAuth({self._name}: <hidden>)"

    async def headers(self, http: httpx.AsyncClient) -> Mapping[str, str]:
        """The fixed header."""
        return {self._name: self._value.get_secret_value()}

    async def renew(self, http: httpx.AsyncClient, used: Mapping[str, str]) -> bool:
        """A fixed secret cannot be renewed: a 401 is final."""
        return False


class LoginAuth:
    """Logs in with Basic auth for a bearer token; renews it before expiry and once after a 401.

    It renews `refresh_margin_s` before expiry, or a quarter of the token's observed lifetime when
    that is shorter (a 4 s token with a 60 s margin would mean a login per call).
    """

    setting = "WHATSAPP_USERNAME and WHATSAPP_PASSWORD"

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: SecretStr,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._login_url = base_url.rstrip("/") + LOGIN_PATH
        self._basic = httpx.BasicAuth(username, password.get_secret_value())
        self._refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0

    def __repr__(self) -> str:
        return "LoginAuth(<credentials hidden>)"

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._renew_at

    async def headers(self, http: httpx.AsyncClient) -> Mapping[str, str]:
        """The bearer header, after a login when the token is missing or about to expire."""
        return {"Authorization": f"Bearer {await self.ensure_token(http)}"}

    async def ensure_token(self, http: httpx.AsyncClient) -> str:
        """A token with time left, logging in (once for all waiting callers) when needed."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._login(http)
        assert self._token is not None
        return self._token

    async def renew(self, http: httpx.AsyncClient, used: Mapping[str, str]) -> bool:
        """Log in again after a 401, unless another caller already did since `used` was sent."""
        async with self._lock:
            if used.get("Authorization") == f"Bearer {self._token}":
                self._token = None
                await self._login(http)
        return True

    async def _login(self, http: httpx.AsyncClient) -> None:
        started = self._clock()
        try:
            response = await http.post(self._login_url, json={}, auth=self._basic)
        except httpx.TransportError as exc:
            raise NetworkError(f"login: {type(exc).__name__}; nothing was sent") from exc
        if response.status_code != 200:
            error = error_from_response(response, operation="login", now=started)
            if response.status_code in (401, 403) or isinstance(error, AuthenticationError):
                raise AuthenticationError(
                    f"login refused: HTTP {response.status_code}"
                    + (f", code {error.code}" if error.code is not None else "")
                    + f"; check {self.setting}",
                    status=response.status_code,
                    code=error.code,
                    title=error.title,
                    details=error.details,
                )
            raise error
        try:
            user = response.json()["users"][0]
            token = str(user["token"])
            expires = datetime.fromisoformat(str(user["expires_after"]))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UnexpectedError(
                "login answered 200 without users[0].token and expires_after; is the URL a "
                "WhatsApp v1 API?",
                status=200,
            ) from exc
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        expires_at = expires.timestamp()
        lifetime = expires_at - started
        # A token already expired by our clock: the clocks disagree; rely on the server's 401.
        margin = min(self._refresh_margin_s, lifetime * LIFETIME_SHARE_AS_MARGIN)
        self._token = token
        self._renew_at = expires_at - margin if lifetime > 0 else math.inf
        self.logins += 1


def auth_for(settings: WhatsAppSettings, *, clock: Callable[[], float] = time.time) -> ApiAuth:
    """The credentials that these settings call for."""
    if settings.api_key is not None:
        return HeaderAuth("D360-API-KEY", settings.api_key, setting="WHATSAPP_API_KEY")
    if settings.token is not None:
        bearer = SecretStr(f"Bearer {settings.token.get_secret_value()}")
        return HeaderAuth("Authorization", bearer, setting="WHATSAPP_TOKEN")
    assert settings.username is not None and settings.password is not None
    return LoginAuth(
        base_url=settings.base_url,
        username=settings.username,
        password=settings.password,
        refresh_margin_s=settings.token_refresh_margin_s,
        clock=clock,
    )
