"""What both ways of verifying share: the stage's counts, the numbers in question, STOP replies."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from connectors.vocabulary import OUTCOME, PHONE_E164, REASON, WA_ID, Outcome, Reason
from tasks.frame import in_running


@dataclass(frozen=True)
class VerifyStats:
    """How many numbers the API checked, how many answers came from the cache, and how many
    numbers were suppressed as recently undeliverable (Cloud)."""

    checked: int
    from_cache: int
    suppressed: int = 0


def numbers_to_check(frames: list[pd.DataFrame]) -> list[str]:
    """Distinct numbers still in the running: exactly those about to be messaged."""
    phones = [f.loc[in_running(f), PHONE_E164].dropna() for f in frames]
    if not phones:
        return []
    return list(dict.fromkeys(pd.concat(phones).tolist()))


def exclude_stopped(frame: pd.DataFrame, stopped_wa_ids: set[str]) -> pd.DataFrame:
    """Exclude customers whose `wa_id` replied STOP (numbers whose wa_id differs from E.164)."""
    out = frame.copy()
    mask = in_running(out) & out[WA_ID].isin(list(stopped_wa_ids))
    out.loc[mask, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
    out.loc[mask, REASON] = Reason.OPTED_OUT_VIA_WHATSAPP
    out.loc[mask, WA_ID] = pd.NA
    return out
