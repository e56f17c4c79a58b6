"""Webhooks (issue: delivery statuses): status events per second into the warehouse, none lost.

The receiver runs as `python -m connectors.webhooks` in its own process, on a fresh SQLite file
and then on a fresh PostgreSQL database (created and dropped here). The messages' ledger and
customer rows are written first, as a run leaves them, so every status is applied, not just
stored. A small asyncio HTTP/1.1 client (keep-alive, `--connections` in flight; httpx would cost
more CPU than the receiver on these 2 cores) posts v1 bodies of 1-3 statuses each, as the
sandbox shapes them (conversation, pricing, errors), every message's statuses in its own
request order but requests interleaved across connections. A non-200 answer is retried with
growing delays, as a provider does (`--attempts` posts at most, ~6 s). Afterwards
`wa_status_events` must hold exactly one row per event sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.common import Figure, Target, cpu_seconds, free_port, report, wait_answering
from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.records import write_recipients
from connectors.warehouse.schema import deliveries, status_events

ROOT: Final = Path(__file__).resolve().parents[1]
TOKEN: Final = "bench-webhook-token"
CAMPAIGN: Final = "bench-webhooks"
POSTGRES_ADMIN_URL: Final = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_RATE: Final = Target(">=", 1000)
TARGET_LOST: Final = Target("<=", 0)
START_DEADLINE_S: Final = 60.0


# The load ------------------------------------------------------------------------------------


def message_ids(count: int) -> list[str]:
    """Message ids shaped like the API's."""
    return [f"gBEGkYiEB1VXAglK{i:012d}" for i in range(count)]


def plan_events(events: int, *, failed_share: float, seed: int) -> list[dict[str, Any]]:
    """`events` statuses: per message sent, delivered, read (or sent, failed), 1 s apart."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    base = 1_780_000_000
    for n, message_id in enumerate(message_ids(events)):
        if len(out) >= events:
            break
        wa_id = f"49151{n:07d}1"
        fails = rng.random() < failed_share
        sequence = ("sent", "failed") if fails else ("sent", "delivered", "read")
        conversation = {"id": uuid.uuid4().hex, "origin": {"type": "marketing"}}
        for i, status in enumerate(sequence):
            entry: dict[str, Any] = {
                "id": message_id,
                "recipient_id": wa_id,
                "status": status,
                "timestamp": str(base + n + i),
            }
            if status in ("sent", "delivered"):
                entry["conversation"] = conversation
                entry["pricing"] = {
                    "billable": True,
                    "pricing_model": "CBP",
                    "category": "marketing",
                }
            if status == "failed":
                entry["errors"] = [{"code": 470, "title": "Message failed to send (24 h window)"}]
            out.append(entry)
    return out[:events]


def bodies(events: Sequence[dict[str, Any]], *, seed: int) -> list[bytes]:
    """The events in order, cut into v1 bodies of 1-3 statuses."""
    rng = random.Random(seed)
    out: list[bytes] = []
    i = 0
    while i < len(events):
        size = rng.randint(1, 3)
        out.append(json.dumps({"statuses": list(events[i : i + size])}).encode())
        i += size
    return out


@dataclass
class Load:
    """What the client saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    given_up: int = 0
    wall_s: float = 0.0


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> int:
    """One keep-alive HTTP/1.1 POST; returns the status code."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    code = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return code


async def push(port: int, payloads: Sequence[bytes], connections: int, attempts: int) -> Load:
    """Post every body over `connections` keep-alive connections, up to `attempts` times each."""
    load = Load()
    head = (
        f"POST /webhooks/v1/{TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    queue: Iterator[bytes] = iter(payloads)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in queue:
                for attempt in range(attempts):
                    started = time.perf_counter()
                    code = await _post(reader, writer, head, body)
                    load.latencies.append(time.perf_counter() - started)
                    load.statuses[code] += 1
                    if code == 200:
                        break
                    if attempt + 1 < attempts:
                        load.retries += 1
                        await asyncio.sleep(0.05 * 2**attempt)
                else:
                    load.given_up += 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    load.wall_s = time.perf_counter() - started
    return load


# The receiver and its database ----------------------------------------------------------------


class Receiver:
    """`python -m connectors.webhooks` in a child process on a free port."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        self._env = {
            **os.environ,
            "WAREHOUSE_DATABASE_URL": url,
            "WEBHOOK_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        self._log = tempfile.NamedTemporaryFile(prefix="bench-webhooks-", suffix=".log")  # noqa: SIM115 (closed in stop)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Receiver:
        command = [sys.executable, "-m", "connectors.webhooks", "--port", str(self.port)]
        command += ["--log-level", "WARNING"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self._env, stdout=self._log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{self.port}/healthz"
        problem = wait_answering(url, self.process, START_DEADLINE_S)
        if problem is not None:
            output = self.output()
            self.stop()
            raise RuntimeError(f"receiver did not start ({problem}):\n{output}")
        return self

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    @property
    def cpu_s(self) -> float:
        return 0.0 if self.process is None else cpu_seconds(self.process.pid)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def seed_ledger(url: str, ids: Sequence[str]) -> None:
    """Ledger and customer rows for every message, as a finished run leaves them."""
    engine = warehouse(url)
    at = datetime.now(UTC)
    claims, results, rows = [], [], []
    for n, message_id in enumerate(ids):
        phone = f"+49151{n:07d}1"
        claims.append(ledger.Claim(phone, str(n), phone[1:], 1, at, at))
        results.append(ledger.Result(phone, LedgerState.SENT, at, message_id=message_id))
        rows.append(
            {
                "campaign_id": CAMPAIGN,
                "customer_id": str(n),
                "outcome": "sent",
                "reason": None,
                "phone_e164": phone,
                "duplicate_of": None,
                "run_id": "bench",
                "updated_at": at,
            }
        )
    held = lease.acquire(engine, CAMPAIGN, "bench", timedelta(minutes=10))
    ledger.advance(engine, held, "bench", results=[], claims=claims)
    ledger.advance(engine, held, "bench", results=results, claims=[])
    lease.release(engine, held)
    write_recipients(engine, rows)


def stored_counts(url: str) -> tuple[int, Counter[str]]:
    """Rows in wa_status_events, and deliveries per delivery_status."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            events = int(conn.execute(select(func.count()).select_from(status_events)).scalar_one())
            rows = conn.execute(
                select(deliveries.c.delivery_status, func.count()).group_by(
                    deliveries.c.delivery_status
                )
            )
            states = Counter({str(s): int(c) for s, c in rows})
    finally:
        engine.dispose()
    return events, states


@dataclass
class Run:
    """One database's measurement."""

    label: str
    events: int
    requests: int
    load: Load = field(default_factory=Load)
    stored: int = 0
    states: Counter[str] = field(default_factory=Counter)
    receiver_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.load.wall_s if self.load.wall_s else 0.0

    def figures(self) -> list[Figure]:
        ms = sorted(self.load.latencies)
        p50 = statistics.median(ms) * 1000 if ms else None
        p99 = ms[int(len(ms) * 0.99) - 1] * 1000 if len(ms) > 1 else None
        wall = self.load.wall_s
        return [
            Figure(
                f"{self.label}: status events/s",
                self.rate,
                "events/s",
                TARGET_RATE,
                note=f"{self.events:,} events in {self.requests:,} requests, {wall:.1f} s",
            ),
            Figure(f"{self.label}: requests/s", self.requests / wall if wall else None, "req/s"),
            Figure(f"{self.label}: events lost", self.events - self.stored, "", TARGET_LOST),
            Figure(
                f"{self.label}: non-200 answers (retried)",
                self.load.retries,
                "",
                note=f"{self.load.given_up} bodies given up" if self.load.given_up else "",
            ),
            Figure(f"{self.label}: answer latency p50", p50, "ms"),
            Figure(f"{self.label}: answer latency p99", p99, "ms"),
            Figure(
                f"{self.label}: receiver CPU per event",
                self.receiver_cpu_s / self.events * 1000,
                "ms",
            ),
        ]


def measure(label: str, url: str, args: argparse.Namespace) -> Run:
    """Seed, start the receiver, push every body, count what was stored."""
    events = plan_events(args.events, failed_share=args.failed_share, seed=args.seed)
    payloads = bodies(events, seed=args.seed)
    seed_ledger(url, sorted({e["id"] for e in events}))
    run = Run(label, len(events), len(payloads))
    with Receiver(url) as receiver:
        cpu = receiver.cpu_s
        run.load = asyncio.run(push(receiver.port, payloads, args.connections, args.attempts))
        run.receiver_cpu_s = receiver.cpu_s - cpu
    run.stored, run.states = stored_counts(url)
    print(
        f"{label}: {run.rate:,.0f} events/s, stored {run.stored:,}/{run.events:,}, "
        f"deliveries {dict(run.states)}",
        flush=True,
    )
    return run


def postgres_database() -> tuple[str, str]:
    """Create an empty database on the PostgreSQL server: (its URL, its name)."""
    name = f"wa_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False), name


def drop_postgres_database(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Measure on each database, print and save the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench webhooks", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16, help="requests in flight")
    parser.add_argument("--failed-share", type=float, default=0.05)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--attempts", type=int, default=8, help="posts of one body before it counts as lost"
    )
    args = parser.parse_args(argv)
    runs: list[Run] = []
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        if kind == "sqlite":
            with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as directory:
                runs.append(measure("sqlite", f"sqlite:///{directory}/warehouse.sqlite", args))
        elif kind == "postgresql":
            url, name = postgres_database()
            try:
                runs.append(measure("postgresql", url, args))
            finally:
                warehouse(url).dispose()
                drop_postgres_database(name)
        else:
            parser.error(f"unknown database {kind!r}; use sqlite and/or postgresql")
    params = {
        "events": args.events,
        "connections": args.connections,
        "failed_share": args.failed_share,
        "runs": [
            {
                "label": r.label,
                "requests": r.requests,
                "wall_s": r.load.wall_s,
                "answers": {str(k): v for k, v in r.load.statuses.items()},
                "stored": r.stored,
                "delivery_states": dict(r.states),
                "receiver_cpu_s": r.receiver_cpu_s,
            }
            for r in runs
        ],
    }
    title = (
        f"webhooks: {args.events:,} status events, 1-3 per request, {args.connections} "
        "connections, receiver in its own process (python -m connectors.webhooks)"
    )
    report("webhooks", title, [f for r in runs for f in r.figures()], params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
