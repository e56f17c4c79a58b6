"""Dedupe: one customer per number across all chunks of a campaign.

It keeps, per E.164 number, the customer with the most recent `opt_in_at` (NaT counts as oldest),
then the smallest `customer_id` by (length, text), so numeric ids order numerically and
equal-length ids (UUIDs) as text. The others are excluded as duplicates of it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from connectors.vocabulary import (
    CUSTOMER_ID,
    DUPLICATE_OF,
    OPT_IN_AT,
    OUTCOME,
    PHONE_E164,
    REASON,
    Outcome,
    Reason,
)
from tasks.phones.columns import writable, write

_CHUNK: Final = "_chunk"
_ROW: Final = "_row"
_ID_LENGTH: Final = "_id_length"


def _contenders(chunk: int, out: pd.DataFrame) -> pd.DataFrame:
    """One chunk's rows still in the running with a number, with only the columns dedupe needs."""
    rows = np.flatnonzero((out[OUTCOME].isna() & out[PHONE_E164].notna()).to_numpy(dtype=bool))
    picked = out.iloc[rows]
    return pd.DataFrame(
        {
            _CHUNK: np.full(len(rows), chunk, dtype=np.intp),
            _ROW: rows,
            PHONE_E164: picked[PHONE_E164].array,
            CUSTOMER_ID: picked[CUSTOMER_ID].astype("str").array,
            OPT_IN_AT: pd.to_datetime(picked[OPT_IN_AT], utc=True).array,
        }
    )


def dedupe(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Keep one customer per E.164 number across all chunks; exclude the rest as duplicates."""
    outs = [writable(frame) for frame in frames]
    parts = [_contenders(chunk, out) for chunk, out in enumerate(outs)]
    if sum(len(part) for part in parts) == 0:
        return outs
    live = pd.concat(parts, ignore_index=True)
    live[_ID_LENGTH] = live[CUSTOMER_ID].str.len()
    ranked = live.sort_values(
        [PHONE_E164, OPT_IN_AT, _ID_LENGTH, CUSTOMER_ID],
        ascending=[True, False, True, True],
        na_position="last",
        kind="stable",
    )
    dropped = ranked[PHONE_E164].duplicated(keep="first").to_numpy(dtype=bool)
    # Each number's first row is its keeper, so carrying ids forward names it on every duplicate.
    keeper = ranked[CUSTOMER_ID].where(~dropped).ffill()
    losers = ranked.loc[dropped, [_CHUNK, _ROW]].assign(**{DUPLICATE_OF: keeper[dropped]})
    chunks = losers[_CHUNK].to_numpy(dtype=np.intp)
    for chunk in np.unique(chunks):
        group = losers[chunks == chunk]
        out, rows = outs[chunk], group[_ROW].to_numpy(dtype=np.intp)
        write(out, OUTCOME, rows, Outcome.EXCLUDED_DUPLICATE)
        write(out, REASON, rows, Reason.DUPLICATE)
        write(out, DUPLICATE_OF, rows, group[DUPLICATE_OF])
    return outs
