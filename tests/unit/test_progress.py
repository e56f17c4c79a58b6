"""A long stage's progress off a terminal: one plain line every ~10 s through the run's log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import httpx

from connectors.warehouse import ledger
from connectors.whatsapp import Template
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.settings import WhatsAppSettings
from tasks.progress import ProgressBar, ProgressLines, progress_line, shown
from tasks.send.loop import send_all
from tasks.send.messages import Outgoing

FIXTURES = Path(__file__).parents[1] / "fixtures" / "api"


def _ledger(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
    """A ledger that lets every claim through."""
    return frozenset(c.phone_e164 for c in claims)


class Clock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_the_line_says_done_of_total_share_rate_failures_and_eta() -> None:
    line = progress_line("send", 42_000, 100_000, 3, 42.1)
    assert line == "send: 42,000 of 100,000 (42 %), 998/s, 3 failed, ETA 58 s"
    assert (
        progress_line("send", 10, 4000, 0, 2.0) == "send: 10 of 4,000 (0 %), 5.0/s, ETA 13 min 18 s"
    )
    assert (
        progress_line("extract", 150_000, None, 0, 4.8, "read") == "extract: 150,000 read, 31,250/s"
    )


def test_lines_come_every_ten_seconds_however_often_progress_is_reported() -> None:
    logged: list[str] = []
    lines = ProgressLines("send", 1000, logged.append, clock=Clock(1.0))  # reads at 1, 2, ...
    for done in range(0, 1000, 40):  # 25 reports, a second apart
        lines(done, done // 100)
    lines.close()
    assert logged == [
        "send: 360 of 1,000 (36 %), 36/s, 3 failed, ETA 18 s",  # 10 s in
        "send: 760 of 1,000 (76 %), 38/s, 7 failed, ETA 6 s",
        "send: 960 of 1,000 (96 %), 37/s, 9 failed, ETA 1 s",
    ]


def test_a_stage_shorter_than_the_interval_logs_no_progress_line() -> None:
    logged: list[str] = []
    with shown("extract", None, logged.append, terminal=False, clock=Clock(0.5)) as bar:
        bar(50_000)
        bar(100_000)
    assert logged == []


def test_a_terminal_gets_a_bar_and_no_line() -> None:
    logged: list[str] = []
    with shown("send", 10, logged.append, terminal=True) as bar:
        assert isinstance(bar, ProgressBar)
        bar(10, 1)
    assert logged == []


def test_a_send_off_the_terminal_logs_its_progress_with_its_failures() -> None:
    """The send loop reports (done, failed) as it records them; the lines say so."""
    items = [Outgoing(f"+4915112{i:06d}", str(i), f"4915112{i:06d}", ("Ada",)) for i in range(60)]
    refused = json.loads((FIXTURES / "error_1013.json").read_text())

    def handler(request: httpx.Request) -> httpx.Response:
        to = str(json.loads(request.content)["to"])
        if to.endswith("7"):  # six recipients the API refuses
            return httpx.Response(400, json=refused)
        return httpx.Response(201, json={"messages": [{"id": f"gBE{to}"}]})

    logged: list[str] = []
    lines = ProgressLines("send", len(items), logged.append, every_s=10, clock=Clock(2.0))
    settings = WhatsAppSettings(base_url="http://wa.test", api_key="k3y")  # type: ignore[arg-type]

    async def run() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with OnPremSender(settings=settings, http=http) as client:
            await send_all(
                client,
                items,
                Template("acme_ns", "order_update", "en"),
                write=_ledger,
                concurrency=4,
                progress=lines,
                progress_every_s=0.0,
            )
        await http.aclose()

    asyncio.run(run())
    lines.close()
    assert logged, "a line every 10 s of the fake clock"
    assert all(line.startswith("send: ") and " of 60 (" in line for line in logged)
    assert logged[-1].startswith("send: 60 of 60 (100 %), ") and logged[-1].endswith(", 6 failed")


def test_a_stage_longer_than_the_interval_logs_its_last_count_when_it_ends() -> None:
    logged: list[str] = []
    lines = ProgressLines("send", 10, logged.append, clock=Clock(6.0))  # starts at 6
    lines(10)  # at 12: 6 s in, no line yet
    lines.close()  # at 18: 12 s in
    assert logged == ["send: 10 of 10 (100 %), 0.8/s"]
