"""The send stage for Prefect: all chunks, one after another, each number through its sender."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.vocabulary import PHONE_E164, Outcome, Reason
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease
from connectors.whatsapp import SendLimits, Template, open_sender
from tasks.frame import in_running
from tasks.report import Progress
from tasks.rules.settle import settle, with_not_before
from tasks.send.loop import SenderStoppedError, send_all
from tasks.send.messages import Past, apply_results, outgoing
from tasks.send.senders import SenderPlan, assign_senders

log = logging.getLogger(__name__)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the collector off the objects alive before sending starts: with a campaign's heap,
    each full collection would stall the paced sends for a time the rate limiter cannot make
    up."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class Sent:
    """The chunks with their outcomes, and each sender that stopped on its own with why."""

    frames: list[pd.DataFrame]
    stopped: dict[str, str] = field(default_factory=dict)


def send(
    frames: list[pd.DataFrame],
    *,
    lease: Lease,
    run_id: str,
    template: Template,
    param_columns: list[str],
    senders: Sequence[SenderPlan],
    warehouse_url: str,
    breaker_threshold: int = 10,
    progress: Callable[[int], None] | None = None,
) -> Sent:
    """Send every chunk's messages, chunk after chunk, each number through its own sender (all
    senders at once, each at its own rate, in one event loop), recording every attempt in the
    ledger. A chunk's messages are made as slots free up and its outcomes are written back as
    soon as it is done, so only one chunk's results are held.

    A sender that stops for a cause of its own is left out from then on and its recipients are
    deferred (`sender_stopped`) for the next run; a cause about the campaign stops every sender
    and raises."""
    engine = warehouse(warehouse_url)
    past = Past.of(ledger.load(engine, lease.campaign_id))
    plans = {plan.sender_id: plan for plan in senders}

    def write(results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]) -> frozenset[str]:
        return ledger.advance(engine, lease, run_id, results=results, claims=claims)

    async def run() -> Sent:
        sent: list[pd.DataFrame] = []
        stopped = {plan.sender_id: plan.stopped for plan in senders if plan.stopped}
        counts = _Counts(progress)
        halt = asyncio.Event()
        async with AsyncExitStack() as stack:
            clients = {
                plan.sender_id: await stack.enter_async_context(
                    open_sender(
                        plan.settings,
                        send_limits=SendLimits(plan.rate_per_s, plan.concurrency),
                    )
                )
                for plan in senders
                if not plan.stopped
            }
            for frame in frames:
                owner = assign_senders(frame[PHONE_E164], list(plans))
                results: dict[str, ledger.Result] = {}
                going = [sid for sid in clients if sid not in stopped]
                outcomes = await asyncio.gather(
                    *(
                        send_all(
                            clients[sid],
                            outgoing(frame.loc[owner == sid], param_columns, past),
                            template,
                            write=write,
                            concurrency=plans[sid].concurrency,
                            breaker_threshold=breaker_threshold,
                            progress=counts.reporter(sid),
                            campaign_id=lease.campaign_id,
                            halt=halt,
                            into=results,
                        )
                        for sid in going
                    ),
                    return_exceptions=True,
                )
                failure = _failure(dict(zip(going, outcomes, strict=True)), stopped)
                counts.chunk_done()
                if failure is not None:
                    raise failure
                done = apply_results(frame, results)
                sent.append(defer_stopped(done, owner, stopped))
        return Sent(sent, dict(stopped))

    with frozen_heap():
        return asyncio.run(run())


def _failure(
    outcomes: dict[str, dict[str, ledger.Result] | BaseException], stopped: dict[str, str]
) -> BaseException | None:
    """The error that ends the send (about the campaign), after noting senders that stopped on
    their own in `stopped`."""
    failure: BaseException | None = None
    for sid, outcome in outcomes.items():
        if isinstance(outcome, SenderStoppedError):
            log.warning("%s", outcome)
            stopped[sid] = str(outcome)
        elif isinstance(outcome, BaseException) and failure is None:
            failure = outcome
    return failure


def defer_stopped(
    frame: pd.DataFrame, owner: pd.Series, stopped: Mapping[str, str]
) -> pd.DataFrame:
    """Defer the customers still in the running whose sender stopped: the next run sends them."""
    mask = in_running(frame) & owner.isin(list(stopped))
    if not mask.any():
        return frame
    out = with_not_before(frame)
    settle(out, mask, Outcome.DEFERRED, Reason.SENDER_STOPPED)
    return out


class _Counts:
    """Sends done per sender, summed over chunks, for one progress callback."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.before = 0
        self.now: dict[str, int] = {}

    def reporter(self, sender_id: str) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        progress = self.progress

        def report(done: int) -> None:
            self.now[sender_id] = done
            progress(self.before + sum(self.now.values()))

        return report

    def chunk_done(self) -> None:
        self.before += sum(self.now.values())
        self.now = {}


@task(name="send", cache_policy=NO_CACHE)
@masked_errors
def send_chunks(
    frames: list[pd.DataFrame],
    lease: Lease,
    run_id: str,
    template: Template,
    param_columns: list[str],
    senders: list[SenderPlan],
    warehouse_url: SecretStr,
    breaker_threshold: int = 10,
    progress: Progress | None = None,
) -> Sent:
    """Prefect task: send all chunks, one after another, through every sender at once."""
    return send(
        frames,
        lease=lease,
        run_id=run_id,
        template=template,
        param_columns=param_columns,
        senders=senders,
        warehouse_url=warehouse_url.get_secret_value(),
        breaker_threshold=breaker_threshold,
        progress=progress,
    )
