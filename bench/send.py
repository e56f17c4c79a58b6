"""Send (issue: send rate): `tasks.send.loop.send_all` against the sandbox over HTTP, at each limit.

The sender is built as `tasks.send.task.send` builds it: a v1 sender whose `SendLimits` (rate,
burst, in flight) pace every message request; `send_all` keeps the ledger ahead of it. Its
httpx client is built here the way the sender builds its own (same timeouts, one pool of
`concurrency + 2` connections) and passed in, so each HTTP exchange is timed at the transport.

The sandbox runs in its own process (`python -m connectors.whatsapp.onprem.sandbox`), so this
process's CPU time is the client's alone: `send_all`, the sender, httpx and the ledger writer.
It answers after `--latency-ms` and allows `--headroom` (1.2) times the limit, its bucket holding
`--sandbox-burst` (2) times the client's burst (by default 1 s of messages): 2 s of messages,
under the real API's 3 s, so a 429 means the client itself went over its limit. The client's
first burst counts in its rate: 10,000 at 250/s ideally take (10,000 - 250) / 250 = 39 s.

Per limit: one run with a no-op ledger writer; at the highest limit one more run with the real
SQLite ledger (`connectors.warehouse`), to show what the ledger costs. Before each run the
sandbox is reset and the numbers are checked once with `/v1/contacts` (a `to` must have been
answered `valid` first), outside the timed part.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bench.common import Figure, Target, cpu_seconds, free_port, report, wait_answering
from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.whatsapp import Sender, SendLimits, SendReceipt, Template, WhatsAppSettings
from connectors.whatsapp.onprem.client import OnPremSender
from connectors.whatsapp.transport import AiohttpTransport
from tasks.send.loop import send_all
from tasks.send.messages import Outgoing

TEMPLATE: Final = Template(namespace="acme_ns", name="order_update", language="en")
API_KEY: Final = "sandbox-api-key"
ROOT: Final = Path(__file__).resolve().parents[1]
START_DEADLINE_S: Final = 30.0
STOP_DEADLINE_S: Final = 5.0
TARGET_SHARE: Final = Target(">=", 0.95)
TARGET_429: Final = Target("<=", 0)
TARGET_FAILED: Final = Target("<=", 0)


class Sandbox:
    """The sandbox in a child process on a free port; `with Sandbox(...) as sandbox:`."""

    def __init__(self, *, latency_ms: float, rate: float, burst: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._command = [
            sys.executable,
            "-m",
            "connectors.whatsapp.onprem.sandbox",
            "--port",
            str(self.port),
            "--latency-ms",
            f"{latency_ms:g}",
            "--rate-limit-messages",
            f"{rate:g}:{burst}",
        ]
        self._logs = tempfile.TemporaryDirectory(prefix="bench-sandbox-")
        self._log = Path(self._logs.name) / "sandbox.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin = httpx.Client(base_url=self.url, timeout=30.0)

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
        output = self._output()
        self._stop()
        raise RuntimeError(f"sandbox {problem}; its output:\n{output}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _output(self) -> str:
        return self._log.read_text(errors="replace")

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
        """Forget the record, known contacts and rate buckets."""
        self._admin.post("/sandbox/reset").raise_for_status()

    def message_requests(self) -> list[dict[str, Any]]:
        """The recorded `/v1/messages` requests, oldest first."""
        answer = self._admin.get("/sandbox/requests", params={"endpoint": "messages"})
        answer.raise_for_status()
        return list(answer.json()["requests"])


class TimedTransport(httpx.AsyncBaseTransport):
    """Times each `/v1/messages` exchange (pool wait, request, response head) at the transport.

    With several pools it hands requests to them in turn. httpcore 1.0.x scans its whole pool
    (a socket poll per idle connection, and a quadratic step) on every request and release, so
    CPU per request grows with the pool's size (encode/httpcore#1035); `--http-shards` measures
    keeping each pool small.
    """

    def __init__(self, pools: Sequence[httpx.AsyncBaseTransport]) -> None:
        self._pools = list(pools)
        self._next = itertools.cycle(self._pools)
        self.durations: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Hand the request to the next pool, timing it."""
        started = time.perf_counter()
        try:
            return await next(self._next).handle_async_request(request)
        finally:
            if request.url.path == "/v1/messages":
                self.durations.append(time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools:
            await pool.aclose()


def timed_http(
    settings: WhatsAppSettings, connections: int, shards: int = 0
) -> tuple[httpx.AsyncClient, TimedTransport]:
    """An httpx client built as the v1 sender builds its own, over a timing transport.

    `shards` 0 uses the client's own transport (pools of `POOL_SIZE`); N > 0 forces N pools.
    """
    if shards <= 0:
        pools: list[httpx.AsyncBaseTransport] = [
            AiohttpTransport(max_connections=connections, verify=settings.verify_tls)
        ]
    else:
        per_pool = math.ceil(connections / shards)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        pools = [
            httpx.AsyncHTTPTransport(limits=limits, verify=settings.verify_tls)
            for _ in range(shards)
        ]
    transport = TimedTransport(pools)
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

    label: str
    limit: float
    messages: int
    concurrency: int
    shards: int = 1
    wall_s: float = 0.0
    cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    sent: int = 0
    statuses: Counter[int | None] = field(default_factory=Counter)
    arrival_rate: float = 0.0
    http_durations: list[float] = field(default_factory=list)
    call_durations: list[float] = field(default_factory=list)
    ledger_rows: dict[str, int] | None = None
    burst: int = 0

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
    """Distinct E.164 numbers the sandbox treats as WhatsApp users (last digit not 0)."""
    return [f"+49151{i:07d}1" for i in range(count)]


def _no_ledger(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
    """A ledger writer that writes nothing and lets every claim through."""
    return frozenset(c.phone_e164 for c in claims)


def _sqlite_ledger(directory: str, campaign_id: str, run_id: str) -> ledger.LedgerWrite:
    """The real ledger on a fresh SQLite warehouse (migrated before the timed part)."""
    engine = warehouse(f"sqlite:///{directory}/warehouse.sqlite")
    held = lease.acquire(engine, campaign_id, run_id, timedelta(minutes=10))

    def write(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
        return ledger.advance(engine, held, run_id, results=results, claims=claims)

    return write


async def _send(run: Run, sandbox: Sandbox, write: ledger.LedgerWrite, burst: int) -> None:
    """Check the numbers, then time `send_all` over all of them."""
    to = numbers(run.messages)
    settings = WhatsAppSettings(base_url=sandbox.url, api_key=SecretStr(API_KEY))
    # As tasks.send.task.send builds its client: the limits pace every message request.
    limits = SendLimits(rate_per_s=run.limit, concurrency=run.concurrency, burst=burst)
    # The semaphore keeps `concurrency` sends in flight; two more for the contacts call.
    http, transport = timed_http(settings, run.concurrency + 2, run.shards)
    client = OnPremSender(settings=settings, send_limits=limits, http=http)
    timed = TimedSender(client)
    async with http, timed:
        checks = await client.check_contacts(to)
        items = [
            Outgoing(phone_e164=n, customer_id=str(i), wa_id=str(checks[n].wa_id), params=("Ana",))
            for i, n in enumerate(to)
            if checks[n].status == "valid"
        ]
        if len(items) != len(to):
            raise RuntimeError(f"{len(to) - len(items)} numbers were not answered valid")
        cpu, sandbox_cpu, started = time.process_time(), sandbox.cpu_s, time.perf_counter()
        results = await send_all(timed, items, TEMPLATE, write=write, concurrency=run.concurrency)
        run.wall_s = time.perf_counter() - started
        run.cpu_s = time.process_time() - cpu
        run.sandbox_cpu_s = sandbox.cpu_s - sandbox_cpu
        run.call_durations = timed.durations
        run.http_durations = transport.durations
    run.sent = sum(1 for r in results.values() if r.state == LedgerState.SENT)


def measure(run: Run, sandbox: Sandbox, write: ledger.LedgerWrite, burst: int) -> Run:
    """One timed run on a freshly reset sandbox, with the sandbox's record read afterwards."""
    sandbox.reset()
    run.burst = min(burst, run.messages)
    asyncio.run(_send(run, sandbox, write, burst))
    record = sandbox.message_requests()
    run.statuses = Counter(r["status"] for r in record)
    accepted = sorted(r["monotonic"] for r in record if r["status"] in (200, 201))
    if len(accepted) > 1:
        run.arrival_rate = (len(accepted) - 1) / (accepted[-1] - accepted[0])
    return run


def figures(run: Run) -> list[Figure]:
    """The figures of one run, each named after it."""
    n = run.messages
    other = sum(v for k, v in run.statuses.items() if k not in (200, 201, 429))
    return [
        Figure(
            f"{run.label}: achieved rate", run.rate, "msg/s", note=f"{n:,} in {run.wall_s:.1f} s"
        ),
        Figure(
            f"{run.label}: rate / limit",
            run.rate / run.limit,
            "",
            note=f"the first burst of {run.burst:,} included",
        ),
        Figure(
            f"{run.label}: sustained rate / limit",
            run.sustained_rate / run.limit,
            "",
            TARGET_SHARE,
            note=f"({n:,} - the burst of {run.burst:,}) / {run.wall_s:.1f} s / limit",
        ),
        Figure(f"{run.label}: 429s answered", run.statuses[429], "", TARGET_429),
        Figure(
            f"{run.label}: sends not accepted",
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
        Figure(f"{run.label}: arrival rate at sandbox", run.arrival_rate, "msg/s"),
        Figure(f"{run.label}: HTTP latency p50", percentile_ms(run.http_durations, 50), "ms"),
        Figure(f"{run.label}: HTTP latency p99", percentile_ms(run.http_durations, 99), "ms"),
        Figure(
            f"{run.label}: send_template p50 / p99",
            percentile_ms(run.call_durations, 50),
            "ms",
            note=f"p99 {percentile_ms(run.call_durations, 99) or 0:.0f} ms; the client's pacing "
            "wait included (in flight / rate when every slot is busy)",
        ),
        Figure(f"{run.label}: client CPU per send", run.cpu_s / n * 1000, "ms"),
        Figure(f"{run.label}: sandbox CPU per send", run.sandbox_cpu_s / n * 1000, "ms"),
    ]


def _limits(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench send",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--limits", type=_limits, default=[80.0, 250.0], help="messages/s list")
    parser.add_argument("--messages", type=int, default=2_000, help="sends per run (issue: 10,000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="sandbox answer latency")
    parser.add_argument("--headroom", type=float, default=1.2, help="sandbox limit / client limit")
    parser.add_argument("--burst", type=int, help="client burst (default: 1 s of messages)")
    parser.add_argument(
        "--sandbox-burst",
        type=float,
        default=2.0,
        help="sandbox bucket / client burst (default 2: 2 s of messages, the API's is 3 s)",
    )
    parser.add_argument(
        "--concurrency", type=int, help="in flight (default: ceil(limit * latency * 2) + 2)"
    )
    parser.add_argument("--no-ledger", action="store_true", help="skip the SQLite ledger run")
    parser.add_argument(
        "--http-shards",
        type=int,
        default=0,
        help="split the client's connections over N httpx pools (an experiment; default 0: "
        "the sender's own transport, pools of 8)",
    )
    return parser


def _ledger_run(box: Sandbox, run: Run, burst: int) -> Run:
    """One run through the real ledger on a fresh SQLite warehouse; counts its rows after."""
    with tempfile.TemporaryDirectory() as directory:
        campaign, run_id = "bench-send", str(uuid.uuid4())
        measure(run, box, _sqlite_ledger(directory, campaign, run_id), burst)
        engine = warehouse(f"sqlite:///{directory}/warehouse.sqlite")
        states = ledger.load(engine, campaign)["state"].value_counts()
        run.ledger_rows = {str(state): int(count) for state, count in states.items()}
        engine.dispose()
    return run


def runs_at(limit: float, args: argparse.Namespace, *, with_ledger: bool) -> list[Run]:
    """The runs at one limit, against a sandbox of their own."""
    shards = max(0, args.http_shards)
    pools = f" {shards} pools" if shards > 0 else ""
    burst = args.burst or SendLimits(rate_per_s=limit).bucket
    concurrency = args.concurrency or math.ceil(limit * args.latency_ms / 1000 * 2) + 2
    bucket = max(1, round(burst * args.sandbox_burst))
    print(
        f"limit {limit:g}/s: sandbox {limit * args.headroom:g}/s bucket {bucket}, "
        f"{args.latency_ms:g} ms; client concurrency {concurrency}, burst {burst}"
        + (f", {shards} connection pools" if shards > 0 else ""),
        flush=True,
    )
    runs = []
    with Sandbox(latency_ms=args.latency_ms, rate=limit * args.headroom, burst=bucket) as box:
        # Untimed: first-use costs (imports, connections, caches) out of the figures.
        warm_up = Run("warm-up", limit, min(50, args.messages), concurrency, shards)
        measure(warm_up, box, _no_ledger, burst)
        plain = Run(f"{limit:g}/s{pools}", limit, args.messages, concurrency, shards)
        runs.append(measure(plain, box, _no_ledger, burst))
        if with_ledger:
            kept = Run(
                f"{limit:g}/s{pools} sqlite ledger", limit, args.messages, concurrency, shards
            )
            runs.append(_ledger_run(box, kept, burst))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Run each limit against its own sandbox, print and save the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.headroom <= 0 or args.messages < 1 or not args.limits or min(args.limits) <= 0:
        parser.error("--headroom, --messages and every --limits value must be positive")
    runs = [
        run
        for limit in args.limits
        for run in runs_at(
            limit, args, with_ledger=limit == max(args.limits) and not args.no_ledger
        )
    ]
    params = {
        "limits": args.limits,
        "messages": args.messages,
        "latency_ms": args.latency_ms,
        "headroom": args.headroom,
        "sandbox_burst": args.sandbox_burst,
        "http_shards": max(0, args.http_shards),
        "runs": [
            {
                "label": r.label,
                "concurrency": r.concurrency,
                "wall_s": r.wall_s,
                "cpu_s": r.cpu_s,
                "sandbox_cpu_s": r.sandbox_cpu_s,
                "statuses": {str(k): v for k, v in r.statuses.items()},
                "ledger_rows": r.ledger_rows,
                "burst": r.burst,
            }
            for r in runs
        ],
    }
    title = (
        f"send: {args.messages:,} messages per run, sandbox latency {args.latency_ms:g} ms, "
        "sandbox in its own process (client CPU is this process only)"
    )
    report("send", title, [f for r in runs for f in figures(r)], params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
