"""Giving customers still in the running an outcome by a rule, with the deferred's `not_before`."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from connectors.vocabulary import NOT_BEFORE, OUTCOME, REASON, Outcome


def with_not_before(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the `not_before` column (UTC timestamps, NaT where not deferred)."""
    out = frame.copy()
    if NOT_BEFORE not in out.columns:
        out[NOT_BEFORE] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out


def settle(frame: pd.DataFrame, mask: pd.Series, outcome: str, reason: str) -> None:
    """Set outcome and reason on the rows of `mask`, in place."""
    frame.loc[mask, OUTCOME] = outcome
    frame.loc[mask, REASON] = reason


def defer(
    frame: pd.DataFrame, mask: pd.Series, reason: str, not_before: pd.Series | datetime
) -> None:
    """Defer the rows of `mask` until `not_before` (one instant, or one per row), in place."""
    settle(frame, mask, Outcome.DEFERRED, reason)
    when = not_before[mask] if isinstance(not_before, pd.Series) else pd.Timestamp(not_before)
    frame.loc[mask, NOT_BEFORE] = when
