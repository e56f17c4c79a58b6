"""One sender's share of a campaign: its own numbers of each frame, sent as one stream at its
own pace, each frame's rows given back with their outcomes."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine

from connectors.vocabulary import PHONE_E164, WA_ID, LedgerState, Outcome, Reason
from connectors.warehouse import ledger
from connectors.warehouse.lease import Lease
from connectors.whatsapp import Sender
from tasks.frame import in_running
from tasks.rules.settle import settle, with_not_before
from tasks.send.loop import SenderStoppedError, send_all
from tasks.send.messages import Past, apply_results, outgoing
from tasks.send.senders import SenderPlan, assign_senders
from tasks.template import Fill

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendRun:
    """What every sender of a run shares: the ledger, the lease, the template, the senders."""

    engine: Engine
    lease: Lease
    run_id: str
    fill: Fill
    sender_ids: Sequence[str]
    breaker_threshold: int = 10

    def write(
        self, results: Sequence[ledger.Result], claims: Sequence[ledger.Claim]
    ) -> frozenset[str]:
        """Record finished sends and claim the next ones, fenced by the lease."""
        return ledger.advance(self.engine, self.lease, self.run_id, results=results, claims=claims)


@dataclass
class Share:
    """One sender working through its numbers, frame after frame; `stopped` says why it stopped
    sending (its own cause: the rest of its customers are deferred), `sent` counts its sends."""

    plan: SenderPlan
    run: SendRun
    client: Sender | None
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    progress: Callable[[int, int], None] | None = None
    stopped: str | None = None
    sent: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    """Failed sends per reason (the API's error code)."""
    in_doubt: int = 0

    def __post_init__(self) -> None:
        self.stopped = self.plan.stopped

    async def stream(self, frames: Iterable[pd.DataFrame]) -> AsyncIterator[pd.DataFrame]:
        """For each frame, this sender's rows of it (original index) with their outcomes."""
        sid = self.plan.sender_id
        for frame in frames:
            owner = assign_senders(frame[PHONE_E164], self.run.sender_ids)
            mine = frame.loc[owner == sid]
            todo = in_running(mine) & mine[WA_ID].notna()
            if self.stopped is None and not self.halt.is_set() and todo.any():
                mine = await self._send(mine, mine.loc[todo, PHONE_E164].tolist())
            if self.stopped is not None:
                mine = defer_stopped(mine, owner.loc[mine.index], {sid: self.stopped})
            yield mine

    async def _send(self, mine: pd.DataFrame, phones: list[str]) -> pd.DataFrame:
        """Send one frame's messages of this sender; a cause of its own stops it."""
        assert self.client is not None, "a sender that may send has a client"
        c = self.run
        past = Past.of(ledger.load(c.engine, c.lease.campaign_id, phones))
        results: dict[str, ledger.Result] = {}
        before = (self.sent + sum(self.failed.values()) + self.in_doubt, sum(self.failed.values()))
        try:
            await send_all(
                self.client,
                outgoing(mine, c.fill, past),
                c.fill.template,
                write=c.write,
                concurrency=self.plan.concurrency,
                breaker_threshold=c.breaker_threshold,
                progress=None if self.progress is None else _after(self.progress, before),
                campaign_id=c.lease.campaign_id,
                halt=self.halt,
                into=results,
            )
        except SenderStoppedError as exc:
            log.warning("%s", exc)
            self.stopped = str(exc)
        for result in results.values():
            if result.state == LedgerState.SENT:
                self.sent += 1
            elif result.state == LedgerState.SEND_FAILED:
                self.failed[result.error_code or "?"] += 1
            else:
                self.in_doubt += 1
        return apply_results(mine, results)


def _after(
    progress: Callable[[int, int], None], before: tuple[int, int]
) -> Callable[[int, int], None]:
    """Progress counted on from the sends (and failures) of earlier frames."""
    return lambda done, failed: progress(before[0] + done, before[1] + failed)


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
