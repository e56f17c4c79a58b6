"""The frame that flows between stages: what every stage relies on (names in
`connectors.vocabulary`)."""

from __future__ import annotations

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
