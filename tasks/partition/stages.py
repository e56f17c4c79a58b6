"""The stages on partitions: each reads its frame from the run's store and writes it back, and
returns only counts, so neither the flow nor a worker ever holds more than one partition.

  chunk      consent, normalise, then each row to its number's partition
  shape      WhatsApp opt-outs, dedupe, plan (the ledger's word on these numbers), the rules
             but the messaging limit, whose places are counted here and handed out by the flow
  finish     the messaging limit, then (dry run) `planned`, or the contact check / reachability
  record     the senders' pieces put back together and written to `wa_recipients`
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd
from pydantic import SecretStr

from connectors.pricing.estimate import market_counts
from connectors.vocabulary import OUTCOME, PHONE_E164, WA_ID, Outcome
from connectors.warehouse import ledger
from connectors.warehouse.budget import messaged_since
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import opted_out_numbers
from connectors.warehouse.records import write_recipients
from tasks.consent import apply_consent, apply_opt_outs
from tasks.frame import Tally, in_running
from tasks.partition.split import AUDIENCE_ROW, part_folder, partition_of
from tasks.partition.store import Store
from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise
from tasks.plan import apply_ledger, mark_planned
from tasks.record import recipient_rows
from tasks.rules.budget import WINDOW, defer_over, first_seats, mark_new
from tasks.rules.task import Rules, apply_rules
from tasks.send.senders import SenderPlan, assign_senders
from tasks.send.task import ready_name, sent_name
from tasks.summary import Counts, failure_examples
from tasks.template import Fill
from tasks.template.customers import check_fills, choose_template_languages
from tasks.verify.common import VerifyStats
from tasks.verify.task import verify_frames

SHAPED: Final = "shaped"


@dataclass(frozen=True)
class Audience:
    """What the chunk stage needs of the campaign."""

    partitions: int
    default_region: str
    mobile_only: bool = False
    consent_max_age_days: int | None = None


def chunk_stage(store: Store, name: str, audience: Audience) -> Tally:
    """Consent and normalise one extracted chunk, then split it into its numbers' partitions."""
    frame = store.read(name)
    days = audience.consent_max_age_days
    consented = apply_consent(frame, max_age=timedelta(days=days) if days else None)
    out = normalise(
        consented, default_region=audience.default_region, mobile_only=audience.mobile_only
    )
    parts = partition_of(out, audience.partitions)
    order = np.argsort(parts, kind="stable")  # each partition's rows together, in their order
    grouped, sorted_parts = out.iloc[order], parts[order]
    present = np.unique(sorted_parts)
    starts = np.searchsorted(sorted_parts, present, side="left")
    ends = np.searchsorted(sorted_parts, present, side="right")
    piece = name.rsplit("/", 1)[-1]
    for partition, start, end in zip(present, starts, ends, strict=True):
        store.write(f"{part_folder(int(partition))}/from-{piece}", grouped.iloc[start:end])
    store.remove(name)
    return Tally.of(out)


@dataclass(frozen=True)
class Plan:
    """What the shape stage needs of the campaign and its warehouse."""

    warehouse_url: SecretStr
    campaign_id: str
    fill: Fill
    rules: Rules
    now: datetime
    resend_unknown: bool = False
    history: bool = True  # False: the campaign has no ledger row yet, nothing to look up
    places: int | None = None  # the messaging limit's places left (None: no limit)


@dataclass(frozen=True)
class Shaped:
    """A shaped partition's counts, and its first new recipients' audience positions when the
    messaging limit applies."""

    tally: Tally
    seats: np.ndarray | None = None


def shape_stage(store: Store, partition: int, plan: Plan) -> Shaped:
    """Opt-outs, dedupe, plan and the rules over one partition's rows (see the module doc)."""
    folder = part_folder(partition)
    pieces = store.names(folder)
    if not pieces:
        return Shaped(Tally())
    frame = pd.concat([store.read(name) for name in pieces], ignore_index=True)
    engine = warehouse(plan.warehouse_url.get_secret_value())
    frame = apply_opt_outs(frame, opted_out_numbers(engine, _running_phones(frame)))
    frame = choose_template_languages(dedupe([frame])[0], plan.fill)
    phones = _running_phones(frame)
    history = ledger.load(engine, plan.campaign_id, phones) if plan.history else _NO_HISTORY
    frame = check_fills(apply_ledger(frame, history, resend_unknown=plan.resend_unknown), plan.fill)
    rules = dataclasses.replace(plan.rules, messaging_limit=None)
    frame = apply_rules([frame], rules, engine, plan.now)[0][0]
    seats = None
    if plan.places is not None:
        known = messaged_since(engine, plan.now - WINDOW, _running_phones(frame))
        frame = mark_new(frame, known)
        seats = first_seats(frame, plan.places, AUDIENCE_ROW)
    store.write(f"{folder}/{SHAPED}", frame)
    for name in pieces:
        store.remove(name)
    return Shaped(Tally.of(frame), seats)


_NO_HISTORY: Final = pd.DataFrame(columns=list(ledger.LEDGER_COLUMNS))


def _running_phones(frame: pd.DataFrame) -> list[str]:
    """The distinct numbers still in the running."""
    return [str(p) for p in frame.loc[in_running(frame), PHONE_E164].dropna().unique()]


@dataclass(frozen=True)
class Check:
    """How the finish stage checks numbers (a live run): the senders and the API's batch."""

    senders: list[SenderPlan]
    warehouse_url: SecretStr
    batch_size: int
    suppress_days: int = 30


@dataclass(frozen=True)
class Limit:
    """The messaging limit's verdict for every partition: the last audience position that gets a
    place (None: everyone does), and when the next place frees."""

    last_seat: int | None
    frees_at: datetime


@dataclass(frozen=True)
class Finished:
    """A finished partition's counts: customers deferred by the limit, messages per market
    about to be sent (priced by the estimate), the checks, messages owed per sender."""

    tally: Tally
    over_limit: int = 0
    markets: dict[str, int] = field(default_factory=dict)
    checks: VerifyStats = field(default_factory=lambda: VerifyStats(0, 0))
    owed: dict[str, int] = field(default_factory=dict)


def finish_stage(
    store: Store, partition: int, limit: Limit | None, check: Check | None
) -> Finished:
    """The messaging limit, then a dry run's `planned` (check None) or the checks."""
    folder = part_folder(partition)
    if not store.path(f"{folder}/{SHAPED}").exists():
        return Finished(Tally())
    frame = store.read(f"{folder}/{SHAPED}")
    over = 0
    if limit is not None:
        frame, over = defer_over(frame, limit.last_seat, AUDIENCE_ROW, limit.frees_at)
    if check is None:
        frame = mark_planned(frame)
    to_send = in_running(frame) | (frame[OUTCOME] == Outcome.PLANNED)
    markets = market_counts(frame.loc[to_send, PHONE_E164])
    checks, owed = VerifyStats(0, 0), {}
    if check is not None:
        checked, checks = verify_frames(
            [frame],
            check.senders,
            warehouse_url=check.warehouse_url.get_secret_value(),
            batch_size=check.batch_size,
            suppress_days=check.suppress_days,
        )
        frame = checked[0]
        owed = _owed(frame, check.senders)
    store.write(ready_name(partition), frame)
    store.remove(f"{folder}/{SHAPED}")
    return Finished(Tally.of(frame), over, markets, checks, owed)


def _owed(frame: pd.DataFrame, senders: list[SenderPlan]) -> dict[str, int]:
    """Messages the partition owes, per sender."""
    pending = frame.loc[in_running(frame) & frame[WA_ID].notna(), PHONE_E164]
    owner = assign_senders(pending, [plan.sender_id for plan in senders])
    return {str(k): int(v) for k, v in owner.value_counts().items()}


@dataclass(frozen=True)
class Recorded:
    """A recorded partition: its customers per outcome (and reason), a few failures to show."""

    tally: Tally
    examples: list[tuple[str, str, str]]


def record_stage(
    store: Store,
    partition: int,
    *,
    senders: int,
    campaign_id: str,
    run_id: str,
    warehouse_url: SecretStr,
    now: datetime,
) -> Recorded:
    """Put the partition back together from its senders' pieces (`senders` 0: nothing was
    sent, a dry run) and write every customer's outcome."""
    if not store.path(ready_name(partition)).exists():
        return Recorded(Tally(), [])
    frame = store.read(ready_name(partition))
    if senders:
        pieces = [store.read(sent_name(partition, i)) for i in range(senders)]
        frame = pd.concat(pieces).reindex(frame.index)
    rows = recipient_rows(frame, campaign_id=campaign_id, run_id=run_id, now=now)
    write_recipients(warehouse(warehouse_url.get_secret_value()), rows)
    return Recorded(Tally.of(frame), failure_examples([frame]))


def sum_counts(parts: list[Recorded]) -> Counts:
    """The run's customers per outcome, over its recorded partitions (every one settled)."""
    return Counts.of_pairs(sum((part.tally for part in parts), Tally()).outcomes)
