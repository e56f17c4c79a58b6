"""The send loop: every message at most once, the ledger kept ahead of the paced requests."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from connectors.errors import OutcomeUnknownError, StopRunError, kind_of
from connectors.masking import mask_phone
from connectors.vocabulary import LedgerState
from connectors.warehouse import ledger
from connectors.warehouse.callback import callback_key
from connectors.warehouse.lease import LeaseLostError
from connectors.whatsapp import Sender, Template
from connectors.whatsapp.errors import InvalidRequest, WhatsAppError
from tasks.send.messages import Outgoing

log = logging.getLogger(__name__)

GATHER_S = 0.03
"""How long a ledger turn waits, after the first send finished, for others to finish too: one
transaction then records several (at 1,000/s about 35), so the ledger costs little per send. The
slots held meanwhile are within the default in-flight cap (answer + this + the write < 0.2 s)."""


def _now() -> datetime:
    return datetime.now(UTC)


class CircuitOpenError(StopRunError):
    """Sends kept failing for a reason that is not the recipient's: the run stopped early."""

    def __init__(self, message: str, *, sender_id: str | None = None) -> None:
        super().__init__(message)
        self.sender_id = sender_id


class SenderStoppedError(CircuitOpenError):
    """One sender stopped for a cause of its own (its number's spam limit, its credentials): its
    recipients wait for the next run while the campaign's other senders go on."""


@dataclass(frozen=True, slots=True)
class _Done:
    """A finished send: its ledger result, whether a failure is about the sender itself, and
    whether the API refused its parameters (the customer's data, or the campaign's mapping)."""

    result: ledger.Result
    about_sender: bool = False
    parameters_refused: bool = False


async def _send_one(
    client: Sender, item: Outgoing, template: Template, campaign_id: str | None
) -> _Done:
    """Send one message and turn whatever happened into a ledger result. With a campaign id, the
    send carries its ledger key, which the API echoes in the message's status webhooks."""
    key = callback_key(campaign_id, item.phone_e164) if campaign_id else None
    try:
        receipt = await client.send_template(
            item.wa_id,
            item.template or template,
            item.params,
            extras=item.extras,
            number=item.phone_e164,
            callback=key,
        )
    except OutcomeUnknownError:
        return _Done(ledger.Result(item.phone_e164, LedgerState.UNKNOWN, _now()))
    except WhatsAppError as exc:
        # A failure that says nothing about the recipient would hit every send: it opens the
        # breaker, and like a transient one it is retried by the next run.
        kind = kind_of(exc)
        failed = ledger.Result(
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
        return _Done(
            failed,
            about_sender=kind == "stop_run" and exc.about_sender,
            parameters_refused=isinstance(exc, InvalidRequest),
        )
    except Exception as exc:  # a bug or an answer nobody foresaw: the request may have gone out
        log.error("send ended in doubt: %s", type(exc).__name__)
        return _Done(ledger.Result(item.phone_e164, LedgerState.UNKNOWN, _now()))
    return _Done(
        ledger.Result(
            item.phone_e164,
            LedgerState.SENT,
            _now(),
            message_id=receipt.message_id,
            wa_id=receipt.wa_id or item.wa_id,
            message_status=receipt.message_status,
            user_id=receipt.user_id,
        )
    )


class _Breaker:
    """Opens after `threshold` campaign-level failures in a row, or at once on one that stops a
    run by itself (an expired token, a paused template, a blocked number); any success closes
    it again. It remembers whether the failure that opened it is about the sender alone.

    Until one send of this loop has succeeded, a send whose parameters the API refused may be
    the campaign's template mapping failing for everyone (a component the template needs but
    the campaign does not fill): it counts as campaign-level and is retried by the next run, so
    a wrong mapping stops after `threshold` sends instead of failing the whole audience for good.
    """

    def __init__(self, threshold: int, sender_id: str) -> None:
        self.threshold = threshold
        self.sender_id = sender_id
        self.streak = 0
        self.proven = False
        self.last: _Done | None = None
        self.at_once: _Done | None = None

    def observe(self, done: _Done) -> _Done:
        """Count one finished send; returns it as it is to be recorded."""
        if done.result.state == LedgerState.SENT:
            self.proven = True
        elif done.parameters_refused and not self.proven:
            done = replace(done, result=replace(done.result, retryable=True, campaign_level=True))
        result = done.result
        self.streak = self.streak + 1 if result.campaign_level else 0
        self.last = done if result.campaign_level else self.last
        if result.stops_at_once and self.at_once is None:
            self.at_once = done
        return done

    @property
    def open(self) -> bool:
        return self.at_once is not None or self.streak >= self.threshold

    @property
    def about_sender(self) -> bool:
        """True when what opened the breaker is the sender's own (its number, its token)."""
        cause = self.at_once or self.last
        return cause is not None and cause.about_sender

    def error(self) -> CircuitOpenError:
        scope = SenderStoppedError if self.about_sender else CircuitOpenError
        whose = f"sender {self.sender_id} " if self.about_sender else ""
        if self.at_once is not None:
            return scope(
                f"{whose}stopped at the first send that failed with {self.at_once.result.detail} "
                "(nothing is sent twice; what was sent stays recorded, the rest is retried by "
                "the next run)",
                sender_id=self.sender_id,
            )
        last = self.last.result if self.last else None
        code = f"{last.error_code} ({last.error_title})" if last else "?"
        cause = "template, credentials, account"
        if self.last is not None and self.last.parameters_refused:
            cause = "the template's header, buttons or body parameters in the campaign"
        return scope(
            f"{whose}stopped after {self.streak} sends in a row failed with {code}: every send "
            f"would fail the same way; fix its cause ({cause}) and run again (nothing is sent "
            "twice; these sends are retried)",
            sender_id=self.sender_id,
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


class _InFlight:
    """The sends under way; each puts itself on a queue when done, so waiting for the next one
    costs the same however many are in flight."""

    def __init__(self) -> None:
        self._done: asyncio.Queue[_Done] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references
        self._unread = 0

    def __len__(self) -> int:
        """Sends started whose result was not taken yet."""
        return self._unread

    def start(self, send: Coroutine[None, None, _Done]) -> None:
        task = asyncio.create_task(self._finish(send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._unread += 1

    async def _finish(self, send: Coroutine[None, None, _Done]) -> None:
        self._done.put_nowait(await send)

    async def next_done(self, gather_s: float = 0.0) -> list[_Done]:
        """Wait for at least one send to finish, then `gather_s` more while others finish: all
        that have finished by then."""
        finished = [await self._done.get()]
        if gather_s > 0 and self._unread > 1:
            await asyncio.sleep(gather_s)
        while not self._done.empty():
            finished.append(self._done.get_nowait())
        self._unread -= len(finished)
        return finished


async def send_all(
    client: Sender,
    items: Iterable[Outgoing],
    template: Template,
    *,
    write: ledger.LedgerWrite,
    concurrency: int,
    breaker_threshold: int = 10,
    progress: Callable[[int, int], None] | None = None,
    progress_every_s: float = 1.0,
    campaign_id: str | None = None,
    halt: asyncio.Event | None = None,
    into: dict[str, ledger.Result] | None = None,
) -> dict[str, ledger.Result]:
    """Send every item at most once, never more than `concurrency` rows `sending` at any moment.

    Each ledger transaction records the sends that finished and claims as many new ones as there
    are free slots, so a crash leaves at most `concurrency` rows in doubt. The client paces the
    requests (its send limits); this loop only keeps the ledger ahead of them. `items` is read
    as the slots free up, so a lazy iterable costs no pause before the first send.

    `halt` is shared by the senders of one campaign: a failure about the campaign sets it and
    every loop stops claiming; this loop then returns what it sent. A failure about this sender
    alone (its number, its token) raises `SenderStoppedError` and leaves the others going.
    Results go into `into` as they are recorded (kept when the loop raises), and are returned.
    """
    halt = halt or asyncio.Event()
    queue = Pending(items)
    in_flight = _InFlight()
    finished: list[_Done] = []
    results: dict[str, ledger.Result] = {} if into is None else into
    recorded = failed = 0
    breaker = _Breaker(breaker_threshold, client.sender_id)
    reporter = _Reporter(progress, progress_every_s)
    stopped: Exception | None = None
    while queue or in_flight or finished:
        if breaker.open and not breaker.about_sender:
            halt.set()
        closed = breaker.open or stopped or halt.is_set()
        items_now = queue.take(0 if closed else concurrency - len(in_flight))
        done = [d.result for d in finished]
        try:
            won = await asyncio.to_thread(write, done, _claims(items_now, client.sender_id))
        except LeaseLostError as exc:  # the results were recorded; no new claim is ours
            stopped, won = stopped or exc, frozenset()
        refused = [c.phone_e164 for c in items_now if c.phone_e164 not in won]
        if refused and not stopped:
            stopped = _refused(refused)
        results.update((r.phone_e164, r) for r in done)
        recorded += len(done)
        failed += sum(r.state == LedgerState.SEND_FAILED for r in done)
        if finished:
            reporter.report(recorded, failed)
        finished = []
        for c in items_now:
            if c.phone_e164 in won:
                in_flight.start(_send_one(client, c, template, campaign_id))
        if not in_flight:
            break
        finished = [breaker.observe(d) for d in await in_flight.next_done(GATHER_S)]
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
    """Hands the count of sends done (and failed) to `progress` at most once per interval, off
    the loop (an API call to Prefect must not hold up the paced sends), never two at once."""

    def __init__(self, progress: Callable[[int, int], None] | None, every_s: float) -> None:
        self.progress = progress
        self.every_s = every_s
        self.pending: asyncio.Future[None] | None = None
        self.next_at = 0.0

    def report(self, done: int, failed: int) -> None:
        """Report `done` if the last report has finished and the interval has passed."""
        idle = self.pending is None or self.pending.done()
        if self.progress is None or not idle or time.monotonic() < self.next_at:
            return
        self.pending = asyncio.ensure_future(asyncio.to_thread(self.progress, done, failed))
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
