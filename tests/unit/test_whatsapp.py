"""The public face of `connectors.whatsapp`: the factory picks the sender from the settings."""

from __future__ import annotations

import asyncio

import httpx

from connectors.whatsapp import ContactChecker, Sender, WhatsAppSettings, open_sender
from connectors.whatsapp.onprem.client import OnPremSender


def test_the_factory_opens_a_v1_sender_that_can_also_check_contacts() -> None:
    settings = WhatsAppSettings(base_url="http://wa.test:8080", api_key="k")  # type: ignore[arg-type]

    async def run() -> Sender:
        http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
        async with http, open_sender(settings, http=http) as sender:
            assert await sender.health() is None  # no health endpoint: nothing to prove
            return sender

    sender = asyncio.run(run())
    assert isinstance(sender, OnPremSender)
    assert isinstance(sender, Sender) and isinstance(sender, ContactChecker)
    assert sender.sender_id == "onprem:wa.test:8080"
