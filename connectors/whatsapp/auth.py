"""httpx auth for the three modes: login (Basic → bearer, refreshed), API key and static bearer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from datetime import datetime

import httpx
from pydantic import SecretStr

from connectors.whatsapp.errors import AuthenticationError, error_from_response
from connectors.whatsapp.settings import WhatsAppSettings

LOGIN_PATH = "/v1/users/login"


class HeaderAuth(httpx.Auth):
    """Adds one fixed secret header (API key or static bearer token) to every request."""

    def __init__(self, name: str, value: SecretStr) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value.get_secret_value()
        yield request


class LoginAuth(httpx.Auth):
    """Logs in with Basic auth and sends the bearer; refreshes it before expiry and once on 401."""

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
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.logins = 0

    def __repr__(self) -> str:
        return "LoginAuth(<credentials hidden>)"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise NotImplementedError("the WhatsApp client is async: use httpx.AsyncClient")

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at - self._refresh_margin_s

    def _login_request(self) -> httpx.Request:
        request = httpx.Request("POST", self._login_url, json={})
        return next(self._basic.auth_flow(request))

    async def _store(self, response: httpx.Response) -> None:
        await response.aread()
        if response.status_code != 200:
            error = error_from_response(response, operation="login")
            raise AuthenticationError(
                f"login refused: HTTP {response.status_code}; check WHATSAPP_USERNAME and "
                "WHATSAPP_PASSWORD",
                status=response.status_code,
                code=error.code,
                title=error.title,
            )
        try:
            user = response.json()["users"][0]
            token = str(user["token"])
            expires = datetime.fromisoformat(str(user["expires_after"])).timestamp()
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AuthenticationError("login answer has no token/expires_after") from exc
        self._token, self._expires_at = token, expires
        self.logins += 1

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._store((yield self._login_request()))
        used = self._token
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token == used:  # nobody refreshed it meanwhile
                await self._store((yield self._login_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def auth_for(settings: WhatsAppSettings) -> httpx.Auth:
    """The httpx auth that these settings call for."""
    if settings.api_key is not None:
        return HeaderAuth("D360-API-KEY", settings.api_key)
    if settings.token is not None:
        return HeaderAuth("Authorization", SecretStr(f"Bearer {settings.token.get_secret_value()}"))
    assert settings.username is not None and settings.password is not None
    return LoginAuth(
        base_url=settings.base_url, username=settings.username, password=settings.password
    )
