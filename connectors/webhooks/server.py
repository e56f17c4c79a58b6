"""Serve the webhook receiver with uvicorn, in a background thread or in the foreground."""

from __future__ import annotations

import uvicorn

from connectors.http_server import RunningServer, ServerThread, quiet_config, serve_in_thread
from connectors.webhooks.app import ReceiverApp
from connectors.webhooks.settings import ReceiverSettings
from connectors.webhooks.writer import WriterStats


def uvicorn_config(app: ReceiverApp, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings: no access log (a v1 URL carries the token), lifespan on, quiet."""
    return quiet_config(app.asgi, host=host, port=port, timeout_graceful_shutdown=10)


class RunningReceiver(RunningServer):
    """A receiver serving in a daemon thread: `.url`, `.v1_url`, `.cloud_url`, `.stop()`."""

    def __init__(self, app: ReceiverApp, serving: ServerThread) -> None:
        super().__init__(serving)
        self.app = app
        self.settings = app.settings
        self.cloud_url = f"{self.url}/webhooks/cloud"

    @property
    def v1_url(self) -> str:
        """The v1 webhook URL with the token in its path, for `PATCH /v1/settings/application`."""
        token = self.settings.token
        return f"{self.url}/webhooks/v1/{'' if token is None else token.get_secret_value()}"

    @property
    def stats(self) -> WriterStats:
        """The writer's counters (requests, events, transactions)."""
        return WriterStats() if self.app.writer is None else self.app.writer.stats

    @property
    def unmatched(self) -> int:
        """Message ids whose statuses wait for the ledger to learn them."""
        return 0 if self.app.writer is None else self.app.writer.unmatched


def start_receiver(
    settings: ReceiverSettings, *, host: str = "127.0.0.1", port: int = 0
) -> RunningReceiver:
    """Start a receiver on `host:port` (0: a free port); returns once it accepts requests."""
    app = ReceiverApp(settings)
    serving = serve_in_thread(uvicorn_config(app, host=host, port=port), name=f"webhooks-{port}")
    return RunningReceiver(app, serving)
