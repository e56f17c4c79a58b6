"""Helpers the tests share (importable: pytest puts the repository root on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from connectors.whatsapp.cloud.sandbox import CloudSandboxConfig, RunningCloudSandbox
from connectors.whatsapp.onprem.sandbox import RunningSandbox
from connectors.whatsapp.settings import WhatsAppSettings
from tasks.send.senders import SenderPlan


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until it holds; fail, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what or 'condition'}: not within {timeout} s")
        time.sleep(0.01)


def sandbox_settings(sandbox: RunningSandbox, **extra: Any) -> WhatsAppSettings:
    """Login settings for a running sandbox, with quick backoff for tests; `extra` overrides."""
    values: dict[str, Any] = {
        "base_url": sandbox.url,
        "username": sandbox.config.username,
        "password": sandbox.config.password,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "read_timeout_s": 2.0,
    }
    values.update(extra)
    return WhatsAppSettings.model_validate(values)


def cloud_env(sandbox: RunningCloudSandbox, crm_url: str, warehouse_url: str) -> dict[str, str]:
    """The environment of a run that sends through this Cloud sandbox."""
    config = sandbox.config
    return {
        "CRM_DATABASE_URL": crm_url,
        "WAREHOUSE_DATABASE_URL": warehouse_url,
        "WHATSAPP_API": "cloud",
        "WHATSAPP_API_URL": sandbox.url,
        "WHATSAPP_PHONE_NUMBER_ID": config.phone_number_id,
        "WHATSAPP_WABA_ID": config.waba_id,
        "WHATSAPP_TOKEN": config.tokens[0],
    }


def statuses_stored(sandbox: RunningCloudSandbox, warehouse_url: str, timeout: float = 30) -> None:
    """Wait until the Cloud sandbox has answered every request, pushed every status it queued
    without a failed push, and the warehouse holds each distinct status it pushed."""
    state = sandbox.state
    wait_until(lambda: state.in_flight() == 0, timeout, "the requests in flight answered")

    def pushed() -> bool:
        stats = state.stats()
        done = stats.get("webhooks.delivered", 0) + stats.get("webhooks.failed", 0)
        return done >= stats.get("webhooks.queued", 0)

    wait_until(pushed, timeout, "the status pushes")
    assert state.stats().get("webhooks.failed", 0) == 0, state.stats()
    owed = {
        (status["id"], status["status"])
        for body in state.pushed()
        for entry in body["entry"]
        for change in entry["changes"]
        for status in change["value"].get("statuses", [])
    }
    engine = create_engine(warehouse_url)

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM wa_status_events")).scalar_one())

    try:
        wait_until(lambda: stored() >= len(owed), timeout, f"{len(owed)} statuses stored")
    finally:
        engine.dispose()


def one_number_sandbox(number: str, **extra: object) -> CloudSandboxConfig:
    """A Cloud sandbox with one phone number, no throughput cap and no pause between pairs."""
    values: dict[str, object] = {
        "phone_numbers": {number: f"1555{number[-7:]}"},
        "throughput_per_s": None,
        "pair_interval_s": 0,
    }
    return CloudSandboxConfig(**{**values, **extra})  # type: ignore[arg-type]


def cloud_plan(sandbox: RunningCloudSandbox, rate: float = 400, concurrency: int = 4) -> SenderPlan:
    """A sender plan for a one-number Cloud sandbox, with quick backoffs."""
    config = sandbox.config
    settings = WhatsAppSettings(
        api="cloud",
        base_url=sandbox.url,
        token=config.tokens[0],  # type: ignore[arg-type]
        phone_number_id=config.phone_number_id,
        waba_id=config.waba_id,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    return SenderPlan(settings, rate_per_s=rate, concurrency=concurrency)


def make_chunk(phones: Sequence[str], names: Sequence[str | None] | None = None) -> pd.DataFrame:
    """A chunk as the stages pass it on: customers 0..n-1 with these numbers and first names."""
    from tasks.frame import with_stage_columns

    frame = with_stage_columns(pd.DataFrame({"customer_id": [str(i) for i in range(len(phones))]}))
    frame["phone_e164"] = pd.Series(list(phones), dtype="str")
    given = list(names) if names is not None else ["Asha"] * len(phones)
    frame["param_first_name"] = pd.Series(given, dtype="str")
    return frame
