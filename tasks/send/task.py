"""The send stage: each sender one stream over the run's partitions, as one Prefect task
wherever it runs, so its pace and in-flight cap hold; `send` does the same for frames in
memory (all senders at once in one event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease
from connectors.whatsapp import Sender, SendLimits, open_sender
from tasks.partition.split import part_folder
from tasks.partition.store import Store
from tasks.progress import run_log, shown
from tasks.report import Progress
from tasks.send.senders import SenderPlan
from tasks.send.share import SendRun, Share
from tasks.template import Fill

HALT = "halt"
"""The store name a sender writes when the campaign must stop: every sender watches for it."""
HALT_POLL_S = 0.25


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


@contextlib.asynccontextmanager
async def client_of(plan: SenderPlan) -> AsyncIterator[Sender | None]:
    """The sender's client, paced by its plan; None for a sender that may not send."""
    if plan.stopped is not None:
        yield None
        return
    limits = SendLimits(plan.rate_per_s, plan.concurrency)
    async with open_sender(plan.settings, send_limits=limits) as client:
        yield client


@dataclass(frozen=True)
class Sent:
    """The frames with their outcomes, and each sender that stopped on its own with why."""

    frames: list[pd.DataFrame]
    stopped: dict[str, str] = field(default_factory=dict)


def send(
    frames: list[pd.DataFrame],
    *,
    lease: Lease,
    run_id: str,
    fill: Fill,
    senders: Sequence[SenderPlan],
    warehouse_url: str,
    breaker_threshold: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> Sent:
    """Send every frame's messages, each number through its own sender (all senders at once,
    each at its own rate, in one event loop), recording every attempt in the ledger.

    A sender that stops for a cause of its own is left out from then on and its recipients are
    deferred (`sender_stopped`) for the next run; a cause about the campaign stops every sender
    and raises."""
    run = SendRun(
        warehouse(warehouse_url),
        lease,
        run_id,
        fill,
        [plan.sender_id for plan in senders],
        breaker_threshold,
    )
    halt = asyncio.Event()
    done: dict[str, tuple[int, int]] = {}

    def reporter(sender_id: str) -> Callable[[int, int], None] | None:
        def report(n: int, failed: int) -> None:
            done[sender_id] = (n, failed)
            if progress is not None:
                progress(sum(d for d, _ in done.values()), sum(f for _, f in done.values()))

        return report if progress is not None else None

    async def one(plan: SenderPlan) -> tuple[list[pd.DataFrame], str | None]:
        async with client_of(plan) as client:
            share = Share(plan, run, client, halt, reporter(plan.sender_id))
            return [piece async for piece in share.stream(frames)], share.stopped

    async def every() -> list[tuple[list[pd.DataFrame], str | None] | BaseException]:
        return await asyncio.gather(*(one(plan) for plan in senders), return_exceptions=True)

    with frozen_heap():
        outcomes = asyncio.run(every())
    failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failure is not None:
        raise failure
    shares = [o for o in outcomes if not isinstance(o, BaseException)]
    stopped = {plan.sender_id: why for plan, (_, why) in zip(senders, shares, strict=True) if why}
    merged = [
        pd.concat([pieces[i] for pieces, _ in shares]).reindex(frame.index)
        for i, frame in enumerate(frames)
    ]
    return Sent(merged, stopped)


def sent_name(partition: int, sender_index: int) -> str:
    """The store name of one sender's rows of one partition, with their outcomes."""
    return f"{part_folder(partition)}/sent-{sender_index:03d}"


def ready_name(partition: int) -> str:
    """The store name of a partition ready to send (verified, ruled, budgeted)."""
    return f"{part_folder(partition)}/ready"


@dataclass(frozen=True)
class SenderDone:
    """What one sender's stream did: messages the API accepted, failed sends per reason, sends
    left in doubt, and why it stopped (None: it did not)."""

    sender_id: str
    sent: int
    stopped: str | None
    failed: dict[str, int] = field(default_factory=dict)
    in_doubt: int = 0


def describe_done(done: SenderDone) -> str:
    """What one sender did, for the run's log."""
    line = f"{done.sender_id} sent {done.sent:,}"
    return f"{line}, then stopped: {done.stopped}" if done.stopped else line


def describe_send(done: Sequence[SenderDone], seconds: float) -> str:
    """The send stage in its words: `1,964 sent, 25 failed (131026) at 199.8/s`, each sender
    named when there are several or one stopped."""
    sent = sum(d.sent for d in done)
    failed: dict[str, int] = {}
    for d in done:
        for reason, n in d.failed.items():
            failed[reason] = failed.get(reason, 0) + n
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(failed.items(), key=lambda kv: -kv[1]))
    words = f"{sent:,} sent, {sum(failed.values()):,} failed" + (f" ({reasons})" if reasons else "")
    doubt = sum(d.in_doubt for d in done)
    if doubt:
        words += f", {doubt:,} in doubt"
    rate = (sent + sum(failed.values()) + doubt) / seconds if seconds > 0 else 0.0
    words += f" at {rate:,.1f}/s"
    if len(done) > 1 or any(d.stopped for d in done):
        words += " (" + "; ".join(describe_done(d) for d in done) + ")"
    return words


def send_partitions(
    store: Store,
    partitions: Sequence[int],
    plan: SenderPlan,
    *,
    senders: Sequence[SenderPlan],
    lease: Lease,
    run_id: str,
    fill: Fill,
    warehouse_url: str,
    breaker_threshold: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> SenderDone:
    """One sender's stream over the partitions: its rows of each sent (or deferred, when it
    stopped) and stored beside the partition. A failure about the campaign is written to the
    store, so the other senders stop claiming, and raised."""
    ids = [p.sender_id for p in senders]
    index = ids.index(plan.sender_id)
    run = SendRun(warehouse(warehouse_url), lease, run_id, fill, ids, breaker_threshold)
    present = [p for p in partitions if store.path(ready_name(p)).exists()]

    async def stream() -> SenderDone:
        halt = asyncio.Event()
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(client_of(plan))
            watcher = asyncio.create_task(_watch(store, halt))
            stack.callback(watcher.cancel)
            share = Share(plan, run, client, halt, progress)
            frames = (store.read(ready_name(p)) for p in present)
            try:
                async for partition, piece in _numbered(present, share.stream(frames)):
                    store.write(sent_name(partition, index), piece)
            except Exception:
                store.write(HALT, pd.DataFrame())
                raise
            failed = dict(share.failed)
            return SenderDone(plan.sender_id, share.sent, share.stopped, failed, share.in_doubt)

    with frozen_heap():
        return asyncio.run(stream())


async def _numbered(
    partitions: Sequence[int], pieces: AsyncIterator[pd.DataFrame]
) -> AsyncIterator[tuple[int, pd.DataFrame]]:
    """Each piece with the partition it came from."""
    i = 0
    async for piece in pieces:
        yield partitions[i], piece
        i += 1


async def _watch(store: Store, halt: asyncio.Event) -> None:
    """Set `halt` once another sender has written that the campaign must stop."""
    while not halt.is_set():
        if store.path(HALT).exists():
            halt.set()
        await asyncio.sleep(HALT_POLL_S)


@task(name="send", cache_policy=NO_CACHE)
@masked_errors
def send_through(
    plan: SenderPlan,
    store: Store,
    partitions: list[int],
    senders: list[SenderPlan],
    lease: Lease,
    run_id: str,
    fill: Fill,
    warehouse_url: SecretStr,
    breaker_threshold: int = 10,
    progress: dict[str, Progress] | None = None,
) -> SenderDone:
    """Prefect task: one sender's stream over every partition (see `send_partitions`);
    `progress` holds each sender's progress artifact. Where it runs, the task shows its progress
    too: a bar on a terminal, else a line every ~10 s in the run's log."""
    artifact = (progress or {}).get(plan.sender_id)
    stage = "send" if len(senders) == 1 else f"send {plan.sender_id}"
    total = artifact.total if artifact is not None else None
    with shown(stage, total, run_log()) as bar:

        def report(done: int, failed: int) -> None:
            bar(done, failed)
            if artifact is not None:
                artifact(done)

        done = send_partitions(
            store,
            partitions,
            plan,
            senders=senders,
            lease=lease,
            run_id=run_id,
            fill=fill,
            warehouse_url=warehouse_url.get_secret_value(),
            breaker_threshold=breaker_threshold,
            progress=report,
        )
        failed = sum(done.failed.values())
        bar(done.sent + failed + done.in_doubt, failed)  # the loop reports at most once a second
        return done
