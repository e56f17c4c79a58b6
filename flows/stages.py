"""How the flow runs its stages, and the stages that prepare an audience, shared with the bench.

A `Runner` runs a task once or over every chunk and marks where a stage ends. `PrefectRunner`
(the flow) maps tasks on the flow's task runner and logs one line per stage; `PlainRunner` (the
funnel benchmark) calls the tasks' plain functions, chunks on a thread pool as the flow's task
runner does, and times each stage. `prepare` is the part of the diagram both run the same way:
extract, consent, normalise, opt-outs, dedupe, plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pandas as pd
from prefect import Task, get_run_logger, unmapped
from prefect.futures import PrefectFuture
from pydantic import SecretStr

from connectors.warehouse.lease import Lease
from tasks.campaign import Campaign
from tasks.consent import consent_chunk, load_opt_outs, opt_outs_chunk
from tasks.extract import extract_audience
from tasks.phones.task import dedupe_chunks, normalise_chunk
from tasks.plan import load_ledger, plan_chunk
from tasks.rules.budget import RuleStats
from tasks.rules.task import Rules, rules_task
from tasks.summary import stage_line

T = TypeVar("T")
Chunks = list[pd.DataFrame]


def resolved(futures: Iterable[PrefectFuture[T]]) -> list[T]:
    """Wait for every future and return its result, so any failed task fails the flow."""
    return [future.result() for future in futures]


class Runner(Protocol):
    """Runs tasks for the stages and hears where each stage ends."""

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task run once with these arguments."""
        ...

    def each(self, task: Task[..., T], chunks: Chunks, *args: Any) -> list[T]:
        """The task run over every chunk, the other arguments the same for all."""
        ...

    def done(self, stage: str, chunks: Chunks) -> Chunks:
        """The stage ended with these chunks."""
        ...


class PrefectRunner:
    """Task runs on the flow's task runner; one log line per stage (never a customer's number)."""

    def __init__(self) -> None:
        self.logger = get_run_logger()
        self.last = time.monotonic()

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task run once, as a Prefect task run."""
        return task(*args)

    def each(self, task: Task[..., T], chunks: Chunks, *args: Any) -> list[T]:
        """One task run per chunk, mapped; every future resolved."""
        return resolved(task.map(chunks, *(unmapped(arg) for arg in args)))

    def done(self, stage: str, chunks: Chunks) -> Chunks:
        """Log the stage's counts and duration."""
        now = time.monotonic()
        self.logger.info(stage_line(stage, chunks, now - self.last))
        self.last = now
        return chunks


@dataclass
class PlainRunner:
    """The tasks' plain functions, chunks on `workers` threads; seconds per stage, and a hook
    that sees each stage's chunks."""

    workers: int = 4
    after: Callable[[str, Chunks], None] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.perf_counter)

    def once(self, task: Task[..., T], *args: Any) -> T:
        """The task's function called once."""
        return task.fn(*args)

    def each(self, task: Task[..., T], chunks: Chunks, *args: Any) -> list[T]:
        """The task's function over every chunk, on the pool, in order."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(lambda chunk: task.fn(chunk, *args), chunks))

    def done(self, stage: str, chunks: Chunks) -> Chunks:
        """Time the stage; the hook runs outside any stage's time."""
        self.seconds[stage] = time.perf_counter() - self.last
        if self.after is not None:
            self.after(stage, chunks)
        self.last = time.perf_counter()
        return chunks


@dataclass(frozen=True)
class Prepared:
    """The chunks ready to verify, the sends an earlier run left in doubt, what the rules did."""

    chunks: Chunks
    in_doubt: int
    rules: RuleStats


def prepare(
    run: Runner,
    campaign: Campaign,
    crm_url: SecretStr,
    warehouse_url: SecretStr,
    lease: Lease,
    rules: Rules | None = None,
) -> Prepared:
    """Extract, consent, normalise, opt-outs, dedupe, plan and the rules (dry run: `planned`)."""
    chunks = run.done(
        "extract",
        run.once(
            extract_audience,
            crm_url,
            campaign.audience,
            campaign.chunk_size,
            campaign.template.param_columns,
        ),
    )
    chunks = run.done("consent", run.each(consent_chunk, chunks, campaign.consent_max_age_days))
    chunks = run.done(
        "normalise",
        run.each(normalise_chunk, chunks, campaign.default_region, campaign.mobile_only),
    )
    opted_out = run.once(load_opt_outs, warehouse_url)
    chunks = run.done("opt-outs", run.each(opt_outs_chunk, chunks, opted_out))
    chunks = run.done("dedupe", run.once(dedupe_chunks, chunks))
    history, in_doubt = run.once(load_ledger, warehouse_url, lease)
    plan = (history, campaign.template.param_columns, campaign.resend_unknown)
    chunks = run.done("plan", run.each(plan_chunk, chunks, *plan))
    ruled = rules or Rules(paused_regions=tuple(campaign.marketing_paused_regions))
    chunks, stats = run.once(rules_task, chunks, ruled, warehouse_url, campaign.dry_run)
    return Prepared(run.done("rules", chunks), in_doubt, stats)
