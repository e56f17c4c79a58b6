"""Funnel (issue: 1M-row campaigns): CRM rows through every stage before send, vs the naive way.

For each `--rows` x `--db` pair this process writes generated customers into a `crm_contacts`
table of the demo CRM's shape (COPY on PostgreSQL, one executemany on SQLite) in a fresh
database: a scratch PostgreSQL database `wa_bench_<random>` (dropped afterwards) or a temporary
SQLite file. A fresh child process (so its peak memory is its own) then runs the flow's own
stages, timing each: `flows.stages.prepare` with a `PlainRunner` (the tasks' plain functions,
chunks and partitions on 4 threads as the flow's thread runner maps them) and a run store in a
temporary directory, then the dry run's `planned` and the flow's record task per partition:

  extract (into the store) -> consent + normalise (per chunk, split into partitions by number)
  -> opt-outs + dedupe + plan + rules (per partition) -> verify (per partition, the sandbox)
  -> planned (`mark_planned`) -> record (`record_task`: `wa_recipients`)

Verify checks only the numbers still in the running (consented, valid, deduplicated, with their
template parameter), in `/v1/contacts` calls of up to `--contacts-batch-size` numbers per
partition, against the sandbox in its own process. What verify leaves in the running is marked
`planned`, as a dry run plans it, so every customer has an outcome.

The same run then measures the naive baselines on the same rows: `df.apply` of
parse + is_valid_number + format(E164) over the rows normalise saw, and one INSERT per row, each
in its own transaction (`with engine.begin(): conn.execute(insert(table), row)`), of the rows
`write_recipients` wrote, into an empty copy of `wa_recipients`. The naive write takes ~10 min
for 1M rows on PostgreSQL, so it runs over the first `--naive-write-rows` rows and is compared
as a rate.

Rows: `bench.phones.crm_rows` (10 regions, mixed formats, `--distinct` 0.6 distinct values,
junk, 5% without country) plus a consent mix (6% never opted in, 4% opted out, 3% opted out and
back in) and first names (1% missing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr
from sqlalchemy import Engine, MetaData, create_engine, insert

from bench.common import MIB, Figure, Target, TreeMemory, peak_rss_mib, report
from bench.phones import baseline, crm_rows
from bench.send import API_KEY, Sandbox
from bench.webhooks import drop_postgres_database, postgres_database
from connectors.crm import Audience
from connectors.demo import DEMO_AUDIENCE_QUERY, crm_contacts, demo_metadata
from connectors.vocabulary import COUNTRY, PHONE_RAW, WA_ID
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import acquire
from connectors.warehouse.schema import recipients
from connectors.whatsapp.settings import WhatsAppSettings
from flows.runner import THREADS
from flows.stages import PlainRunner, prepare
from tasks.campaign import Campaign, TemplateSpec
from tasks.consent import apply_consent
from tasks.frame import Tally, in_running
from tasks.partition.stages import Check, sum_counts
from tasks.partition.store import Store
from tasks.partition.task import record_task
from tasks.plan import mark_planned
from tasks.record import recipient_rows
from tasks.send.senders import SenderPlan
from tasks.send.task import ready_name

ROOT: Final = Path(__file__).resolve().parents[1]
DATABASES: Final = ("postgres", "sqlite")
CAMPAIGN: Final = "bench-funnel"
DEFAULT_REGION: Final = "US"
PARAM_COLUMNS: Final = ["param_first_name"]
FIRST_NAMES: Final = ("Ana", "Liam", "Priya", "João", "Chinedu", "Sofía", "Lukas", "Emma", "Aarav")
NO_OPT_IN_SHARE: Final = 0.06
OPTED_OUT_SHARE: Final = 0.04
RECONSENTED_SHARE: Final = 0.03
NO_NAME_SHARE: Final = 0.01
MAP_WORKERS: Final = THREADS  # the flow's ThreadPoolTaskRunner
NORMALISE_STAGE: Final = "consent + normalise"
SHAPE_STAGE: Final = "opt-outs + dedupe + plan + rules"
TARGET_ROWS: Final = 1_000_000
TARGET_SPEEDUP: Final = Target(">=", 10)
TARGET_SECONDS: Final = Target("<", 60)
TARGET_RSS_MIB: Final = Target("<", 1.5 * 1024)
CHILD_DEADLINE_S: Final = 3600.0


# The CRM ---------------------------------------------------------------------------------------


def crm_table(rows: int, *, distinct: float, seed: int, first_id: int = 1) -> pd.DataFrame:
    """Generated `crm_contacts` rows (id, fname, mobile, cc, optin, optout) with a consent mix,
    ids counting from `first_id`."""
    frame = crm_rows(rows, distinct=distinct, seed=seed)
    rng = np.random.default_rng(seed + 1)
    opt_in = frame["opt_in_at"].dt.tz_localize(None).to_numpy(dtype="datetime64[us]", copy=True)
    opt_out = np.full(rows, np.datetime64("NaT"), dtype=opt_in.dtype)
    roll = rng.random(rows)
    gap = rng.integers(3600, 90 * 86_400, rows).astype("timedelta64[s]")
    no_opt_in = roll < NO_OPT_IN_SHARE
    opted_out = (roll >= NO_OPT_IN_SHARE) & (roll < NO_OPT_IN_SHARE + OPTED_OUT_SHARE)
    back_in = (roll >= NO_OPT_IN_SHARE + OPTED_OUT_SHARE) & (
        roll < NO_OPT_IN_SHARE + OPTED_OUT_SHARE + RECONSENTED_SHARE
    )
    opt_out[opted_out] = opt_in[opted_out] + gap[opted_out]
    opt_out[back_in] = opt_in[back_in] - gap[back_in]
    opt_in[no_opt_in] = np.datetime64("NaT")
    names = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), rows)]
    names[rng.random(rows) < NO_NAME_SHARE] = None
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + rows),
            "fname": names,
            "mobile": frame[PHONE_RAW],
            "cc": frame[COUNTRY],
            "optin": pd.DatetimeIndex(opt_in).tz_localize("UTC"),
            "optout": pd.DatetimeIndex(opt_out).tz_localize("UTC"),
        }
    )


def _timestamps(values: pd.Series, *, with_zone: bool) -> list[str | None]:
    """ISO 8601 text of UTC timestamps (null for NaT), fast enough for a million rows."""
    text = np.datetime_as_string(
        values.dt.tz_localize(None).to_numpy(dtype="datetime64[us]"), unit="us"
    )
    suffix = "+00:00" if with_zone else ""
    missing = values.isna().to_numpy()
    return [None if gone else f"{value}{suffix}" for value, gone in zip(text, missing, strict=True)]


def _texts(values: pd.Series) -> list[str | None]:
    """Text values with None for missing ones (pandas keeps them as NaN)."""
    return [value if isinstance(value, str) else None for value in values.tolist()]


def seed_crm(url: str, table: pd.DataFrame) -> None:
    """(Re)create `crm_contacts` and load the rows: COPY on PostgreSQL, executemany on SQLite."""
    engine = create_engine(url)
    try:
        crm_contacts.drop(engine, checkfirst=True)
        demo_metadata.create_all(engine, tables=[crm_contacts])
    finally:
        engine.dispose()
    append_crm(url, table)


def append_crm(url: str, table: pd.DataFrame) -> None:
    """Add rows to `crm_contacts`: COPY on PostgreSQL, one executemany on SQLite."""
    engine = create_engine(url)
    try:
        postgres = engine.dialect.name == "postgresql"
        rows = zip(
            table["id"].tolist(),
            _texts(table["fname"]),
            _texts(table["mobile"]),
            _texts(table["cc"]),
            _timestamps(table["optin"], with_zone=postgres),
            _timestamps(table["optout"], with_zone=postgres),
            strict=True,
        )
        columns = "id, fname, mobile, cc, optin, optout"
        raw = engine.raw_connection()
        try:
            if postgres:
                driver = raw.driver_connection
                assert driver is not None
                copy_sql = f"COPY crm_contacts ({columns}) FROM STDIN"
                with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                insert_sql = f"INSERT INTO crm_contacts ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
                raw.cursor().executemany(insert_sql, list(rows))
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


@contextmanager
def scratch_database(db: str) -> Iterator[str]:
    """A fresh database URL for CRM and warehouse: PostgreSQL `wa_bench_<random>` or SQLite."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="wa-bench-") as directory:
            yield f"sqlite:///{directory}/bench.sqlite"
        return
    url, name = postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


# One measured run (in a child process) --------------------------------------------------------


@task(name="planned", cache_policy=NO_CACHE)
def plan_checked(partition: int, store: Store) -> Tally:
    """A dry run's `planned` for what the check left in the running of one partition."""
    name = ready_name(partition)
    if not store.path(name).exists():
        return Tally()
    frame = mark_planned(store.read(name))
    store.write(name, frame)
    return Tally.of(frame)


def pipeline(
    url: str, sandbox_url: str, args: argparse.Namespace, store: Store
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any], dict[str, float]]:
    """The flow's stages before send (`flows.stages.prepare` with the contact check), a dry
    run's planned outcome and record, timed: (rows normalise saw, rows to write naively,
    counts, seconds)."""
    engine = warehouse(url)  # migrated here, outside the timed stages (start-run does it)
    secret = SecretStr(url)
    whatsapp = WhatsAppSettings(base_url=sandbox_url, api_key=SecretStr(API_KEY))
    campaign = Campaign(
        campaign_id=CAMPAIGN,
        template=TemplateSpec(namespace="acme_ns", name="order_update", body_params=["first_name"]),
        audience=Audience(query=DEMO_AUDIENCE_QUERY),
        default_region=DEFAULT_REGION,
        chunk_size=args.chunk_size,
        contacts_batch_size=args.contacts_batch_size,
    )
    lease = acquire(engine, CAMPAIGN, "bench-funnel", timedelta(minutes=30))
    sender = SenderPlan(whatsapp, rate_per_s=1000.0, concurrency=16)
    check = Check([sender], secret, args.contacts_batch_size)
    consented: list[pd.DataFrame] = []
    to_check = 0

    def keep_for_the_baseline(stage: str, tally: Tally) -> None:
        # Outside the stages' time: the rows normalise sees, and what the check is asked about.
        nonlocal to_check
        if stage == "extract":
            for name in store.names("chunks"):
                chunk = apply_consent(store.read(name))
                consented.append(chunk.loc[in_running(chunk), [PHONE_RAW, COUNTRY]])
        elif stage == SHAPE_STAGE:
            to_check = tally.rows - tally.settled

    run = PlainRunner(workers=MAP_WORKERS, after=keep_for_the_baseline)
    prepared = prepare(run, campaign, secret, secret, lease, store, check=check)
    run.done("planned", run.each(plan_checked, prepared.partitions, store))
    run_id, now = str(uuid.uuid4()), datetime.now(UTC)
    recorded = run.each(record_task, prepared.partitions, store, 0, CAMPAIGN, run_id, secret, now)
    run.done("record", (r.tally for r in recorded))
    written: list[dict[str, Any]] = []
    wa_ids = 0
    for partition in prepared.partitions:  # one partition in memory at a time, as the flow
        if not store.path(ready_name(partition)).exists():
            continue
        frame = store.read(ready_name(partition))
        wa_ids += int(frame[WA_ID].notna().sum())
        if len(written) < args.naive_write_rows:
            rows = recipient_rows(frame, campaign_id=CAMPAIGN, run_id=run_id, now=now)
            written += rows[: args.naive_write_rows - len(written)]
    outcomes = sum_counts(recorded).outcomes
    counts = {
        "numbers_checked": prepared.checks.checked,
        "numbers_to_check": to_check,
        "contacts_calls": -(-prepared.checks.checked // args.contacts_batch_size),
        "wa_ids": wa_ids,
        "partitions": len(prepared.partitions),
        "outcomes": {str(k): int(v) for k, v in outcomes.items()},
    }
    return pd.concat(consented), written, counts, run.seconds


def naive_write(url: str, rows: Sequence[dict[str, Any]]) -> float:
    """Seconds for one INSERT per row, each its own transaction, into a copy of wa_recipients."""
    engine: Engine = warehouse(url)
    naive = recipients.to_metadata(MetaData(), name="naive_recipients")
    naive.metadata.create_all(engine)
    statement = insert(naive)
    started = time.perf_counter()
    for row in rows:
        with engine.begin() as conn:
            conn.execute(statement, row)
    return time.perf_counter() - started


def own_peak_mib() -> float:
    """This process's peak RSS since it started (VmHWM), in MiB; ru_maxrss where /proc is absent."""
    # Not ru_maxrss: Linux keeps it across execve, so this child would report the high-water
    # mark of the parent that generated a million rows.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def measure_one(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline under memory watch, then the naive baselines on the same rows."""
    url = args.child_url
    with TreeMemory() as tree, tempfile.TemporaryDirectory(prefix="wa-bench-store-") as root:
        store = Store.for_run(root, CAMPAIGN, "bench-funnel")
        normalised, written, counts, seconds = pipeline(url, args.child_sandbox, args, store)
    rss_main = own_peak_mib()
    rss_tree = max(rss_main, tree.peak_mib or 0.0)
    print(
        "  " + ", ".join(f"{stage} {took:.2f} s" for stage, took in seconds.items()),
        flush=True,
    )
    started = time.perf_counter()
    baseline(normalised)
    naive_normalise = time.perf_counter() - started
    naive_write_s = naive_write(url, written)
    warehouse(url).dispose()
    print(
        f"  naive: df.apply {naive_normalise:.1f} s for {len(normalised):,} rows; "
        f"per-row INSERT {naive_write_s:.1f} s for {len(written):,} rows",
        flush=True,
    )
    return {
        "stages_s": seconds,
        "normalised_rows": len(normalised),
        "naive_normalise_s": naive_normalise,
        "naive_write_rows": len(written),
        "naive_write_s": naive_write_s,
        "peak_rss_mib": rss_main,
        "ru_maxrss_mib": peak_rss_mib(),
        "peak_rss_tree_mib": rss_tree,
        "child_peak_mib": tree.child_peak_mib,
        **counts,
    }


# The parent: one child per (rows, db) ---------------------------------------------------------


def run_child(rows: int, db: str, args: argparse.Namespace, sandbox: Sandbox) -> dict[str, Any]:
    """Load a fresh database here, then measure in a fresh process against the reset sandbox."""
    with scratch_database(db) as url, tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        table = crm_table(rows, distinct=args.distinct, seed=args.seed)
        generated = time.perf_counter() - started
        seed_crm(url, table)
        seeded = time.perf_counter() - started - generated
        distinct = len(table[["mobile", "cc"]].drop_duplicates()) / len(table)
        del table
        print(
            f"{db} {rows:,} rows: generated in {generated:.1f} s ({distinct:.1%} distinct "
            f"(mobile, cc)), loaded in {seeded:.1f} s",
            flush=True,
        )
        sandbox.reset()
        cpu = sandbox.cpu_s
        result = Path(out) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.funnel",
            f"--rows={rows}",
            f"--chunk-size={args.chunk_size}",
            f"--contacts-batch-size={args.contacts_batch_size}",
            f"--naive-write-rows={args.naive_write_rows}",
            f"--child-url={url}",
            f"--child-sandbox={sandbox.url}",
            f"--child-out={result}",
        ]
        with subprocess.Popen(command, cwd=ROOT) as child:
            try:
                code = child.wait(timeout=CHILD_DEADLINE_S)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        if code != 0:
            raise RuntimeError(f"the {db} run of {rows:,} rows exited with {code}")
        measured: dict[str, Any] = json.loads(result.read_text())
    return {
        "db": db,
        "rows": rows,
        "distinct_measured": distinct,
        "generate_s": generated,
        "seed_s": seeded,
        "sandbox_cpu_s": sandbox.cpu_s - cpu,
        **measured,
    }


def figures(run: dict[str, Any]) -> list[Figure]:
    """The figures of one (rows, db) run, each named after it."""
    rows, label = run["rows"], f"{run['db']} {run['rows']:,}"
    stages: dict[str, float] = run["stages_s"]
    total = sum(stages.values())
    full = rows >= TARGET_ROWS
    # The record stage's wall time, building the rows included: its threads overlap the two.
    write_s = stages["record"]
    naive_normalise_s = run["naive_normalise_s"]
    naive_write_rate = run["naive_write_rows"] / run["naive_write_s"]
    naive_write_s = rows / naive_write_rate  # every customer's row, at the measured rate
    normalise_s = stages[NORMALISE_STAGE]
    naive_total = total - normalise_s - write_s + naive_normalise_s + naive_write_s
    per_partition = f"per partition ({run['partitions']}) on {MAP_WORKERS} threads"
    notes = {
        "extract": "streamed into the run's store, chunk by chunk",
        NORMALISE_STAGE: f"per chunk on {MAP_WORKERS} threads, split into partitions by number",
        SHAPE_STAGE: per_partition,
        "verify": f"{per_partition}; {run['numbers_checked']:,} numbers of "
        f"{run['numbers_to_check']:,} in the running, in {run['contacts_calls']} calls",
        "planned": f"{per_partition}: `mark_planned` on what the check left in the running",
        "record": f"`record_task` {per_partition}, as the flow maps it",
    }
    out = [
        Figure(
            f"{label}: {stage}",
            rows / seconds if seconds > 0 else None,
            "rows/s",
            note=f"{seconds:.2f} s" + (f"; {notes[stage]}" if stage in notes else ""),
        )
        for stage, seconds in stages.items()
    ]
    out += [
        Figure(
            f"{label}: extract .. record",
            total,
            "s",
            TARGET_SECONDS if full else None,
            note="sum of the stages above" + ("" if full else f"; target at {TARGET_ROWS:,} rows"),
        ),
        Figure(
            f"{label}: naive df.apply normalise",
            run["normalised_rows"] / naive_normalise_s,
            "rows/s",
            note=f"{naive_normalise_s:.1f} s for the {run['normalised_rows']:,} rows normalise "
            "saw (consented)",
        ),
        Figure(
            f"{label}: naive INSERT per row",
            naive_write_rate,
            "rows/s",
            note=f"one transaction per row; {run['naive_write_s']:.1f} s for the first "
            f"{run['naive_write_rows']:,} rows, {naive_write_s:.1f} s at this rate for all",
        ),
        Figure(
            f"{label}: speed-up normalise",
            naive_normalise_s / normalise_s,
            "x",
            TARGET_SPEEDUP,
            note="naive df.apply seconds / the consent + normalise stage's (its split into "
            "partitions included)",
        ),
        Figure(
            f"{label}: speed-up write_recipients",
            naive_write_s / write_s,
            "x",
            TARGET_SPEEDUP,
            note="naive INSERTs' time for all rows / the record stage's (rows built included)",
        ),
        Figure(
            f"{label}: speed-up normalise + write",
            (naive_normalise_s + naive_write_s) / (normalise_s + write_s),
            "x",
            TARGET_SPEEDUP,
            note="the two stages that have a naive baseline, together",
        ),
        Figure(
            f"{label}: speed-up whole funnel",
            naive_total / total,
            "x",
            TARGET_SPEEDUP,
            note=f"naive funnel {naive_total:.0f} s: the same run with the naive normalise and "
            "write in place of ours; the stages without a naive variant count in both",
        ),
        Figure(
            f"{label}: peak RSS",
            run["peak_rss_tree_mib"],
            "MiB",
            TARGET_RSS_MIB if full else None,
            note=f"the measuring process's own peak (VmHWM) {run['peak_rss_mib']:.0f} MiB after "
            "the pipeline (the CRM is loaded by the parent, the baselines run later; its "
            f"ru_maxrss, {run['ru_maxrss_mib']:.0f} MiB, carries the parent's over exec), plus "
            "parse children sampled every 100 ms ("
            + (
                f"largest {run['child_peak_mib']:.0f} MiB"
                if run["child_peak_mib"]
                else "none started"
            )
            + "); the sandbox is not counted",
        ),
    ]
    return out


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in DATABASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown database {unknown[0]!r}; use postgres, sqlite")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench funnel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=_ints, default=[100_000], help="e.g. 100000,1000000")
    parser.add_argument("--db", type=_names, default=list(DATABASES), help="postgres,sqlite")
    parser.add_argument("--distinct", type=float, default=0.6, help="share of distinct values")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="rows per chunk (flow)")
    parser.add_argument(
        "--contacts-batch-size", type=int, default=10_000, help="numbers per /v1/contacts call"
    )
    parser.add_argument(
        "--naive-write-rows",
        type=int,
        default=50_000,
        help="rows the naive per-row INSERT writes (the first of the same rows; default 50,000)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-sandbox", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each (rows, db) pair in its own process, print and save the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if min(args.rows, default=0) < 1 or args.chunk_size < 1 or not 0 < args.distinct <= 1:
        parser.error("--rows and --chunk-size must be positive, --distinct in (0, 1]")
    if args.child_out is not None:
        args.child_out.write_text(json.dumps(measure_one(args), indent=2))
        return 0
    # The sandbox is this process's child, not the measured one's: its memory is not ours.
    with Sandbox("onprem", latency_ms=0, rate=1000, burst=1000) as sandbox:
        runs = [run_child(rows, db, args, sandbox) for db in args.db for rows in sorted(args.rows)]
    params = {
        "rows": args.rows,
        "databases": args.db,
        "distinct": args.distinct,
        "chunk_size": args.chunk_size,
        "contacts_batch_size": args.contacts_batch_size,
        "naive_write_rows": args.naive_write_rows,
        "seed": args.seed,
        "runs": runs,
        "peak_rss_bytes": {f"{r['db']} {r['rows']}": r["peak_rss_tree_mib"] * MIB for r in runs},
    }
    title = (
        "funnel: CRM rows through extract .. record (dry run, verify against the sandbox), "
        "vs the naive per-row normalise and INSERT, same run"
    )
    report("funnel", title, [f for run in runs for f in figures(run)], params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
