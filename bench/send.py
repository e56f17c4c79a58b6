"""Send (issue 17): `tasks.send.loop.send_all` against the sandbox over HTTP, on v1 and Cloud.

The sender is built as `tasks.send.task.send` builds it: a sender whose `SendLimits` (rate, burst,
in flight) pace every message request; `send_all` keeps the ledger ahead of it. Its httpx client
is built here the way the sender builds its own (same timeouts, the same aiohttp transport with
`concurrency + 2` connections) and passed in, so each HTTP exchange is timed at the transport.

The sandbox runs in its own process (`python -m connectors.whatsapp.onprem.sandbox`, or
`connectors.whatsapp.cloud.sandbox`), so this process's CPU time is the client's alone:
`send_all`, the sender, httpx, aiohttp and the ledger. It answers after `--latency-ms` and allows
`--headroom` (1.2) times the limit, its bucket holding `--sandbox-burst-s` (1) second of that rate
(the Cloud sandbox's own default; the v1 API's is 3 s): the client is the pacer, and a 429 means
the client itself went over its limit. The busiest-second figure is the finer check.

Per API and limit: one run per `--ledgers` entry (`none`: a writer that writes nothing; `sqlite`:
the real ledger on a fresh SQLite file; `postgresql`: on a scratch database on the test server,
dropped afterwards). Before each run the sandbox is reset (v1: the numbers are checked once with
`/v1/contacts`, outside the timed part). After it, the sandbox's arrival times give the busiest
one-second window, which the configured rate must bound (<= 1.1 x the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
import uvloop
from pydantic import SecretStr

from bench.common import (
    Figure,
    Target,
    busiest_window,
    cpu_seconds,
    free_port,
    load_average,
    report,
    scratch_postgres,
    wait_answering,
)
from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.whatsapp import Sender, SendLimits, SendReceipt, Template, WhatsAppSettings
from connectors.whatsapp.cloud.client import CloudSender
from connectors.whatsapp.cloud.sandbox.config import (
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    DEFAULT_WABA_ID,
)
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.transport import AiohttpTransport
from tasks.send.loop import send_all
from tasks.send.messages import Outgoing

V1_TEMPLATE: Final = Template(namespace="acme_ns", name="order_update", language="en")
CLOUD_TEMPLATE: Final = Template(
    None, "order_update", "en", category="UTILITY", parameter_format="POSITIONAL"
)
API_KEY: Final = "sandbox-api-key"
CAMPAIGN: Final = "bench-send"
ROOT: Final = Path(__file__).resolve().parents[1]
START_DEADLINE_S: Final = 30.0
STOP_DEADLINE_S: Final = 5.0
APIS: Final = ("onprem", "cloud")
LEDGERS: Final = ("none", "sqlite", "postgresql")
TARGET_SHARE: Final = Target(">=", 0.95)
TARGET_429: Final = Target("<=", 0)
TARGET_FAILED: Final = Target("<=", 0)
TARGET_CEILING: Final = Target("<=", 1.1)
TARGET_CPU_MS: Final = Target("<=", 0.5)


class Sandbox:
    """The v1 or Cloud sandbox in a child process on a free port; `with Sandbox(...) as box:`."""

    def __init__(
        self,
        api: str,
        *,
        latency_ms: float,
        rate: float,
        burst: int,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    ) -> None:
        self.api = api
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        limit = (
            ["--rate-limit-messages", f"{rate:g}:{burst}"]
            if api == "onprem"
            else [
                "--throughput",
                f"{rate:g}",
                "--throughput-burst",
                str(burst),
                "--phone-number-id",
                phone_number_id,
                "--pair-interval-s",
                "0",
            ]
        )
        self._command = [
            sys.executable,
            "-m",
            f"connectors.whatsapp.{api}.sandbox",
            "--port",
            str(self.port),
            "--latency-ms",
            f"{latency_ms:g}",
            *limit,
        ]
        self._logs = tempfile.TemporaryDirectory(prefix="bench-sandbox-")
        self._log = Path(self._logs.name) / "sandbox.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin = httpx.Client(base_url=self.url, timeout=60.0)

    def __enter__(self) -> Sandbox:
        log = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            self._process = subprocess.Popen(
                self._command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            os.close(log)  # the child keeps its own copy
        problem = wait_answering(f"{self.url}/sandbox/stats", self._process, START_DEADLINE_S)
        if problem is None:
            return self
        output = self._log.read_text(errors="replace")
        self._stop()
        raise RuntimeError(f"sandbox {problem}; its output:\n{output}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        self._admin.close()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # its Ctrl-C path stops uvicorn cleanly
            try:
                process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._logs.cleanup()

    @property
    def cpu_s(self) -> float:
        """CPU time the sandbox process has used so far."""
        return 0.0 if self._process is None else cpu_seconds(self._process.pid)

    def reset(self) -> None:
        """Forget the record, known contacts, pair limits and rate buckets."""
        self._admin.post("/sandbox/reset").raise_for_status()

    def arrivals(self) -> list[tuple[float, int | None]]:
        """(arrival time on the server's monotonic clock, status) of every message request."""
        answer = self._admin.get("/sandbox/arrivals", params={"endpoint": "messages"})
        answer.raise_for_status()
        return [(float(at), status) for at, status in answer.json()["arrivals"]]


class TimedTransport(httpx.AsyncBaseTransport):
    """Times each message exchange (pool wait, request, answer) at the transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.durations: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Hand the request on, timing it."""
        started = time.perf_counter()
        try:
            return await self._inner.handle_async_request(request)
        finally:
            if request.url.path.endswith("/messages"):
                self.durations.append(time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


def timed_http(
    settings: WhatsAppSettings, connections: int
) -> tuple[httpx.AsyncClient, TimedTransport]:
    """An httpx client built as the senders build their own, over a timing transport."""
    transport = TimedTransport(
        AiohttpTransport(max_connections=connections, verify=settings.verify_tls)
    )
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.write_timeout_s,
        pool=settings.pool_timeout_s,
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout), transport


class TimedSender:
    """Wraps a `Sender`, recording the wall time of every `send_template` call."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self.durations: list[float] = []

    @property
    def sender_id(self) -> str:
        """The wrapped sender's id."""
        return self._sender.sender_id

    async def send_template(
        self,
        to: str,
        template: Template,
        params: Sequence[str],
        *,
        number: str | None = None,
        callback: str | None = None,
    ) -> SendReceipt:
        """Send as the wrapped sender does (its pacing wait included), timing the call."""
        started = time.perf_counter()
        try:
            return await self._sender.send_template(
                to, template, params, number=number, callback=callback
            )
        finally:
            self.durations.append(time.perf_counter() - started)

    async def health(self) -> Mapping[str, Any] | None:
        """The wrapped sender's health answer."""
        return await self._sender.health()

    async def aclose(self) -> None:
        """Close the wrapped sender."""
        await self._sender.aclose()

    async def __aenter__(self) -> TimedSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass
class Run:
    """What one `send_all` run measured."""

    api: str
    ledger: str
    limit: float
    messages: int
    concurrency: int
    burst: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    sent: int = 0
    statuses: Counter[int | None] = field(default_factory=Counter)
    arrival_rate: float = 0.0
    busiest_second: int = 0
    http_durations: list[float] = field(default_factory=list)
    call_durations: list[float] = field(default_factory=list)
    ledger_rows: dict[str, int] | None = None
    load: list[float] | None = None
    turns: int = 0
    write_s: float = 0.0
    system_s: float = 0.0
    switches: int = 0

    @property
    def label(self) -> str:
        """e.g. `cloud 1000/s postgresql ledger`."""
        return f"{self.api} {self.limit:g}/s {self.ledger} ledger"

    @property
    def rate(self) -> float:
        """Messages accepted per second of the whole `send_all` call."""
        return self.sent / self.wall_s

    @property
    def sustained_rate(self) -> float:
        """Messages per second after the first burst: the limit exactly, for a perfect pacer."""
        return max(self.sent - self.burst, 0) / self.wall_s


def percentile_ms(durations: Sequence[float], q: int) -> float | None:
    """The q-th percentile of durations in seconds, in ms."""
    if len(durations) < 2:
        return durations[0] * 1000 if durations else None
    return statistics.quantiles(durations, n=100, method="inclusive")[q - 1] * 1000


def numbers(count: int) -> list[str]:
    """Distinct E.164 numbers both sandboxes treat as WhatsApp users (last digit not 0)."""
    return [f"+49151{i:07d}1" for i in range(count)]


def _no_ledger(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
    """A ledger writer that writes nothing and lets every claim through."""
    return frozenset(c.phone_e164 for c in claims)


@contextmanager
def ledger_writer(kind: str) -> Iterator[tuple[ledger.LedgerWrite, Callable[[], dict[str, int]]]]:
    """A ledger writer on a fresh warehouse of `kind` (migrated before the timed part), and a
    function counting its rows by state afterwards."""
    if kind == "none":
        yield _no_ledger, dict
        return
    with _database(kind) as url:
        engine = warehouse(url)
        run_id = str(uuid.uuid4())
        held = lease.acquire(engine, CAMPAIGN, run_id, timedelta(minutes=10))

        def write(
            results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]
        ) -> frozenset[str]:
            return ledger.advance(engine, held, run_id, results=results, claims=claims)

        def rows() -> dict[str, int]:
            states = ledger.load(engine, CAMPAIGN)["state"].value_counts()
            return {str(state): int(count) for state, count in states.items()}

        try:
            yield write, rows
        finally:
            engine.dispose()


@contextmanager
def _database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with scratch_postgres() as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-send-") as directory:
        yield f"sqlite:///{directory}/warehouse.sqlite"


def _sender(run: Run, url: str, http: httpx.AsyncClient) -> Sender:
    limits = SendLimits(rate_per_s=run.limit, concurrency=run.concurrency, burst=run.burst)
    if run.api == "onprem":
        settings = WhatsAppSettings(base_url=url, api_key=SecretStr(API_KEY))
        return OnPremSender(settings=settings, send_limits=limits, http=http)
    settings = _cloud_settings(url)
    return CloudSender(settings=settings, send_limits=limits, http=http)


def _cloud_settings(url: str) -> WhatsAppSettings:
    return WhatsAppSettings.model_validate(
        {
            "api": "cloud",
            "base_url": url,
            "token": DEFAULT_TOKEN,
            "phone_number_id": DEFAULT_PHONE_NUMBER_ID,
            "waba_id": DEFAULT_WABA_ID,
        }
    )


async def _items(run: Run, sender: Sender) -> list[Outgoing]:
    """The messages to send; v1 numbers are checked first (a `to` must be a known `wa_id`)."""
    to = numbers(run.messages)
    if not isinstance(sender, OnPremSender):
        return [Outgoing(n, str(i), n[1:], ("A-1042",)) for i, n in enumerate(to)]
    checks = await sender.check_contacts(to)
    items = [
        Outgoing(n, str(i), str(checks[n].wa_id), ("A-1042",))
        for i, n in enumerate(to)
        if checks[n].status == "valid"
    ]
    if len(items) != len(to):
        raise RuntimeError(f"{len(to) - len(items)} numbers were not answered valid")
    return items


def _counted(run: Run, write: ledger.LedgerWrite) -> ledger.LedgerWrite:
    """`write`, counting the loop's turns and the time they spend writing."""

    def counted(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
        started = time.perf_counter()
        try:
            return write(results, claims)
        finally:
            run.turns += 1
            run.write_s += time.perf_counter() - started

    return counted


async def _send(run: Run, box: Sandbox, write: ledger.LedgerWrite) -> None:
    """Prepare the messages, then time `send_all` over all of them."""
    settings = (
        _cloud_settings(box.url)
        if run.api == "cloud"
        else WhatsAppSettings(base_url=box.url, api_key=SecretStr(API_KEY))
    )
    http, transport = timed_http(settings, run.concurrency + 2)
    client = _sender(run, box.url, http)
    timed = TimedSender(client)
    template = CLOUD_TEMPLATE if run.api == "cloud" else V1_TEMPLATE
    async with http, timed:
        items = await _items(run, client)
        gc.freeze()  # as tasks.send.task.send does: no full collection over the campaign's heap
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, sandbox_cpu, started = time.process_time(), box.cpu_s, time.perf_counter()
        results = await send_all(
            timed,
            items,
            template,
            write=_counted(run, write),
            concurrency=run.concurrency,
            campaign_id=CAMPAIGN,
        )
        run.wall_s = time.perf_counter() - started
        run.cpu_s = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        run.system_s = after.ru_stime - usage.ru_stime
        run.switches = (after.ru_nvcsw + after.ru_nivcsw) - (usage.ru_nvcsw + usage.ru_nivcsw)
        run.sandbox_cpu_s = box.cpu_s - sandbox_cpu
        run.call_durations = timed.durations
        run.http_durations = transport.durations
        gc.unfreeze()
    run.sent = sum(1 for r in results.values() if r.state == LedgerState.SENT)


def measure(run: Run, box: Sandbox, *, use_uvloop: bool = False) -> Run:
    """One timed run on a freshly reset sandbox, with the sandbox's record read afterwards."""
    box.reset()
    with ledger_writer(run.ledger) as (write, rows):
        if use_uvloop:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_send(run, box, write))
        else:
            asyncio.run(_send(run, box, write))
        run.load = load_average()
        run.ledger_rows = rows() or None
    record = box.arrivals()
    run.statuses = Counter(status for _, status in record)
    run.busiest_second = busiest_window([at for at, _ in record])
    accepted = sorted(at for at, status in record if status in (200, 201))
    if len(accepted) > 1:
        run.arrival_rate = (len(accepted) - 1) / (accepted[-1] - accepted[0])
    return run


def figures(run: Run) -> list[Figure]:
    """The figures of one run, each named after it."""
    n, name = run.messages, run.label
    other = sum(v for k, v in run.statuses.items() if k not in (200, 201, 429))
    call_p99 = percentile_ms(run.call_durations, 99) or 0
    return [
        Figure(f"{name}: achieved rate", run.rate, "msg/s", note=f"{n:,} in {run.wall_s:.1f} s"),
        Figure(
            f"{name}: sustained rate / limit",
            run.sustained_rate / run.limit,
            "",
            TARGET_SHARE,
            note=f"({n:,} - the burst of {run.burst:,}) / {run.wall_s:.1f} s / limit; "
            f"load average {run.load}",
        ),
        Figure(
            f"{name}: busiest second / limit",
            run.busiest_second / run.limit,
            "",
            TARGET_CEILING,
            note=f"{run.busiest_second:,} requests in the busiest sliding one-second window of "
            "the sandbox's arrival times",
        ),
        Figure(f"{name}: 429s answered", run.statuses[429], "", TARGET_429),
        Figure(
            f"{name}: sends not accepted",
            n - run.sent,
            "",
            TARGET_FAILED,
            note="; ".join(
                part
                for part in (
                    f"other non-2xx answers: {other}" if other else "",
                    f"ledger rows by state: {run.ledger_rows}" if run.ledger_rows else "",
                )
                if part
            ),
        ),
        Figure(f"{name}: arrival rate at sandbox", run.arrival_rate, "msg/s"),
        Figure(
            f"{name}: HTTP latency p50",
            percentile_ms(run.http_durations, 50),
            "ms",
            note=f"p99 {percentile_ms(run.http_durations, 99) or 0:.0f} ms",
        ),
        Figure(
            f"{name}: send_template p50",
            percentile_ms(run.call_durations, 50),
            "ms",
            note=f"p99 {call_p99:.0f} ms; the client's pacing wait included",
        ),
        Figure(
            f"{name}: ledger turns per second",
            run.turns / run.wall_s,
            "",
            note=f"{n / max(run.turns, 1):.1f} sends per turn; each writes for "
            f"{run.write_s / max(run.turns, 1) * 1000:.2f} ms (wall)",
        ),
        Figure(
            f"{name}: client CPU per send",
            run.cpu_s / n * 1000,
            "ms",
            TARGET_CPU_MS,
            note=f"{run.system_s / n * 1000:.3f} ms of it in the kernel; "
            f"{run.switches / n:.1f} context switches per send",
        ),
        Figure(f"{name}: sandbox CPU per send", run.sandbox_cpu_s / n * 1000, "ms"),
    ]


def _names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"use some of {', '.join(allowed)}")
        return names

    return parse


def _limits(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench send",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--apis", type=_names(APIS), default=list(APIS), help="onprem,cloud")
    add("--ledgers", type=_names(LEDGERS), default=list(LEDGERS), help="none,sqlite,postgresql")
    add("--limits", type=_limits, default=[1000.0], help="messages/s list")
    add("--messages", type=int, default=10_000, help="sends per run (issue 17: 60,000)")
    add("--latency-ms", type=float, default=50.0, help="sandbox answer latency")
    add("--headroom", type=float, default=1.2, help="sandbox limit / client limit")
    add("--burst", type=int, help="client burst (default: SendLimits', 25 ms of messages)")
    add("--sandbox-burst-s", type=float, default=1.0, help="sandbox bucket, in seconds")
    add("--concurrency", type=int, help="in flight (default: ceil(limit * latency * 2) + 2)")
    add("--uvloop", action="store_true", help="run the client on uvloop")
    return parser


def runs_at(api: str, limit: float, args: argparse.Namespace) -> list[Run]:
    """The runs of one API at one limit, against a sandbox of their own."""
    burst = args.burst or SendLimits(rate_per_s=limit).bucket
    concurrency = args.concurrency or math.ceil(limit * args.latency_ms / 1000 * 2) + 2
    bucket = max(1, round(limit * args.headroom * args.sandbox_burst_s))
    print(
        f"{api} {limit:g}/s: sandbox {limit * args.headroom:g}/s bucket {bucket}, "
        f"{args.latency_ms:g} ms; client concurrency {concurrency}, burst {burst}",
        flush=True,
    )
    runs = []
    sandbox_rate = limit * args.headroom
    with Sandbox(api, latency_ms=args.latency_ms, rate=sandbox_rate, burst=bucket) as box:
        # Untimed: first-use costs (imports, connections, caches) out of the figures.
        warm_up = Run(api, "none", limit, min(50, args.messages), concurrency, burst)
        measure(warm_up, box, use_uvloop=args.uvloop)
        for kind in args.ledgers:
            run = Run(api, kind, limit, args.messages, concurrency, burst)
            runs.append(measure(run, box, use_uvloop=args.uvloop))
            print(f"  {run.label}: {run.cpu_s / run.messages * 1000:.3f} ms CPU", flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run each API and limit against its own sandbox, print and save the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.headroom <= 0 or args.messages < 1 or not args.limits or min(args.limits) <= 0:
        parser.error("--headroom, --messages and every --limits value must be positive")
    runs = [run for api in args.apis for limit in args.limits for run in runs_at(api, limit, args)]
    params = {
        "apis": args.apis,
        "ledgers": args.ledgers,
        "limits": args.limits,
        "messages": args.messages,
        "latency_ms": args.latency_ms,
        "headroom": args.headroom,
        "sandbox_burst_s": args.sandbox_burst_s,
        "uvloop": args.uvloop,
        "runs": [
            {
                "label": r.label,
                "concurrency": r.concurrency,
                "burst": r.burst,
                "wall_s": r.wall_s,
                "cpu_s": r.cpu_s,
                "sandbox_cpu_s": r.sandbox_cpu_s,
                "statuses": {str(k): v for k, v in r.statuses.items()},
                "busiest_second": r.busiest_second,
                "ledger_rows": r.ledger_rows,
                "turns": r.turns,
                "write_s": r.write_s,
                "load_average": r.load,
            }
            for r in runs
        ],
    }
    title = (
        f"send: {args.messages:,} messages per run, sandbox latency {args.latency_ms:g} ms, "
        "sandbox in its own process (client CPU is this process only)"
        + (", client on uvloop" if args.uvloop else "")
    )
    report("send", title, [f for r in runs for f in figures(r)], params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
