"""WhatsApp senders behind one protocol: the stages ask `open_sender(settings)` for a `Sender` and
never name an API flavour.

```
connectors/whatsapp/
├── protocol.py   Sender, ContactChecker, TemplateDirectory and their values (Template,
│                 SendReceipt, TemplateInfo, PhoneFacts, ContactCheck): what the stages depend on
├── settings.py   one sender's settings (`api` picks the flavour, `sender_id` names the sender)
├── errors.py     the error tree, of the four kinds of connectors.errors (`stops_at_once`)
├── answers.py    an error answer of either flavour -> its error class and what to do
├── limits.py     one sender's rate limit, in-flight cap and 429 pauses
├── transport.py  the HTTP transport: aiohttp's pool under httpx's API
├── onprem/       the v1 API: sender, auth, message body, code table, sandbox
└── cloud/        the Cloud API: sender, body, answers, template look-ups, code table, sandbox
```
"""

from __future__ import annotations

import httpx

from connectors.whatsapp.limits import SendLimits
from connectors.whatsapp.protocol import (
    ContactCheck,
    ContactChecker,
    PhoneFacts,
    Sender,
    SendReceipt,
    Template,
    TemplateDirectory,
    TemplateInfo,
)
from connectors.whatsapp.settings import SenderSettings, WhatsAppSettings

__all__ = [
    "ContactCheck",
    "ContactChecker",
    "PhoneFacts",
    "SendLimits",
    "SendReceipt",
    "Sender",
    "SenderSettings",
    "Template",
    "TemplateDirectory",
    "TemplateInfo",
    "WhatsAppSettings",
    "open_sender",
]


def open_sender(
    settings: SenderSettings,
    *,
    send_limits: SendLimits | None = None,
    http: httpx.AsyncClient | None = None,
) -> Sender:
    """The sender these settings call for (by `settings.api`), not yet connected: use it as
    `async with open_sender(settings) as sender:`. `send_limits` pace its message requests;
    `http` replaces the HTTP client it would build (tests, benchmarks). A v1 sender is also a
    `ContactChecker`, a Cloud sender a `TemplateDirectory`."""
    # A flavour's code is imported when it is picked: whoever only reads settings (the webhook
    # receiver) loads no client, and a run loads only its own API's.
    if settings.api == "onprem":
        from connectors.whatsapp.onprem.client import OnPremSender

        return OnPremSender(settings=settings, send_limits=send_limits, http=http)
    if settings.api == "cloud":
        from connectors.whatsapp.cloud.client import CloudSender

        return CloudSender(settings=settings, send_limits=send_limits, http=http)
    raise ValueError(f"unknown WhatsApp API {settings.api!r}; use 'onprem' or 'cloud'")
