"""The frame that flows between stages: what every stage relies on (names in
`connectors.vocabulary`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from connectors.vocabulary import OUTCOME, STAGE_COLUMNS


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
    """What a stage did to some customers, for its log line: how many, how many settled."""

    rows: int = 0
    settled: int = 0

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Tally:
        """Count one frame."""
        return cls(len(frame), int(frame[OUTCOME].notna().sum()))

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.rows + other.rows, self.settled + other.settled)
