"""Status pushes (sent, delivered, read) to the configured webhook, off the request path."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from connectors.whatsapp.sandbox.state import SandboxState

_ATTEMPTS = 3
_TIMEOUT = httpx.Timeout(2.0, connect=1.0)


class WebhookPusher:
    """Posts v1 status payloads from background tasks; a failing receiver never hurts the server."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def push(self, url: str, message_id: str, wa_id: str) -> None:
        """Schedule the configured statuses of one accepted message."""
        task = asyncio.get_running_loop().create_task(self._deliver(url, message_id, wa_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, message_id: str, wa_id: str) -> None:
        config = self._state.config
        for status in config.push_statuses:
            if config.push_delay_s > 0:
                await asyncio.sleep(config.push_delay_s)
            payload = {
                "statuses": [
                    {
                        "id": message_id,
                        "recipient_id": wa_id,
                        "status": status,
                        "timestamp": str(int(config.clock())),
                    }
                ]
            }
            ok = await self._post(url, payload)
            self._state.count("webhooks.delivered" if ok else "webhooks.failed")

    async def _post(self, url: str, payload: Mapping[str, object]) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=_TIMEOUT)
        for attempt in range(_ATTEMPTS):
            try:
                response = await self._client.post(url, json=payload)
                if response.status_code < 300:
                    return True
            except Exception:  # any receiver failure only counts as a failed push
                pass
            if attempt + 1 < _ATTEMPTS:
                await asyncio.sleep(0.05 * 2**attempt)
        return False

    async def aclose(self) -> None:
        """Cancel pending pushes and close the HTTP client (at server shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
