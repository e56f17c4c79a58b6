"""The frame that flows between stages: what every stage relies on (names in
`connectors.vocabulary`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from connectors.vocabulary import OUTCOME, REASON, STAGE_COLUMNS

Pair = tuple[str, str | None]
"""An (outcome, reason) pair; no reason is None."""


def in_running(frame: pd.DataFrame) -> pd.Series:
    """Rows no stage has excluded yet (outcome still null)."""
    return frame[OUTCOME].isna()


def with_stage_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the later stages' columns as nulls so every stage can rely on them."""
    out = frame.copy()
    for column in STAGE_COLUMNS:
        if column not in out.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype="str")
    return out


@dataclass(frozen=True)
class Tally:
    """What a stage did to some customers, for its log line: how many, how many settled, and the
    settled ones per (outcome, reason)."""

    rows: int = 0
    settled: int = 0
    outcomes: Mapping[Pair, int] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Tally:
        """Count one frame."""
        settled = frame.loc[frame[OUTCOME].notna(), [OUTCOME, REASON]]
        counts = settled.value_counts(dropna=False)
        pairs = zip(counts.index.tolist(), counts.tolist(), strict=True)
        outcomes = {(str(o), r if isinstance(r, str) else None): int(n) for (o, r), n in pairs}
        return cls(len(frame), len(settled), outcomes)

    def __add__(self, other: Tally) -> Tally:
        outcomes = Counter(self.outcomes)
        outcomes.update(other.outcomes)
        return Tally(self.rows + other.rows, self.settled + other.settled, outcomes)
