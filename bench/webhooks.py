"""Webhooks (issue 17): status events per second sustained for 60 s into the warehouse, none lost.

The receiver runs as `python -m connectors.webhooks` in its own process, on a fresh SQLite file
and then on a fresh PostgreSQL database (created and dropped here). The messages' ledger and
customer rows are written first, as a run leaves them, so every status is applied, not just
stored. Each message is v1 or Cloud API (`--shape mixed`: half each): v1 bodies carry 1-3
statuses shaped as the v1 sandbox pushes them (conversation, CBP pricing, errors), Cloud bodies
are `entry[].changes[].value.statuses[]` envelopes of 1-3 statuses shaped as the Cloud sandbox
pushes them (PMP pricing, BSUID, callback key) and signed with X-Hub-Signature-256. Meta may
batch up to ~1,000 statuses in one Cloud body but usually sends few; 1-3 is the harder case.
Every message's statuses go in their own order, bodies interleaved across connections.

A small asyncio HTTP/1.1 client on uvloop (keep-alive, `--connections` in flight, requests
built and signed before the clock starts) offers `--rate` events/s for `--seconds`: each body
has its due time and goes as soon as a connection is free after it. A non-200 answer is retried
with growing delays, as a provider does (`--attempts` posts at most, ~6 s). Afterwards
`wa_status_events` must hold exactly one row per event sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import uvloop
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.common import Figure, Target, cpu_seconds, free_port, report, wait_answering
from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.callback import callback_key
from connectors.warehouse.connect import warehouse
from connectors.warehouse.records import write_recipients
from connectors.warehouse.schema import deliveries, status_events
from connectors.webhooks.security import SIGNATURE_HEADER, sign

ROOT: Final = Path(__file__).resolve().parents[1]
TOKEN: Final = "bench-webhook-token"
APP_SECRET: Final = "bench-app-secret"
CAMPAIGN: Final = "bench-webhooks"
WABA_ID: Final = "102290129340398"
PHONE_NUMBER_ID: Final = "106540352242922"
POSTGRES_ADMIN_URL: Final = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_RATE: Final = Target(">=", 3000)
TARGET_LOST: Final = Target("<=", 0)
TARGET_P99_MS: Final = Target("<=", 1000)
TARGET_CPU_MS: Final = Target("<=", 0.2)
SHAPES: Final = ("v1", "cloud")
START_DEADLINE_S: Final = 60.0


# The load ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One message sent: its id, recipient, API and its statuses in their true order."""

    n: int
    message_id: str
    shape: str
    statuses: tuple[str, ...]

    @property
    def phone(self) -> str:
        return f"+49151{self.n:07d}1"


def plan_messages(
    events: int, *, failed_share: float, cloud_share: float, seed: int
) -> list[Message]:
    """Messages enough for `events` statuses: sent, delivered, read (or sent, failed)."""
    rng = random.Random(seed)
    out: list[Message] = []
    total = 0
    n = 0
    while total < events:
        sequence = (
            ("sent", "failed") if rng.random() < failed_share else ("sent", "delivered", "read")
        )
        sequence = sequence[: events - total]
        shape = "cloud" if rng.random() < cloud_share else "v1"
        message_id = (
            f"wamid.HBgLNDkxNTE{n:012d}FQIAERgS"
            if shape == "cloud"
            else f"gBEGkYiEB1VXAglK{n:012d}"
        )
        out.append(Message(n, message_id, shape, sequence))
        total += len(sequence)
        n += 1
    return out


def _v1_status(message: Message, status: str, at: int, conversation: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message.message_id,
        "recipient_id": message.phone[1:],
        "status": status,
        "timestamp": str(at),
    }
    if status in ("sent", "delivered"):
        entry["conversation"] = {"id": conversation, "origin": {"type": "marketing"}}
        entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
    if status == "failed":
        entry["errors"] = [{"code": 470, "title": "Message failed to send (24 h window)"}]
    return entry


def _cloud_status(message: Message, status: str, at: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message.message_id,
        "status": status,
        "timestamp": str(at),
        "recipient_id": message.phone[1:],
    }
    if status != "failed":
        entry["recipient_user_id"] = f"DE.{message.n:020d}"
    entry["biz_opaque_callback_data"] = callback_key(CAMPAIGN, message.phone)
    if status in ("sent", "delivered"):
        entry["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "category": "marketing",
            "type": "regular",
        }
    if status == "failed":
        entry["errors"] = [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ]
    return entry


def _cloud_body(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    metadata = {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID}
    value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": statuses}
    change = {"field": "messages", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [change]}]}


@dataclass(frozen=True, slots=True)
class Body:
    """One request ready to write: its bytes, the statuses it carries and its API."""

    request: bytes
    events: int
    shape: str


def _request(port: int, shape: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    if shape == "cloud":
        path = "/webhooks/cloud"
        extra = f"{SIGNATURE_HEADER}: {sign(body, SecretStr(APP_SECRET))}\r\n"
    else:
        path = f"/webhooks/v1/{TOKEN}"
        extra = ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def bodies(messages: Sequence[Message], port: int, *, seed: int) -> list[Body]:
    """Each API's statuses in order, cut into bodies of 1-3, the two streams interleaved."""
    rng = random.Random(seed)
    base = 1_780_000_000
    streams: dict[str, list[Body]] = {}
    for shape in SHAPES:
        entries: list[dict[str, Any]] = []
        for m in (m for m in messages if m.shape == shape):
            conversation = uuid.UUID(int=rng.getrandbits(128)).hex
            for i, status in enumerate(m.statuses):
                at = base + m.n + i
                if shape == "cloud":
                    entries.append(_cloud_status(m, status, at))
                else:
                    entries.append(_v1_status(m, status, at, conversation))
        cut: list[Body] = []
        i = 0
        while i < len(entries):
            chunk = entries[i : i + rng.randint(1, 3)]
            payload = _cloud_body(chunk) if shape == "cloud" else {"statuses": chunk}
            cut.append(Body(_request(port, shape, payload), len(chunk), shape))
            i += len(chunk)
        streams[shape] = cut
    out: list[Body] = []
    v1, cloud = iter(streams["v1"]), iter(streams["cloud"])
    left = {"v1": len(streams["v1"]), "cloud": len(streams["cloud"])}
    while left["v1"] or left["cloud"]:
        pick = "v1" if rng.random() * (left["v1"] + left["cloud"]) < left["v1"] else "cloud"
        out.append(next(v1 if pick == "v1" else cloud))
        left[pick] -= 1
    return out


@dataclass
class Load:
    """What the client saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SHAPES})
    retries: int = 0
    given_up: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """This process's CPU while it offered the load (the load generator's own)."""
    behind_s: float = 0.0
    """How late the latest body went out against its due time (~0: the receiver kept up)."""

    def all_latencies(self) -> list[float]:
        return [x for shape in SHAPES for x in self.latencies[shape]]


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 exchange; returns the status code."""
    writer.write(request)
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(lines[0][9:12])


async def push(
    port: int, payloads: Sequence[Body], connections: int, attempts: int, rate: float
) -> Load:
    """Post every body over `connections` connections, each once due at `rate` events/s (0: at
    once), up to `attempts` times each."""
    load = Load()
    due: list[float] = []
    offset = 0.0
    for body in payloads:
        due.append(offset)
        offset += body.events / rate if rate > 0 else 0.0
    queue = iter(range(len(payloads)))
    started = 0.0

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in queue:
                body = payloads[i]
                wait = started + due[i] - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    load.behind_s = max(load.behind_s, -wait)
                for attempt in range(attempts):
                    sent = time.perf_counter()
                    code = await _post(reader, writer, body.request)
                    load.latencies[body.shape].append(time.perf_counter() - sent)
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

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    load.wall_s = time.perf_counter() - started
    load.cpu_s = time.process_time() - cpu
    return load


def offer(port: int, payloads: Sequence[Body], args: argparse.Namespace) -> Load:
    """`push` on a uvloop event loop, so the client spends as little CPU as it can."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(push(port, payloads, args.connections, args.attempts, args.rate))


# The receiver and its database ----------------------------------------------------------------


class Receiver:
    """`python -m connectors.webhooks` in a child process on a free port."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        self._env = {
            **os.environ,
            "WAREHOUSE_DATABASE_URL": url,
            "WEBHOOK_TOKEN": TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
        self._log = tempfile.NamedTemporaryFile(prefix="bench-webhooks-", suffix=".log")  # noqa: SIM115 (closed in stop)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Receiver:
        command = [sys.executable, "-m", "connectors.webhooks", "--port", str(self.port)]
        command += ["--log-level", "INFO"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self._env, stdout=self._log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{self.port}/healthz"
        problem = wait_answering(url, self.process, START_DEADLINE_S)
        if problem is not None:
            output = self.output()
            self.__exit__()
            raise RuntimeError(f"receiver did not start ({problem}):\n{output}")
        return self

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def transactions(self) -> int | None:
        """The transactions the receiver committed, from its last words (after `stop`)."""
        found = re.findall(r"events of \d+ requests in (\d+) transactions", self.output())
        return int(found[-1]) if found else None

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

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self._log.close()


def seed_ledger(url: str, messages: Sequence[Message]) -> None:
    """Ledger and customer rows for every message, as a finished run leaves them."""
    engine = warehouse(url)
    at = datetime.now(UTC)
    claims, results, rows = [], [], []
    for m in messages:
        claims.append(ledger.Claim(m.phone, str(m.n), m.phone[1:], 1, at, at))
        results.append(ledger.Result(m.phone, LedgerState.SENT, at, message_id=m.message_id))
        rows.append(
            {
                "campaign_id": CAMPAIGN,
                "customer_id": str(m.n),
                "outcome": "sent",
                "reason": None,
                "phone_e164": m.phone,
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
    engine.dispose()  # its server processes must not count as the receiver's


def server_cpu_s(url: str) -> float | None:
    """CPU so far of the PostgreSQL backends connected to the database of `url` (the receiver's,
    open since its first batch); None for SQLite, which runs inside the receiver."""
    if make_url(url).get_backend_name() != "postgresql":
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            ).scalars()
            return sum(cpu_seconds(int(pid)) for pid in pids)
    finally:
        engine.dispose()


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


def _p(values: Sequence[float], q: float) -> float | None:
    """The q-quantile of `values` in ms (nearest rank), None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q + 0.5) - 1)] * 1000


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
    load_average: float | None = None
    transactions: int | None = None
    database_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.load.wall_s if self.load.wall_s else 0.0

    def figures(self, offered: float) -> list[Figure]:
        every = self.load.all_latencies()
        wall = self.load.wall_s
        per_shape = ", ".join(
            f"{shape} p99 {_p(self.load.latencies[shape], 0.99) or 0:.0f} ms"
            for shape in SHAPES
            if self.load.latencies[shape]
        )
        offer_note = f"offered {offered:,.0f}/s" if offered > 0 else "offered as fast as answered"
        return [
            Figure(
                f"{self.label}: status events/s",
                self.rate,
                "events/s",
                TARGET_RATE,
                note=(
                    f"{self.events:,} events in {self.requests:,} requests, {wall:.1f} s, "
                    f"{offer_note}; load average {self.load_average} at the end"
                ),
            ),
            Figure(f"{self.label}: requests/s", self.requests / wall if wall else None, "req/s"),
            Figure(f"{self.label}: events lost", self.events - self.stored, "", TARGET_LOST),
            Figure(
                f"{self.label}: non-200 answers (retried)",
                self.load.retries,
                "",
                note=f"{self.load.given_up} bodies given up" if self.load.given_up else "",
            ),
            Figure(f"{self.label}: answer latency p50", statistics.median(every) * 1000, "ms"),
            Figure(
                f"{self.label}: answer latency p99", _p(every, 0.99), "ms", TARGET_P99_MS, per_shape
            ),
            Figure(f"{self.label}: most behind schedule", self.load.behind_s * 1000, "ms"),
            Figure(
                f"{self.label}: events per transaction",
                self.events / self.transactions if self.transactions else None,
                "",
            ),
            Figure(
                f"{self.label}: receiver CPU per event",
                self.receiver_cpu_s / self.events * 1000,
                "ms",
                TARGET_CPU_MS,
            ),
            Figure(
                f"{self.label}: database server CPU per event",
                None if self.database_cpu_s is None else self.database_cpu_s / self.events * 1000,
                "ms",
                note="" if self.database_cpu_s is None else "the receiver's PostgreSQL backends",
            ),
            Figure(
                f"{self.label}: load generator CPU per event",
                self.load.cpu_s / self.events * 1000,
                "ms",
            ),
        ]


def measure(label: str, url: str, args: argparse.Namespace) -> Run:
    """Seed, start the receiver, push every body, count what was stored."""
    events = args.events or round(args.seconds * args.rate)
    cloud_share = {"v1": 0.0, "cloud": 1.0, "mixed": 0.5}[args.shape]
    messages = plan_messages(
        events, failed_share=args.failed_share, cloud_share=cloud_share, seed=args.seed
    )
    seed_ledger(url, messages)
    with Receiver(url) as receiver:
        payloads = bodies(messages, receiver.port, seed=args.seed)
        run = Run(label, sum(b.events for b in payloads), len(payloads))
        cpu = receiver.cpu_s
        run.load = offer(receiver.port, payloads, args)
        run.receiver_cpu_s = receiver.cpu_s - cpu
        run.load_average = round(os.getloadavg()[0], 2)
        run.database_cpu_s = server_cpu_s(url)
        receiver.stop()
        run.transactions = receiver.transactions()
    run.stored, run.states = stored_counts(url)
    print(
        f"{label}: {run.rate:,.0f} events/s, stored {run.stored:,}/{run.events:,}, "
        f"deliveries {dict(run.states)}, load average {run.load_average}",
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
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load lasts")
    parser.add_argument(
        "--rate", type=float, default=3300.0, help="events/s offered (0: as fast as answered)"
    )
    parser.add_argument(
        "--events", type=int, default=0, help="events in all (default: seconds x rate)"
    )
    parser.add_argument("--connections", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--shape", choices=["mixed", "v1", "cloud"], default="mixed")
    parser.add_argument("--failed-share", type=float, default=0.05)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--attempts", type=int, default=8, help="posts of one body before it counts as lost"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 and args.events <= 0:
        parser.error("--rate 0 needs --events")
    runs: list[Run] = []
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        if kind == "sqlite":
            # On the project's disk, not a tmpfs: commits must reach a real fsync.
            with tempfile.TemporaryDirectory(prefix="bench-webhooks-", dir=ROOT) as directory:
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
        "seconds": args.seconds,
        "rate": args.rate,
        "connections": args.connections,
        "shape": args.shape,
        "failed_share": args.failed_share,
        "runs": [
            {
                "label": r.label,
                "events": r.events,
                "requests": r.requests,
                "wall_s": r.load.wall_s,
                "answers": {str(k): v for k, v in r.load.statuses.items()},
                "stored": r.stored,
                "delivery_states": dict(r.states),
                "receiver_cpu_s": r.receiver_cpu_s,
                "load_generator_cpu_s": r.load.cpu_s,
                "database_server_cpu_s": r.database_cpu_s,
                "load_average_at_end": r.load_average,
                "transactions": r.transactions,
            }
            for r in runs
        ],
    }
    pace = f"offered at {args.rate:,.0f} events/s" if args.rate > 0 else "as fast as answered"
    title = (
        f"webhooks: {pace}, {args.shape} v1/Cloud bodies of 1-3 statuses, {args.connections} "
        "connections, receiver in its own process (python -m connectors.webhooks)"
    )
    report("webhooks", title, [f for r in runs for f in r.figures(args.rate)], params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
