"""Send (issue: send rate): `tasks.send.send_all` against the sandbox over HTTP, at each limit.

The sandbox runs in its own process (`python -m connectors.whatsapp.sandbox`), so this process's
CPU time is the client's alone: `send_all`, the WhatsApp client, httpx and the ledger writer.
The sandbox answers after `--latency-ms` and allows `--headroom` times the limit, with the same
burst as the client's limiter; a 429 therefore means the client itself went over its limit.

Per limit: one run with a no-op ledger writer; at the highest limit one more run with the real
SQLite ledger (`connectors.warehouse`), to show what the ledger costs. Before each run the
sandbox is reset and the numbers are checked once with `/v1/contacts` (a `to` must have been
answered `valid` first), outside the timed part.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
from pydantic import SecretStr

from bench.common import Figure, Target, report
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.whatsapp.client import Template, WhatsAppClient
from connectors.whatsapp.settings import WhatsAppSettings
from tasks.send import LedgerWriter, Outgoing, send_all

TEMPLATE: Final = Template(namespace="acme_ns", name="order_update", language="en")
API_KEY: Final = "sandbox-api-key"
ROOT: Final = Path(__file__).resolve().parents[1]
START_DEADLINE_S: Final = 30.0
STOP_DEADLINE_S: Final = 5.0
TARGET_SHARE: Final = Target(">=", 0.95)
TARGET_429: Final = Target("<=", 0)
TARGET_FAILED: Final = Target("<=", 0)


def _free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sandbox:
    """The sandbox in a child process on a free port; `with Sandbox(...) as sandbox:`."""

    def __init__(self, *, latency_ms: float, rate: float, burst: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._command = [
            sys.executable,
            "-m",
            "connectors.whatsapp.sandbox",
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
        problem = self._wait_ready(self._process)
        if problem is None:
            return self
        output = self._output()
        self._stop()
        raise RuntimeError(f"{problem}; its output:\n{output}")

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> str | None:
        """Poll the admin endpoint until it answers; else say why not."""
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            try:
                if self._admin.get("/sandbox/stats").status_code == 200:
                    return None
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return f"sandbox not answering on {self.url} after {START_DEADLINE_S:g} s"
            try:
                # Waits between polls, and notices a sandbox that exited.
                code = process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            return f"sandbox exited with {code}"

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
        return 0.0 if self._process is None else _cpu_seconds(self._process.pid)

    def reset(self) -> None:
        """Forget the record, known contacts and rate buckets."""
        self._admin.post("/sandbox/reset").raise_for_status()

    def message_requests(self) -> list[dict[str, Any]]:
        """The recorded `/v1/messages` requests, oldest first."""
        answer = self._admin.get("/sandbox/requests", params={"endpoint": "messages"})
        answer.raise_for_status()
        return list(answer.json()["requests"])


class TimedClient(WhatsAppClient):
    """A WhatsAppClient that records the wall time of every `send_template` call."""

    def __init__(self, *, settings: WhatsAppSettings, max_connections: int) -> None:
        super().__init__(settings=settings, max_connections=max_connections)
        self.durations: list[float] = []

    async def send_template(
        self, to: str, template: Template, params: Sequence[str], *, number: str | None = None
    ) -> str:
        """Send as the client does, timing the call."""
        started = time.perf_counter()
        try:
            return await super().send_template(to, template, params, number=number)
        finally:
            self.durations.append(time.perf_counter() - started)


@dataclass
class Run:
    """What one `send_all` run measured."""

    label: str
    limit: float
    messages: int
    concurrency: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    sent: int = 0
    statuses: Counter[int | None] = field(default_factory=Counter)
    arrival_rate: float = 0.0
    durations: list[float] = field(default_factory=list)
    ledger_rows: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        """Messages accepted per second of the whole `send_all` call."""
        return self.sent / self.wall_s

    def percentile_ms(self, q: int) -> float:
        """The q-th percentile of the send latency, in ms."""
        if len(self.durations) < 2:
            return self.durations[0] * 1000 if self.durations else math.nan
        return statistics.quantiles(self.durations, n=100, method="inclusive")[q - 1] * 1000


def numbers(count: int) -> list[str]:
    """Distinct E.164 numbers the sandbox treats as WhatsApp users (last digit not 0)."""
    return [f"+49151{i:07d}1" for i in range(count)]


def _no_ledger(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> None:
    """A ledger writer that writes nothing."""


def _sqlite_ledger(directory: str, campaign_id: str, run_id: str) -> LedgerWriter:
    """The real ledger on a fresh SQLite warehouse (migrated before the timed part)."""
    engine = warehouse(f"sqlite:///{directory}/warehouse.sqlite")

    def write(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> None:
        ledger.advance(engine, campaign_id, run_id, results=results, claims=claims)

    return write


async def _send(run: Run, sandbox: Sandbox, write: LedgerWriter, burst: int) -> None:
    """Check the numbers, then time `send_all` over all of them."""
    to = numbers(run.messages)
    settings = WhatsAppSettings(base_url=sandbox.url, api_key=SecretStr(API_KEY))
    async with TimedClient(settings=settings, max_connections=run.concurrency) as client:
        checks = await client.check_contacts(to)
        items = [
            Outgoing(phone_e164=n, customer_id=str(i), wa_id=str(checks[n].wa_id), params=("Ana",))
            for i, n in enumerate(to)
            if checks[n].status == "valid"
        ]
        if len(items) != len(to):
            raise RuntimeError(f"{len(to) - len(items)} numbers were not answered valid")
        cpu, sandbox_cpu, started = time.process_time(), sandbox.cpu_s, time.perf_counter()
        results = await send_all(
            client,
            items,
            TEMPLATE,
            write=write,
            rate_per_s=run.limit,
            concurrency=run.concurrency,
            burst=burst,
        )
        run.wall_s = time.perf_counter() - started
        run.cpu_s = time.process_time() - cpu
        run.sandbox_cpu_s = sandbox.cpu_s - sandbox_cpu
        run.durations = client.durations
    run.sent = sum(1 for r in results.values() if r.state == ledger.SENT)


def measure(run: Run, sandbox: Sandbox, write: LedgerWriter, burst: int) -> Run:
    """One timed run on a freshly reset sandbox, with the sandbox's record read afterwards."""
    sandbox.reset()
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
        Figure(f"{run.label}: rate / limit", run.rate / run.limit, "", TARGET_SHARE),
        Figure(f"{run.label}: 429s answered", run.statuses[429], "", TARGET_429),
        Figure(
            f"{run.label}: sends not accepted",
            n - run.sent,
            "",
            TARGET_FAILED,
            note=f"other non-2xx answers: {other}" if other else "",
        ),
        Figure(f"{run.label}: arrival rate at sandbox", run.arrival_rate, "msg/s"),
        Figure(f"{run.label}: send latency p50", run.percentile_ms(50), "ms"),
        Figure(f"{run.label}: send latency p99", run.percentile_ms(99), "ms"),
        Figure(f"{run.label}: client CPU per send", run.cpu_s / n * 1000, "ms"),
        Figure(f"{run.label}: sandbox CPU per send", run.sandbox_cpu_s / n * 1000, "ms"),
    ]


def _limits(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench send", description=__doc__)
    parser.add_argument("--limits", type=_limits, default=[80.0, 250.0], help="messages/s list")
    parser.add_argument("--messages", type=int, default=2_000, help="sends per run (issue: 10,000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="sandbox answer latency")
    parser.add_argument("--headroom", type=float, default=1.2, help="sandbox limit / client limit")
    parser.add_argument("--burst", type=int, help="limiter burst (default: send_all's, limit/10)")
    parser.add_argument(
        "--concurrency", type=int, help="in flight (default: ceil(limit * latency * 1.5) + 2)"
    )
    parser.add_argument("--no-ledger", action="store_true", help="skip the SQLite ledger run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run each limit against its own sandbox, print and save the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.headroom <= 0 or args.messages < 1 or not args.limits or min(args.limits) <= 0:
        parser.error("--headroom, --messages and every --limits value must be positive")
    latency_s = args.latency_ms / 1000
    runs: list[Run] = []
    for limit in args.limits:
        burst = args.burst or max(1, int(limit // 10))
        concurrency = args.concurrency or math.ceil(limit * latency_s * 1.5) + 2
        print(
            f"limit {limit:g}/s: sandbox {limit * args.headroom:g}/s burst {burst}, "
            f"{args.latency_ms:g} ms; client concurrency {concurrency}, burst {burst}",
            flush=True,
        )
        with Sandbox(latency_ms=args.latency_ms, rate=limit * args.headroom, burst=burst) as box:
            # Untimed: first-use costs (imports, connections, caches) out of the figures.
            measure(
                Run("warm-up", limit, min(50, args.messages), concurrency), box, _no_ledger, burst
            )
            plain = Run(f"{limit:g}/s", limit, args.messages, concurrency)
            runs.append(measure(plain, box, _no_ledger, burst))
            if limit == max(args.limits) and not args.no_ledger:
                with tempfile.TemporaryDirectory() as directory:
                    campaign, run_id = "bench-send", str(uuid.uuid4())
                    write = _sqlite_ledger(directory, campaign, run_id)
                    kept = Run(f"{limit:g}/s sqlite ledger", limit, args.messages, concurrency)
                    runs.append(measure(kept, box, write, burst))
                    engine = warehouse(f"sqlite:///{directory}/warehouse.sqlite")
                    states = ledger.load(engine, campaign)["state"].value_counts()
                    kept.ledger_rows = {str(k): int(v) for k, v in states.items()}
                    engine.dispose()
    params = {
        "limits": args.limits,
        "messages": args.messages,
        "latency_ms": args.latency_ms,
        "headroom": args.headroom,
        "runs": [
            {
                "label": r.label,
                "concurrency": r.concurrency,
                "wall_s": r.wall_s,
                "cpu_s": r.cpu_s,
                "sandbox_cpu_s": r.sandbox_cpu_s,
                "statuses": {str(k): v for k, v in r.statuses.items()},
                "ledger_rows": r.ledger_rows,
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
