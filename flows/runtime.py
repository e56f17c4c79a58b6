"""The run's connections: from the environment, else the embedded demo CRM, warehouse, sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import create_engine

from connectors.demo_crm import demo_customers, seed_demo_crm
from connectors.settings import Connections
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lock import campaign_lock
from connectors.whatsapp.sandbox import SandboxConfig, start_sandbox
from connectors.whatsapp.settings import WhatsAppSettings

# The demo sandbox allows more than the demo campaign's rate, so a default run sees no 429.
DEMO_SANDBOX = SandboxConfig(rate_limit_messages=(500.0, 500))


def ensure_demo_crm(connections: Connections) -> None:
    """Create and seed the embedded demo CRM the first time it is needed."""
    path = connections.data_dir / "crm.sqlite"
    if path.exists():
        return
    connections.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(connections.crm_url.get_secret_value())
    try:
        seed_demo_crm(engine, demo_customers())
    finally:
        engine.dispose()


@contextmanager
def connections(env: Mapping[str, str] | None = None) -> Iterator[Connections]:
    """The connections of one run; starts the bundled sandbox when no WhatsApp API is configured."""
    resolved = Connections.from_env(env)
    resolved.data_dir.mkdir(parents=True, exist_ok=True)
    if resolved.crm_is_default:
        ensure_demo_crm(resolved)
    if resolved.whatsapp is not None:
        yield resolved
        return
    with start_sandbox(DEMO_SANDBOX) as sandbox:
        settings = WhatsAppSettings(
            base_url=sandbox.url, username=DEMO_SANDBOX.username, password=DEMO_SANDBOX.password
        )
        yield resolved.model_copy(update={"whatsapp": settings})


@contextmanager
def exclusive(connections: Connections, campaign_id: str) -> Iterator[None]:
    """Refuse to run while another run of the same campaign is under way."""
    with campaign_lock(warehouse(connections.warehouse_url.get_secret_value()), campaign_id):
        yield
