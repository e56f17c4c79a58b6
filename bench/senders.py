"""Senders (issue 17): several Cloud numbers in one campaign, together at the sum of their rates.

`tasks.send.task.send` sends `--messages` (40,000) through `--senders` (4) Cloud numbers at
`--rate` (250) messages/s each, as the flow plans them (`SenderPlan`: each number its own rate,
limiter, in-flight cap and breaker; every number assigned to one sender by `assign_senders`),
recording every send in the real ledger on a scratch PostgreSQL database (`--ledger sqlite`: a
SQLite file). Each number is a Cloud sandbox in its own process (answer latency `--latency-ms`
50, throughput `--headroom` 1.2 x its rate with one second's bucket), so a 429 means a sender
went over its own rate.

Target: together >= 95% of the sum of the rates (4 x 250/s = 1,000/s); each number's busiest
second <= 1.1 x its rate; no 429s; every message sent.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import Final

import pandas as pd
from pydantic import SecretStr

from bench.common import Figure, Target, busiest_window, report, scratch_postgres
from bench.send import CLOUD_TEMPLATE, Sandbox, numbers
from connectors.vocabulary import OUTCOME, PHONE_E164, WA_ID, Outcome
from connectors.warehouse import lease
from connectors.warehouse.connect import warehouse
from connectors.whatsapp import WhatsAppSettings
from connectors.whatsapp.cloud.sandbox.config import DEFAULT_TOKEN, DEFAULT_WABA_ID
from tasks.frame import with_stage_columns
from tasks.send.senders import SenderPlan, assign_senders, default_concurrency
from tasks.send.task import send
from tasks.template import Fill

CAMPAIGN: Final = "bench-senders"
SHARE: Final = 0.95
CEILING: Final = 1.1


def phone_number_id(index: int) -> str:
    """The Cloud phone number id of sender `index`."""
    return f"10654035224{index:04d}"


def chunks(count: int, chunk_size: int) -> list[pd.DataFrame]:
    """Verified chunks of `count` distinct numbers the Cloud sandbox delivers to."""
    phones = numbers(count)
    frames = []
    for start in range(0, count, chunk_size):
        part = phones[start : start + chunk_size]
        ids = [str(i) for i in range(start, start + len(part))]
        frame = with_stage_columns(pd.DataFrame({"customer_id": ids}))
        frame[PHONE_E164] = pd.Series(part, dtype="str")
        frame[WA_ID] = pd.Series([p[1:] for p in part], dtype="str")
        frame["param_order"] = "A-1042"
        frames.append(frame)
    return frames


def _plan(box: Sandbox, number: str, rate: float, concurrency: int) -> SenderPlan:
    settings = WhatsAppSettings(
        api="cloud",
        base_url=box.url,
        token=SecretStr(DEFAULT_TOKEN),
        phone_number_id=number,
        waba_id=DEFAULT_WABA_ID,
    )
    return SenderPlan(settings, rate_per_s=rate, concurrency=concurrency)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench senders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--senders", type=int, default=4, help="Cloud numbers")
    parser.add_argument("--rate", type=float, default=250.0, help="messages/s of each number")
    parser.add_argument("--messages", type=int, default=40_000, help="messages in all")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="sandbox answer latency")
    parser.add_argument("--headroom", type=float, default=1.2, help="sandbox limit / rate")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="customers per chunk")
    parser.add_argument("--ledger", choices=("postgresql", "sqlite"), default="postgresql")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the numbers' sandboxes, send through all of them at once, print the figures."""
    args = _parser().parse_args(argv)
    if args.senders < 1 or args.rate <= 0 or args.messages < 1:
        raise SystemExit("--senders, --rate and --messages must be positive")
    limit = args.rate * args.headroom
    concurrency = default_concurrency(args.rate)
    frames = chunks(args.messages, args.chunk_size)
    with ExitStack() as stack:
        boxes = [
            stack.enter_context(
                Sandbox(
                    "cloud",
                    latency_ms=args.latency_ms,
                    rate=limit,
                    burst=math.ceil(limit),
                    phone_number_id=phone_number_id(i),
                )
            )
            for i in range(args.senders)
        ]
        if args.ledger == "postgresql":
            url = stack.enter_context(scratch_postgres())
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-senders-"))
            url = f"sqlite:///{directory}/warehouse.sqlite"
        engine = warehouse(url)
        held = lease.acquire(engine, CAMPAIGN, "bench#1", timedelta(minutes=30))
        plans = [
            _plan(box, phone_number_id(i), args.rate, concurrency) for i, box in enumerate(boxes)
        ]
        cpu, started = time.process_time(), time.perf_counter()
        sent = send(
            frames,
            lease=held,
            run_id="bench",
            fill=Fill.plain(CLOUD_TEMPLATE, ["order"]),
            senders=plans,
            warehouse_url=url,
        )
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        arrivals = [box.arrivals() for box in boxes]
        engine.dispose()
    out = pd.concat(sent.frames, ignore_index=True)
    shares = assign_senders(out[PHONE_E164], [p.sender_id for p in plans]).value_counts()
    accepted = int((out[OUTCOME] == Outcome.SENT).sum())
    total_rate = args.senders * args.rate
    figures = [
        Figure(
            "messages / s together",
            accepted / wall_s,
            "msg/s",
            note=f"{accepted:,} sent in {wall_s:.1f} s through {args.senders} numbers",
        ),
        Figure(
            "together / sum of the rates",
            accepted / wall_s / total_rate,
            "",
            Target(">=", SHARE),
            note=f"sum of the rates {total_rate:g}/s",
        ),
        Figure("sends not accepted", args.messages - accepted, "", Target("<=", 0)),
        Figure(
            "429s answered",
            sum(1 for a in arrivals for _, status in a if status == 429),
            "",
            Target("<=", 0),
        ),
    ]
    for i, record in enumerate(arrivals):
        times = [at for at, status in record if status == 200]
        figures.append(
            Figure(
                f"number {i + 1}: busiest second / its rate",
                busiest_window(times) / args.rate,
                "x",
                Target("<=", CEILING),
                note=f"{len(times):,} accepted; its share of the numbers "
                f"{int(shares.get(plans[i].sender_id, 0)):,}",
            )
        )
    figures.append(Figure("client CPU per send", 1000 * cpu_s / max(accepted, 1), "ms"))
    report(
        "senders",
        f"senders: {args.senders} Cloud numbers at {args.rate:g}/s each, {args.messages:,} "
        f"messages, sandbox latency {args.latency_ms:g} ms, {args.ledger} ledger, "
        f"{concurrency} in flight per number",
        figures,
        {
            "senders": args.senders,
            "rate": args.rate,
            "messages": args.messages,
            "latency_ms": args.latency_ms,
            "headroom": args.headroom,
            "ledger": args.ledger,
            "concurrency": concurrency,
            "stopped": sent.stopped,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
