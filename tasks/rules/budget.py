"""The portfolio's 24-hour messaging limit: send to at most what the window has left.

A number messaged within the window (by any campaign or sender) costs nothing more; each other
number takes one place. Customers beyond the places left are `deferred` / `messaging_limit`
until the window frees: from the moment its earliest message turns 24 hours old (a draining run
then sends as many as have freed). Chunks are taken in order, so the first customers keep places.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import pandas as pd

from connectors.vocabulary import PHONE_E164, Reason
from tasks.frame import in_running
from tasks.rules.settle import defer, with_not_before

WINDOW: Final = timedelta(hours=24)
"""Meta's moving window for the messaging limit."""


@dataclass(frozen=True)
class Budget:
    """The limit, and the numbers already messaged in the window with their first message."""

    limit: int | None  # None: unlimited
    messaged: Mapping[str, datetime] = field(default_factory=dict)

    def places(self) -> int | None:
        """New numbers the window still takes (None: no limit)."""
        return None if self.limit is None else max(0, self.limit - len(self.messaged))

    def frees_at(self, now: datetime) -> datetime:
        """When the next place frees: the window's earliest message turning 24 hours old."""
        return min(self.messaged.values(), default=now) + WINDOW


@dataclass(frozen=True)
class RuleStats:
    """How many customers the limit deferred, and the limit's state when the run planned."""

    over_limit: int = 0
    limit: int | None = None
    messaged_in_window: int = 0


def apply_budget(
    frames: list[pd.DataFrame], budget: Budget, now: datetime
) -> tuple[list[pd.DataFrame], int]:
    """The chunks with the customers beyond the budget deferred; and how many were deferred."""
    places = budget.places()
    if places is None:
        return frames, 0
    known = list(budget.messaged)
    frees_at = budget.frees_at(now)
    out: list[pd.DataFrame] = []
    deferred = 0
    for frame in frames:
        chunk = with_not_before(frame)
        new = in_running(chunk) & chunk[PHONE_E164].notna() & ~chunk[PHONE_E164].isin(known)
        over = new & (new.cumsum() > places)
        taken = int(new.sum()) - int(over.sum())
        places -= taken
        if over.any():
            defer(chunk, over, Reason.MESSAGING_LIMIT, frees_at)
            deferred += int(over.sum())
        out.append(chunk)
    return out, deferred
