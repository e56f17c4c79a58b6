"""Before anything runs: can this run reach its CRM, its warehouse and the WhatsApp API?"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import create_engine, text

from connectors.settings import mask_url
from connectors.whatsapp.auth import LoginAuth, auth_for
from connectors.whatsapp.settings import WhatsAppSettings


class UnreachableError(RuntimeError):
    """A service the run needs cannot be reached; the message names which and where."""


def check_database(kind: str, url: str) -> None:
    """Open a connection and run `SELECT 1`, within the driver's connect timeout."""
    engine = create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same thing here
        cause = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise UnreachableError(f"{kind} unreachable at {mask_url(url)}: {cause}") from None
    finally:
        engine.dispose()


async def _check_api(settings: WhatsAppSettings) -> None:
    timeout = httpx.Timeout(settings.connect_timeout_s, read=settings.read_timeout_s)
    async with httpx.AsyncClient(timeout=timeout, verify=settings.verify_tls) as http:
        auth = auth_for(settings)
        # In login mode the auth flow logs in first: that proves the credentials too.
        await http.get(
            settings.base_url.rstrip("/") + "/v1/health",
            auth=auth if isinstance(auth, LoginAuth) else None,
        )


def check_api(settings: WhatsAppSettings) -> None:
    """Reach the API (and log in, in login mode) before any number is checked or sent."""
    try:
        asyncio.run(_check_api(settings))
    except httpx.TransportError as exc:
        raise UnreachableError(
            f"WhatsApp API unreachable at {settings.base_url}: {type(exc).__name__}"
        ) from None
