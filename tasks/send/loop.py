"""The send loop: every message at most once, the ledger kept ahead of the paced requests."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from connectors.errors import OutcomeUnknownError, StopRunError, kind_of
from connectors.masking import mask_phone
from connectors.vocabulary import LedgerState
from connectors.warehouse import ledger
from connectors.warehouse.callback import callback_key
from connectors.warehouse.lease import LeaseLostError
from connectors.whatsapp import Sender, Template
from connectors.whatsapp.errors import WhatsAppError
from tasks.send.messages import Outgoing

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class CircuitOpenError(StopRunError):
    """Sends kept failing for a reason that is not the recipient's: the run stopped early."""


async def _send_one(
    client: Sender, item: Outgoing, template: Template, campaign_id: str | None
) -> ledger.Result:
    """Send one message and turn whatever happened into a ledger result. With a campaign id, the
    send carries its ledger key, which the API echoes in the message's status webhooks."""
    key = callback_key(campaign_id, item.phone_e164) if campaign_id else None
    try:
        receipt = await client.send_template(
            item.wa_id, template, item.params, number=item.phone_e164, callback=key
        )
    except OutcomeUnknownError:
        return ledger.Result(item.phone_e164, LedgerState.UNKNOWN, _now())
    except WhatsAppError as exc:
        # A failure that says nothing about the recipient would hit every send: it opens the
        # breaker, and like a transient one it is retried by the next run.
        kind = kind_of(exc)
        return ledger.Result(
            item.phone_e164,
            LedgerState.SEND_FAILED,
            _now(),
            error_code=exc.reason,
            error_title=exc.title,
            retryable=kind in ("stop_run", "transient"),
            campaign_level=kind == "stop_run",
            stops_at_once=exc.stops_at_once,
            detail=str(exc),
        )
    except Exception as exc:  # a bug or an answer nobody foresaw: the request may have gone out
        log.error("send ended in doubt: %s", type(exc).__name__)
        return ledger.Result(item.phone_e164, LedgerState.UNKNOWN, _now())
    return ledger.Result(
        item.phone_e164,
        LedgerState.SENT,
        _now(),
        message_id=receipt.message_id,
        wa_id=receipt.wa_id or item.wa_id,
        message_status=receipt.message_status,
        user_id=receipt.user_id,
    )


class _Breaker:
    """Opens after `threshold` campaign-level failures in a row, or at once on one that stops a
    run by itself (an expired token, a paused template, a blocked account); any success closes
    it again."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.streak = 0
        self.last: ledger.Result | None = None
        self.at_once: ledger.Result | None = None

    def observe(self, result: ledger.Result) -> None:
        self.streak = self.streak + 1 if result.campaign_level else 0
        self.last = result if result.campaign_level else self.last
        if result.stops_at_once and self.at_once is None:
            self.at_once = result

    @property
    def open(self) -> bool:
        return self.at_once is not None or self.streak >= self.threshold

    def error(self) -> CircuitOpenError:
        if self.at_once is not None:
            return CircuitOpenError(
                f"stopped at the first send that failed with {self.at_once.detail} (nothing "
                "is sent twice; what was sent stays recorded, the rest is retried by the next run)"
            )
        last = self.last
        code = f"{last.error_code} ({last.error_title})" if last else "?"
        return CircuitOpenError(
            f"stopped after {self.streak} sends in a row failed with {code}: every send would "
            "fail the same way; fix its cause (template, credentials, account) and run again "
            "(nothing is sent twice; these sends are retried)"
        )


class Pending:
    """The items not claimed yet, read from their iterable only as slots free up."""

    def __init__(self, items: Iterable[Outgoing]) -> None:
        self._items = iter(items)
        self._head = list(itertools.islice(self._items, 1))

    def __bool__(self) -> bool:
        return bool(self._head)

    def take(self, count: int) -> list[Outgoing]:
        """Up to `count` items, in order."""
        if count <= 0 or not self._head:
            return []
        taken = self._head + list(itertools.islice(self._items, count - 1))
        self._head = list(itertools.islice(self._items, 1))
        return taken


async def send_all(
    client: Sender,
    items: Iterable[Outgoing],
    template: Template,
    *,
    write: ledger.LedgerWrite,
    concurrency: int,
    breaker_threshold: int = 10,
    progress: Callable[[int], None] | None = None,
    progress_every_s: float = 1.0,
    campaign_id: str | None = None,
) -> dict[str, ledger.Result]:
    """Send every item at most once, never more than `concurrency` rows `sending` at any moment.

    Each ledger transaction records the sends that finished and claims as many new ones as there
    are free slots, so a crash leaves at most `concurrency` rows in doubt. The client paces the
    requests (its send limits); this loop only keeps the ledger ahead of them. `items` is read
    as the slots free up, so a lazy iterable costs no pause before the first send.
    """
    queue = Pending(items)
    in_flight: set[asyncio.Task[ledger.Result]] = set()
    finished: list[ledger.Result] = []
    results: dict[str, ledger.Result] = {}
    breaker = _Breaker(breaker_threshold)
    reporter = _Reporter(progress, progress_every_s)
    stopped: Exception | None = None
    while queue or in_flight or finished:
        items_now = queue.take(0 if breaker.open or stopped else concurrency - len(in_flight))
        try:
            won = await asyncio.to_thread(write, finished, _claims(items_now, client.sender_id))
        except LeaseLostError as exc:  # the results were recorded; no new claim is ours
            stopped, won = stopped or exc, frozenset()
        refused = [c.phone_e164 for c in items_now if c.phone_e164 not in won]
        if refused and not stopped:
            stopped = _refused(refused)
        results.update((r.phone_e164, r) for r in finished)
        if finished:
            reporter.report(len(results))
        finished = []
        in_flight.update(
            asyncio.create_task(_send_one(client, c, template, campaign_id))
            for c in items_now
            if c.phone_e164 in won
        )
        if not in_flight:
            break
        done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for finished_task in done:
            finished.append(finished_task.result())
            breaker.observe(finished[-1])
    await reporter.finish()
    if stopped is not None:
        raise stopped
    if breaker.open:
        raise breaker.error()
    return results


def _claims(items: list[Outgoing], sender: str) -> list[ledger.Claim]:
    """The ledger claims of the items about to be sent, stamped now."""
    now = _now()
    return [
        ledger.Claim(
            c.phone_e164,
            c.customer_id,
            c.wa_id,
            c.attempts + 1,
            c.first_attempt_at or now,
            now,
            c.ledger_state,
            sender,
            c.market,
        )
        for c in items
    ]


class _Reporter:
    """Hands the count of sends done to `progress` at most once per interval, off the loop (an
    API call to Prefect must not hold up the paced sends), never two at once."""

    def __init__(self, progress: Callable[[int], None] | None, every_s: float) -> None:
        self.progress = progress
        self.every_s = every_s
        self.pending: asyncio.Future[None] | None = None
        self.next_at = 0.0

    def report(self, done: int) -> None:
        """Report `done` if the last report has finished and the interval has passed."""
        idle = self.pending is None or self.pending.done()
        if self.progress is None or not idle or time.monotonic() < self.next_at:
            return
        self.pending = asyncio.ensure_future(asyncio.to_thread(self.progress, done))
        self.next_at = time.monotonic() + self.every_s

    async def finish(self) -> None:
        """Wait for the report under way."""
        if self.pending is not None:
            await self.pending


def _refused(phones: list[str]) -> ledger.ClaimRefusedError:
    """The error that stops a run whose claims the ledger refused."""
    return ledger.ClaimRefusedError(
        f"the ledger refused {len(phones)} claims (e.g. {mask_phone(phones[0])}): another run "
        "changed those numbers' rows since this run planned; stopped claiming sends (nothing "
        "is sent twice: the other run owns them)"
    )
