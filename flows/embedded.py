"""The embedded demo: a seeded CRM, the bundled sandbox of the run's API (v1 or Cloud) and a
webhook receiver beside it, which the sandbox's signed status pushes reach.

Used only when no CRM or WhatsApp API is configured (`make run`, `WHATSAPP_API=cloud make run`);
a production run never imports this module, so it loads no emulator.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import create_engine, inspect

from connectors.demo import demo_customers, seed_demo_crm
from connectors.preflight import check_api
from connectors.settings import Connections
from connectors.webhooks.server import start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp import PhoneFacts
from connectors.whatsapp.cloud.sandbox import CloudSandboxConfig, start_cloud_sandbox
from connectors.whatsapp.onprem.sandbox import SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

# The demo sandboxes allow more than the demo campaign's rate, so a default run sees no 429.
DEMO_SANDBOX = SandboxConfig(rate_limit_messages=(500.0, 500))
DEMO_CLOUD = CloudSandboxConfig(throughput_per_s=1000.0)  # HIGH: the campaign sets the pace

log = logging.getLogger(__name__)

Settle = Callable[[], None]
Demo = tuple[Connections, Settle, PhoneFacts | None]


def ensure_demo_crm(connections: Connections) -> None:
    """Create and seed the embedded demo CRM the first time it is needed."""
    engine = create_engine(connections.crm_url.get_secret_value(), hide_parameters=True)
    try:
        if not inspect(engine).has_table("crm_contacts"):
            seed_demo_crm(engine, demo_customers())
    finally:
        engine.dispose()


def demo_api(connections: Connections) -> AbstractContextManager[Demo]:
    """The connections with the bundled sandbox of their API as their sender, a way to wait for
    the statuses it still owes, and its facts (Cloud)."""
    return _cloud(connections) if connections.api == "cloud" else _onprem(connections)


def _receiver(connections: Connections, app_secret: str | None = None) -> ReceiverSettings:
    """A receiver for the demo's pushes: a Cloud one signed with `app_secret`, else v1 only."""
    return ReceiverSettings(
        warehouse_url=connections.warehouse_url,
        token=SecretStr(secrets.token_urlsafe(24)),
        app_secret=SecretStr(app_secret) if app_secret else None,
        cloud=app_secret is not None,
    )


@contextmanager
def _onprem(connections: Connections) -> Iterator[Demo]:
    with start_sandbox(DEMO_SANDBOX) as sandbox, start_receiver(_receiver(connections)) as rx:
        sandbox.state.webhook_url = rx.v1_url
        settings = WhatsAppSettings(
            base_url=sandbox.url, username=DEMO_SANDBOX.username, password=DEMO_SANDBOX.password
        )
        check_api(settings)
        owed = len(sandbox.config.push_statuses)

        def settle() -> None:
            _wait(lambda: len(sandbox.state.messages_sent()) * owed, sandbox.state.stats)

        yield connections.model_copy(update={"senders": (settings,)}), settle, None


@contextmanager
def _cloud(connections: Connections) -> Iterator[Demo]:
    receiver = _receiver(connections, DEMO_CLOUD.app_secret)
    with start_cloud_sandbox(DEMO_CLOUD) as sandbox, start_receiver(receiver) as rx:
        sandbox.state.webhook_url = rx.cloud_url
        settings = WhatsAppSettings(
            api="cloud",
            base_url=sandbox.url,
            phone_number_id=DEMO_CLOUD.phone_number_id,
            waba_id=DEMO_CLOUD.waba_id,
            token=SecretStr(DEMO_CLOUD.tokens[0]),
        )
        facts = check_api(settings)

        def settle() -> None:
            _wait(lambda: sandbox.state.stats().get("webhooks.queued", 0), sandbox.state.stats)

        yield connections.model_copy(update={"senders": (settings,)}), settle, facts


@dataclass(frozen=True)
class Patience:
    """How long the demo waits for its status pushes: at most `limit_s` in all, and no more than
    `stall_s` without a new one stored (a receiver gone quiet), looking every `poll_s`."""

    limit_s: float = 120.0
    stall_s: float = 15.0
    poll_s: float = 0.05


def _wait(
    owed: Callable[[], int],
    stats: Callable[[], dict[str, int]],
    patience: Patience = Patience(),
    *,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait until the sandbox has pushed every status it owes and the receiver answered each
    (it answers after its commit: the status is stored), so the run's report counts what was
    delivered and read; False, and a warning, when the patience ran out first."""
    start = clock()
    last_change, last = start, -1
    while True:
        pushed = stats()
        done = pushed.get("webhooks.delivered", 0) + pushed.get("webhooks.failed", 0)
        due, now = owed(), clock()
        if done >= due:
            return True
        if done != last:
            last_change, last = now, done
        if now - start >= patience.limit_s or now - last_change >= patience.stall_s:
            log.warning(
                "demo: %s of %s status pushes stored after %.0f s; the funnel counts those",
                f"{done:,}",
                f"{due:,}",
                now - start,
            )
            return False
        pause(patience.poll_s)
