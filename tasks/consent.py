"""Consent: keep customers with an opt-in that no later opt-out withdrew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.vocabulary import (
    OPT_IN,
    OPT_IN_AT,
    OPT_OUT,
    OPT_OUT_AT,
    OUTCOME,
    PHONE_E164,
    REASON,
    Outcome,
    Reason,
)
from tasks.frame import in_running


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[column].fillna(False).astype(bool)


def _utc(moment: datetime) -> pd.Timestamp:
    """The moment in UTC; a naive one is taken as UTC, as extract takes naive CRM times."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def apply_consent(
    frame: pd.DataFrame, *, max_age: timedelta | None = None, now: datetime | None = None
) -> pd.DataFrame:
    """Exclude customers without a standing opt-in, each with its reason.

    In: an opt-in (timestamp `opt_in_at`, or flag `opt_in`) and no opt-out at or after it. An
    opt-out flag (`opt_out`, e.g. `do_not_sms`) excludes whatever the timestamps say. An opt-in
    after `now` is no consent yet (`opt_in_in_future`). With a maximum age, an opt-in without a
    timestamp cannot prove its age and counts as expired. Unreadable consent dates were
    excluded at extract.
    """
    out = frame.copy()
    opt_in, opt_out = out[OPT_IN_AT], out[OPT_OUT_AT]
    moment = _utc(now or datetime.now(UTC))
    running = in_running(out)
    opted_out = running & (
        _flag(out, OPT_OUT) | (opt_out.notna() & (opt_in.isna() | (opt_out >= opt_in)))
    )
    future = running & ~opted_out & opt_in.notna() & (opt_in > moment)
    no_opt_in = running & ~opted_out & opt_in.isna() & ~_flag(out, OPT_IN)
    expired = pd.Series(False, index=out.index)
    if max_age is not None:
        expired = running & ~opted_out & ~future & ~no_opt_in
        expired &= opt_in.isna() | (opt_in < moment - max_age)
    for mask, reason in (
        (opted_out, Reason.OPTED_OUT),
        (future, Reason.OPT_IN_IN_FUTURE),
        (no_opt_in, Reason.NO_OPT_IN),
        (expired, Reason.CONSENT_EXPIRED),
    ):
        out.loc[mask, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
        out.loc[mask, REASON] = reason
    return out


def apply_opt_outs(frame: pd.DataFrame, opted_out: set[str]) -> pd.DataFrame:
    """Exclude numbers that replied STOP on WhatsApp, whatever the CRM says."""
    out = frame.copy()
    mask = in_running(out) & out[PHONE_E164].isin(list(opted_out))
    out.loc[mask, OUTCOME] = Outcome.EXCLUDED_NO_CONSENT
    out.loc[mask, REASON] = Reason.OPTED_OUT_VIA_WHATSAPP
    return out
