"""Marketing rules: Meta's paused markets, the user's marketing opt-out, Meta's per-user limit.

They apply to MARKETING templates only; utility and authentication templates are unaffected.
- Paused markets: Meta has not delivered marketing templates to US numbers (+1 with a US area
  code) since April 2025; numbers whose own region is in `paused_regions` are `excluded_policy`.
- Marketing opt-outs: a 131050 failure or a `user_preferences` stop for the business, not lifted
  by a later resume, gives `excluded_no_consent` / `stopped_marketing`.
- The per-user limit: a 131049 failure holds the number back from every marketing campaign for
  24 hours after it: `deferred` / `marketing_limited` until then.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Final

import pandas as pd
import phonenumbers

from connectors.vocabulary import MARKETING, PHONE_E164, Outcome, Reason
from tasks.frame import in_running
from tasks.phones.regions import regions_of
from tasks.rules.settle import defer, settle, with_not_before

MARKETING_LIMIT_HOURS: Final = 24
"""How long Meta's per-user marketing limit (131049) holds a number back."""


def is_marketing(category: str | None) -> bool:
    """Whether the marketing rules apply to a template of this category."""
    return (category or "").upper() == MARKETING


def exclude_paused_markets(frame: pd.DataFrame, paused_regions: Collection[str]) -> pd.DataFrame:
    """Exclude numbers whose region (from the number itself) is a paused marketing market."""
    out = with_not_before(frame)
    codes = tuple(f"+{phonenumbers.country_code_for_region(r)}" for r in paused_regions)
    # Only numbers under a paused region's calling code need their region read.
    running = in_running(out) & out[PHONE_E164].notna()
    if codes:
        running &= out[PHONE_E164].str.startswith(codes).fillna(False).astype(bool)
    if not paused_regions or not running.any():
        return out
    regions = regions_of(out.loc[running, PHONE_E164])
    paused = pd.Series(False, index=out.index)
    paused.loc[running] = regions.isin(list(paused_regions)).to_numpy()
    settle(out, paused, Outcome.EXCLUDED_POLICY, Reason.MARKETING_PAUSED_IN_REGION)
    return out


def exclude_stopped_marketing(frame: pd.DataFrame, stopped: Collection[str]) -> pd.DataFrame:
    """Exclude numbers that stopped marketing messages from the business."""
    out = with_not_before(frame)
    mask = in_running(out) & out[PHONE_E164].isin(list(stopped))
    settle(out, mask, Outcome.EXCLUDED_NO_CONSENT, Reason.STOPPED_MARKETING)
    return out


def defer_marketing_limited(frame: pd.DataFrame, limited: Mapping[str, datetime]) -> pd.DataFrame:
    """Defer numbers Meta's per-user limit held back until 24 hours after it did."""
    out = with_not_before(frame)
    mask = in_running(out) & out[PHONE_E164].isin(list(limited))
    if mask.any():
        since = out.loc[mask, PHONE_E164].map(dict(limited))
        until = pd.to_datetime(since, utc=True) + timedelta(hours=MARKETING_LIMIT_HOURS)
        defer(out, mask, Reason.MARKETING_LIMITED, until.reindex(out.index))
    return out
