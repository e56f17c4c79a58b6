"""A campaign's senders: which sender each number goes through, and each sender's pace.

Each number is assigned by rendezvous hashing of the number with every sender id: the sender
with the highest score wins. The score is a pure function of the two strings, so a re-run (any
process, any machine) keeps the assignment, and adding or removing a sender moves only the
numbers it gains or loses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.whatsapp import PhoneFacts, WhatsAppSettings

THROUGHPUT_PER_S = {"STANDARD": 80.0, "HIGH": 1000.0}
"""Messages per second of a Cloud number by its `throughput_level` (cloud-api.md)."""
DEFAULT_RATE_PER_S = 50.0
"""A v1 sender's pace when the campaign sets none (the v1 messages endpoint's own limit)."""
IN_FLIGHT_S = 0.2
"""The answer time the default in-flight cap leaves room for at the sender's full rate."""
MIN_CONCURRENCY = 16


@dataclass(frozen=True)
class SenderPlan:
    """One sender of a campaign: its settings, its pace, and why it may not send (None: it may)."""

    settings: WhatsAppSettings
    rate_per_s: float
    concurrency: int
    stopped: str | None = None

    @property
    def sender_id(self) -> str:
        return self.settings.sender_id


def describe_plan(plan: SenderPlan) -> str:
    """One sender's pace in a few words, for the run's log."""
    pace = f"{plan.sender_id} at {plan.rate_per_s:g}/s, {plan.concurrency} in flight"
    return f"{pace} (not used: {plan.stopped})" if plan.stopped else pace


def assign_senders(phones: pd.Series, sender_ids: Sequence[str]) -> pd.Series:
    """The sender id each number goes through (index of `phones`), stable across runs."""
    if not sender_ids:
        raise ValueError("assign_senders: no sender ids")
    ids = np.asarray(list(sender_ids), dtype=object)
    if len(ids) == 1:
        return pd.Series(ids[0], index=phones.index, dtype=object)
    text = phones.astype("string").fillna("")
    scores = np.column_stack(
        [
            pd.util.hash_pandas_object(text + "|" + sender, index=False).to_numpy()
            for sender in sender_ids
        ]
    )
    return pd.Series(ids[scores.argmax(axis=1)], index=phones.index, dtype=object)


def sender_rate(
    facts: PhoneFacts | None, campaign_rate: float | None, default: float = DEFAULT_RATE_PER_S
) -> float:
    """A sender's messages/s: its Cloud throughput, the campaign's rate, or both (the lower):
    the campaign's `rate_limit_per_s` is a ceiling, never a licence to exceed the number's."""
    own = THROUGHPUT_PER_S.get(facts.throughput_level or "") if facts else None
    if own is None:
        return campaign_rate if campaign_rate is not None else default
    return own if campaign_rate is None else min(own, campaign_rate)


def default_concurrency(rate_per_s: float) -> int:
    """Sends in flight that keep a sender at its rate while answers take up to `IN_FLIGHT_S`."""
    return max(MIN_CONCURRENCY, math.ceil(rate_per_s * IN_FLIGHT_S) + 2)


def plan_senders(
    senders: Sequence[WhatsAppSettings],
    facts: Mapping[str, PhoneFacts | None],
    *,
    rate_per_s: float | None,
    concurrency: int | None,
) -> list[SenderPlan]:
    """Every sender with its pace; a Cloud number rated RED is planned stopped (its recipients
    wait: sending more from it risks the number)."""
    plans = []
    for settings in senders:
        own = facts.get(settings.sender_id)
        rate = sender_rate(own, rate_per_s)
        stopped = None
        if own is not None and own.quality_rating == "RED":
            stopped = (
                f"sender {settings.sender_id} has quality rating RED: not sending from it "
                "(its recipients wait for a later run; see the number in WhatsApp Manager)"
            )
        plans.append(SenderPlan(settings, rate, concurrency or default_concurrency(rate), stopped))
    return plans
