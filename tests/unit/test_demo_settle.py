"""The embedded demo: its wait for the status pushes, and a v1 receiver that asks no app secret."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.webhooks.app import ReceiverApp
from connectors.webhooks.settings import ReceiverSettings
from flows.embedded import Patience, _wait


class FakePushes:
    """A sandbox's push counter that stores `per_poll` more statuses each time it is read (up to
    `until`), on a clock that moves only when the wait pauses."""

    def __init__(self, per_poll: int, until: int) -> None:
        self.per_poll, self.until = per_poll, until
        self.stored, self.now, self.pauses = 0, 0.0, 0

    def stats(self) -> dict[str, int]:
        self.stored = min(self.until, self.stored + self.per_poll)
        return {"webhooks.delivered": self.stored}

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds
        self.pauses += 1


def _waited(pushes: FakePushes, owed: int, patience: Patience) -> bool:
    return _wait(lambda: owed, pushes.stats, patience, clock=pushes.clock, pause=pushes.pause)


def test_the_demo_waits_past_ten_seconds_until_every_status_is_stored() -> None:
    pushes = FakePushes(per_poll=10, until=5967)  # 1,989 messages x sent, delivered, read
    assert _waited(pushes, 5967, Patience(limit_s=120, stall_s=5, poll_s=0.05))
    assert pushes.stored == 5967
    assert pushes.now > 10  # the old fixed 10 s would have stopped at about 2,000


def test_a_receiver_gone_quiet_ends_the_wait_after_the_stall_window_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pushes = FakePushes(per_poll=100, until=1200)
    with caplog.at_level(logging.WARNING, logger="flows.embedded"):
        assert not _waited(pushes, 5967, Patience(limit_s=120, stall_s=5, poll_s=0.5))
    assert pushes.now == pytest.approx(5.5 + 5)  # the last one stored at 5.5 s, then 5 s quiet
    assert "1,200 of 5,967 status pushes stored" in caplog.text


def test_the_wait_is_bounded_however_slowly_statuses_keep_coming() -> None:
    pushes = FakePushes(per_poll=1, until=10**9)
    assert not _waited(pushes, 10**6, Patience(limit_s=30, stall_s=5, poll_s=1))
    assert pushes.now == 30


def test_nothing_owed_returns_at_once() -> None:
    pushes = FakePushes(per_poll=0, until=0)
    assert _waited(pushes, 0, Patience())
    assert pushes.pauses == 0


def _start_and_stop(app: ReceiverApp) -> list[str]:
    """Run the app's ASGI lifespan (start, then stop); the messages it answered."""
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    answered: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        answered.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asyncio.run(app.asgi(scope, receive, send))  # type: ignore[arg-type]
    return answered


@pytest.mark.parametrize(("cloud", "warned"), [(False, False), (True, True)])
def test_the_app_secret_is_asked_for_only_when_cloud_webhooks_are_expected(
    cloud: bool, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ReceiverSettings(
        warehouse_url=SecretStr("sqlite://"), token=SecretStr("t"), cloud=cloud
    )
    app = ReceiverApp(settings, record=lambda *_: pytest.fail("nothing is posted"))
    with caplog.at_level(logging.WARNING, logger="connectors.webhooks.app"):
        answered = _start_and_stop(app)
    assert answered == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert ("WHATSAPP_APP_SECRET is not set" in caplog.text) is warned
    assert "WEBHOOK_TOKEN" not in caplog.text
