"""The run's connections: from the environment and Secret blocks, else the embedded demo; and the
campaign's exclusive hold (lock, then lease) for the run's duration."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import cast

from prefect.blocks.system import Secret

from connectors.preflight import check_api, check_database
from connectors.settings import Connections, SecretBlocks
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease, held
from connectors.warehouse.lock import campaign_lock

# Set while the embedded demo API serves the run: waits for the statuses it still owes.
_settle: ContextVar[Callable[[], None] | None] = ContextVar("wa_settle_webhooks", default=None)


def secret_env(blocks: SecretBlocks) -> dict[str, str]:
    """The environment with each named Secret block's value in place of its variable."""
    env = dict(os.environ)
    for variable, block in blocks.env_names().items():
        secret = cast(Secret[str], Secret.load(block))  # sync call: a flow runs synchronously
        env[variable] = str(secret.get())
    return env


def preflight(connections: Connections) -> None:
    """Fail fast, naming the service, when the CRM, the warehouse or the API is out of reach."""
    check_database("CRM", connections.crm_url.get_secret_value())
    check_database("warehouse", connections.warehouse_url.get_secret_value())
    for sender in connections.senders:
        check_api(sender)


@contextmanager
def connections(blocks: SecretBlocks | None = None) -> Iterator[Connections]:
    """The connections of one run; the embedded demo fills in what is not configured."""
    resolved = Connections.from_env(secret_env(blocks or SecretBlocks()))
    resolved.data_dir.mkdir(parents=True, exist_ok=True)
    if resolved.crm_is_default:
        from flows.embedded import ensure_demo_crm

        ensure_demo_crm(resolved)
    preflight(resolved)
    if resolved.senders:
        yield resolved
        return
    from flows.embedded import demo_api, settle

    with demo_api(resolved) as (demo, sandbox):
        token = _settle.set(lambda: settle(sandbox))
        try:
            yield demo
        finally:
            _settle.reset(token)


def settle_webhooks() -> None:
    """With the embedded demo, wait (bounded) for the statuses it still owes, so the report can
    count what was delivered and read; in production statuses come when they come."""
    settle = _settle.get()
    if settle is not None:
        settle()


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
