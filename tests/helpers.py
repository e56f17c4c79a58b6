"""Helpers the tests share (importable: pytest puts the repository root on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from connectors.whatsapp.onprem.sandbox import RunningSandbox
from connectors.whatsapp.settings import WhatsAppSettings


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
