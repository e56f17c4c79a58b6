"""The run's connections: from the environment, else the embedded demo CRM, warehouse, sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from prefect.blocks.system import Secret
from sqlalchemy import create_engine, inspect

from connectors.demo_crm import demo_customers, seed_demo_crm
from connectors.preflight import check_api, check_database
from connectors.settings import Connections, SecretBlocks
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lock import campaign_lock
from connectors.whatsapp.sandbox import SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

# The demo sandbox allows more than the demo campaign's rate, so a default run sees no 429.
DEMO_SANDBOX = SandboxConfig(rate_limit_messages=(500.0, 500))


def ensure_demo_crm(connections: Connections) -> None:
    """Create and seed the embedded demo CRM the first time it is needed."""
    engine = create_engine(connections.crm_url.get_secret_value())
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
    with start_sandbox(DEMO_SANDBOX) as sandbox:
        settings = WhatsAppSettings(
            base_url=sandbox.url, username=DEMO_SANDBOX.username, password=DEMO_SANDBOX.password
        )
        check_api(settings)
        yield resolved.model_copy(update={"whatsapp": settings})


def preflight(connections: Connections) -> None:
    """Fail fast, naming the service, when the CRM, the warehouse or the API is out of reach."""
    check_database("CRM", connections.crm_url.get_secret_value())
    check_database("warehouse", connections.warehouse_url.get_secret_value())
    if connections.whatsapp is not None:
        check_api(connections.whatsapp)


@contextmanager
def exclusive(connections: Connections, campaign_id: str) -> Iterator[None]:
    """Refuse to run while another run of the same campaign is under way."""
    with campaign_lock(warehouse(connections.warehouse_url.get_secret_value()), campaign_id):
        yield
