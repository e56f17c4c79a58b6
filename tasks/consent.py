"""Consent: keep customers with an opt-in that no later opt-out withdrew."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.frame import OPT_IN_AT, OPT_OUT_AT, OUTCOME, REASON, Outcome, Reason, in_running


def apply_consent(
    frame: pd.DataFrame, *, max_age: timedelta | None = None, now: datetime | None = None
) -> pd.DataFrame:
    """Exclude customers without a standing opt-in, each with its reason."""
    out = frame.copy()
    opt_in, opt_out = out[OPT_IN_AT], out[OPT_OUT_AT]
    running = in_running(out)
    opted_out = running & opt_out.notna() & (opt_in.isna() | (opt_out >= opt_in))
    no_opt_in = running & ~opted_out & opt_in.isna()
    expired = pd.Series(False, index=out.index)
    if max_age is not None:
        cutoff = pd.Timestamp(now or datetime.now().astimezone()).tz_convert("UTC") - max_age
        expired = running & ~opted_out & ~no_opt_in & (opt_in < cutoff)
    for mask, reason in (
        (opted_out, Reason.OPTED_OUT),
        (no_opt_in, Reason.NO_OPT_IN),
        (expired, Reason.CONSENT_EXPIRED),
    ):
        out.loc[mask, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
        out.loc[mask, REASON] = reason
    return out


@task(name="consent", cache_policy=NO_CACHE)
def consent_chunk(frame: pd.DataFrame, max_age_days: int | None = None) -> pd.DataFrame:
    """Prefect task: consent filter over one chunk."""
    max_age = timedelta(days=max_age_days) if max_age_days else None
    return apply_consent(frame, max_age=max_age)
