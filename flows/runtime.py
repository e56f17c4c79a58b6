"""The run's connections: from the environment, else the embedded demo CRM, warehouse, sandbox."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import cast

from prefect.blocks.system import Secret
from pydantic import SecretStr
from sqlalchemy import create_engine, inspect

from connectors.demo_crm import demo_customers, seed_demo_crm
from connectors.preflight import check_api, check_database
from connectors.settings import Connections, SecretBlocks
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease, held
from connectors.warehouse.lock import campaign_lock
from connectors.webhooks.server import start_receiver
from connectors.webhooks.settings import ReceiverSettings
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

# The demo sandbox allows more than the demo campaign's rate, so a default run sees no 429.
DEMO_SANDBOX = SandboxConfig(rate_limit_messages=(500.0, 500))
_embedded: ContextVar[RunningSandbox | None] = ContextVar("wa_embedded_sandbox", default=None)


def ensure_demo_crm(connections: Connections) -> None:
    """Create and seed the embedded demo CRM the first time it is needed."""
    engine = create_engine(connections.crm_url.get_secret_value(), hide_parameters=True)
    try:
        if not inspect(engine).has_table("crm_contacts"):
            seed_demo_crm(engine, demo_customers())
    finally:
        engine.dispose()


def secret_env(blocks: SecretBlocks) -> dict[str, str]:
    """The environment with each named Secret block's value in place of its variable."""
    env = dict(os.environ)
    for variable, block in blocks.env_names().items():
        secret = cast(Secret[str], Secret.load(block))  # sync call: a flow runs synchronously
        env[variable] = str(secret.get())
    return env


@contextmanager
def connections(blocks: SecretBlocks | None = None) -> Iterator[Connections]:
    """The connections of one run; starts the bundled sandbox when no WhatsApp API is configured."""
    resolved = Connections.from_env(secret_env(blocks or SecretBlocks()))
    resolved.data_dir.mkdir(parents=True, exist_ok=True)
    if resolved.crm_is_default:
        ensure_demo_crm(resolved)
    preflight(resolved)
    if resolved.whatsapp is not None:
        yield resolved
        return
    receiver_settings = ReceiverSettings(
        warehouse_url=resolved.warehouse_url, token=SecretStr(secrets.token_urlsafe(24))
    )
    with start_sandbox(DEMO_SANDBOX) as sandbox, start_receiver(receiver_settings) as receiver:
        sandbox.state.webhook_url = (
            receiver.v1_url
        )  # statuses flow back as they would in production
        settings = WhatsAppSettings(
            base_url=sandbox.url, username=DEMO_SANDBOX.username, password=DEMO_SANDBOX.password
        )
        check_api(settings)
        token = _embedded.set(sandbox)
        try:
            yield resolved.model_copy(update={"senders": (settings,)})
        finally:
            _embedded.reset(token)


def settle_webhooks(timeout_s: float = 10.0) -> None:
    """With the embedded sandbox, wait (bounded) until it has pushed every status it owes, so the
    run's report can count what was delivered and read. Without it, statuses come when they come."""
    sandbox = _embedded.get()
    if sandbox is None:
        return
    owed = len(sandbox.state.messages_sent()) * len(sandbox.config.push_statuses)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = sandbox.state.stats()
        if stats.get("webhooks.delivered", 0) + stats.get("webhooks.failed", 0) >= owed:
            return
        time.sleep(0.05)


def preflight(connections: Connections) -> None:
    """Fail fast, naming the service, when the CRM, the warehouse or the API is out of reach."""
    check_database("CRM", connections.crm_url.get_secret_value())
    check_database("warehouse", connections.warehouse_url.get_secret_value())
    if connections.whatsapp is not None:
        check_api(connections.whatsapp)


@contextmanager
def exclusive(
    connections: Connections, campaign_id: str, holder: str, lease_seconds: float
) -> Iterator[Lease]:
    """Refuse to run while another run of the same campaign is under way, then hold the
    campaign's lease (the lock is the polite first line; the lease fences every claim)."""
    engine = warehouse(connections.warehouse_url.get_secret_value())
    ttl = timedelta(seconds=lease_seconds)
    with campaign_lock(engine, campaign_id), held(engine, campaign_id, holder, ttl) as heartbeat:
        yield heartbeat.lease
