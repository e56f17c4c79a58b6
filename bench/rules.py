"""Rules (issue 16): the rules stage's cost per million customers, beside normalise's, same run.

The audience is `--rows` distinct, valid E.164 numbers of five markets (US, CA, BR, AU, DE; +61
mobiles map to several time zones), in chunks of `--chunk-size`. The warehouse (SQLite file)
holds what earlier runs learnt: `--learnt` marketing stops, 131049s and sends in the window. The
stage runs with every rule on: a MARKETING template, US paused, a send window and a messaging
limit of a quarter of the audience. The same numbers go through normalise once, as the yardstick
of a stage the pipeline already has.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import insert

from bench.common import Figure, report
from connectors.vocabulary import COUNTRY, CUSTOMER_ID, OUTCOME, PHONE_E164, PHONE_RAW, LedgerState
from connectors.warehouse.connect import warehouse
from connectors.warehouse.schema import deliveries, marketing_limited, marketing_opt_outs
from tasks.campaign import SendWindow
from tasks.frame import with_stage_columns
from tasks.phones.normalise import normalise
from tasks.rules.task import Rules, apply_rules

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
MARKETS = (("1415", 7), ("1416", 7), ("55119", 8), ("614", 8), ("49151", 8))
"""(calling code and leading digits, digits after them): valid mobile numbers of each market."""


def audience(rows: int, seed: int) -> list[str]:
    """`rows` distinct E.164 numbers over the markets."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < rows:
        prefix, digits = rng.choice(MARKETS)
        # NANP exchanges start with 2-9; the other markets take any digits.
        seen.add(f"+{prefix}{rng.randrange(2 * 10 ** (digits - 1), 10**digits)}")
    return sorted(seen)


def chunks_of(phones: list[str], size: int) -> list[pd.DataFrame]:
    """The numbers as normalised chunks, every customer still in the running."""
    out = []
    for start in range(0, len(phones), size):
        part = phones[start : start + size]
        frame = pd.DataFrame({CUSTOMER_ID: [str(start + i) for i in range(len(part))]})
        frame = with_stage_columns(frame)
        frame[PHONE_E164] = pd.Series(part, dtype="str")
        out.append(frame)
    return out


def learn(url: str, phones: list[str], learnt: int) -> None:
    """Stops, 131049s and sends in the window for `learnt` numbers each."""
    engine = warehouse(url)
    picked = phones[:: max(1, len(phones) // (3 * learnt))][: 3 * learnt]
    stops = [
        {
            "business_id": "b",
            "phone_e164": p,
            "preference": "stop",
            "source": "user_preferences",
            "changed_at": NOW,
            "received_at": NOW,
        }
        for p in picked[:learnt]
    ]
    limited = [
        {"phone_e164": p, "limited_at": NOW - timedelta(hours=1), "received_at": NOW}
        for p in picked[learnt : 2 * learnt]
    ]
    sent = [
        {
            "campaign_id": "earlier",
            "phone_e164": p,
            "customer_id": p,
            "state": LedgerState.SENT,
            "attempts": 1,
            "run_id": "r",
            "sent_at": NOW - timedelta(hours=3),
        }
        for p in picked[2 * learnt :]
    ]
    with engine.begin() as conn:
        conn.execute(insert(marketing_opt_outs), stops)
        conn.execute(insert(marketing_limited), limited)
        conn.execute(insert(deliveries), sent)
    engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Time the rules stage and normalise over the same customers."""
    parser = argparse.ArgumentParser(prog="python -m bench rules", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--learnt", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)

    phones = audience(args.rows, args.seed)
    rules = Rules(
        category="MARKETING",
        paused_regions=("US",),
        send_window=SendWindow(start="09:00", end="20:00"),
        messaging_limit=args.rows // 4,
        business_id="b",
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'warehouse.sqlite'}"
        learn(url, phones, args.learnt)
        engine = warehouse(url)
        frames = chunks_of(phones, args.chunk_size)
        wall, cpu = time.perf_counter(), time.process_time()
        ruled, stats = apply_rules(frames, rules, engine, NOW)
        rules_wall, rules_cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine.dispose()

    raw = [
        f.assign(
            **{PHONE_RAW: f[PHONE_E164], COUNTRY: pd.Series(pd.NA, index=f.index, dtype="str")}
        ).drop(columns=[PHONE_E164])
        for f in frames
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    for frame in raw:
        normalise(frame, default_region="US")
    norm_wall, norm_cpu = time.perf_counter() - wall, time.process_time() - cpu

    outcomes = pd.concat([f[OUTCOME] for f in ruled]).value_counts(dropna=False)
    per_million = 1_000_000 / args.rows
    figures = [
        Figure("rules stage, CPU", rules_cpu * per_million, "CPU s / 1M customers"),
        Figure("rules stage, wall", rules_wall, "s", note=f"{args.rows:,} customers"),
        Figure("normalise, CPU (same numbers)", norm_cpu * per_million, "CPU s / 1M customers"),
        Figure("rules / normalise CPU", rules_cpu / norm_cpu, "x", note="same run"),
        Figure("deferred by the limit", stats.over_limit, "customers"),
    ]
    for outcome, count in outcomes.items():
        figures.append(Figure(f"outcome {outcome}", int(count), "customers"))
    report("rules", "Rules stage (issue 16)", figures, vars(args) | {"norm_wall_s": norm_wall})
    return 0
