"""The portfolio's 24-hour messaging limit: send to at most what the window has left.

A number messaged within the window (by any campaign or sender) costs nothing more; each other
number takes one place. Customers beyond the places left are `deferred` / `messaging_limit`
until the window frees: from the moment its earliest message turns 24 hours old (a draining run
then sends as many as have freed). Chunks are taken in order, so the first customers keep places.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
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


NEW_RECIPIENT: Final = "_new_recipient"
"""Set by `mark_new` on a partition between the two halves of the budget: a row that would take
a place (its number not messaged in the window)."""


def mark_new(frame: pd.DataFrame, known: Collection[str]) -> pd.DataFrame:
    """A copy marking the customers who would take a place: still in the running, with a number
    not messaged in the window."""
    out = frame.copy()
    phones = out[PHONE_E164]
    out[NEW_RECIPIENT] = in_running(out) & phones.notna() & ~phones.isin(list(known))
    return out


def first_seats(frame: pd.DataFrame, places: int, order: str) -> np.ndarray:
    """The `order` values (audience positions) of the partition's first `places` + 1 new
    recipients: no more of them can be among the whole audience's first `places`, and the one
    more tells `last_seat` that the audience has more new recipients than places."""
    values = frame.loc[frame[NEW_RECIPIENT], order].to_numpy(dtype=np.int64)
    return np.sort(values)[: places + 1]


def last_seat(seats: Sequence[np.ndarray], places: int) -> int | None:
    """The audience position of the last new recipient who gets a place, over all partitions'
    `first_seats`; None when all of them do."""
    every = np.concatenate(list(seats)) if seats else np.empty(0, dtype=np.int64)
    if len(every) <= places:
        return None
    if places == 0:
        return -1
    return int(np.partition(every, places - 1)[places - 1])


def defer_over(
    frame: pd.DataFrame, last: int | None, order: str, frees_at: datetime
) -> tuple[pd.DataFrame, int]:
    """The partition with new recipients after the last seat deferred (`messaging_limit`), the
    mark dropped; and how many were deferred."""
    out = with_not_before(frame.drop(columns=[NEW_RECIPIENT]))
    if last is None:
        return out, 0
    over = frame[NEW_RECIPIENT] & (frame[order] > last)
    if over.any():
        defer(out, over, Reason.MESSAGING_LIMIT, frees_at)
    return out, int(over.sum())
