"""Group commit: requests queue their events, a writer commits them in batches off the loop.

A request is answered 200 only after the transaction holding its events committed. While a
transaction runs, newly arriving requests wait in the queue and go together into the next one,
so commits per second stay low whatever the request rate. `concurrency` transactions may run at
once (each in a worker thread): on PostgreSQL the next batch need not wait for the previous
commit's round trips (the receiver uses 2 there, 1 elsewhere: SQLite serialises writers
anyway). A failed batch is retried request by request, so one bad request fails alone (500:
the provider retries it) and the others succeed.
Statuses for messages the ledger does not know yet are re-applied with growing delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectors.errors import TransientError
from connectors.warehouse.events import RecordResult, StatusEvent
from connectors.webhooks.payloads import Batch, InboundMessage, UserPreference

Record = Callable[
    [Sequence[StatusEvent], Sequence[InboundMessage], Sequence[UserPreference]], RecordResult
]
Reapply = Callable[[Sequence[str]], RecordResult]

log = logging.getLogger(__name__)

_FIRST_RETRY_S = 0.25
_MAX_RETRY_DELAY_S = 60.0


class WriteFailedError(TransientError):
    """The events could not be committed (answered 500, so the provider sends them again)."""


class BusyError(TransientError):
    """Too many events wait for the writer already (answered 503, the provider retries)."""


@dataclass
class WriterStats:
    """Counters for tests, logs and the benchmark."""

    requests: int = 0
    events: int = 0
    transactions: int = 0
    failed_transactions: int = 0
    reapplied: int = 0
    resolved: int = 0
    """Ledger rows in doubt resolved by their statuses' callback key."""
    callbacks_ignored: int = 0
    """Messages whose callback names a ledger row that has another message id."""
    unknown_user_ids: int = 0
    """Opt-out replies from a BSUID no delivery knows (dropped)."""


@dataclass(eq=False)
class _Waiting:
    batch: Batch
    future: asyncio.Future[None]


@dataclass
class _Unmatched:
    first_seen: float
    next_try: float
    delay: float = _FIRST_RETRY_S


@dataclass
class GroupCommitWriter:
    """Commits queued batches with `record` in worker threads, `concurrency` at a time."""

    record: Record
    reapply: Reapply | None = None
    concurrency: int = 1
    max_batch_events: int = 5000
    max_queued_events: int = 200_000
    linger_s: float = 0.0
    """A transaction starts no sooner than this after the previous one started, unless
    `max_batch_events` wait or no request came for `quiet_s`: fewer, larger transactions for at
    most this much more latency."""
    quiet_s: float = 0.002
    """Lingering stops once requests stop coming: a provider with few connections, all waiting
    for their answers, sends nothing more until they are answered."""
    retry_unmatched_s: float = 900.0
    max_unmatched: int = 100_000
    stats: WriterStats = field(default_factory=WriterStats)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Waiting | None] = asyncio.Queue()
        self._queued_events = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._unmatched: dict[str, _Unmatched] = {}
        self._slots = asyncio.Semaphore(self.concurrency)
        self._commits: set[asyncio.Task[None]] = set()
        self._reapplying = False
        self._last_start = -float("inf")
        self._last_arrival = -float("inf")
        self._full = asyncio.Event()

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-writer")

    async def submit(self, batch: Batch) -> None:
        """Return once `batch` is committed; WriteFailedError or BusyError otherwise."""
        if not self.running:
            raise WriteFailedError("the writer is not running")
        if self._queued_events + len(batch) > self.max_queued_events:
            raise BusyError(f"{self._queued_events} events wait for the writer already")
        waiting = _Waiting(batch, asyncio.get_running_loop().create_future())
        self._queued_events += len(batch)
        self._queue.put_nowait(waiting)
        self._last_arrival = time.monotonic()
        if self._queued_events >= self.max_batch_events:
            self._full.set()
        await waiting.future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer task."""
        if self._task is None:
            return
        self._closing = True
        self._full.set()
        self._queue.put_nowait(None)
        await self._task

    @property
    def running(self) -> bool:
        """True while the writer task accepts batches."""
        return not self._closing and self._task is not None and not self._task.done()

    @property
    def unmatched(self) -> int:
        """Message ids whose statuses wait for the ledger to know them."""
        return len(self._unmatched)

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            # Whatever stopped the loop, nobody may wait forever for an answer.
            self._closing = True
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    _settle([item], WriteFailedError("the writer stopped"))

    async def _loop(self) -> None:
        try:
            while True:
                # A free slot first: requests arriving meanwhile gather into one batch.
                await self._slots.acquire()
                try:
                    async with asyncio.timeout(self._until_retry()):
                        first = await self._queue.get()
                except TimeoutError:
                    self._slots.release()
                    await self._reapply_due()
                    continue
                if first is None:
                    self._slots.release()
                    return
                await self._linger()
                items, size, stop = [first], len(first.batch), False
                while size < self.max_batch_events and not self._queue.empty():
                    item = self._queue.get_nowait()
                    if item is None:
                        stop = True
                        break
                    items.append(item)
                    size += len(item.batch)
                self._queued_events -= size
                task = asyncio.get_running_loop().create_task(self._commit_in_slot(items))
                self._commits.add(task)
                task.add_done_callback(self._commits.discard)
                if stop:
                    return
        finally:
            await asyncio.gather(*self._commits, return_exceptions=True)

    async def _linger(self) -> None:
        """Let more requests join until `linger_s` after the previous start, a full batch, or a
        pause of `quiet_s` in the requests."""
        deadline = self._last_start + self.linger_s
        while self._queued_events < self.max_batch_events and not self._closing:
            now = time.monotonic()
            until = min(deadline, self._last_arrival + self.quiet_s)
            if until <= now:
                break
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(until - now):
                    await self._full.wait()
        self._last_start = time.monotonic()

    async def _commit_in_slot(self, items: Sequence[_Waiting]) -> None:
        try:
            await self._commit(items)
            await self._reapply_due()
        finally:
            self._slots.release()

    async def _commit(self, items: Sequence[_Waiting]) -> None:
        statuses = [s for item in items for s in item.batch.statuses]
        inbound = [m for item in items for m in item.batch.inbound]
        preferences = [p for item in items for p in item.batch.preferences]
        try:
            result = await asyncio.to_thread(self.record, statuses, inbound, preferences)
        except Exception as exc:
            self.stats.failed_transactions += 1
            if len(items) > 1:
                why = describe(exc)
                log.warning("writing %d requests together failed (%s); one by one", len(items), why)
                for item in items:
                    await self._commit([item])
                return
            log.error(
                "writing a request's %d events failed: %s", len(items[0].batch), describe(exc)
            )
            _settle(items, WriteFailedError("the warehouse write failed"))
            return
        self.stats.transactions += 1
        self.stats.requests += len(items)
        self.stats.events += len(statuses) + len(inbound) + len(preferences)
        _settle(items, None)
        if result.opt_outs:
            log.info("recorded %d opt-out replies", result.opt_outs)
        if result.marketing_preferences:
            log.info("recorded %d marketing preferences", result.marketing_preferences)
        self._note(result)
        if result.unknown_user_ids:
            self.stats.unknown_user_ids += result.unknown_user_ids
            log.warning(
                "dropped %d opt-out replies from business-scoped user ids no delivery recorded",
                result.unknown_user_ids,
            )
        log.debug(
            "committed %d requests: %d new statuses, %d duplicates, %d deliveries moved",
            len(items),
            result.stored,
            result.duplicates,
            result.deliveries_updated,
        )
        self._remember(result.unmatched)

    def _remember(self, message_ids: Sequence[str]) -> None:
        if self.reapply is None:
            return
        now = time.monotonic()
        for message_id in message_ids:
            self._unmatched.setdefault(message_id, _Unmatched(now, now + _FIRST_RETRY_S))
        while len(self._unmatched) > self.max_unmatched:
            # Oldest first (dicts keep insertion order); reconcile_campaign still catches them.
            del self._unmatched[next(iter(self._unmatched))]

    def _note(self, result: RecordResult) -> None:
        """Count and log the sends in doubt that statuses resolved, or named in vain."""
        if result.resolved:
            self.stats.resolved += result.resolved
            log.info("%d sends in doubt resolved by their statuses' callback", result.resolved)
        if result.callbacks_ignored:
            self.stats.callbacks_ignored += result.callbacks_ignored
            log.warning(
                "ignored the statuses of %d messages whose callback names a ledger row that "
                "has another message id or is settled",
                result.callbacks_ignored,
            )

    def _until_retry(self) -> float | None:
        if not self._unmatched:
            return None
        soonest = min(u.next_try for u in self._unmatched.values())
        return max(0.0, soonest - time.monotonic())

    async def _reapply_due(self) -> None:
        if self.reapply is None or not self._unmatched or self._reapplying:
            return
        now = time.monotonic()
        due = [m for m, u in self._unmatched.items() if u.next_try <= now]
        if not due:
            return
        self._reapplying = True
        try:
            result = await asyncio.to_thread(self.reapply, due)
        except Exception as exc:
            log.warning("re-applying %d stored statuses failed: %s", len(due), describe(exc))
            still = set(due)
        else:
            still = set(result.unmatched)
            self._note(result)
        finally:
            self._reapplying = False
        for message_id in due:
            entry = self._unmatched.get(message_id)
            if entry is None:
                continue
            if message_id not in still:
                self.stats.reapplied += 1
                del self._unmatched[message_id]
            elif now - entry.first_seen > self.retry_unmatched_s:
                del self._unmatched[message_id]
            else:
                entry.delay = min(entry.delay * 2, _MAX_RETRY_DELAY_S)
                entry.next_try = now + entry.delay


def describe(exc: BaseException) -> str:
    """An error's kind for logs: never its message, which may quote SQL parameters (numbers)."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    return type(exc).__name__ + (f" ({type(orig).__name__})" if orig is not None else "")


def _settle(items: Sequence[_Waiting], error: Exception | None) -> None:
    for item in items:
        if item.future.done():  # the request went away meanwhile
            continue
        if error is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(error)
