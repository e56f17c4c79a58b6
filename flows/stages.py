"""How the flow runs its stages, and the stages that prepare an audience, shared with the bench.

A `Runner` runs a task once or over every item (chunk or partition) and hears where a stage
ends. `PrefectRunner` (the flow) maps tasks on the flow's task runner (threads or Dask) and logs
one line per stage; `PlainRunner` (the benchmarks) calls the tasks' plain functions, items on a
thread pool, and times each stage. `prepare` is the part of the diagram both run the same way:
extract, consent + normalise (per chunk), opt-outs + dedupe + plan + rules (per partition), the
messaging limit and planned or checked (per partition). The frames stay in the run's store;
tasks hand back counts only.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from prefect import Task, get_run_logger, unmapped
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from pydantic import SecretStr

from connectors.warehouse.lease import Lease
from tasks.campaign import Campaign
from tasks.extract import extract_audience
from tasks.frame import Tally
from tasks.partition.split import partition_count
from tasks.partition.stages import Audience, Check, Limit, Plan
from tasks.partition.store import Store
from tasks.partition.task import chunk_task, finish_task, shape_task
from tasks.plan import settle_ledger
from tasks.rules.budget import RuleStats, last_seat
from tasks.rules.task import Rules, limit_window
from tasks.stage_words import stage_line
from tasks.template import Fill
from tasks.verify.common import VerifyStats

T = TypeVar("T")


def resolved(futures: Iterable[PrefectFuture[T]]) -> list[T]:
    """Wait for every future and return its result, so any failed task fails the flow."""
    return [future.result() for future in futures]


class Runner(Protocol):
    """Runs tasks for the stages and hears where each stage ends."""

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task run once with these arguments."""
        ...

    def each(self, task: Task[..., T], items: Sequence[Any], *args: Any) -> list[T]:
        """The task run over every item, the other arguments the same for all."""
        ...

    def done(self, stage: str, tallies: Iterable[Tally]) -> None:
        """The stage ended with these counts."""
        ...


class PrefectRunner:
    """Task runs on the flow's task runner; one log line per stage (never a customer's number)."""

    def __init__(self) -> None:
        self.logger = get_run_logger()
        self.last = time.monotonic()
        self.tally = Tally()  # the last stage's, which the next one's words are told against
        self.starting = start_cluster()

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task run once, as a Prefect task run."""
        return task(*args)

    def each(self, task: Task[..., T], items: Sequence[Any], *args: Any) -> list[T]:
        """One task run per item, mapped (once the cluster has started); every future resolved."""
        self.started()
        if not items:
            return []
        return resolved(task.map(list(items), *(unmapped(arg) for arg in args)))

    def done(self, stage: str, tallies: Iterable[Tally]) -> None:
        """Log what the stage did, in its words, and its duration."""
        now, tally = time.monotonic(), sum(tallies, Tally())
        self.logger.info(stage_line(stage, self.tally, tally, now - self.last))
        self.last, self.tally = now, tally

    def started(self) -> None:
        """Wait for the cluster's start, if one is under way: before mapping, and before the
        flow ends, so the task runner never closes while a cluster is still being made."""
        if self.starting is not None:
            self.starting.join()
            self.starting = None

    def said(self, stage: str, what: str) -> None:
        """Log what a stage did in its own words, and its duration."""
        now = time.monotonic()
        self.logger.info("%s: %s (%.2f s)", stage, what, now - self.last)
        self.last = now


def start_cluster() -> threading.Thread | None:
    """Start the flow run's Dask cluster on a thread, so that its start (a local cluster's
    worker processes import the project: seconds) overlaps extract, which runs in the flow's
    process; None on the thread runner. The first mapped stage waits for it, and should the
    start fail, the map starts it again and raises."""
    context = FlowRunContext.get()
    if context is None or "prefect_dask" not in sys.modules:  # Dask is loaded when asked for
        return None
    from prefect_dask.task_runners import DaskTaskRunner

    runner = context.task_runner
    if not isinstance(runner, DaskTaskRunner):
        return None

    def start() -> None:
        with contextlib.suppress(Exception):
            _ = runner.client  # created on first access: the cluster, then the client

    starting = threading.Thread(target=start, name="dask-cluster-start", daemon=True)
    starting.start()
    return starting


@dataclass
class PlainRunner:
    """The tasks' plain functions, items on `workers` threads; seconds per stage, and a hook
    that hears each stage's counts."""

    workers: int = 4
    after: Callable[[str, Tally], None] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.perf_counter)

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task's function called once."""
        return task.fn(*args)

    def each(self, task: Task[..., T], items: Sequence[Any], *args: Any) -> list[T]:
        """The task's function over every item, on the pool, in order."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(lambda item: task.fn(item, *args), items))

    def done(self, stage: str, tallies: Iterable[Tally]) -> None:
        """Time the stage; the hook runs outside any stage's time."""
        self.seconds[stage] = time.perf_counter() - self.last
        if self.after is not None:
            self.after(stage, sum(tallies, Tally()))
        self.last = time.perf_counter()


@dataclass(frozen=True)
class Prepared:
    """The partitions ready to send (or planned), and what getting there found: sends left in
    doubt by earlier runs, the messaging limit's work, messages per market (for the estimate),
    the checks, and the messages each sender owes."""

    partitions: list[int]
    in_doubt: int
    rules: RuleStats
    markets: dict[str, int]
    checks: VerifyStats
    owed: dict[str, int]


def prepare(
    run: Runner,
    campaign: Campaign,
    crm_url: SecretStr,
    warehouse_url: SecretStr,
    lease: Lease,
    store: Store,
    *,
    fill: Fill | None = None,
    rules: Rules | None = None,
    check: Check | None = None,
    now: datetime | None = None,
) -> Prepared:
    """Extract .. rules, the limit, then `planned` (no `check`: a dry run) or checked; `fill`
    is the resolved template (unset: as the campaign declares it)."""
    fill = fill or Fill.declared(campaign.template)
    extracted = run.once(
        extract_audience, store, crm_url, campaign.audience, campaign.chunk_size, fill.columns
    )
    run.done("extract", [extracted.tally])
    count = partition_count(extracted.tally.rows, campaign.chunk_size)
    audience = Audience(
        count, campaign.default_region, campaign.mobile_only, campaign.consent_max_age_days
    )
    run.done("consent + normalise", run.each(chunk_task, extracted.chunks, store, audience))
    in_doubt, history = run.once(settle_ledger, warehouse_url, lease)
    ruled = rules or Rules(paused_regions=tuple(campaign.marketing_paused_regions))
    now = now or datetime.now(UTC)
    limit = ruled.messaging_limit
    window = None if limit is None else run.once(limit_window, warehouse_url, limit, now)
    plan = Plan(
        warehouse_url,
        lease.campaign_id,
        fill,
        ruled,
        now,
        campaign.resend_unknown,
        history,
        None if window is None else window.places,
    )
    partitions = list(range(count))
    shaped = run.each(shape_task, partitions, store, plan)
    run.done("opt-outs + dedupe + plan + rules", (s.tally for s in shaped))
    verdict = None
    if window is not None:
        seats = [s.seats for s in shaped if s.seats is not None]
        verdict = Limit(last_seat(seats, window.places), window.frees_at)
    finished = run.each(finish_task, partitions, store, verdict, check)
    run.done(_finish_stage(check), (f.tally for f in finished))
    stats = RuleStats()
    if window is not None:
        stats = RuleStats(sum(f.over_limit for f in finished), limit, window.messaged)
    return Prepared(
        partitions,
        in_doubt,
        stats,
        _summed(f.markets for f in finished),
        VerifyStats(
            sum(f.checks.checked for f in finished),
            sum(f.checks.from_cache for f in finished),
            sum(f.checks.suppressed for f in finished),
        ),
        _summed(f.owed for f in finished),
    )


def _finish_stage(check: Check | None) -> str:
    """The finish stage's name in the log: what it did besides the limit."""
    if check is None:
        return "planned"
    going = [p for p in check.senders if p.stopped is None]
    return "reachability" if going and going[0].settings.api == "cloud" else "verify"


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Counts by key, summed."""
    total: Counter[str] = Counter()
    for part in counts:
        total.update(part)
    return dict(total)
