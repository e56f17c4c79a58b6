"""Before anything runs: can this run reach its CRM, its warehouse and the WhatsApp API, and does
the API take its credentials (and, on Cloud, know its phone number)?"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import create_engine, text

from connectors.errors import TransientError
from connectors.masking import mask_url, safe_error
from connectors.whatsapp import PhoneFacts, TemplateDirectory, WhatsAppSettings, open_sender
from connectors.whatsapp.errors import AuthenticationError, NetworkError, WhatsAppError
from connectors.whatsapp.onprem.client import HEALTH_PATH

log = logging.getLogger(__name__)


class UnreachableError(TransientError):
    """A service the run needs cannot be reached; the message names which and where."""


def check_database(kind: str, url: str) -> None:
    """Open a connection and run `SELECT 1`, within the driver's connect timeout."""
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same thing here
        cause = safe_error(exc, [url])
        raise UnreachableError(f"{kind} unreachable at {mask_url(url)}: {cause}") from None
    finally:
        engine.dispose()


async def _check_api(settings: WhatsAppSettings) -> PhoneFacts | None:
    async with open_sender(settings) as client:
        try:
            if isinstance(client, TemplateDirectory):
                # The phone number's facts prove the token (190) and the number id (100).
                return await client.phone_facts()
            answer = await client.health()
        except (AuthenticationError, NetworkError):
            raise
        except WhatsAppError as exc:
            if exc.stops_at_once:
                raise
            # It answered, and with the credentials not refused: the sends' own retries decide.
            log.warning("WhatsApp API preflight: %s; going on", exc)
            return None
    if answer is None:
        log.warning(
            "WhatsApp API at %s has no %s (404): credentials not checked before sending",
            mask_url(settings.base_url),
            HEALTH_PATH,
        )
    return None


def check_api(settings: WhatsAppSettings) -> PhoneFacts | None:
    """Reach the API and prove its credentials before the audience is read, anything checked or
    sent: v1 `GET /v1/health` with them (after the login in login mode); Cloud the phone
    number's facts, which it returns for the run's log (v1: None).

    Raises `AuthenticationError` naming the settings to fix (never their values; Cloud 190:
    `TokenExpired` naming WHATSAPP_TOKEN), `UnknownObject` naming WHATSAPP_PHONE_NUMBER_ID when
    the Cloud API does not know the number, or `UnreachableError` naming the URL (its password
    masked).
    """
    try:
        return asyncio.run(_check_api(settings))
    except NetworkError as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else str(exc)
        raise UnreachableError(
            f"WhatsApp API unreachable at {mask_url(settings.base_url)}: {cause}"
        ) from None
