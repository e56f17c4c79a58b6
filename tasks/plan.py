"""Planning before any API call: template parameters present, and what the ledger says is done."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.lease import Lease
from tasks.frame import MESSAGE_ID, OUTCOME, PHONE_E164, REASON, Outcome, Reason, in_running

# Ledger state -> the outcome a re-run reports without sending again.
_DONE = {"sent": Outcome.SENT, "send_failed": Outcome.SEND_FAILED}


def require_params(frame: pd.DataFrame, param_columns: list[str]) -> pd.DataFrame:
    """Customers missing a template parameter fail before anything is checked or sent."""
    out = frame.copy()
    missing = pd.Series(False, index=out.index)
    for column in param_columns:
        values = out[column] if column in out.columns else pd.Series(pd.NA, index=out.index)
        missing |= values.isna() | (values.astype("str").str.strip() == "")
    mask = in_running(out) & missing
    out.loc[mask, OUTCOME] = Outcome.SEND_FAILED
    out.loc[mask, REASON] = Reason.MISSING_PARAMETER
    return out


def apply_ledger(
    frame: pd.DataFrame, ledger: pd.DataFrame, *, resend_unknown: bool
) -> pd.DataFrame:
    """Give numbers that earlier runs settled their outcome, so only the rest are checked and sent.

    `sent` and permanent `send_failed` stay as they are; transient failures are retried; rows in
    doubt (`unknown`, a crash mid-call) are reported, and resent only with `resend_unknown`.
    """
    out = frame.copy()
    if ledger.empty:
        return out
    by_phone = ledger.set_index("phone_e164")
    state = out[PHONE_E164].map(by_phone["state"])
    retryable = out[PHONE_E164].map(by_phone["retryable"]).fillna(False).astype(bool)
    running = in_running(out)
    for ledger_state, outcome in _DONE.items():
        mask = running & (state == ledger_state)
        if ledger_state == "send_failed":
            mask &= ~retryable
        out.loc[mask, OUTCOME] = outcome
        out.loc[mask, REASON] = (
            Reason.ALREADY_SENT
            if ledger_state == "sent"
            else out.loc[mask, PHONE_E164].map(by_phone["error_code"]).astype("str")
        )
        out.loc[mask, MESSAGE_ID] = out.loc[mask, PHONE_E164].map(by_phone["message_id"])
    if not resend_unknown:
        doubt = running & state.isin(["unknown", "sending"])
        out.loc[doubt, OUTCOME] = Outcome.UNKNOWN
        out.loc[doubt, REASON] = Reason.SEND_IN_DOUBT
    return out


def mark_planned(frame: pd.DataFrame) -> pd.DataFrame:
    """Dry run: every customer still in the running would be checked and messaged."""
    out = frame.copy()
    out.loc[in_running(out), OUTCOME] = Outcome.PLANNED
    return out


@task(name="plan", cache_policy=NO_CACHE)
def plan_chunk(
    frame: pd.DataFrame,
    ledger: pd.DataFrame,
    param_columns: list[str],
    resend_unknown: bool,
    dry_run: bool,
) -> pd.DataFrame:
    """Prefect task: parameters, ledger and (dry run) planned outcomes for one chunk."""
    settled = apply_ledger(frame, ledger, resend_unknown=resend_unknown)
    planned = require_params(settled, param_columns)
    return mark_planned(planned) if dry_run else planned


@task(name="load-ledger", cache_policy=NO_CACHE)
def load_ledger(warehouse_url: SecretStr, lease: Lease) -> tuple[pd.DataFrame, int]:
    """Prefect task: turn sends left in doubt by a dead run into `unknown`, then read the ledger."""
    engine = warehouse(warehouse_url.get_secret_value())
    in_doubt = ledger.mark_in_doubt(engine, lease)
    return ledger.load(engine, lease.campaign_id), in_doubt
