"""The embedded demo: a seeded CRM, the bundled v1 sandbox and a webhook receiver beside it.

Used only when no CRM or WhatsApp API is configured (`make run`); a production run never
imports this module, so it loads no emulator.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr
from sqlalchemy import create_engine, inspect

from connectors.demo import demo_customers, seed_demo_crm
from connectors.preflight import check_api
from connectors.settings import Connections
from connectors.webhooks.server import start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

# The demo sandbox allows more than the demo campaign's rate, so a default run sees no 429.
DEMO_SANDBOX = SandboxConfig(rate_limit_messages=(500.0, 500))


def ensure_demo_crm(connections: Connections) -> None:
    """Create and seed the embedded demo CRM the first time it is needed."""
    engine = create_engine(connections.crm_url.get_secret_value(), hide_parameters=True)
    try:
        if not inspect(engine).has_table("crm_contacts"):
            seed_demo_crm(engine, demo_customers())
    finally:
        engine.dispose()


@contextmanager
def demo_api(connections: Connections) -> Iterator[tuple[Connections, RunningSandbox]]:
    """The connections with the bundled sandbox as their sender, its statuses pushed to a
    receiver writing to the run's warehouse, as they would come back in production."""
    receiver_settings = ReceiverSettings(
        warehouse_url=connections.warehouse_url, token=SecretStr(secrets.token_urlsafe(24))
    )
    with start_sandbox(DEMO_SANDBOX) as sandbox, start_receiver(receiver_settings) as receiver:
        sandbox.state.webhook_url = receiver.v1_url
        settings = WhatsAppSettings(
            base_url=sandbox.url, username=DEMO_SANDBOX.username, password=DEMO_SANDBOX.password
        )
        check_api(settings)
        yield connections.model_copy(update={"senders": (settings,)}), sandbox


def settle(sandbox: RunningSandbox, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the sandbox has pushed every status it owes, so the run's report can
    count what was delivered and read."""
    owed = len(sandbox.state.messages_sent()) * len(sandbox.config.push_statuses)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = sandbox.state.stats()
        if stats.get("webhooks.delivered", 0) + stats.get("webhooks.failed", 0) >= owed:
            return
        time.sleep(0.05)
