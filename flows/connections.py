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
from connectors.whatsapp import PhoneFacts
from flows.runner import refuse_embedded

# Set while the embedded demo API serves the run: waits for the statuses it still owes.
_settle: ContextVar[Callable[[], None] | None] = ContextVar("wa_settle_webhooks", default=None)
_facts: ContextVar[dict[str, PhoneFacts | None]] = ContextVar("wa_sender_facts", default={})  # noqa: B039


def secret_env(blocks: SecretBlocks) -> dict[str, str]:
    """The environment with each named Secret block's value in place of its variable."""
    env = dict(os.environ)
    for variable, block in blocks.env_names().items():
        secret = cast(Secret[str], Secret.load(block))  # sync call: a flow runs synchronously
        env[variable] = str(secret.get())
    return env


def preflight(connections: Connections) -> dict[str, PhoneFacts | None]:
    """Fail fast, naming the service, when the CRM, the warehouse or the API is out of reach, or
    the API refuses the credentials or the sender; each sender's facts (Cloud) by sender id."""
    check_database("CRM", connections.crm_url.get_secret_value())
    check_database("warehouse", connections.warehouse_url.get_secret_value())
    return {sender.sender_id: check_api(sender) for sender in connections.senders}


@contextmanager
def connections(
    blocks: SecretBlocks | None = None, scheduler: str | None = None
) -> Iterator[Connections]:
    """The connections of one run; the embedded demo fills in what is not configured, except
    when the tasks run on a remote Dask cluster (`scheduler`), which cannot reach it."""
    resolved = Connections.from_env(secret_env(blocks or SecretBlocks()))
    refuse_embedded(resolved, scheduler)
    resolved.data_dir.mkdir(parents=True, exist_ok=True)
    if resolved.crm_is_default:
        from flows.embedded import ensure_demo_crm

        ensure_demo_crm(resolved)
    facts = preflight(resolved)
    if resolved.senders:
        with _remembered(facts, None):
            yield resolved
        return
    from flows.embedded import demo_api

    with demo_api(resolved) as (demo, settle, demo_facts):
        assert demo.whatsapp is not None
        with _remembered({demo.whatsapp.sender_id: demo_facts}, settle):
            yield demo


@contextmanager
def _remembered(
    facts: dict[str, PhoneFacts | None], settle: Callable[[], None] | None
) -> Iterator[None]:
    """Keep the senders' facts and the demo's settle for the run's report."""
    tokens = (_facts.set(facts), _settle.set(settle))
    try:
        yield
    finally:
        _facts.reset(tokens[0])
        _settle.reset(tokens[1])


def sender_facts() -> dict[str, PhoneFacts | None]:
    """The run's senders with the facts the preflight read (Cloud; v1 has none)."""
    return dict(_facts.get())


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
